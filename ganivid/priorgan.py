"""The adversarial phase for flow-prior generators (`model.flow_prior`): each face's crop
landmarks travel with its batch, and the landmark prior of every request is made on the fly.

G(x | change) adds its residual to `warps.prior_flow(landmarks, change)`, so the paper's loop
needs, per sample: the prior of the sampled request (landmarks of x, change y_g - y) and, for
the cycle G(G(x) | y - y_g), the prior of the way back on the moved landmarks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ganivid.align import alignment_from_landmarks, crop_landmarks
from ganivid.aus import AU_NAMES
from ganivid.errors import DataError
from ganivid.warps import MOVES, _mesh, prior_flow

# Index of each of dlib's 68 points in the mirrored face (image left <-> right).
MIRROR_68 = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])
assert sorted(MIRROR_68.tolist()) == list(range(68))


def flip_landmarks(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Landmarks (..., 68, 2) of the horizontally flipped `size` px crop."""
    out = np.asarray(landmarks, np.float32)[..., MIRROR_68, :].copy()
    out[..., 0] = size - 1 - out[..., 0]
    return out


def _moves(change: np.ndarray) -> dict[str, float]:
    return {n: float(c) for n, c in zip(AU_NAMES, change) if n in MOVES and c != 0}


def moved_landmarks(landmarks: np.ndarray, change: np.ndarray) -> np.ndarray:
    """Where the prior of `change` (17,) takes a face's landmarks (68, 2)."""
    mesh = _mesh(np.asarray(landmarks, np.float64), _moves(change), low=-1.0)
    return np.asarray(landmarks, np.float32) if mesh is None else mesh[1][:68].astype(np.float32)


def priors(landmarks: np.ndarray, change: torch.Tensor, size: int) -> torch.Tensor:
    """Prior flows (B, 2, size, size) of requests `change` (B, 17) on faces `landmarks` (B, 68, 2)."""
    c = change.detach().float().cpu().numpy()
    flows = np.stack([prior_flow(size, lm, ch) for lm, ch in zip(landmarks, c)])  # (B, S, S, 2)
    return torch.from_numpy(np.ascontiguousarray(flows.transpose(0, 3, 1, 2))).to(change.device)


def back_priors(landmarks: np.ndarray, change: torch.Tensor, size: int) -> torch.Tensor:
    """Priors of the way back from requests `change` (B, 17): undoing each on its moved face."""
    c = change.detach().float().cpu().numpy()
    moved = np.stack([moved_landmarks(lm, ch) for lm, ch in zip(landmarks, c)])
    return priors(moved, -change, size)


def cycle_inputs(landmarks: np.ndarray, change: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Priors of a batch's requests and of their way back from the moved faces: (forward, back)."""
    return priors(landmarks, change, size), back_priors(landmarks, change, size)


def dataset_landmarks(root: str | Path, names: list[str], size: int) -> np.ndarray:
    """Landmarks (N, 68, 2), crop pixels, of an annotate folder's crops `names`: from
    manifest.jsonl (image pixels, through each crop's own alignment) or landmarks.npz.

    Raises:
        DataError: neither file lists every crop.
    """
    root = Path(root)
    by_file: dict[str, np.ndarray] = {}
    if (root / "manifest.jsonl").is_file():
        for line in (root / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                e = json.loads(line)
                lm = np.asarray(e["landmarks"], np.float64)
                by_file[e["file"]] = crop_landmarks(lm, alignment_from_landmarks(lm), size)
    elif (root / "landmarks.npz").is_file():
        with np.load(root / "landmarks.npz") as z:
            by_file = dict(zip(z["names"].tolist(), z["landmarks"]))
    missing = [n for n in names if n not in by_file]
    if missing:
        raise DataError(f"{root}: no landmarks for {len(missing)} crop(s) such as {missing[0]} "
                        "(a flow-prior model's GAN phase needs annotate's manifest.jsonl)")
    return np.stack([by_file[n] for n in names]).astype(np.float32)


def attach_landmarks(ds, root: str | Path) -> None:
    """Give an annotate folder's dataset `ds` its crops' landmarks (`dataset_landmarks`)."""
    ds.landmarks = dataset_landmarks(root, ds.names, ds.image_size)
