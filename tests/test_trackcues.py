"""The tracker's image cues on a real portrait: template search for lost faces, and scene cuts."""
import cv2
import numpy as np
import pytest

from ganivid import testclips as tc
from ganivid.align import Alignment
from ganivid.trackcues import PATCH, THUMB_SPAN, CutDetector, covered, patch, search, thumb


@pytest.fixture(scope="module")
def face(astronaut):
    """A grey frame with the astronaut at a known place, and that face's thumbnail template."""
    s = tc.sprite(astronaut)
    pose = Alignment(200, 130, 140, 8)
    img, _, _ = tc.render(tc.background(320, 240), [(s, pose)])
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    al = pose.as_array()
    return grey, al, thumb(*patch(grey, al, PATCH), al)


def test_search_finds_the_face_near_the_path(face):
    grey, al, template = face
    lost = al + (-60, 10, 0, 0)  # where the track was lost: the face is 0.44 crop sizes away
    score, xy = search(grey, template, lost, lost[:2] + (-80, 0), 0.6, [])
    assert score > 0.9
    assert np.hypot(*(xy - al[:2])) < 0.05 * al[2]


def test_search_stays_on_the_path_and_off_followed_faces(face):
    grey, al, template = face
    far = al + (-200, 0, 0, 0)  # path ends 1.43 crop sizes from the face: out of reach
    assert search(grey, template, far, far[:2] + (-50, 0), 0.6, [])[0] < 0.7
    near = al + (-60, 10, 0, 0)
    assert search(grey, template, near, near[:2], 0.6, [al])[0] < 0.7  # the face is followed already


def test_search_sees_a_face_half_out_of_the_frame(face):
    grey, al, template = face
    shifted = np.ascontiguousarray(np.hstack([grey[:, 170:], np.repeat(grey[:, -1:], 170, axis=1)]))
    half_out = al + (-170, 0, 0, 0)  # centre at x=30: a third of the face outside
    score, xy = search(shifted, template, half_out, half_out[:2] + (-60, 0), 0.6, [])
    assert score > 0.5 and np.hypot(*(xy - half_out[:2])) < 0.1 * al[2]
    outside = al + (-400, 0, 0, 0)
    assert search(shifted, template, outside, outside[:2] + (-50, 0), 0.6, [])[0] == -1.0


def test_covered_fraction_of_the_inner_face():
    """The fraction of a face's inner square (THUMB_SPAN of its crop) under another face's crop."""
    face = np.array([100.0, 100.0, 100.0, 0.0])
    assert covered(face, []) == 0.0
    assert covered(face, [np.array([100.0, 100.0, 150.0, 0.0])]) == 1.0
    # A head whose crop edge runs through the face's centre covers half of it.
    assert covered(face, [np.array([175.0, 100.0, 150.0, 0.0])]) == pytest.approx(0.5)
    edge = 100 + 0.5 * THUMB_SPAN * 100 + 50  # the two squares' edges touch
    assert covered(face, [np.array([edge, 100.0, 100.0, 0.0])]) == 0.0

@pytest.mark.parametrize("size", [(320, 240), (360, 288), (1280, 720)])
def test_cuts_on_grey_and_rgb_agree(size):
    a, b = tc.background(*size, seed=1), tc.background(*size, seed=2) // 3
    for frames in ([a, a, b, b], [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (a, a, b, b)]):
        cuts = CutDetector(0.12, 0.2)
        assert [cuts(f) for f in frames] == [False, False, True, False]
