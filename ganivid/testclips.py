"""Short synthetic clips of real portraits moving over a background with known trajectories.

Tests and `benchmarks/tracking.py` build their videos here, in memory, from public-domain
portraits (skimage's astronaut, matplotlib's Grace Hopper), so tracking quality is measured
against exact ground truth: every face is the still portrait warped by a known similarity
transform, so its true landmarks are the still's landmarks under that transform."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from ganivid.align import Alignment, alignment_from_landmarks, crop_matrix
from ganivid.errors import NoFaceError
from ganivid.faces import DlibDetector

Pose = Callable[[float], Alignment | None]  # time (s) -> where the face is, or None (absent)


@dataclass(frozen=True)
class Sprite:
    """A portrait, its 68 landmarks and the alignment of its face."""

    image: np.ndarray  # (H, W, 3) uint8
    landmarks: np.ndarray  # (68, 2) float32
    alignment: Alignment


@dataclass
class Clip:
    """Frames with timestamps and, per frame, the true landmarks of each named face shown."""

    frames: list[np.ndarray]
    times: list[float]
    truth: list[dict[str, np.ndarray]] = field(default_factory=list)  # name -> (68, 2)
    visible: list[dict[str, float]] = field(default_factory=list)  # name -> fraction of landmarks in view
    cuts: list[int] = field(default_factory=list)  # frames that start a new shot

    def __iter__(self):
        """(index, time_s, image) triples, the input `tracking.analyse` takes."""
        return iter(zip(range(len(self.frames)), self.times, self.frames))


def sprite(portrait: np.ndarray) -> Sprite:
    """The portrait with the landmarks of its largest face."""
    found = DlibDetector().detect(portrait)
    if not found:
        raise NoFaceError("no face in the portrait")
    lm = found[0].landmarks
    return Sprite(np.ascontiguousarray(portrait), lm, alignment_from_landmarks(lm))


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth, textured colour background (blurred noise on a gradient), RGB uint8."""
    rng = np.random.default_rng(seed)
    k = max(1, width // 640)  # big frames: texture made at <= 640 px wide and scaled up (fast)
    w, h = width // k, height // k
    low = rng.uniform(40, 200, (max(2, h // 24), max(2, w // 24), 3)).astype(np.float32)
    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 6, img.shape).astype(np.float32)  # fine texture, like sensor noise
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img if k == 1 else cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)


def _portrait_to_frame(s: Sprite, pose: Alignment) -> np.ndarray:
    """2x3 matrix taking portrait pixels to frame pixels so the face lands at `pose`."""
    n = 256  # any crop size: it cancels out
    c0 = np.vstack([crop_matrix(s.alignment, n), [0, 0, 1]])
    c1 = np.vstack([crop_matrix(pose, n), [0, 0, 1]])
    return (np.linalg.inv(c1) @ c0)[:2]


def _face_mask(s: Sprite) -> np.ndarray:
    """Soft ellipse around the head in portrait pixels, float32 0..1."""
    a = s.alignment
    mask = np.zeros(s.image.shape[:2], np.float32)
    cv2.ellipse(mask, (round(a.cx), round(a.cy - 0.06 * a.size)), (round(0.46 * a.size), round(0.6 * a.size)),
                -a.angle, 0, 360, 1.0, -1)
    k = int(0.08 * a.size) | 1
    return cv2.GaussianBlur(mask, (k, k), 0)


def render(bg: np.ndarray, faces: list[tuple[Sprite, Alignment]]) -> tuple[np.ndarray, list[np.ndarray], list[float]]:
    """The background with each sprite pasted at its pose (later ones on top), their true
    landmarks, and the fraction of each face's landmarks inside the frame and not covered."""
    h, w = bg.shape[:2]
    out = bg.copy()
    truth, alphas = [], []
    for s, pose in faces:
        m = _portrait_to_frame(s, pose)
        # Composite only inside the head's bounding box: 4K frames stay cheap.
        r = 0.8 * pose.size
        x0, y0 = int(np.clip(pose.cx - r, 0, w)), int(np.clip(pose.cy - r, 0, h))
        x1, y1 = int(np.clip(pose.cx + r, x0, w)), int(np.clip(pose.cy + r, y0, h))
        alpha = np.zeros((h, w), np.float32)
        if x1 > x0 and y1 > y0:
            mr = m.copy()
            mr[:, 2] -= (x0, y0)
            face = cv2.warpAffine(s.image, mr, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            a = cv2.warpAffine(_face_mask(s), mr, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)
            out[y0:y1, x0:x1] = cv2.blendLinear(face, out[y0:y1, x0:x1], a, 1 - a)
            alpha[y0:y1, x0:x1] = a
        truth.append((s.landmarks.astype(np.float64) @ m[:, :2].T + m[:, 2]).astype(np.float32))
        alphas.append(alpha)
    visible = []
    for i, lm in enumerate(truth):
        x, y = np.round(lm[:, 0]).astype(int), np.round(lm[:, 1]).astype(int)
        inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        covered = np.zeros(len(lm), bool)
        for a in alphas[i + 1:]:
            covered[inside] |= a[y[inside], x[inside]] > 0.5
        visible.append(float(np.mean(inside & ~covered)))
    return out, truth, visible


def make_clip(faces: dict[str, tuple[Sprite, Pose]], n_frames: int, size: tuple[int, int] = (320, 240),
              fps: float = 25.0, background_at: Callable[[float], np.ndarray] | None = None,
              times: list[float] | None = None) -> Clip:
    """Render `n_frames` frames; a face is in the truth when its centre is inside the frame
    (`visible` then says how much of it can be seen)."""
    w, h = size
    bg = background(w, h)
    times = times if times is not None else [i / fps for i in range(n_frames)]
    clip = Clip([], list(times))
    for t in clip.times:
        shown = [(name, s, pose(t)) for name, (s, pose) in faces.items()]
        shown = [(name, s, p) for name, s, p in shown if p is not None]
        img, lms, vis = render(background_at(t) if background_at else bg, [(s, p) for _, s, p in shown])
        clip.frames.append(img)
        clip.truth.append({name: lm for (name, _, p), lm in zip(shown, lms) if 0 <= p.cx < w and 0 <= p.cy < h})
        clip.visible.append({name: v for (name, _, _), v in zip(shown, vis) if name in clip.truth[-1]})
    return clip


def linear(t0: float, t1: float, a: Alignment, b: Alignment) -> Pose:
    """Pose moving linearly from `a` at t0 to `b` at t1, absent outside [t0, t1]."""
    pa, pb = a.as_array(), b.as_array()

    def pose(t: float) -> Alignment | None:
        if t < t0 - 1e-9 or t > t1 + 1e-9:
            return None
        u = (t - t0) / (t1 - t0)
        return Alignment(*(pa + (pb - pa) * u))

    return pose


def moving_clip(s: Sprite, n_frames: int = 40, fps: float = 25.0, size: tuple[int, int] = (320, 240),
                vfr: bool = False) -> Clip:
    """One face panning across, rising and falling, zooming in 1.3x and rolling from -15 to +15
    degrees, with smooth starts and stops like a head turn; `vfr` jitters the frame times."""
    w, h = size
    k = w / 320

    def pose(t: float) -> Alignment:
        u = t * fps / max(1, n_frames - 1)
        ease = (1 - np.cos(np.pi * u)) / 2  # 0 -> 1, at rest at both ends
        return Alignment(w * (0.35 + 0.3 * u), h * (0.45 - 0.08 * np.sin(np.pi * u)),
                         k * 150 * (1 + 0.3 * ease), -15 + 30 * ease)

    times = None
    if vfr:  # variable frame rate: gaps of 0.5..1.5 frame durations, as phone videos have
        rng = np.random.default_rng(1)
        times = list(np.cumsum(np.r_[0, rng.uniform(0.5, 1.5, n_frames - 1)]) / fps)
    return make_clip({"a": (s, pose)}, n_frames, size, fps, times=times)


def crossing_clip(a: Sprite, b: Sprite, n_frames: int = 40, fps: float = 25.0) -> Clip:
    """Two faces crossing paths, `b` passing in front of `a` and overlapping it."""
    d = (n_frames - 1) / fps
    return make_clip({"a": (a, linear(0, d, Alignment(80, 105, 140, -5), Alignment(240, 130, 140, 5))),
                      "b": (b, linear(0, d, Alignment(250, 140, 150, 5), Alignment(70, 110, 150, -5)))},
                     n_frames, fps=fps)


def reentry_clip(s: Sprite, n_frames: int = 36, fps: float = 25.0) -> Clip:
    """A face that slides out through the left border and comes back where it left."""
    def pose(t: float) -> Alignment:
        u = t * fps / (n_frames - 1)
        x = 160 - 260 * (1 - abs(2 * u - 1)) if 0.0 < u < 1.0 else 160.0  # out and back (V path)
        return Alignment(max(x, -140.0), 120, 140, 0)

    return make_clip({"a": (s, pose)}, n_frames, fps=fps)


def cut_clip(s: Sprite, n_frames: int = 30, cut_at: int = 12, back_at: int = 20, fps: float = 25.0) -> Clip:
    """A still face, a cut to an empty dark frame at `cut_at`, and a cut back to the face at `back_at`."""
    dark = (background(320, 240, seed=7) // 4).astype(np.uint8)
    bg = background(320, 240)

    def pose(t: float) -> Alignment | None:
        i = round(t * fps)
        return None if cut_at <= i < back_at else Alignment(160 + 0.5 * i, 120, 150, 0)

    clip = make_clip({"a": (s, pose)}, n_frames, fps=fps,
                     background_at=lambda t: dark if cut_at <= round(t * fps) < back_at else bg)
    clip.cuts = [cut_at, back_at]
    return clip
