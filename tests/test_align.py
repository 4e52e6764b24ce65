"""The one crop function: alignment, crop, and paste-back of edits on real faces."""
import cv2
import numpy as np
import pytest

from ganivid import testclips as tc
from ganivid.align import (Alignment, alignment_from_landmarks, crop_face, crop_matrix, feather_mask, landmark_angles,
                           paste_back)


@pytest.fixture(scope="module")
def still(astronaut):
    return tc.sprite(astronaut)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def footprint(frame_shape: tuple[int, ...], al: Alignment, n: int) -> np.ndarray:
    """Frame pixels the crop covers, grown by 2 px for bilinear reach."""
    inv = cv2.invertAffineTransform(crop_matrix(al, n))
    mask = cv2.warpAffine(np.ones((n, n), np.uint8), inv, frame_shape[1::-1], flags=cv2.INTER_NEAREST)
    return cv2.dilate(mask, np.ones((5, 5), np.uint8)) > 0


def test_alignment_follows_a_similarity_transform(still):
    """Rotating, scaling and moving the landmarks moves the crop the same way (exactly)."""
    a = np.radians(12.0)
    m = 1.3 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    al0 = alignment_from_landmarks(still.landmarks)
    al1 = alignment_from_landmarks(still.landmarks.astype(np.float64) @ m.T + (40.0, -25.0))
    c = m @ (al0.cx, al0.cy) + (40.0, -25.0)
    assert (al1.cx, al1.cy) == pytest.approx(tuple(c), abs=1e-6)
    assert al1.size == pytest.approx(1.3 * al0.size)
    assert al1.angle == pytest.approx(al0.angle + 12.0)


def test_landmark_angles_are_the_alignments_angles(still):
    rng = np.random.default_rng(1)
    lms = still.landmarks[None] + rng.normal(0, 4, (2, 5, 68, 2))  # any leading shape
    rotated = (still.landmarks - 200) @ np.array([[0.8, 0.6], [-0.6, 0.8]]) + 200  # ~37 degrees
    lms[1, 0] = rotated
    want = np.array([[alignment_from_landmarks(p).angle for p in row] for row in lms])
    np.testing.assert_allclose(landmark_angles(lms), want, atol=1e-9)
    assert abs(landmark_angles(rotated) - alignment_from_landmarks(rotated).angle) < 1e-9
    assert abs(abs(want[1, 0] - alignment_from_landmarks(still.landmarks).angle) - 36.87) < 0.01


def test_crop_of_warped_face_matches_crop_of_still(still):
    """Same face under any pose gives the same framing: crops at the true alignment agree."""
    ref = crop_face(still.image, still.alignment, 128)
    clip = tc.moving_clip(still, n_frames=5)
    for frame, truth in zip(clip.frames, clip.truth):
        crop = crop_face(frame, alignment_from_landmarks(truth["a"]), 128)
        inner = (slice(24, 104), slice(24, 104))  # the face, away from the pasted ellipse's edge
        assert psnr(crop[inner], ref[inner]) > 22


@pytest.mark.parametrize("n", [64, 128, 256])
def test_unedited_crop_pastes_back_identically(astronaut, still, n):
    al = Alignment(still.alignment.cx + 3.3, still.alignment.cy - 1.7, still.alignment.size, 9.0)
    crop = crop_face(astronaut, al, n)
    out = paste_back(astronaut, crop, crop.copy(), al)
    assert np.array_equal(out, astronaut)  # PSNR infinite inside, identical outside


def test_generator_round_trip_noise_stays_below_visibility(astronaut, still):
    """A crop that went through a float generator (±1 level of noise) pastes back at >= 40 dB inside
    the face and bit-identical outside the warped crop."""
    al, n = still.alignment, 128
    crop = crop_face(astronaut, al, n)
    noise = np.random.default_rng(0).integers(-1, 2, crop.shape)
    edited = np.clip(crop.astype(int) + noise, 0, 255).astype(np.uint8)
    out = paste_back(astronaut, crop, edited, al)
    inside = footprint(astronaut.shape, al, n)
    assert np.array_equal(out[~inside], astronaut[~inside])
    face = (slice(int(al.cy - al.size / 3), int(al.cy + al.size / 3)), slice(int(al.cx - al.size / 3), int(al.cx + al.size / 3)))
    assert psnr(out[face], astronaut[face]) >= 40


