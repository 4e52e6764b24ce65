"""The mesh AU estimator (MediaPipe's blendshapes and mesh via LiteRT) on real faces moved by
known amounts, and on known expressions."""
from __future__ import annotations

import numpy as np
import pytest

from ganivid.aus import au_index
from ganivid.mesh import shared_reader
from ganivid.meshaus import SUPPORTED, cue_baseline, mesh_aus, read_cues
from ganivid.still import find_faces
from ganivid.warps import warp_face

LEVELS = (0.0, 0.33, 0.66, 1.0)


def _aus(image: np.ndarray, baseline=None) -> np.ndarray:
    return mesh_aus(read_cues(image, find_faces(image, estimator="landmarks")[0].landmarks), baseline)


# The blink warp closes the lids to 5 % but keeps lashes and lid texture where they were:
# MediaPipe's eyeBlink reads it as a quarter of a blink (benchmarks/calibrate_mesh_aus.py).
@pytest.mark.parametrize("moves, au, rise", [({"AU12": 1.0}, "AU12", 0.3), ({"AU25": 1.0, "AU26": 1.0}, "AU26", 0.3),
                                             ({"AU25": 1.0, "AU26": 1.0}, "AU25", 0.3), ({"AU45": 1.0}, "AU45", 0.15)],
                         ids=["smile", "jaw drop", "lips part", "blink"])
def test_warped_moves_read_monotonically(grace_hopper, moves, au, rise):
    lm = find_faces(grace_hopper, estimator="landmarks")[0].landmarks
    frames = [warp_face(grace_hopper, lm, {k: v * s for k, v in moves.items()})[0] if s else grace_hopper
              for s in LEVELS]
    cues = np.stack([read_cues(f, find_faces(f, estimator="landmarks")[0].landmarks) for f in frames])
    read = mesh_aus(cues, cue_baseline(cues, 0))[:, au_index(au)]  # the unmoved face as her neutral
    assert np.all(np.diff(read) >= -0.02), read
    assert read[-1] - read[0] > rise, read


def test_broad_smile_and_neutral_face(astronaut, grace_hopper):
    assert _aus(astronaut)[au_index("AU12")] > 0.5
    assert _aus(grace_hopper)[au_index("AU12")] < 0.15
    aus = _aus(grace_hopper)
    assert np.all(np.isnan(aus[~SUPPORTED])) and np.all((aus[SUPPORTED] >= 0) & (aus[SUPPORTED] <= 1))


def test_photos_use_the_mesh_and_load_its_runtime_once(astronaut, grace_hopper):
    shared_reader()
    loads = shared_reader.cache_info().misses
    a = find_faces(astronaut)[0].aus
    h = find_faces(grace_hopper)[0].aus
    assert shared_reader.cache_info().misses == loads  # one runtime per process, however many faces
    assert a[au_index("AU12")] > 0.5 > h[au_index("AU12")]
    old = find_faces(grace_hopper, estimator="landmarks")[0].aus
    assert not np.allclose(np.nan_to_num(old), np.nan_to_num(h))  # the two estimators are distinct


def test_grey_frames_read_like_colour(astronaut):
    import cv2

    lm = find_faces(astronaut, estimator="landmarks")[0].landmarks
    colour = mesh_aus(read_cues(astronaut, lm))
    grey = mesh_aus(read_cues(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY), lm))
    assert np.nanmax(np.abs(colour - grey)) < 0.25 and grey[au_index("AU12")] > 0.5
