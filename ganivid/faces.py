"""Face detection and 68 landmarks with face_recognition's dlib models."""
from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from ganivid.errors import GanividError


@dataclass(frozen=True)
class Detection:
    """One face in one image: box (x0, y0, x1, y1) in pixels, 68 landmarks (68, 2), score."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray  # (68, 2) float32, x, y in image pixels
    score: float


def models_dir() -> str:
    """Folder of face_recognition_models' .dat files, found without importing that package
    (its import pulls pkg_resources, which recent setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise GanividError("face-recognition-models is not installed: pip install face-recognition-models")
    return os.path.join(os.path.dirname(spec.origin), "models")


@functools.cache
def _dlib_detector(cnn: bool):
    import dlib

    return (dlib.cnn_face_detection_model_v1(os.path.join(models_dir(), "mmod_human_face_detector.dat"))
            if cnn else dlib.get_frontal_face_detector())


@functools.cache
def _encoder():
    import dlib

    return dlib.face_recognition_model_v1(os.path.join(models_dir(), "dlib_face_recognition_resnet_model_v1.dat"))


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[Detection]: ...


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """dlib wants uint8 RGB or gray, C-contiguous."""
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


DARK = 128  # a frame whose brightest 0.5 % stays below this level is stretched before detection


def brightened(image: np.ndarray) -> np.ndarray:
    """A dark uint8 image stretched linearly so its brightest 0.5 % reach 255 (others unchanged):
    HOG's gradients in an 8 %-bright clip fall under dlib's thresholds (20 of 40 frames found with
    noise, 0 at 5 %; stretched: 40 and 40, against 40 and 37 for histogram equalisation)."""
    counts = np.cumsum(np.bincount(image.reshape(-1), minlength=256))
    top = int(np.searchsorted(counts, 0.995 * counts[-1]))
    if top >= DARK:
        return image
    return cv2.convertScaleAbs(image, alpha=255.0 / max(top, 8))


class DlibDetector:
    """HOG (default) or CNN face detector plus the 68-landmark shape predictor.

    `max_side` downscales large frames before detection (landmarks are fitted at full
    resolution); `upsample` > 0 finds smaller faces but gives more false positives."""

    def __init__(self, upsample: int = 0, cnn: bool = False, max_side: int = 640):
        self.upsample, self.cnn, self.max_side = upsample, cnn, max_side
        from ganivid.landmarks import shape_predictor_68

        self._detector, self._predictor = _dlib_detector(cnn), shape_predictor_68()

    def boxes(self, image: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        """Face boxes (x0, y0, x1, y1) in full-image pixels with detector scores."""
        image = _to_rgb(image)
        scale = min(1.0, self.max_side / max(image.shape[:2]))
        small = image if scale == 1.0 else cv2.resize(
            image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        small = brightened(small)
        out = []
        if self.cnn:
            for d in self._detector(small, self.upsample):
                r = d.rect
                out.append(((r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale), float(d.confidence)))
        else:
            rects, scores, _ = self._detector.run(small, self.upsample, 0.0)
            for r, s in zip(rects, scores):
                out.append(((r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale), float(s)))
        return out

    def landmarks(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """68 landmarks (68, 2) float32 fitted inside `box` (dlib's shape predictor, whole pixels)."""
        return self._predictor(_to_rgb(image), tuple(int(round(v)) for v in box))

    def detect(self, image: np.ndarray) -> list[Detection]:
        """All faces of an image, largest first."""
        image = _to_rgb(image)
        found = [Detection(box, self.landmarks(image, box), score) for box, score in self.boxes(image)]
        return sorted(found, key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))


def face_encoding(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """face_recognition's 128-d identity encoding of the face with these 68 landmarks."""
    import dlib

    image = _to_rgb(image)
    if image.ndim == 2:
        image = np.ascontiguousarray(np.repeat(image[..., None], 3, axis=2))
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    rect = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
    parts = [dlib.point(int(round(x)), int(round(y))) for x, y in landmarks]
    shape = dlib.full_object_detection(rect, parts)
    return np.array(_encoder().compute_face_descriptor(image, shape), np.float32)
