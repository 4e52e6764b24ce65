"""Landmark-driven piecewise-affine warps that move facial parts by a known amount.

Used to test the AU estimator on real faces and as supervised training pairs whose flow is known
exactly: each move is an AU name with an intensity in 0..1, and displaces a fixed set of landmarks
by a fraction of the face size d (the eye-corner-midpoint distance, as in `estimate.py`), in the
face's own upright frame, so a move means the same on every face, size and head roll.

| move | what moves (intensity 1)                                                            |
|------|-------------------------------------------------------------------------------------|
| AU1  | inner brows (19..24, weighted to the inner end) up 0.16 d                            |
| AU2  | outer brows (17..19, 24..26, weighted to the outer end) up 0.16 d                    |
| AU4  | brows down 0.15 d at the inner end (0.06 outer), the inner ends 0.09 d to the midline |
| AU5  | upper lids up 0.05 d                                                                 |
| AU6  | lower lids up 0.03 d (the cheek's push; its creases are texture)                      |
| AU7  | lower lids up 0.05 d, upper lids down 0.015 d                                        |
| AU10 | upper lip up 0.07 d at its centre, the nostril wings 0.02 d                          |
| AU12 | lip corners up 0.17 d and out 0.08 d, the lips around them half/quarter as far       |
| AU15 | lip corners down 0.09 d, the lips around them half as far                            |
| AU17 | chin up 0.06 d, the lower lip up 0.05 d                                              |
| AU20 | lip corners out 0.09 d and down 0.02 d                                               |
| AU23 | lip corners in 0.04 d, the red lips 0.02 d thinner each                               |
| AU25 | inner lips apart by 0.22 d (upper 40 %, lower 60 %), the mouth gap darkened          |
| AU26 | chin down 0.32 d, the jaw line and lower lip with it, the mouth gap darkened         |
| AU45 | upper lids slide down 95 % of the way to the lower lids                              |

Magnitudes: the London set's real smiles move the corners up ~0.095 d and out 0.06-0.07 d
(median of 60 people, 90th percentile 0.15 up); intensity 1 is a strong action, and a reader
recognises the frown only from 0.15 d (../shared/GANIMATION.md, calibration).

The mesh is a Delaunay triangulation of the 68 landmarks, anchors 0.55 d above the brows (so
raised brows compress the forehead, not the eyes) and a fixed ring 1.5x the face outline
around it; pixels outside the ring are untouched."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from ganivid.align import alignment_from_landmarks

# Per move: (landmark indices, their weights, dx, dy) entries, d units at intensity 1; x grows
# towards the image right, y down, in the face's upright frame.
_LEFT_CORNER = {48: 1.0, 60: 1.0, 49: 0.5, 59: 0.5, 61: 0.4, 67: 0.4, 50: 0.25, 58: 0.25}
_RIGHT_CORNER = {54: 1.0, 64: 1.0, 53: 0.5, 55: 0.5, 63: 0.4, 65: 0.4, 52: 0.25, 56: 0.25}
_TABLES: dict[str, list[tuple[dict[int, float], float, float]]] = {
    "AU1": [({19: 0.3, 20: 0.7, 21: 1.0, 22: 1.0, 23: 0.7, 24: 0.3}, 0, -0.16)],
    "AU2": [({17: 1.0, 18: 0.9, 19: 0.5, 24: 0.5, 25: 0.9, 26: 1.0}, 0, -0.16)],
    "AU4": [({17: 0.4, 18: 0.55, 19: 0.7, 20: 0.85, 21: 1.0, 22: 1.0, 23: 0.85, 24: 0.7, 25: 0.55, 26: 0.4}, 0, 0.15),
            ({19: 0.3, 20: 0.6, 21: 1.0}, 0.09, 0), ({22: 1.0, 23: 0.6, 24: 0.3}, -0.09, 0)],
    "AU5": [({37: 1.0, 38: 1.0, 43: 1.0, 44: 1.0}, 0, -0.05)],
    "AU6": [({40: 1.0, 41: 1.0, 46: 1.0, 47: 1.0}, 0, -0.03)],
    "AU7": [({40: 1.0, 41: 1.0, 46: 1.0, 47: 1.0}, 0, -0.05), ({37: 1.0, 38: 1.0, 43: 1.0, 44: 1.0}, 0, 0.015)],
    "AU10": [({50: 0.8, 51: 1.0, 52: 0.8, 61: 0.8, 62: 1.0, 63: 0.8, 49: 0.4, 53: 0.4}, 0, -0.07),
             ({31: 1.0, 35: 1.0, 32: 0.5, 34: 0.5}, 0, -0.02)],
    "AU12": [(_LEFT_CORNER, -0.08, -0.17), (_RIGHT_CORNER, 0.08, -0.17)],
    "AU15": [(_LEFT_CORNER | _RIGHT_CORNER, 0, 0.09)],
    "AU17": [({7: 0.6, 8: 1.0, 9: 0.6}, 0, -0.06), ({56: 1.0, 57: 1.0, 58: 1.0, 65: 0.8, 66: 0.8, 67: 0.8}, 0, -0.05)],
    "AU20": [(_LEFT_CORNER, -0.09, 0.02), (_RIGHT_CORNER, 0.09, 0.02)],
    "AU23": [({48: 1.0, 60: 1.0, 49: 0.4, 59: 0.4}, 0.04, 0), ({54: 1.0, 64: 1.0, 53: 0.4, 55: 0.4}, -0.04, 0),
             ({50: 1.0, 51: 1.0, 52: 1.0}, 0, 0.02), ({56: 1.0, 57: 1.0, 58: 1.0}, 0, -0.02)],
    "AU25": [({61: 1.0, 62: 1.0, 63: 1.0}, 0, -0.22 * 0.4), ({65: 1.0, 66: 1.0, 67: 1.0}, 0, 0.22 * 0.6),
             ({50: 1.0, 51: 1.0, 52: 1.0}, 0, -0.22 * 0.2), ({56: 1.0, 57: 1.0, 58: 1.0}, 0, 0.22 * 0.5),
             ({55: 1.0, 59: 1.0}, 0, 0.22 * 0.25)],
    "AU26": [({8: 1.0, 7: 0.9, 9: 0.9, 6: 0.7, 10: 0.7, 5: 0.4, 11: 0.4, 4: 0.2, 12: 0.2}, 0, 0.32),
             ({56: 0.75, 57: 0.75, 58: 0.75, 65: 0.75, 66: 0.75, 67: 0.75, 55: 0.5, 59: 0.5,
               48: 0.15, 54: 0.15, 60: 0.15, 64: 0.15}, 0, 0.32)],
}
MOVES = tuple(_TABLES) + ("AU45",)
# Moves that open the mouth: their gap is darkened, since a stretched lip line is not an open mouth.
OPENING = ("AU25", "AU26")


def _displacements(p: np.ndarray, moves: dict[str, float], low: float = 0.0) -> np.ndarray:
    """Landmark displacements (68, 2) in the upright frame, d units, for `moves` (intensities
    clipped to [low, 1]; a negative one moves the other way)."""
    disp = np.zeros((68, 2))
    for name, s in moves.items():
        if name not in MOVES:
            raise ValueError(f"unknown move {name!r}; known: {', '.join(MOVES)}")
        s = float(np.clip(s, low, 1.0))
        if s == 0:
            continue
        if name == "AU45":  # relative to this face's own lid opening
            for u, l in ((37, 41), (38, 40), (43, 47), (44, 46)):
                disp[u, 1] += 0.95 * s * (p[l, 1] - p[u, 1])
            continue
        for idx, dx, dy in _TABLES[name]:
            for i, w in idx.items():
                disp[i] += (dx * w * s, dy * w * s)
    return disp


def _frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Upright frame of a face: origin (2,), rotation R (image = origin + d * R @ upright), d."""
    a = np.radians(alignment_from_landmarks(landmarks).angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    origin = landmarks[[36, 39, 42, 45]].mean(0)
    d = float(np.linalg.norm(landmarks[[42, 45]].mean(0) - landmarks[[36, 39]].mean(0)))
    return origin, rot, d


def _backward_map(shape: tuple[int, int], src: np.ndarray, dst: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Sampling positions (h, w, 2) x, y that move the content at triangle `src[t]` to `dst[t]`."""
    grid = _identity(shape)
    h, w = shape
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
        pos = s[0] + l1[..., None] * (s[1] - s[0]) + l2[..., None] * (s[2] - s[0])
        grid[y0:y1, x0:x1][inside] = pos[inside]
    return grid


def _backward_map_raster(shape: tuple[int, int], src: np.ndarray, dst: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """`_backward_map` rasterised by OpenCV (~10x faster, for inference): the same map inside each
    triangle; on triangle edges and in fold-overs a pixel may take the other side's map."""
    grid = _identity(shape)
    moved = np.any(np.abs(src - dst) > 1e-6, axis=1)
    tris = tris[moved[tris].any(1)]  # elsewhere the map is the identity already
    if not len(tris):
        return grid
    # Each pixel's triangle, rasterised by OpenCV (1/16 px vertices), then every pixel's affine
    # map dst -> src at once: pixels on a shared edge may take either side, where both agree.
    d = np.concatenate([dst[tris], np.ones(tris.shape + (1,))], axis=2)  # (T, 3, 3) rows [x, y, 1]
    # Largest last: OpenCV fills a triangle's outline pixels too, and a sliver's map extrapolates badly there.
    area = np.abs(np.linalg.det(d))
    keep = np.argsort(area)[np.sort(area) > 1e-9]  # collapsed ones cover no pixel
    tris, d = tris[keep], d[keep]
    identity = np.array([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]])  # index 0: no moved triangle
    maps = np.concatenate([identity, np.linalg.solve(d, src[tris])])  # (T + 1, 3, 2): [x, y, 1] @ m = source
    which = np.zeros(shape, np.int32)
    for k, corners in enumerate(np.round(dst[tris] * 16).astype(np.int32), 1):
        cv2.fillConvexPoly(which, corners, k, cv2.LINE_8, 4)
    affine = maps.astype(np.float32)[which]  # (h, w, 3, 2)
    return grid[..., 0:1] * affine[..., 0, :] + grid[..., 1:2] * affine[..., 1, :] + affine[..., 2, :]


def remap(image: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """`image` sampled bilinearly at `positions` (h, w, 2) x, y, the border replicated."""
    return cv2.remap(image, positions[..., 0], positions[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _identity(shape: tuple[int, int]) -> np.ndarray:
    return np.stack(np.meshgrid(np.arange(shape[1], dtype=np.float32), np.arange(shape[0], dtype=np.float32)), -1)


def _mouth_mask(shape: tuple[int, int], lips: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(lips * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=2)
    return mask.astype(np.float32) / 255


@dataclass(frozen=True)
class Warp:
    """A warped face and what is known of it exactly.

    image (h, w, 3) uint8 and landmarks (68, 2) float32: the face after the moves;
    flow (h, w, 2) float32: backward displacement in pixels, image(p) = source(p + flow(p))
        (bilinear), except where `gap` darkens the new mouth opening;
    back (h, w, 2) float32: the reverse, source(p) = image(p + back(p)) up to resampling;
    gap (h, w) float32 in 0..1: how much of each pixel no warp explains (the darkened cavity)."""

    image: np.ndarray
    landmarks: np.ndarray
    flow: np.ndarray
    back: np.ndarray
    gap: np.ndarray


def _mesh(lm: np.ndarray, moves: dict[str, float],
          low: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, bool] | None:
    """The mesh of a face (68, 2) before and after `moves`, in image pixels: (src, dst, triangles,
    d, whether the mouth opens); None if nothing moves."""
    origin, rot, d = _frame(lm)
    up = (lm - origin) @ rot / d  # upright frame, d units
    disp = _displacements(up, moves, low)
    if not np.any(disp):
        return None
    brows = up[17:27] + (0, -0.55)
    centre = np.vstack([up, brows]).mean(0)
    ring = centre + 1.5 * (np.vstack([up[0:17], brows]) - centre)
    src_up = np.vstack([up, brows, ring])
    dst_up = src_up.copy()
    dst_up[:68] += disp
    # Closed lips give coincident inner-lip points: part the source ones by a pixel so the
    # mesh has a (thin) triangle between them to open up.
    opens = any(moves.get(m, 0) > 0 for m in OPENING)
    for a, b in ((61, 67), (62, 66), (63, 65)) if opens else ():
        src_up[b, 1] = max(src_up[b, 1], src_up[a, 1] + 1.0 / d)
    tris = Delaunay(src_up, qhull_options="QJ").simplices
    return origin + d * src_up @ rot.T, origin + d * dst_up @ rot.T, tris, d, opens


def warp(image: np.ndarray, landmarks: np.ndarray, moves: dict[str, float]) -> Warp:
    """`image` with `moves` ({AU name: intensity 0..1}, see MOVES) applied to the face of `landmarks` (68, 2)."""
    lm = np.asarray(landmarks, np.float64)
    hw = image.shape[:2]
    mesh = _mesh(lm, moves)
    if mesh is None:
        zero = np.zeros(hw + (2,), np.float32)
        return Warp(image.copy(), lm.astype(np.float32), zero, zero.copy(), np.zeros(hw, np.float32))
    src, dst, tris, d, opens = mesh
    ident = _identity(hw)
    forward = _backward_map(hw, src, dst, tris)
    out = remap(image, forward)
    new_lm = dst[:68]
    gap = np.zeros(hw, np.float32)
    if opens:
        # A stretched lip line is not an open mouth: inside the new inner-lip polygon, darken
        # what the warp stretches (the lips' parting line, the teeth of a parted mouth) by its
        # stretch, from 1.5x in area (fully from 3x): a new cavity, not stretched lips.
        (dx_dy, dx_dx), (dy_dy, dy_dx) = (np.gradient(forward[..., k]) for k in (0, 1))  # of the source position
        stretch = 1 / np.maximum(dx_dx * dy_dy - dx_dy * dy_dx, 1e-3)  # area scale of the warp
        gap = _mouth_mask(hw, new_lm[60:68]) * np.clip((stretch - 1.5) / 1.5, 0, 1)
        gap = cv2.GaussianBlur(gap, (0, 0), max(0.5, 0.01 * d)) * 0.85
        dark = np.array([45, 20, 20], np.float32)  # shadowed mouth cavity
        out = (out.astype(np.float32) * (1 - gap[..., None]) + dark * gap[..., None]).round().astype(np.uint8)
    back = _backward_map(hw, dst, src, tris)
    return Warp(out, new_lm.astype(np.float32), forward - ident, back - ident, gap)


def prior_flow(size: int, landmarks: np.ndarray, change: np.ndarray) -> np.ndarray:
    """The landmark-driven flow (size, size, 2) float32 that a request moves a face by: backward
    displacement in pixels of a `size` px crop whose face has `landmarks` (68, 2) crop pixels;
    `change` (17,) the AU change in [-1, 1] (AU_NAMES order), negative moves run the other way."""
    from ganivid.aus import AU_NAMES

    moves = {n: float(c) for n, c in zip(AU_NAMES, change) if n in MOVES and c != 0}
    mesh = _mesh(np.asarray(landmarks, np.float64), moves, low=-1.0)
    if mesh is None:
        return np.zeros((size, size, 2), np.float32)
    src, dst, tris, _, _ = mesh
    return _backward_map_raster((size, size), src, dst, tris) - _identity((size, size))


def warp_face(image: np.ndarray, landmarks: np.ndarray, moves: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """The face of `image` with `moves` ({AU name: intensity 0..1}, see MOVES) applied, and
    its moved landmarks (68, 2) float32."""
    w = warp(image, landmarks, moves)
    return w.image, w.landmarks
