"""Training datasets: folder + aus.csv, the official GANimation layout, in-memory arrays (batched
by `ganivid.batches`).

Every dataset is checked when opened, so a bad file stops `ganivid train` at once with one line
naming it, not hours later."""
from __future__ import annotations

import csv
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ganivid.align import CROP_SPEC
from ganivid.aus import AU_NAMES, NUM_AUS
from ganivid.errors import CurveError, DataError

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
OFFICIAL_CROP_SPEC = "ganimation-official"  # the official layout's crops come from another cropper


class FaceDataset:
    """Labelled face crops: `aus` (N, 17) float32 in 0..1 and `image(i)` -> (S, S, 3) uint8 RGB.

    Subclasses implement `_load(i)`; `pair(i)` may return a paired target (image, aus) for
    the supervised term (`train.lambda_pair`)."""

    image_size: int
    aus: np.ndarray
    names: list[str]
    crop_spec: str = CROP_SPEC
    source: str = ""
    # AUs the labels leave empty for every image (read as 0); train prints them as a notice.
    unlabelled: tuple[str, ...] = ()
    has_pairs: bool = False

    def __len__(self) -> int:
        return len(self.aus)

    def _load(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def image(self, i: int) -> np.ndarray:
        """Image i as (S, S, 3) uint8 RGB (cached when the cache has room)."""
        cache = getattr(self, "_cache", None)
        if cache is not None and i in cache:
            return cache[i]
        return self._load(i)

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Paired ground-truth target (image, aus) of item i, if the dataset has one."""
        return None

    def cache(self, budget_mb: int) -> None:
        """Decode images into memory while they fit in `budget_mb`."""
        per_image = self.image_size * self.image_size * 3
        count = min(len(self), int(budget_mb * 2**20 // per_image))
        self._cache = {i: self._load(i) for i in range(count)}


def check_labels(aus: np.ndarray, names: list[str], source: str) -> None:
    """Raise DataError for NaN/inf or out-of-range AU labels, naming the first bad item."""
    bad = ~np.isfinite(aus)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise DataError(f"{source}: {AU_NAMES[j]} of {names[i]} is not a number ({aus[i, j]}); "
                        f"every label must be a value in 0..1")
    out = (aus < 0) | (aus > 1 + 1e-6)
    if out.any():
        i, j = map(int, np.argwhere(out)[0])
        raise DataError(f"{source}: {AU_NAMES[j]} of {names[i]} is {aus[i, j]:g}, outside 0..1 "
                        f"(OpenFace's 0..5 intensities belong in columns named like AU12_r)")


class ArrayDataset(FaceDataset):
    """Faces held in memory: images (N, S, S, 3) uint8 RGB and aus (N, 17) in 0..1, optionally
    with paired targets (the same faces showing `target_aus`) for `train.lambda_pair`."""

    def __init__(self, images: np.ndarray, aus: np.ndarray, *, target_images: np.ndarray | None = None,
                 target_aus: np.ndarray | None = None, crop_spec: str = CROP_SPEC,
                 source: str = "arrays", flows: np.ndarray | None = None, gaps: np.ndarray | None = None,
                 changes: np.ndarray | None = None) -> None:
        images, aus = np.asarray(images), np.asarray(aus, np.float32)
        if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2] or images.dtype != np.uint8:
            raise DataError(f"{source}: images must be (N, S, S, 3) uint8, got {images.shape} {images.dtype}")
        if len(images) == 0:
            raise DataError(f"{source}: no images")
        if aus.shape != (len(images), NUM_AUS):
            raise DataError(f"{source}: aus must be ({len(images)}, {NUM_AUS}), got {aus.shape}")
        self.images, self.aus, self.image_size = images, aus, images.shape[1]
        self.names = [f"item {i}" for i in range(len(images))]
        self.crop_spec, self.source = crop_spec, source
        check_labels(aus, self.names, source)
        self.targets = None
        if target_images is not None or target_aus is not None:
            if target_images is None or target_aus is None:
                raise DataError(f"{source}: paired targets need both target_images and target_aus")
            t_img, t_aus = np.asarray(target_images), np.asarray(target_aus, np.float32)
            if t_img.shape != images.shape or t_aus.shape != aus.shape or t_img.dtype != np.uint8:
                raise DataError(f"{source}: paired targets must have the shapes of images and aus")
            check_labels(t_aus, self.names, f"{source} (targets)")
            self.targets, self.has_pairs = (t_img, t_aus), True
        # Pairs whose flow is known exactly (warps): flows (N, S, S, 2) pixels from x to x_t,
        # gaps (N, S, S) 0..1 where no warp explains x_t, changes (N, 17) the request in [-1, 1].
        self.flows, self.gaps, self.changes = flows, gaps, changes
        if flows is not None:
            n, size = len(images), images.shape[1]
            if (self.targets is None or np.shape(flows) != (n, size, size, 2) or np.shape(gaps) != (n, size, size)
                    or np.shape(changes) != (n, NUM_AUS)):
                raise DataError(f"{source}: flows, gaps and changes must be (N, S, S, 2), (N, S, S) and "
                                f"(N, {NUM_AUS}) beside paired targets")

    def _load(self, i: int) -> np.ndarray:
        return self.images[i]

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray] | None:
        return None if self.targets is None else (self.targets[0][i], self.targets[1][i])

    def cache(self, budget_mb: int) -> None:
        pass  # already in memory


def read_image(path: Path, size: int, resize: bool) -> np.ndarray:
    """RGB uint8 (size, size, 3) from an image file; a crop of another size is an error unless
    `resize` (then it is resampled with area filtering when shrinking)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"cannot read image {path}")
    h, w = img.shape[:2]
    if (h, w) != (size, size):
        if not resize or h != w:
            hint = "pass --resize to resample" if h == w else "crops must be square"
            raise DataError(f"{path} is {w}x{h} px; this model needs {size}x{size} crops ({hint})")
        interp = cv2.INTER_AREA if h > size else cv2.INTER_CUBIC
        img = cv2.resize(img, (size, size), interpolation=interp)
    return np.ascontiguousarray(img[:, :, ::-1])


