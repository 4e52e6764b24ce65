"""Cheap image cues the tracker works from: canonical grey patches, face thumbnails, a
template search for lost faces, and scene cuts. All take grey uint8 frames (RGB works too)."""
from __future__ import annotations

import cv2
import numpy as np

from ganivid.align import Alignment, crop_matrix

PATCH = 160  # canonical patch side for landmark refits: a face there is ~110 px, the model's sweet spot
THUMB = 24  # side of the grey thumbnail compared with a track's template
THUMB_SPAN = 0.7  # thumbnail covers this fraction of the crop side: brows to chin, little background


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
    n = grey_patch.shape[0]
    small = cv2.resize(grey_patch, (n // q, n // q), interpolation=cv2.INTER_AREA).astype(np.float32)
    to_small = np.array([[1 / q, 0, (1 - q) / (2 * q)], [0, 1 / q, (1 - q) / (2 * q)], [0, 0, 1]])
    inner = Alignment(al[0], al[1], al[2] * THUMB_SPAN, al[3])
    t = np.vstack([crop_matrix(inner, THUMB), [0, 0, 1]]) @ np.linalg.inv(to_small @ np.vstack([m_patch, [0, 0, 1]]))
    th = cv2.warpAffine(small, t[:2], (THUMB, THUMB), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    th -= th.mean()
    return th / max(float(np.linalg.norm(th)), 1e-6)


def search(grey: np.ndarray, template: np.ndarray, al: np.ndarray, path_end: np.ndarray, reach: float,
           avoid: list[np.ndarray]) -> float:
    """Best correlation (-1..1) of a face's THUMB template with the frame, over thumbnail centres
    within `reach` crop sizes of the path al[:2] -> path_end and not on a face in `avoid`
    (alignments of faces already followed); -1 where there is nothing to compare.

    The frame region is area-shrunk to thumbnail scale and turned upright by the face's angle,
    so one normalised template match covers every place on the path (~0.1 ms at 720p)."""
    h, w = grey.shape[:2]
    a, b, size = al[:2], np.asarray(path_end, np.float64), al[2]
    pad = reach * size + 0.5 * THUMB_SPAN * size
    x0, y0 = (max(int(v), 0) for v in np.floor(np.minimum(a, b) - pad))
    x1, y1 = min(int(np.ceil(max(a[0], b[0]) + pad)), w), min(int(np.ceil(max(a[1], b[1]) + pad)), h)
    s = THUMB / (THUMB_SPAN * size)
    if min(x1 - x0, y1 - y0) * s < THUMB:
        return -1.0  # the path is (almost) all outside the frame
    small = cv2.resize(grey[y0:y1, x0:x1], None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    # Upright as the template was cut (crop_matrix turns by -angle about the centre).
    rot = cv2.getRotationMatrix2D(((sw - 1) / 2, (sh - 1) / 2), float(al[3]), 1.0)
    if abs(al[3]) > 1:
        small = cv2.warpAffine(small, rot, (sw, sh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    score = cv2.matchTemplate(small.astype(np.float32), template.astype(np.float32), cv2.TM_CCOEFF_NORMED)
    # Frame position of every window centre: undo the turn, then the shrink.
    ys, xs = np.mgrid[:score.shape[0], :score.shape[1]] + (THUMB - 1) / 2
    pts = np.stack([xs.ravel(), ys.ravel()], 1) @ cv2.invertAffineTransform(rot)[:, :2].T + cv2.invertAffineTransform(rot)[:, 2]
    pts = (pts + 0.5) * ((x1 - x0) / sw, (y1 - y0) / sh) - 0.5 + (x0, y0)
    d = b - a
    u = np.clip((pts - a) @ d / max(float(d @ d), 1e-9), 0, 1)
    ok = np.hypot(*(pts - a - u[:, None] * d).T) <= reach * size
    for f in avoid:
        ok &= np.hypot(*(pts - f[:2]).T) >= 0.35 * f[2]
    return float(score.ravel()[ok].max()) if ok.any() else -1.0


class CutDetector:
    """Scene cuts from consecutive 64-px grey thumbnails: big mean change and a changed histogram."""

    def __init__(self, mad: float, hist: float):
        self.mad, self.hist, self.prev = mad, hist, None

    def __call__(self, img: np.ndarray) -> bool:
        """True if `img` starts a new shot."""
        h, w = img.shape[:2]
        # Sample down to <= 256 px first (nearest: 0.2 ms at 720p, where area or a numpy stride
        # copy take 1 ms), then average: an honest 64-px thumbnail at any resolution.
        small = img if w <= 256 else cv2.resize(img, (256, max(1, round(256 * h / w))), interpolation=cv2.INTER_NEAREST)
        grey = small if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        g = cv2.resize(grey, (64, max(1, round(64 * h / w))), interpolation=cv2.INTER_AREA)
        hist = np.bincount(g.ravel() >> 4, minlength=16) / g.size
        g = g.astype(np.float32) / 255
        prev, self.prev = self.prev, (g, hist, (h, w))
        if prev is None:
            return False
        if prev[2] != (h, w):
            return True
        return float(np.abs(g - prev[0]).mean()) > self.mad and 0.5 * float(np.abs(hist - prev[1]).sum()) > self.hist
