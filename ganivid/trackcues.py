"""Cheap image cues the tracker works from: canonical grey patches, face thumbnails, a
template search for lost faces, and scene cuts. All take grey uint8 frames (RGB works too)."""
from __future__ import annotations

import math

import cv2
import numpy as np

from ganivid.align import Alignment, crop_matrix

PATCH = 160  # canonical patch side for landmark refits: a face there is ~110 px, the model's sweet spot
THUMB = 24  # side of the grey thumbnail compared with a track's template
THUMB_SPAN = 0.7  # thumbnail covers this fraction of the crop side: brows to chin, little background


def _halve(img: np.ndarray, times: int) -> np.ndarray:
    """`img` area-shrunk by 2**times in exact 2x steps (an odd last row or column is dropped):
    each takes OpenCV's fast path, ~4x cheaper than one 4x step and ~20x cheaper than a 2x step
    onto an odd size, and gives the same cell means up to one grey level of rounding."""
    for _ in range(times):
        h, w = img.shape[0] // 2, img.shape[1] // 2
        img = cv2.resize(img[:2 * h, :2 * w], (w, h), interpolation=cv2.INTER_AREA)
    return img


def patch(img: np.ndarray, al: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Upright grey n x n crop at alignment `al` and its 2x3 frame->patch matrix. Big faces are
    warped at twice the size, then area-shrunk (one fast integer step) against aliasing; more
    than 2x cost ~1 ms per face at 1080p and made no measurable difference to the landmarks."""
    m = crop_matrix(Alignment(*al), n)
    q = min(2, int(np.ceil(al[2] / (1.5 * n))))
    big = cv2.warpAffine(img, crop_matrix(Alignment(*al), n * q) if q > 1 else m, (n * q, n * q),
                         flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # Grey: the landmark model works on intensities anyway, and fits 20% faster without colour.
    grey = big if big.ndim == 2 else cv2.cvtColor(big, cv2.COLOR_RGB2GRAY)
    # Area cells of q x q centred as crop_matrix centres pixels: the result is exactly crop m.
    return (grey if q == 1 else cv2.resize(grey, (n, n), interpolation=cv2.INTER_AREA)), m


def thumb(grey_patch: np.ndarray, m_patch: np.ndarray, al: np.ndarray) -> np.ndarray:
    """Zero-mean unit-norm THUMB x THUMB view of the inner face at `al`, cut from a grey patch."""
    q = 4  # area-shrink first: the thumbnail samples every ~4.7 patch pixels, so no aliasing
    small = _halve(grey_patch, 2).astype(np.float32)
    # small -> patch (x = q x' + (q - 1) / 2) -> frame -> thumbnail as one 2x3 matrix (this runs
    # once per face per frame, where each extra numpy step costs as much as the warp).
    back = cv2.invertAffineTransform(m_patch)
    c = crop_matrix(Alignment(al[0], al[1], al[2] * THUMB_SPAN, al[3]), THUMB)
    a = c[:, :2] @ back[:, :2]
    t = np.column_stack([q * a, a.sum(1) * (q - 1) / 2 + c[:, :2] @ back[:, 2] + c[:, 2]])
    th = cv2.warpAffine(small, t, (THUMB, THUMB), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mean, sd = cv2.meanStdDev(th)
    return (th - float(mean[0, 0])) / max(float(sd[0, 0]) * THUMB, 1e-6)  # sd x THUMB: the norm


def search(grey: np.ndarray, template: np.ndarray, al: np.ndarray, path_end: np.ndarray, reach: float,
           avoid: list[np.ndarray]) -> tuple[float, np.ndarray]:
    """Best correlation (-1..1) of a face's THUMB template with the frame and where (x, y), over
    thumbnail centres within `reach` crop sizes of the path al[:2] -> path_end and not on a face
    in `avoid` (alignments of faces already followed); -1 where there is nothing to compare.

    The frame region is area-shrunk to thumbnail scale and turned upright by the face's angle,
    so one normalised template match covers every place on the path (~0.2 ms at 320x240)."""
    h, w = grey.shape[:2]
    a, b, size = al[:2], np.asarray(path_end, np.float64), al[2]
    pad = reach * size + 0.5 * THUMB_SPAN * size
    lo, hi = np.floor(np.minimum(a, b) - pad), np.ceil(np.maximum(a, b) + pad)
    x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
    x1, y1 = min(int(hi[0]), w), min(int(hi[1]), h)
    s = THUMB / (THUMB_SPAN * size)
    if min(x1 - x0, y1 - y0) * s < THUMB / 2:
        return -1.0, a  # the path is (almost) all outside the frame
    # 2x area steps while the region is still at least twice the thumbnail scale (they are ~4x
    # cheaper than one fractional step); the last step, less than 2x, is linear and mild.
    region = _halve(grey[y0:y1, x0:x1], int(np.log2(1 / s)) if s < 0.5 else 0)
    small = cv2.resize(region, (max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s))), interpolation=cv2.INTER_LINEAR)
    sx, sy = small.shape[1] / (x1 - x0), small.shape[0] / (y1 - y0)
    # Where the region leaves the frame, extend it by up to half a thumbnail of replicated
    # border (as thumbnails are cut), so a face half out of the frame can still be matched.
    left, top = (int(min(THUMB // 2, max(v, 0) * s)) for v in (x0 - lo[0], y0 - lo[1]))
    right, bottom = (int(min(THUMB // 2, max(v, 0) * s)) for v in (hi[0] - x1, hi[1] - y1))
    small = cv2.copyMakeBorder(small, top, bottom, left, right, cv2.BORDER_REPLICATE)
    sh, sw = small.shape[:2]
    # Upright as the template was cut (crop_matrix turns by -angle about the centre).
    rot = cv2.getRotationMatrix2D(((sw - 1) / 2, (sh - 1) / 2), float(al[3]), 1.0)
    if abs(al[3]) > 1:
        small = cv2.warpAffine(small, rot, (sw, sh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    score = cv2.matchTemplate(small.astype(np.float32), template.astype(np.float32, copy=False), cv2.TM_CCOEFF_NORMED)
    if score.size == 0:
        return -1.0, a
    # Compare positions in the search image (distances there are frame distances times ~s).
    to_small = np.vstack([rot @ np.array([[sx, 0, sx * (0.5 - x0) - 0.5 + left], [0, sy, sy * (0.5 - y0) - 0.5 + top],
                                          [0, 0, 1]]), [0, 0, 1]])
    sa = to_small[:2, :2] @ a + to_small[:2, 2]
    d = to_small[:2, :2] @ (b - a)
    xs = np.arange(score.shape[1]) + ((THUMB - 1) / 2 - sa[0])  # window centres relative to a
    ys = np.arange(score.shape[0])[:, None] + ((THUMB - 1) / 2 - sa[1])
    dd = max(float(d @ d), 1e-9)
    u = np.clip(xs * (d[0] / dd) + ys * (d[1] / dd), 0, 1)  # nearest point of the path
    ex, ey = xs - u * d[0], ys - u * d[1]
    ok = ex * ex + ey * ey <= (reach * size * sx) ** 2  # squared distances: no square roots
    for f in avoid:
        c = to_small[:2, :2] @ f[:2] + to_small[:2, 2] - sa
        ok &= (xs - c[0]) ** 2 + (ys - c[1]) ** 2 >= (0.35 * f[2] * sx) ** 2
    if not ok.any():
        return -1.0, a
    score[~ok] = -2.0
    y, x = np.unravel_index(int(score.argmax()), score.shape)
    back = cv2.invertAffineTransform(to_small[:2])
    return float(score[y, x]), back[:, :2] @ np.array([x + (THUMB - 1) / 2, y + (THUMB - 1) / 2]) + back[:, 2]


def covered(al: np.ndarray, heads: list[np.ndarray]) -> float:
    """Largest fraction of the inner face at `al` (its thumbnail square) that one of the crop
    squares at `heads` covers (upright squares: faces roll little against each other)."""
    r, best = 0.5 * THUMB_SPAN * al[2], 0.0
    for f in heads:
        k = 0.5 * f[2]
        ov = [max(0.0, min(al[i] + r, f[i] + k) - max(al[i] - r, f[i] - k)) for i in (0, 1)]
        best = max(best, ov[0] * ov[1] / (2 * r) ** 2)
    return best


def changed_outside(now: np.ndarray, ref: np.ndarray, faces: list[np.ndarray], width: int) -> bool:
    """Whether two 64-px grey thumbnails of a `width`-px frame differ by more than 0.1 (of the
    grey range) in a few pixels outside squares of 1.3 crop sizes (head, hair and neck) around
    the alignments in `faces`: a face appearing anywhere else would."""
    diff = cv2.absdiff(now, ref) > 25
    k = now.shape[1] / width
    for f in faces:
        r = 0.65 * f[2] * k
        x0, y0 = (max(int(v), 0) for v in (f[0] * k - r, f[1] * k - r))
        diff[y0:max(int(f[1] * k + r) + 1, 0), x0:max(int(f[0] * k + r) + 1, 0)] = False
    return int(diff.sum()) >= 4


class CutDetector:
    """Scene cuts from consecutive 64-px grey thumbnails: big mean change and a changed histogram."""

    def __init__(self, mad: float, hist: float):
        self.mad, self.hist, self.prev = mad, hist, None

    @property
    def thumb(self) -> np.ndarray | None:
        """The 64-px grey uint8 thumbnail of the last frame."""
        return None if self.prev is None else self.prev[0]

    def __call__(self, img: np.ndarray) -> bool:
        """True if `img` starts a new shot."""
        h, w = img.shape[:2]
        th = max(1, round(64 * h / w))
        # Sample down to 4x the thumbnail first (nearest: 0.03 ms at 720p, where area or a numpy
        # stride copy take 1 ms), then average 4x4 cells in two 2x area steps (OpenCV's fastest
        # path): an honest 64-px thumbnail at any resolution.
        small = img if w <= 256 else cv2.resize(img, (256, 4 * th), interpolation=cv2.INTER_NEAREST)
        grey = small if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        fast = grey.shape[:2] == (4 * th, 256)
        g = _halve(grey, 2) if fast else cv2.resize(grey, (64, th), interpolation=cv2.INTER_AREA)
        hist = cv2.calcHist([g], [0], None, [16], [0, 256]).ravel() / g.size
        prev, self.prev = self.prev, (g, hist, (h, w))
        if prev is None:
            return False
        if prev[2] != (h, w):
            return True
        mad = cv2.norm(g, prev[0], cv2.NORM_L1) / (255 * g.size)
        return mad > self.mad and 0.5 * float(np.abs(hist - prev[1]).sum()) > self.hist


def same_face(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether alignments (cx, cy, size, angle) `a` and `b` are one face: centres closer than 0.35
    of the smaller crop (two heads side by side are ~0.75 apart). Box overlap missed it when a
    refit drifted and shrank (crops of 175 and 131 px, 35 px apart: IoU 0.4): two tracks, one face."""
    return math.hypot(a[0] - b[0], a[1] - b[1]) < 0.35 * min(a[2], b[2])
