"""Landmark-driven piecewise-affine warps that move facial parts by a known amount.

Used to test the AU estimator on real faces and as supervised warm-up data: each move is an
AU name with an intensity in 0..1, and displaces a fixed set of landmarks by a fraction of the
face size d (the eye-corner-midpoint distance, as in `estimate.py`), in the face's own
upright frame, so a move means the same on every face, size and head roll.

| move | what moves (intensity 1)                                                      |
|------|-------------------------------------------------------------------------------|
| AU1  | inner brows (19..24, weighted to the inner end) up 0.12 d                      |
| AU2  | outer brows (17..19, 24..26, weighted to the outer end) up 0.12 d              |
| AU4  | brows down 0.07 d (inner end) and the inner ends 0.08 d towards the midline     |
| AU12 | lip corners up 0.12 d and out 0.05 d, the lips around them half/quarter as far |
| AU25 | inner lips apart by 0.18 d (upper 40 %, lower 60 %), the mouth gap darkened    |
| AU26 | chin down 0.25 d, the jaw line and lower lip with it, the mouth gap darkened    |
| AU45 | upper lids slide down 95 % of the way to the lower lids                        |

The mesh is a Delaunay triangulation of the 68 landmarks, anchors 0.55 d above the brows (so
raised brows compress the forehead, not the eyes) and a fixed ring 1.5x the face outline
around it; pixels outside the ring are untouched."""
from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from ganivid.align import alignment_from_landmarks

MOVES = ("AU1", "AU2", "AU4", "AU12", "AU25", "AU26", "AU45")


def _brow(idx: list[int], weights: list[float], dx: float, dy: float) -> dict[int, tuple[float, float]]:
    return {i: (dx * w, dy * w) for i, w in zip(idx, weights)}


def _displacements(p: np.ndarray, moves: dict[str, float]) -> np.ndarray:
    """Landmark displacements (68, 2) in the upright frame, d units, for `moves`."""
    disp = np.zeros((68, 2))

    def add(table: dict[int, tuple[float, float]], s: float) -> None:
        for i, (dx, dy) in table.items():
            disp[i] += (dx * s, dy * s)

    for name, s in moves.items():
        if name not in MOVES:
            raise ValueError(f"unknown move {name!r}; known: {', '.join(MOVES)}")
        s = float(np.clip(s, 0.0, 1.0))
        if s == 0:
            continue
        if name == "AU1":
            add(_brow([19, 20, 21, 22, 23, 24], [0.3, 0.7, 1.0, 1.0, 0.7, 0.3], 0, -0.12), s)
        elif name == "AU2":
            add(_brow([17, 18, 19, 24, 25, 26], [1.0, 0.9, 0.5, 0.5, 0.9, 1.0], 0, -0.12), s)
        elif name == "AU4":
            add(_brow([17, 18, 19, 20, 21], [0.3, 0.5, 0.7, 0.9, 1.0], 0, 0.07), s)
            add(_brow([26, 25, 24, 23, 22], [0.3, 0.5, 0.7, 0.9, 1.0], 0, 0.07), s)
            add({19: (0.03, 0), 20: (0.05, 0), 21: (0.08, 0), 22: (-0.08, 0), 23: (-0.05, 0), 24: (-0.03, 0)}, s)
        elif name == "AU12":
            table = {}
            for i, w in {48: 1.0, 60: 1.0, 49: 0.5, 59: 0.5, 61: 0.4, 67: 0.4, 50: 0.25, 58: 0.25}.items():
                table[i] = (-0.05 * w, -0.12 * w)
            for i, w in {54: 1.0, 64: 1.0, 53: 0.5, 55: 0.5, 63: 0.4, 65: 0.4, 52: 0.25, 56: 0.25}.items():
                table[i] = (0.05 * w, -0.12 * w)
            add(table, s)
        elif name == "AU25":
            add({i: (0, -0.18 * 0.4) for i in (61, 62, 63)} | {i: (0, 0.18 * 0.6) for i in (65, 66, 67)}
                | {i: (0, -0.18 * 0.2) for i in (50, 51, 52)} | {i: (0, 0.18 * 0.5) for i in (56, 57, 58)}
                | {i: (0, 0.18 * 0.25) for i in (55, 59)}, s)
        elif name == "AU26":
            jaw = {8: 1.0, 7: 0.9, 9: 0.9, 6: 0.7, 10: 0.7, 5: 0.4, 11: 0.4, 4: 0.2, 12: 0.2}
            lip = {i: 0.75 for i in (56, 57, 58, 65, 66, 67)} | {55: 0.5, 59: 0.5, 48: 0.15, 54: 0.15, 60: 0.15, 64: 0.15}
            add({i: (0, 0.25 * w) for i, w in (jaw | lip).items()}, s)
        elif name == "AU45":
            add({u: (0, 0.95 * (p[l, 1] - p[u, 1])) for u, l in ((37, 41), (38, 40), (43, 47), (44, 46))}, s)
    return disp


