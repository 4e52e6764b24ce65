"""ganivid.shrink runs OpenCV's INTER_AREA shrink itself: it must give OpenCV's very pixels."""
import cv2
import numpy as np
import pytest
from skimage import data

from ganivid.align import Alignment, crop_face
from ganivid.shrink import shrink


def _opencv(image: np.ndarray, f: float) -> np.ndarray:
    return cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)


def test_same_pixels_as_opencv():
    rng = np.random.default_rng(7)
    photo = np.dstack([data.astronaut(), data.astronaut()[..., :1]])  # 4 channels of a real picture
    tried = 0
    for trial in range(300):
        h, w = (int(v) for v in rng.integers(2, 360, 2))
        channels = (1, 2, 3, 3, 4)[trial % 5]
        if trial % 2:  # noise: every rounding case
            image = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        else:
            image = np.ascontiguousarray(cv2.resize(photo, (w, h))[..., :channels])
        image = image[..., 0] if channels == 1 else image
        f = float(rng.uniform(0.03, 0.99))
        if min(round(w * f), round(h * f)) < 1:
            continue
        ours, theirs = shrink(image, f), _opencv(image, f)
        assert ours.shape == theirs.shape and ours.dtype == np.uint8, (image.shape, f)
        assert np.array_equal(ours, theirs), (image.shape, f)
        tried += 1
    assert tried > 250


def test_views_saturation_and_what_opencv_keeps():
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    region = frame[37:251, 55:333]  # a crop's footprint: rows contiguous, not the array
    assert np.array_equal(shrink(region, 0.61), _opencv(region, 0.61))
    white = np.full((90, 70, 3), 255, np.uint8)  # sums of weights a hair above 1 must saturate
    assert np.array_equal(shrink(white, 0.37), _opencv(white, 0.37)) and shrink(white, 0.37).max() == 255
    # OpenCV's own paths stay OpenCV's: whole-number factors, other dtypes, no change of size
    for image, f in ((frame, 0.5), (frame, 0.25), (frame.astype(np.uint16) * 200, 0.61),
                     (frame.astype(np.float32), 0.61), (frame[:5, :5], 0.95)):
        assert np.array_equal(shrink(image, f), _opencv(image, f)), (image.dtype, f)


@pytest.mark.parametrize("size,angle", [(150, 0.0), (220, 8.0), (275, -14.0), (900, 3.0)])
def test_crop_face_unchanged(size, angle):
    """crop_face shrinks big faces with `shrink`: its crops are those of OpenCV's resize."""
    import ganivid.shrink as mod

    image = data.astronaut()
    al = Alignment(260, 200, size, angle)
    ours = crop_face(image, al, 96)
    try:
        original, mod.shrink = mod.shrink, _opencv
        theirs = crop_face(image, al, 96)
    finally:
        mod.shrink = original
    assert np.array_equal(ours, theirs)
