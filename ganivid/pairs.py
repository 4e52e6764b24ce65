"""Supervised warm-up pairs: real face crops and landmark-driven warps of them (warps.py).

Each pair is (x, y) -> (x_t, y_t): an input crop with its AUs and the same face after a known
move (AU1, AU2, AU4, AU12, AU25, AU26, AU45, one or a few at once, random intensity), or the
reverse (the warped face back to the original), or an identity pair (x_t = x), so the generator
sees edits both ways and learns to leave a face alone when asked for its own AUs. Labels come
from `estimate.estimate_aus` on the input's and the moved landmarks: the same estimator the
quality benchmark reads the edits with. Warps teach geometry, not texture (teeth, wrinkles)."""
from __future__ import annotations

import numpy as np

from ganivid.align import warp_by_flow
from ganivid.aus import AU_NAMES, NUM_AUS
from ganivid.data import ArrayDataset
from ganivid.estimate import estimate_aus
from ganivid.warps import MOVES, warp, warp_face

# Moves that can be combined: at most one per region, so brows never go up and down at once.
REGIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "brows": (("AU1",), ("AU2",), ("AU1", "AU2"), ("AU4",)),
    "mouth": (("AU12",), ("AU25",), ("AU26",), ("AU12", "AU25"), ("AU25", "AU26")),
    "eyes": (("AU45",),),
}
# Every move of warps.py, for flow models (make_flow_pairs).
FLOW_REGIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "brows": REGIONS["brows"],
    "mouth": REGIONS["mouth"] + (("AU10",), ("AU15",), ("AU17",), ("AU20",), ("AU23",), ("AU15", "AU17"),
                                 ("AU12", "AU25", "AU26"), ("AU10", "AU25")),
    "eyes": (("AU45",), ("AU5",), ("AU6",), ("AU7",)),
}
# AUs no move shows: flow pairs ask for them at random and keep the face, so G learns to ignore them.
IGNORED = [i for i, n in enumerate(AU_NAMES) if n not in MOVES]
# Picking weights of the regions: the mouth carries most of what the portraits show (smiles).
REGION_WEIGHTS = {"brows": 0.35, "mouth": 0.45, "eyes": 0.2}


def labels(landmarks: np.ndarray) -> np.ndarray:
    """AU labels (…, 17) in 0..1 of landmarks; AUs the estimator does not support read 0."""
    return np.nan_to_num(estimate_aus(landmarks), nan=0.0)


def random_moves(rng: np.random.Generator, low: float = 0.2,
                 regions: dict[str, tuple[tuple[str, ...], ...]] = REGIONS) -> dict[str, float]:
    """One to three regions' moves with intensities U(low, 1)."""
    names = list(regions)
    count = rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1])
    p = np.array([REGION_WEIGHTS[n] for n in names])
    picked = rng.choice(names, size=count, replace=False, p=p / p.sum())
    moves: dict[str, float] = {}
    for region in picked:
        options = regions[str(region)]
        for au in options[rng.integers(len(options))]:
            moves[au] = float(rng.uniform(low, 1.0))
    return moves


