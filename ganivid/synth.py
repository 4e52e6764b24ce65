"""Synthetic face datasets with exact AU ground truth: AU sampling like real data, in-memory
sets for tests and benchmarks, and `ganivid synth`'s folder format (the renderer is
ganivid.facerender; its public names are re-exported here)."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ganivid.aus import AU_NAMES, NUM_AUS, au_index
from ganivid.errors import DataError
from ganivid.facerender import D as D
from ganivid.facerender import EYE_Y as EYE_Y
from ganivid.facerender import Identity as Identity
from ganivid.facerender import key_points as key_points
from ganivid.facerender import random_identity as random_identity
from ganivid.facerender import render as render

# Co-occurring AU groups of real data (EMFACS prototypes, talking, single AUs) and how often
# each appears; intensities are multiplied by a random strength per face.
_GROUPS: tuple[tuple[float, dict[str, float]], ...] = (
    (0.22, {"AU6": 0.7, "AU12": 1.0, "AU25": 0.5}),
    (0.10, {"AU25": 0.8, "AU26": 0.6, "AU10": 0.2}),
    (0.06, {"AU1": 1.0, "AU2": 1.0, "AU5": 0.8, "AU25": 0.8, "AU26": 0.8}),
    (0.06, {"AU1": 0.8, "AU4": 0.6, "AU15": 0.8, "AU17": 0.5}),
    (0.05, {"AU4": 1.0, "AU5": 0.5, "AU7": 0.8, "AU23": 0.8, "AU17": 0.3}),
    (0.05, {"AU9": 1.0, "AU10": 0.8, "AU15": 0.4, "AU17": 0.4, "AU4": 0.3}),
    (0.04, {"AU1": 1.0, "AU2": 0.8, "AU4": 0.8, "AU5": 0.8, "AU7": 0.6, "AU20": 0.8, "AU26": 0.6}),
    (0.04, {"AU12": 0.6, "AU14": 0.8}),
    (0.04, {"AU45": 1.0}),
)
_P_NEUTRAL = 0.26  # the rest of the mass: one or two AUs alone, so each AU is seen by itself


def sample_aus(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 17) float32 AU intensities in 0..1 distributed like real data: mostly neutral or
    sparse, with co-occurring groups (smile, talking, surprise, sadness, anger, ...)."""
    out = np.zeros((n, NUM_AUS), np.float32)
    probs = np.array([p for p, _ in _GROUPS] + [_P_NEUTRAL])
    probs = np.append(probs, 1 - probs.sum())
    for row, k in zip(out, rng.choice(len(probs), n, p=probs)):
        if k < len(_GROUPS):
            strength = rng.uniform(0.25, 1.0)
            for name, v in _GROUPS[k][1].items():
                if rng.random() > 0.12:  # people rarely show the whole prototype
                    row[au_index(name)] = v * strength * rng.uniform(0.75, 1.15)
        elif k == len(_GROUPS) + 1:
            for j in rng.choice(NUM_AUS, rng.integers(1, 3), replace=False):
                row[j] = rng.uniform(0.2, 1.0)
        # Low-level activity everywhere, as an AU estimator reports on any face.
        noisy = rng.random(NUM_AUS) < 0.2
        row[noisy] += rng.uniform(0, 0.15, noisy.sum())
        if rng.random() < 0.05:
            row[au_index("AU45")] = max(row[au_index("AU45")], rng.uniform(0.5, 1.0))
    return np.clip(out, 0, 1)


@dataclass(frozen=True)
class SynthSet:
    """An in-memory synthetic dataset: images (n, s, s, 3) uint8, aus (n, 17) float32 and the
    identity seed of each image (n,) int64 for identity-disjoint splits."""

    images: np.ndarray
    aus: np.ndarray
    identities: np.ndarray


def identity_seeds(count: int, seed: int = 0, per_identity: int = 1) -> np.ndarray:
    """Identity seed of each of `count` images: `per_identity` consecutive images share one."""
    if per_identity < 1:
        raise DataError(f"per_identity must be at least 1, got {per_identity}")
    rng = np.random.default_rng([int(seed), 0x1D])
    ids = rng.integers(0, 2**62, -(-count // per_identity), dtype=np.int64)
    return np.repeat(ids, per_identity)[:count]


def generate(count: int, size: int = 128, seed: int = 0, per_identity: int = 1) -> SynthSet:
    """`count` random synthetic faces in memory, reproducible from `seed`."""
    _check(count, size)
    ids = identity_seeds(count, seed, per_identity)
    aus = sample_aus(np.random.default_rng([int(seed), 0xA5]), count)
    images = np.stack([render(random_identity(int(i)), a, size) for i, a in zip(ids, aus)])
    return SynthSet(images, aus, ids)


def _check(count: int, size: int) -> None:
    if count < 1:
        raise DataError(f"count must be at least 1, got {count}")
    if size < 16:
        raise DataError(f"size must be at least 16 pixels, got {size}")


def write_dataset(out: str, count: int, size: int = 128, seed: int = 0, per_identity: int = 1) -> None:
    """Write a synthetic dataset in the folder format: OUT/imgs/*.png, OUT/aus.csv (file,
    AU1..AU45) and OUT/identities.csv (file, identity). OUT must be new or empty; the folder
    appears complete or not at all (built beside it, then renamed)."""
    _check(count, size)
    dest = Path(out)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise DataError(f"{dest} already exists and is not an empty folder; choose a new output folder")
    parent = dest.absolute().parent
    if not parent.is_dir():
        raise DataError(f"{parent} does not exist; create it first")
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would make the dataset private
    try:
        (tmp / "imgs").mkdir()
        ids = identity_seeds(count, seed, per_identity)
        aus = sample_aus(np.random.default_rng([int(seed), 0xA5]), count)
        width = len(str(count - 1))
        au_rows, id_rows = [], []
        for n, (i, a) in enumerate(zip(ids, aus)):
            name = f"imgs/{n:0{width}d}.png"  # relative to OUT, as the folder loader reads it
            img = render(random_identity(int(i)), a, size)
            cv2.imwrite(str(tmp / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            au_rows.append(name + "," + ",".join(f"{v:.4f}" for v in a))
            id_rows.append(f"{name},{i}")
        (tmp / "aus.csv").write_text("\n".join(["file," + ",".join(AU_NAMES)] + au_rows) + "\n")
        (tmp / "identities.csv").write_text("\n".join(["file,identity"] + id_rows) + "\n")
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
