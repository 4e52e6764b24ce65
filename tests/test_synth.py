"""Synthetic faces: deterministic, framed like real crops, and each AU moves only its own region."""
import csv

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from ganivid import synth
from ganivid.align import alignment_from_landmarks
from ganivid.aus import AU_NAMES, NUM_AUS, au_index, expression
from ganivid.cli import app
from ganivid.data import ArrayDataset, open_dataset
from ganivid.errors import DataError

SIZE = 64
D = SIZE * synth.D  # eye-centre distance in pixels
EYE_ROW = SIZE * synth.EYE_Y


def _au(name: str, v: float = 1.0) -> np.ndarray:
    a = np.zeros(NUM_AUS, np.float32)
    a[au_index(name)] = v
    return a


def _changed(ident: synth.Identity, name: str) -> np.ndarray:
    """(rows, cols) of pixels that the AU at full intensity changes from the neutral face."""
    diff = np.abs(synth.render(ident, _au(name), SIZE).astype(int)
                  - synth.render(ident, np.zeros(NUM_AUS), SIZE).astype(int)).max(2)
    return np.nonzero(diff > 2)


def test_render_is_deterministic_and_seeded():
    a = expression("surprise")
    img = synth.render(synth.random_identity(3), a, SIZE)
    assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8
    assert np.array_equal(img, synth.render(synth.random_identity(3), a, SIZE))
    assert np.abs(img.astype(int) - synth.render(synth.random_identity(4), a, SIZE)).mean() > 10
    s1, s2 = synth.generate(6, 32, seed=5), synth.generate(6, 32, seed=5)
    assert np.array_equal(s1.images, s2.images) and np.array_equal(s1.aus, s2.aus)
    assert not np.array_equal(s1.images, synth.generate(6, 32, seed=6).images)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_any_size_is_framed_like_align_crop(size):
    ident = synth.random_identity(11)
    img = synth.render(ident, np.zeros(NUM_AUS), size)
    assert img.shape == (size, size, 3)
    pts = synth.key_points(ident, size)
    lm = np.zeros((68, 2))
    lm[36:42], lm[42:48], lm[48], lm[54] = pts[0], pts[1], pts[2], pts[3]
    al = alignment_from_landmarks(lm)
    # Same framing as align.crop_face up to the identity's small alignment jitter.
    assert abs(al.cx - (size - 1) / 2) < 0.05 * size and abs(al.cy - (size - 1) / 2) < 0.05 * size
    assert abs(al.size / size - 1) < 0.08