class _FileDataset(FaceDataset):
    """Images read from files; all are decoded once when opened to check them."""

    def _open_files(self, paths: list[Path], size: int, resize: bool, cache_mb: int) -> None:
        self.paths, self.image_size, self.resize = paths, size, resize
        budget = int(cache_mb * 2**20 // (size * size * 3))
        self._cache = {}
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # cv2 frees the GIL
            for i, img in enumerate(pool.map(lambda p: read_image(p, size, resize), paths)):
                if i < budget:
                    self._cache[i] = img

    def _load(self, i: int) -> np.ndarray:
        return read_image(self.paths[i], self.image_size, self.resize)

    def cache(self, budget_mb: int) -> None:
        pass  # filled while checking the files


def _au_column(name: str) -> tuple[int, float] | None:
    """(AU index, divisor) of an AU intensity column, None for other columns; raises DataError
    for AU columns ganivid does not know."""
    key = name.strip()
    upper = key.upper()
    if not upper.startswith("AU") or upper.endswith("_C"):  # _c: OpenFace presence, not intensity
        return None
    try:
        index = au_index_strict(key)
    except CurveError:
        raise DataError(f"unknown AU column {name!r}; ganivid's AUs are {', '.join(AU_NAMES)} "
                        f"(0..1, or OpenFace's AU01_r ... 0..5)") from None
    return index, 5.0 if upper.endswith("_R") else 1.0


def au_index_strict(name: str) -> int:
    """AU index of `AU12` or `AU12_r`; anything else raises CurveError."""
    from ganivid.aus import au_index

    key = name.strip().upper()
    digits = key.removeprefix("AU").removesuffix("_R")
    if not digits.isdigit():
        raise CurveError(name)
    return au_index(key)


class FolderDataset(_FileDataset):
    """A folder of crops with `aus.csv`: a `file` column plus the 17 AU columns, read by name,
    either in 0..1 (`AU12`) or OpenFace's 0..5 (`AU12_r`, divided by 5). An AU column left
    empty for every row is an AU the labeller does not measure: read as 0 and reported."""

    def __init__(self, root: Path, image_size: int, *, resize: bool = False, cache_mb: int = 4096) -> None:
        self.root, self.source = Path(root), str(Path(root) / "aus.csv")
        csv_path = self.root / "aus.csv"
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows = [r for r in reader if any(c.strip() for c in r)]
        if not header or "file" not in [h.strip() for h in header]:
            raise DataError(f"{csv_path} has no `file` column")
        columns: dict[int, tuple[int, float]] = {}
        for c, name in enumerate(header):
            if (found := _au_column(name)) is not None:
                if found[0] in [v[0] for v in columns.values()]:
                    raise DataError(f"{csv_path}: {AU_NAMES[found[0]]} appears in two columns")
                columns[c] = found
        missing = sorted(set(range(NUM_AUS)) - {v[0] for v in columns.values()})
        if missing:
            raise DataError(f"{csv_path} lacks AU columns {', '.join(AU_NAMES[j] for j in missing)} "
                            f"(it needs all 17: {', '.join(AU_NAMES)})")
        if not rows:
            raise DataError(f"{csv_path} lists no images")
        file_col = [h.strip() for h in header].index("file")
        aus = np.zeros((len(rows), NUM_AUS), np.float32)
        empty = np.zeros((len(rows), NUM_AUS), bool)
        for r, row in enumerate(rows):
            row = row + [""] * (len(header) - len(row))
            for c, (j, div) in columns.items():
                cell = row[c].strip()
                try:
                    aus[r, j] = float(cell) / div if cell else np.nan
                except ValueError:
                    raise DataError(f"{csv_path} line {r + 2}: {header[c]} is {cell!r}, not a number") from None
                empty[r, j] = not cell
        unlabelled = empty.all(axis=0)
        aus[:, unlabelled] = 0.0
        self.unlabelled = tuple(AU_NAMES[j] for j in np.flatnonzero(unlabelled))
        openface = [j for j, div in columns.values() if div == 5.0]
        aus[:, openface] = np.clip(aus[:, openface], 0.0, 1.0)  # OpenFace's 0..5, NaN kept
        self.names = [row[file_col].strip() for row in rows]
        check_labels(aus, self.names, str(csv_path))
        paths = [self.root / n for n in self.names]
        for n, p in zip(self.names, paths):
            if not p.is_file():
                raise DataError(f"{csv_path} lists {n}, which is not in {self.root}")
        self.aus = aus
        self._open_files(paths, image_size, resize, cache_mb)


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles dicts of numpy arrays (what aus_openface.pkl holds) and nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}")
        return super().find_class(module, name)


