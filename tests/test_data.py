"""Datasets: folder + aus.csv (0..1 or OpenFace 0..5 by name), the official GANimation layout,
in-memory arrays, the resumable batch plan, and every bad-input case."""
import csv
import pickle

import cv2
import numpy as np
import pytest
import torch

from ganivid.aus import AU_NAMES
from ganivid.batches import BatchLoader, make_batch
from ganivid.data import ArrayDataset, FolderDataset, GanimationDataset, open_dataset, to_images, to_tensor
from ganivid.errors import DataError

OPENFACE = ["AU01_r", "AU02_r", "AU04_r", "AU05_r", "AU06_r", "AU07_r", "AU09_r", "AU10_r", "AU12_r",
            "AU14_r", "AU15_r", "AU17_r", "AU20_r", "AU23_r", "AU25_r", "AU26_r", "AU45_r"]


def faces(n, size, seed=0):
    """n random RGB images (n, size, size, 3) with a left-right asymmetry (to see flips)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 200, (n, size, size, 3), dtype=np.uint8)
    img[:, :, : size // 4] = 255
    return img


def write_folder(root, n=6, size=16, columns=AU_NAMES, scale=1.0, aus=None, extra_cols=True):
    """A folder dataset: imgs/face_i.png and aus.csv with `file` and the given AU columns."""
    (root / "imgs").mkdir(parents=True)
    images = faces(n, size)
    aus = np.random.default_rng(1).random((n, len(columns))) if aus is None else aus
    with open(root / "aus.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow((["confidence"] if extra_cols else []) + ["file", *columns])
        for i in range(n):
            cv2.imwrite(str(root / "imgs" / f"face_{i}.png"), images[i][:, :, ::-1])
            w.writerow((["0.98"] if extra_cols else []) + [f"imgs/face_{i}.png", *(f"{v * scale:.6g}" for v in aus[i])])
    return images, aus


def write_official(root, n=5, size=16, test=2):
    """The official layout: imgs/<id>.jpg, aus_openface.pkl {id: float64 (17,) in 0..5}, id lists."""
    (root / "imgs").mkdir(parents=True)
    ids = [f"N_{i:010d}_{i * 7:05d}" for i in range(n)]
    aus = np.random.default_rng(2).random((n, 17)) * 5
    for i, face in zip(ids, faces(n, size)):
        cv2.imwrite(str(root / "imgs" / f"{i}.jpg"), face[:, :, ::-1])
    with open(root / "aus_openface.pkl", "wb") as f:
        pickle.dump({i: a for i, a in zip(ids, aus)}, f, protocol=2)  # as the official Python 2 tool
    (root / "train_ids.csv").write_text("".join(f"{i}.jpg\n" for i in ids[: n - test]))
    (root / "test_ids.csv").write_text("".join(f"{i}.jpg\n" for i in ids[n - test:]))
    return ids, aus


def test_folder_dataset_reads_images_and_labels(tmp_path):
    images, aus = write_folder(tmp_path)
    ds = open_dataset(tmp_path, 16)
    assert isinstance(ds, FolderDataset) and len(ds) == 6 and ds.unlabelled == ()
    assert np.array_equal(ds.image(3), images[3])
    np.testing.assert_allclose(ds.aus, aus, atol=1e-5)


def test_openface_columns_read_by_name_not_position(tmp_path):
    order = np.random.default_rng(3).permutation(17)
    aus = np.random.default_rng(4).random((4, 17))
    write_folder(tmp_path, n=4, columns=[OPENFACE[j] for j in order], scale=5.0, aus=aus[:, order])
    ds = open_dataset(tmp_path, 16)
    np.testing.assert_allclose(ds.aus, aus, atol=1e-5)


def test_official_layout(tmp_path):
    ids, aus = write_official(tmp_path)
    train = open_dataset(tmp_path, 16)
    test = GanimationDataset(tmp_path, 16, split="test")
    assert isinstance(train, GanimationDataset) and (len(train), len(test)) == (3, 2)
    assert train.names == [f"{i}.jpg" for i in ids[:3]]
    np.testing.assert_allclose(train.aus, aus[:3] / 5, atol=1e-6)
    assert train.image(0).shape == (16, 16, 3)
    assert train.crop_spec != FolderDataset.crop_spec  # another framing than ganivid's crops


def test_official_layout_refuses_code_in_the_pickle(tmp_path):
    write_official(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("ran code",))

    with open(tmp_path / "aus_openface.pkl", "wb") as f:
        pickle.dump({"x": Evil()}, f)
    with pytest.raises(DataError, match="cannot read .*refusing builtins.print"):
        open_dataset(tmp_path, 16)


def test_empty_column_is_an_unlabelled_au(tmp_path):
    aus = np.random.default_rng(5).random((3, 17))
    write_folder(tmp_path, n=3, aus=aus)
    rows = list(csv.reader(open(tmp_path / "aus.csv")))
    col = rows[0].index("AU9")
    for r in rows[1:]:
        r[col] = ""
    csv.writer(open(tmp_path / "aus.csv", "w", newline="")).writerows(rows)
    ds = open_dataset(tmp_path, 16)
    assert ds.unlabelled == ("AU9",) and (ds.aus[:, AU_NAMES.index("AU9")] == 0).all()


def test_resize_only_when_asked(tmp_path):
    write_folder(tmp_path, size=20)
    with pytest.raises(DataError, match=r"face_0.png is 20x20 px; this model needs 16x16 crops \(pass --resize"):
        open_dataset(tmp_path, 16)
    assert open_dataset(tmp_path, 16, resize=True).image(0).shape == (16, 16, 3)


def _edit_csv(root, fn):
    rows = list(csv.reader(open(root / "aus.csv")))
    fn(rows)
    csv.writer(open(root / "aus.csv", "w", newline="")).writerows(rows)


@pytest.mark.parametrize("case,message", [
    ("missing", "does not exist"),
    ("empty", "is empty"),
    ("unknown_column", "unknown AU column 'AU28'"),
    ("missing_column", "lacks AU columns AU12"),
    ("nan", "AU4 of imgs/face_2.png is not a number"),
    ("partly_empty", "AU4 of imgs/face_1.png is not a number"),
    ("out_of_range", "AU2 of imgs/face_0.png is 3.5, outside 0..1"),
    ("missing_image", "lists imgs/face_3.png, which is not in"),
    ("no_rows", "lists no images"),
    ("no_file_column", "has no `file` column"),
])
def test_bad_folder_datasets(tmp_path, case, message):
    root = tmp_path / "data"
    if case == "empty":
        root.mkdir()
    elif case != "missing":
        write_folder(root)
    if case == "unknown_column":
        _edit_csv(root, lambda rows: [r.append("0.1" if i else "AU28") for i, r in enumerate(rows)])
    elif case == "missing_column":
        col = AU_NAMES.index("AU12") + 2
        _edit_csv(root, lambda rows: [r.pop(col) for r in rows])
    elif case in ("nan", "partly_empty", "out_of_range"):
        def edit(rows):
            row, col, value = {"nan": (3, "AU4", "nan"), "partly_empty": (2, "AU4", ""),
                               "out_of_range": (1, "AU2", "3.5")}[case]
            rows[row][rows[0].index(col)] = value
        _edit_csv(root, edit)
    elif case == "missing_image":
        (root / "imgs" / "face_3.png").unlink()
    elif case == "no_rows":
        _edit_csv(root, del_rows)
    elif case == "no_file_column":
        _edit_csv(root, lambda rows: rows[0].__setitem__(1, "path"))
    with pytest.raises(DataError, match=message) as err:
        open_dataset(root, 16)
    assert "\n" not in str(err.value)


def del_rows(rows):
    del rows[1:]


def test_array_dataset_and_pairs():
    imgs, aus = faces(4, 8), np.random.default_rng(0).random((4, 17))
    ds = ArrayDataset(imgs, aus, target_images=imgs[::-1].copy(), target_aus=aus[::-1].copy())
    batch = make_batch(ds, np.array([0, 2]), np.array([False, True]))
    assert set(batch) == {"x", "y", "x_t", "y_t"} and batch["x"].shape == (2, 3, 8, 8)
    assert np.array_equal(to_images(batch["x"])[1], imgs[2][:, ::-1])  # flipped
    assert np.array_equal(to_images(batch["x_t"])[1], imgs[1][:, ::-1])  # its target flipped alike
    torch.testing.assert_close(batch["y_t"][0], torch.from_numpy(aus[3]).float())
    with pytest.raises(DataError, match="not a number"):
        ArrayDataset(imgs, np.full((4, 17), np.nan))
    with pytest.raises(DataError, match=r"\(N, S, S, 3\) uint8"):
        ArrayDataset(imgs.astype(np.float32), aus)


def test_tensor_conversion_round_trip():
    imgs = faces(2, 8)
    t = to_tensor(imgs)
    assert t.shape == (2, 3, 8, 8) and t.min() >= -1 and t.max() <= 1
    assert np.array_equal(to_images(t), imgs)
    # Laid out as (B, 3, H, W), not a channels-last view: elementwise ops on one took 4-5x longer.
    assert t.is_contiguous() and t.stride() == (3 * 8 * 8, 8 * 8, 8, 1)


def test_batch_plan_is_resumable_and_shards_the_global_batch():
    ds = ArrayDataset(faces(23, 4), np.zeros((23, 17)))
    one = BatchLoader(ds, 4, seed=7)
    later = BatchLoader(ds, 4, seed=7, start_step=9)
    batches = [next(one) for _ in range(12)]
    for a, b in zip(batches[9:], [next(later) for _ in range(3)]):
        assert torch.equal(a["x"], b["x"])
    for step in (0, 6, 13):  # 5 steps per epoch: crosses epochs
        idx, flips = one.plan(step)
        halves = [BatchLoader(ds, 2, seed=7, rank=r, world=2).plan(step) for r in (0, 1)]
        assert np.array_equal(idx, np.concatenate([h[0] for h in halves]))
        assert np.array_equal(flips, np.concatenate([h[1] for h in halves]))
    epoch0 = np.concatenate([one.plan(s)[0] for s in range(5)])
    assert len(set(epoch0)) == 20  # each image at most once per epoch
    for loader in (one, later):
        loader.close()
    with pytest.raises(DataError, match="fewer than one batch"):
        BatchLoader(ds, 24, seed=0)