def make_pair(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, *,
              identity: float = 0.15, reverse: float = 0.4) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One pair (x, y, x_t, y_t) from a crop (S, S, 3) and its landmarks (68, 2) in crop pixels."""
    y = labels(landmarks)
    if rng.random() < identity:
        return image, y, image, y
    warped, moved = warp_face(image, landmarks, random_moves(rng))
    y_w = labels(moved)
    if rng.random() < reverse:
        return warped, y_w, image, y
    return image, y, warped, y_w


def make_pairs(images: np.ndarray, landmarks: np.ndarray, *, variants: int = 4, seed: int = 0,
               identity: float = 0.15, reverse: float = 0.4, source: str = "warp pairs") -> ArrayDataset:
    """A paired dataset of `variants` pairs per crop (images (N, S, S, 3) uint8, landmarks
    (N, 68, 2) in crop pixels), deterministic in `seed`; train it with `train.lambda_pair` > 0."""
    images, landmarks = np.asarray(images), np.asarray(landmarks, np.float64)
    if images.ndim != 4 or landmarks.shape != (len(images), 68, 2):
        raise ValueError(f"need images (N, S, S, 3) and landmarks (N, 68, 2), got {images.shape} and {landmarks.shape}")
    rng = np.random.default_rng(seed)
    n = len(images) * variants
    xs, ts = np.empty((n,) + images.shape[1:], np.uint8), np.empty((n,) + images.shape[1:], np.uint8)
    ys, yts = np.empty((n, NUM_AUS), np.float32), np.empty((n, NUM_AUS), np.float32)
    for k in range(n):
        i = k % len(images)
        xs[k], ys[k], ts[k], yts[k] = make_pair(images[i], landmarks[i], rng, identity=identity, reverse=reverse)
    return ArrayDataset(xs, ys, target_images=ts, target_aus=yts, source=source)


def make_flow_pair(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, *, identity: float = 0.1,
                   reverse: float = 0.35) -> tuple[np.ndarray, ...]:
    """One pair for a flow model from a crop (S, S, 3) and its landmarks (68, 2) in crop pixels:
    (x, y, x_t, y_t, flow (S, S, 2) from x to x_t, gap (S, S) where the flow does not explain
    x_t, change (17,) the request: +intensity of each move, or minus it for the reverse pair)."""
    size = image.shape[:2]
    change = np.zeros(NUM_AUS, np.float32)
    if rng.random() < 0.3:  # requests of AUs no move shows: the face must stay as it is
        change[IGNORED] = rng.uniform(-1, 1, len(IGNORED)) * (rng.random(len(IGNORED)) < 0.5)
    y = labels(landmarks)
    if rng.random() < identity:
        return image, y, image, y, np.zeros(size + (2,), np.float32), np.zeros(size, np.float32), change
    moves = random_moves(rng, regions=FLOW_REGIONS)
    w = warp(image, landmarks, moves)
    y_w = labels(w.landmarks)
    sign = 1.0
    x, yx, t, yt, flow = image, y, w.image, y_w, w.flow
    if rng.random() < reverse:
        x, yx, t, yt, flow, sign = w.image, y_w, image, y, w.back, -1.0
    for name, s in moves.items():
        change[AU_NAMES.index(name)] = sign * s
    # What the warp leaves unexplained (the darkened cavity, an eye reopened from a closed lid).
    miss = np.abs(warp_by_flow(x, flow).astype(np.float32) - t).max(-1)
    gap = np.clip(miss / 40.0, 0, 1)
    return x, yx, t, yt, flow, gap, change


def make_flow_pairs(images: np.ndarray, landmarks: np.ndarray, *, variants: int = 6, seed: int = 0,
                    source: str = "flow pairs") -> ArrayDataset:
    """`make_pairs` for flow models: every warp move, the exact flow of each pair, and the request
    as an AU change (`model.condition = "change"`)."""
    images, landmarks = np.asarray(images), np.asarray(landmarks, np.float64)
    if images.ndim != 4 or landmarks.shape != (len(images), 68, 2):
        raise ValueError(f"need images (N, S, S, 3) and landmarks (N, 68, 2), got {images.shape} and {landmarks.shape}")
    rng = np.random.default_rng(seed)
    n, size = len(images) * variants, images.shape[1:3]
    xs, ts = np.empty((n,) + images.shape[1:], np.uint8), np.empty((n,) + images.shape[1:], np.uint8)
    ys, yts = np.empty((n, NUM_AUS), np.float32), np.empty((n, NUM_AUS), np.float32)
    flows, gaps = np.empty((n,) + size + (2,), np.float16), np.empty((n,) + size, np.float16)
    changes = np.empty((n, NUM_AUS), np.float32)
    for k in range(n):
        i = k % len(images)
        xs[k], ys[k], ts[k], yts[k], flows[k], gaps[k], changes[k] = make_flow_pair(images[i], landmarks[i], rng)
    return ArrayDataset(xs, ys, target_images=ts, target_aus=yts, source=source, flows=flows, gaps=gaps,
                        changes=changes)
