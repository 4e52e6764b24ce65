"""ganivid.landmarks runs dlib's 68-point model itself: it must give dlib's very landmarks."""
import os

import cv2
import numpy as np
import pytest

from ganivid.errors import GanividError
from ganivid.faces import DlibDetector, models_dir
from ganivid.landmarks import ShapePredictor, load, shape_predictor_68

MODEL = os.path.join(models_dir(), "shape_predictor_68_face_landmarks.dat")


@pytest.fixture(scope="module")
def dlib_predictor():
    import dlib

    return dlib.shape_predictor(MODEL)


def _dlib(predictor, image: np.ndarray, box) -> np.ndarray:
    import dlib

    return np.array([(p.x, p.y) for p in predictor(image, dlib.rectangle(*box)).parts()], np.float32)


def test_landmarks_equal_dlibs(astronaut, grace_hopper, dlib_predictor):
    """Every landmark equal to dlib's, on colour and grey portraits, for boxes moved and resized
    around each face (the tracker's fits start off-centre), boxes partly outside the image, and
    turned, blurred and darkened faces (pixels the fit reads become different)."""
    rng = np.random.default_rng(0)
    det = DlibDetector()
    cases = 0
    for image in (astronaut, grace_hopper):
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        turned = cv2.warpAffine(image, cv2.getRotationMatrix2D((image.shape[1] / 2, image.shape[0] / 2), 20, 1.0),
                                image.shape[1::-1])
        variants = [image, grey, turned, cv2.GaussianBlur(image, (9, 9), 3), (image // 3).astype(np.uint8)]
        box = np.array(det.boxes(image)[0][0]).round().astype(int)
        side = box[2] - box[0]
        for variant in variants:
            for _ in range(12):
                b = box + rng.integers(-side // 4, side // 4 + 1, 4)
                b = (int(b[0]), int(b[1]), int(max(b[2], b[0] + 8)), int(max(b[3], b[1] + 8)))
                assert np.array_equal(det.landmarks(variant, b), _dlib(dlib_predictor, variant, b)), b
                cases += 1
        h, w = image.shape[:2]
        for b in [(-40, -30, side - 40, side - 30), (w - side + 50, h - side + 60, w + 50, h + 60)]:
            assert np.array_equal(det.landmarks(image, b), _dlib(dlib_predictor, image, b)), b
            cases += 1
    assert cases == 2 * (5 * 12 + 2)


def test_cached_arrays_load_back_equal(tmp_path, monkeypatch, astronaut):
    """The parsed model is cached in the user's cache folder under its content (another copy or
    a touched file finds the same entry) and loads back to the same arrays; writing an entry
    removes the model's older ones; a damaged entry is read past (the model parsed again); a
    file that is not a shape predictor is refused with its name."""
    import shutil

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "ganivid"
    folder.mkdir(parents=True)
    stale = folder / f"{os.path.basename(MODEL)}.123.0123456789abcdef.v1.npz"
    stale.write_bytes(b"an entry of an older model")
    first = load(MODEL)  # parses, then writes the cache
    cached = list(folder.glob("*.npz"))
    assert len(cached) == 1 and not stale.exists()
    copy = tmp_path / "copy" / os.path.basename(MODEL)
    copy.parent.mkdir()
    shutil.copyfile(MODEL, copy)
    os.utime(copy, (1e9, 1e9))
    again = load(str(copy))
    assert list(folder.glob("*.npz")) == cached
    ref = shape_predictor_68()
    for name in ("initial", "idx", "thresh", "leaves", "anchors", "deltas"):
        assert np.array_equal(getattr(first, name), getattr(ref, name))
        assert np.array_equal(getattr(again, name), getattr(ref, name))
    box = (179, 83, 266, 170)
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    assert np.array_equal(again(grey, box), ref(grey, box))

    cached[0].write_bytes(cached[0].read_bytes()[:1000])
    assert np.array_equal(load(MODEL).leaves, ref.leaves)

    for content in (b"", b"\x01\x01\x81\x88", open(MODEL, "rb").read(5000)):
        bad = tmp_path / "bad.dat"
        bad.write_bytes(content)
        with pytest.raises(GanividError, match="bad.dat: not a dlib shape predictor"):
            ShapePredictor.read(str(bad))