def test_real_edit_stays_inside_the_warped_crop(astronaut, still):
    """A visible change in the crop appears at the face and nowhere outside the rotated crop."""
    al, n = Alignment(still.alignment.cx, still.alignment.cy, still.alignment.size, 20.0), 128
    crop = crop_face(astronaut, al, n)
    edited = crop.copy()
    edited[40:88, 40:88] = 255  # a white square over the face
    out = paste_back(astronaut, crop, edited, al)
    changed = np.any(out != astronaut, axis=2)
    inside = footprint(astronaut.shape, al, n)
    assert changed.sum() > 1000
    assert not np.any(changed & ~inside)
    assert out[int(al.cy), int(al.cx)].min() > 240  # the centre of the square landed on the face centre
    # The feathered border: the crop's outer ring changes nothing even if the edit covers it.
    edited_all = np.full_like(crop, 255)
    out2 = paste_back(astronaut, crop, edited_all, al)
    ring = footprint(astronaut.shape, al, n) & ~footprint(astronaut.shape, Alignment(al.cx, al.cy, al.size * 0.97, al.angle), n)
    assert np.abs(out2[ring].astype(int) - astronaut[ring]).max() <= 12


def test_feather_mask_is_one_inside_and_zero_at_the_border():
    m = feather_mask(100)
    assert m[50, 50] == 1.0 and m[0, 0] < 0.01 and m[0, 50] < 0.05
    assert np.allclose(m, m.T) and np.allclose(m, m[::-1])


def test_crop_and_paste_at_the_frame_border(astronaut, still):
    """A face cut by the frame edge: the crop is complete (border replicated), paste-back clips."""
    frame = astronaut[:, 180:].copy()  # the face's left half is outside
    al = Alignment(still.alignment.cx - 180, still.alignment.cy, still.alignment.size, 0.0)
    crop = crop_face(frame, al, 128)
    assert crop.shape == (128, 128, 3)
    edited = crop.copy()
    edited[50:80, 50:80] = 0
    out = paste_back(frame, crop, edited, al)
    assert out.shape == frame.shape and np.any(out != frame)
    far = Alignment(-500, -500, 100, 0)  # entirely outside: nothing to paste, no error
    assert np.array_equal(paste_back(frame, crop_face(frame, far, 64), np.zeros((64, 64, 3), np.uint8), far), frame)


def test_grayscale_frame(astronaut, still):
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    crop = crop_face(grey, still.alignment, 96)
    assert crop.shape == (96, 96, 3)
    edited = crop.copy()
    edited[30:60, 30:60] = 255
    out = paste_back(grey, crop, edited, still.alignment)
    assert out.shape == grey.shape and out.dtype == np.uint8 and np.any(out != grey)
    assert np.array_equal(paste_back(grey, crop, crop, still.alignment), grey)


def test_4k_frame_crop_and_paste(still):
    """A 4K frame: the crop is area-filtered (no aliasing) and paste-back touches only the face."""
    frame, truth, _ = tc.render(tc.background(3840, 2160), [(still, Alignment(1900, 1000, 1200, 5))])
    al = alignment_from_landmarks(truth[0])
    crop = crop_face(frame, al, 128)
    ref = crop_face(still.image, still.alignment, 128)
    assert psnr(crop[24:104, 24:104], ref[24:104, 24:104]) > 22
    edited = crop.copy()
    edited[60:70, 60:70] = 0
    out = paste_back(frame, crop, edited, al)
    changed = np.any(out != frame, axis=2)
    assert changed.any() and not np.any(changed & ~footprint(frame.shape, al, 128))


@pytest.mark.parametrize("rotation", [0, 90, 180, 270, -90])
def test_to_stored_finds_the_same_face_in_a_turned_frame(astronaut, rotation):
    from ganivid.align import to_stored
    from ganivid.video import from_upright, to_upright

    stored = astronaut[:400, :300]  # not square: width and height swap when turned
    upright = to_upright(stored, rotation)
    h, w = upright.shape[:2]
    al = Alignment(w * 0.4, h * 0.55, 80, 12)
    there = to_stored(al, rotation, stored.shape[:2])
    crop = crop_face(upright, al, 64)
    assert np.abs(crop_face(stored, there, 64).astype(int) - crop).max() <= 1  # the same pixels sampled
    edited = np.clip(crop.astype(int) + 40, 0, 255).astype(np.uint8)
    # An edit pasted into the stored frame is the edit pasted upright, turned back: bit for bit.
    assert np.array_equal(paste_back(stored, crop, edited, there),
                          from_upright(paste_back(upright, crop, edited, al), rotation))