def _frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Upright frame of a face: origin (2,), rotation R (image = origin + d * R @ upright), d."""
    a = np.radians(alignment_from_landmarks(landmarks).angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    origin = landmarks[[36, 39, 42, 45]].mean(0)
    d = float(np.linalg.norm(landmarks[[42, 45]].mean(0) - landmarks[[36, 39]].mean(0)))
    return origin, rot, d


def _piecewise_affine(image: np.ndarray, src: np.ndarray, dst: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Image whose content at triangle `src[t]` is moved to triangle `dst[t]` (backward map)."""
    h, w = image.shape[:2]
    map_x, map_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    moved = np.any(np.abs(src - dst) > 1e-6, axis=1)
    for t in tris:
        if not moved[t].any():
            continue  # identity on this triangle already
        d, s = dst[t], src[t]
        m = np.array([d[1] - d[0], d[2] - d[0]]).T
        if abs(np.linalg.det(m)) < 1e-9:
            continue
        x0, y0 = np.maximum(np.floor(d.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(d.max(0)).astype(int) + 1, (w, h))
        if x1 <= x0 or y1 <= y0:
            continue
        gx, gy = np.meshgrid(np.arange(x0, x1), np.arange(y0, y1))
        rel = np.stack([gx - d[0, 0], gy - d[0, 1]], -1) @ np.linalg.inv(m).T  # barycentric l1, l2
        l1, l2 = rel[..., 0], rel[..., 1]
        inside = (l1 >= -1e-7) & (l2 >= -1e-7) & (l1 + l2 <= 1 + 1e-7)
        sx = s[0, 0] + l1 * (s[1, 0] - s[0, 0]) + l2 * (s[2, 0] - s[0, 0])
        sy = s[0, 1] + l1 * (s[1, 1] - s[0, 1]) + l2 * (s[2, 1] - s[0, 1])
        map_x[y0:y1, x0:x1][inside] = sx[inside]
        map_y[y0:y1, x0:x1][inside] = sy[inside]
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _mouth_mask(shape: tuple[int, int], lips: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(lips * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=2)
    return mask.astype(np.float32) / 255


def warp_face(image: np.ndarray, landmarks: np.ndarray, moves: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """The face of `image` with `moves` ({AU name: intensity 0..1}, see MOVES) applied, and
    its moved landmarks (68, 2) float32."""
    lm = np.asarray(landmarks, np.float64)
    origin, rot, d = _frame(lm)
    up = (lm - origin) @ rot / d  # upright frame, d units
    disp = _displacements(up, moves)
    if not np.any(disp):
        return image.copy(), lm.astype(np.float32)
    brows = up[17:27] + (0, -0.55)
    centre = np.vstack([up, brows]).mean(0)
    ring = centre + 1.5 * (np.vstack([up[0:17], brows]) - centre)
    src_up = np.vstack([up, brows, ring])
    dst_up = src_up.copy()
    dst_up[:68] += disp
    # Closed lips give coincident inner-lip points: part the source ones by a pixel so the
    # mesh has a (thin) triangle between them to open up.
    opens = moves.get("AU25", 0) > 0 or moves.get("AU26", 0) > 0
    for a, b in ((61, 67), (62, 66), (63, 65)) if opens else ():
        src_up[b, 1] = max(src_up[b, 1], src_up[a, 1] + 1.0 / d)
    tris = Delaunay(src_up, qhull_options="QJ").simplices

    def to_image(pts: np.ndarray) -> np.ndarray:
        return origin + d * pts @ rot.T

    src, dst = to_image(src_up), to_image(dst_up)
    out = _piecewise_affine(image, src, dst, tris)
    new_lm = dst[:68]
    if opens:
        # A stretched lip line is not an open mouth: darken the newly opened gap (the part of
        # the new inner-lip polygon that the old mouth interior did not warp onto).
        hw = image.shape[:2]
        old_inside = _piecewise_affine(_mouth_mask(hw, src[60:68]), src, dst, tris)
        gap = np.clip(_mouth_mask(hw, new_lm[60:68]) - old_inside, 0, 1)
        gap = cv2.GaussianBlur(gap, (0, 0), max(0.5, 0.01 * d))[..., None] * 0.85
        dark = np.array([45, 20, 20], np.float32)  # shadowed mouth cavity
        out = (out.astype(np.float32) * (1 - gap) + dark * gap).round().astype(np.uint8)
    return out, new_lm.astype(np.float32)