UPPER = ["AU1", "AU2", "AU4", "AU5", "AU7", "AU45"]
LOWER = ["AU10", "AU12", "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_au_changes_only_its_region(seed):
    ident = synth.random_identity(seed)
    for name in UPPER:
        rows, _ = _changed(ident, name)
        assert rows.size > 10, name
        assert rows.max() < EYE_ROW + 0.45 * D, name  # nothing below the eyes
    for name in LOWER:
        rows, _ = _changed(ident, name)
        assert rows.size > 10, name
        assert rows.min() > EYE_ROW + 0.5 * D, name  # nothing at the eyes or brows
    rows, _ = _changed(ident, "AU6")  # cheeks and lower lids, not brows or mouth
    assert rows.min() > EYE_ROW - 0.4 * D and rows.max() < EYE_ROW + 1.2 * D
    rows, _ = _changed(ident, "AU9")  # nose, upper lip and the folds beside it, not the chin
    assert rows.min() > EYE_ROW - 0.1 * D and rows.max() < EYE_ROW + 1.45 * D


def test_aus_move_parts_the_right_way():
    ident = synth.random_identity(7)
    centre = SIZE / 2
    # AU1 lifts the inner brow ends, AU2 the outer ones.
    _, c1 = _changed(ident, "AU1")
    _, c2 = _changed(ident, "AU2")
    assert np.abs(c1 - centre).mean() < np.abs(c2 - centre).mean() - 0.1 * D
    # AU12 lifts the mouth corners, AU15 lowers them: the mouth's dark line follows.
    def corner_row(aus):
        img = synth.render(ident, aus, SIZE).astype(float).mean(2)
        col = int(round(centre + 0.35 * D))
        band = img[int(EYE_ROW + 0.8 * D):int(EYE_ROW + 1.4 * D), col]
        return np.argmin(band)
    neutral = corner_row(np.zeros(NUM_AUS))
    assert corner_row(_au("AU12")) < neutral < corner_row(_au("AU15"))
    # AU45 closes the eyes: the bright eye whites disappear.
    eyes = slice(int(EYE_ROW - 0.15 * D), int(EYE_ROW + 0.15 * D))
    open_white = (synth.render(ident, np.zeros(NUM_AUS), SIZE)[eyes].min(2) > 200).sum()
    shut_white = (synth.render(ident, _au("AU45"), SIZE)[eyes].min(2) > 200).sum()
    assert shut_white < 0.2 * open_white
    # AU26 drops the jaw: the mouth opens and the chin moves down.
    assert _changed(ident, "AU26")[0].max() > _changed(ident, "AU25")[0].max()


def test_identity_and_aus_are_independent():
    """The image at any AU vector is the truth for an edit: same identity, same background."""
    data = synth.generate(4, 48, seed=2, per_identity=2)
    assert data.identities[0] == data.identities[1] != data.identities[2]
    for img, aus, seed in zip(data.images, data.aus, data.identities):
        assert np.array_equal(img, synth.render(synth.random_identity(int(seed)), aus, 48))
    # Changing every AU leaves the sides (hair, background) untouched.
    ident = synth.random_identity(9)
    a = synth.render(ident, np.zeros(NUM_AUS), SIZE)
    b = synth.render(ident, np.ones(NUM_AUS), SIZE)
    border = np.ones((SIZE, SIZE), bool)
    border[:, 6:-6] = False
    assert np.array_equal(a[border], b[border])


def test_sampled_aus_resemble_real_data():
    aus = synth.sample_aus(np.random.default_rng(0), 4000)
    assert aus.shape == (4000, NUM_AUS) and aus.min() >= 0 and aus.max() <= 1
    assert ((aus > 0.3).sum(1) == 0).mean() > 0.25  # many near-neutral faces
    assert (aus > 0.3).mean() < 0.2  # sparse
    assert ((aus > 0.3).mean(0) > 0.01).all()  # every AU appears
    corr = np.corrcoef(aus.T)
    assert corr[au_index("AU6"), au_index("AU12")] > 0.3  # smile
    assert corr[au_index("AU1"), au_index("AU2")] > 0.3  # brows rise together


def test_cli_writes_a_folder_dataset(tmp_path):
    out = tmp_path / "faces"
    res = CliRunner().invoke(app, ["synth", str(out), "--count", "5", "--size", "40", "--seed", "3",
                                   "--per-identity", "2"])
    assert res.exit_code == 0, res.output
    with open(out / "aus.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == [f"imgs/{i}.png" for i in range(5)]
    assert list(rows[0]) == ["file", *AU_NAMES]
    with open(out / "identities.csv") as f:
        ids = [int(r["identity"]) for r in csv.DictReader(f)]
    data = synth.generate(5, 40, seed=3, per_identity=2)
    assert ids == data.identities.tolist()
    for i, r in enumerate(rows):
        img = cv2.cvtColor(cv2.imread(str(out / r["file"])), cv2.COLOR_BGR2RGB)
        assert np.array_equal(img, data.images[i])
        assert np.allclose([float(r[n]) for n in AU_NAMES], data.aus[i], atol=1e-4)
    # The training loader reads it as the same faces and labels.
    ds = open_dataset(out, 40)
    assert len(ds) == 5 and np.allclose(ds.aus, data.aus, atol=1e-4)
    assert np.array_equal(ds.image(3), data.images[3])
    # A second write into the now non-empty folder is refused with one line.
    res = CliRunner().invoke(app, ["synth", str(out), "--count", "2"])
    assert res.exit_code == 1 and res.output.startswith("error:") and "already exists" in res.output
    res = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), "--count", "0"])
    assert res.exit_code == 1 and not (tmp_path / "x").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces"]  # no temporary left behind


def test_in_memory_set_feeds_the_array_dataset():
    data = synth.generate(8, 32, seed=1)
    ds = ArrayDataset(data.images, data.aus)
    assert len(ds) == 8 and np.array_equal(ds.image(5), data.images[5])


def test_bad_au_vector_is_a_data_error():
    with pytest.raises(DataError, match="17 AU"):
        synth.render(synth.random_identity(0), np.zeros(5), 32)
