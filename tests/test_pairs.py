"""Warp pairs for the supervised warm-up: real face, known moves, labels from the estimator."""
import numpy as np
import pytest

from ganivid.align import alignment_from_landmarks, crop_face, crop_matrix
from ganivid.aus import au_index
from ganivid.faces import DlibDetector
from ganivid.pairs import labels, make_pair, make_pairs, random_moves


@pytest.fixture(scope="module")
def crop(astronaut):
    """The astronaut's 96 px crop and its landmarks in crop pixels."""
    det = DlibDetector()
    lm = det.detect(astronaut)[0].landmarks
    al = alignment_from_landmarks(lm)
    m = crop_matrix(al, 96)
    return crop_face(astronaut, al, 96), lm @ m[:, :2].T + m[:, 2]


def test_random_moves_keep_one_move_per_region():
    rng = np.random.default_rng(0)
    for _ in range(200):
        moves = random_moves(rng)
        assert moves and all(0.2 <= v <= 1 for v in moves.values())
        assert not ({"AU1", "AU2"} & moves.keys() and "AU4" in moves)  # brows never up and down


def test_pairs_follow_the_move_both_ways(crop):
    image, lm = crop
    y0 = labels(lm)
    found = {"forward": False, "reverse": False, "identity": False}
    rng = np.random.default_rng(1)
    for _ in range(12):
        x, y, x_t, y_t = make_pair(image, lm, rng, identity=0.2, reverse=0.5)
        assert x.shape == x_t.shape == image.shape and not np.isnan(y).any() and not np.isnan(y_t).any()
        if np.array_equal(x, image) and np.array_equal(x_t, image):
            found["identity"] = True
            assert np.array_equal(y, y_t)
        elif np.array_equal(x, image):
            found["forward"] = True
            assert np.allclose(y, y0) and np.abs(y_t - y).max() > 0.05
        else:
            found["reverse"] = True
            assert np.array_equal(x_t, image) and np.allclose(y_t, y0) and not np.array_equal(x, image)
    assert all(found.values()), found


def test_smile_pair_raises_au12_only_in_the_mouth(crop):
    image, lm = crop
    from ganivid.warps import warp_face

    from ganivid.estimate import features

    out, moved = warp_face(image, lm, {"AU12": 1.0})
    # Raw features, not labels: the astronaut already smiles, so her AU12 label is at its cap.
    df = features(moved) - features(lm)
    assert df[au_index("AU12")] > 0.08
    assert np.abs(df[[au_index(n) for n in ("AU1", "AU2", "AU4", "AU45")]]).max() < 0.02
    assert not np.array_equal(out, image)


def test_make_pairs_is_deterministic_and_trains_as_paired_dataset(crop):
    image, lm = crop
    a = make_pairs(image[None], lm[None], variants=3, seed=5)
    b = make_pairs(image[None], lm[None], variants=3, seed=5)
    assert len(a) == 3 and a.has_pairs
    assert np.array_equal(a.images, b.images) and np.array_equal(a.targets[1], b.targets[1])
    with pytest.raises(ValueError):
        make_pairs(image[None], lm, variants=1)