class GanimationDataset(_FileDataset):
    """The official GANimation layout: imgs/<id>.jpg, aus_openface.pkl ({id: 17 OpenFace
    intensities 0..5}), train_ids.csv / test_ids.csv (one image file name per line)."""

    def __init__(self, root: Path, image_size: int, *, split: str = "train", resize: bool = False,
                 cache_mb: int = 4096) -> None:
        self.root = Path(root)
        pkl, ids_file = self.root / "aus_openface.pkl", self.root / f"{split}_ids.csv"
        self.source, self.crop_spec = str(pkl), OFFICIAL_CROP_SPEC
        for p in (pkl, ids_file, self.root / "imgs"):
            if not p.exists():
                raise DataError(f"GANimation layout in {self.root} lacks {p.name}")
        try:
            with open(pkl, "rb") as f:
                table = _SafeUnpickler(f, encoding="latin1").load()
        except Exception as ex:  # any unpickling failure is a bad file, never code to run
            raise DataError(f"cannot read {pkl}: {ex}") from None
        if not isinstance(table, dict):
            raise DataError(f"{pkl} must hold a dict {{image id: 17 AU intensities}}")
        ids = [os.path.splitext(line.strip().split("\t")[0])[0]
               for line in ids_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        ids = [i for i in ids if i in table]  # as the official loader: ids without labels are skipped
        if not ids:
            raise DataError(f"no id of {ids_file.name} has labels in {pkl.name}")
        aus = np.zeros((len(ids), NUM_AUS), np.float32)
        for r, i in enumerate(ids):
            v = np.asarray(table[i], np.float64).reshape(-1)
            if v.shape != (NUM_AUS,):
                raise DataError(f"{pkl}: {i} has {v.size} AU values, expected {NUM_AUS}")
            aus[r] = v / 5.0
        self.names = [f"{i}.jpg" for i in ids]
        self.aus = np.clip(aus, 0.0, 1.0)  # OpenFace's 0..5 / 5; NaN stays NaN and is refused
        check_labels(self.aus, self.names, str(pkl))
        paths = [self.root / "imgs" / n for n in self.names]
        for p in paths:
            if not p.is_file():
                raise DataError(f"{p} is listed in {ids_file.name} but missing")
        self._open_files(paths, image_size, resize, cache_mb)


def open_dataset(path: str | Path, image_size: int, *, resize: bool = False, split: str = "train",
                 cache_mb: int = 4096) -> FaceDataset:
    """The dataset in a folder: aus.csv (format a) or the official GANimation layout (b)."""
    root = Path(path)
    if not root.exists():
        raise DataError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"dataset {root} is not a folder")
    if (root / "aus.csv").is_file():
        return FolderDataset(root, image_size, resize=resize, cache_mb=cache_mb)
    if (root / "aus_openface.pkl").exists() or (root / "imgs").is_dir():
        return GanimationDataset(root, image_size, split=split, resize=resize, cache_mb=cache_mb)
    what = "is empty" if not any(root.iterdir()) else "has neither aus.csv nor the GANimation layout (imgs/, aus_openface.pkl)"
    raise DataError(f"dataset folder {root} {what}")


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 RGB -> (B, 3, H, W) float32 in [-1, 1]."""
    # Contiguous (B, 3, H, W): a permuted view kept its strides through .float(), and every
    # elementwise op on it after the network took longer (the composite: 0.8 against 0.33 ms
    # per 8 crops of 96 px, benchmarks/face_steps.py); the network's output is the same either way.
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
    return x.float().div_(127.5).sub_(1.0)


def to_images(tensor: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) in [-1, 1] -> (B, H, W, C) uint8."""
    t = tensor.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return t.permute(0, 2, 3, 1).cpu().numpy()
