"""The independent MediaPipe reader of benchmarks/ (skips without ai_edge_litert or the .task file)."""
import importlib.util
import sys
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "mediapipe_reader", Path(__file__).parents[1] / "benchmarks" / "mediapipe_reader.py")
mpr = importlib.util.module_from_spec(SPEC)
sys.modules[SPEC.name] = mpr  # dataclasses look their module up there
SPEC.loader.exec_module(mpr)
pytestmark = pytest.mark.skipif(mpr.unavailable() is not None, reason=str(mpr.unavailable()))


@pytest.fixture(scope="module")
def reader():
    return mpr.MediaPipeReader()


def _smile(reader, image):
    from ganivid.still import find_faces

    r = reader.read_dlib(image, find_faces(image)[0].landmarks)
    assert r.presence > 0.9 and r.mesh.shape == (478, 3) and r.scores.shape == (52,)
    return r.score("mouthSmileLeft", "mouthSmileRight")


def test_neutral_face_reads_no_smile(reader, grace_hopper):
    assert _smile(reader, grace_hopper) < 0.1


def test_smiling_face_reads_a_smile(reader, astronaut):
    assert _smile(reader, astronaut) > 0.3


def test_tables_match_mediapipe():
    assert len(mpr.SUBSET) == 146 and len(set(mpr.SUBSET)) == 146 and mpr.SUBSET[-1] == 477
    assert mpr.NAMES[0] == "_neutral" and mpr.NAMES.index("jawOpen") == 25 and mpr.NAMES.index("mouthSmileLeft") == 44
