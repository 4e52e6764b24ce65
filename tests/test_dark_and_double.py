"""Issue 25's "also found": faces in a very dark clip, and one face with two track ids."""
from __future__ import annotations

import numpy as np
import pytest

from ganivid import testclips as tc
from ganivid.tracking import TrackConfig, analyse


def _dark(clip: tc.Clip, level: float) -> list[tuple[int, float, np.ndarray]]:
    """The clip at `level` of its brightness, with a camera's noise (sigma 1 level)."""
    rng = np.random.default_rng(0)
    return [(i, t, np.clip(np.round(f * np.float32(level) + rng.normal(0, 1, f.shape)), 0, 255).astype(np.uint8))
            for i, (t, f) in enumerate(zip(clip.times, clip.frames))]


@pytest.fixture(scope="module")
def moving(astronaut) -> tc.Clip:
    return tc.moving_clip(tc.sprite(astronaut), 40)


def test_faces_are_found_in_a_very_dark_clip(moving):
    """At 8 % brightness HOG found the face on 20 of 40 frames, and the tracker kept it on 4;
    the detector's input is stretched when dark: every frame."""
    from ganivid.faces import DlibDetector

    frames = _dark(moving, 0.08)
    detector = DlibDetector()
    assert sum(bool(detector.boxes(img)) for _, _, img in frames) == 40
    table = analyse(frames, TrackConfig(detect_every=12))
    assert len(np.unique(table.frame)) == 40 and set(table.track_id.tolist()) == {0}


def test_one_face_never_has_two_tracks_on_a_frame(moving, monkeypatch):
    """--detect-every 1 on a dim, noisy clip: a refit drifted and shrank (crop 131 against 175 px,
    35 px off); the detection on the face overlapped it by IoU 0.4, under both the association's
    0.3 on the detector's box and the de-duplication's 0.5, so an old track was revived beside it
    at frame 37. The detector's own stretching hides the case, so it is off here."""
    import ganivid.faces

    monkeypatch.setattr(ganivid.faces, "brightened", lambda image: image)
    table = analyse(_dark(moving, 0.12), TrackConfig(detect_every=1))
    for frame in np.unique(table.frame):
        ids = table.track_id[table.frame == frame]
        assert len(ids) == 1, f"frame {frame}: tracks {ids.tolist()}"
