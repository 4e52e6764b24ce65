"""MediaPipe's face landmarker (478-point mesh + 52 blendshapes), run on CPU with LiteRT.

The .task file (Apache-2.0, google-ai-edge/mediapipe, vendored in models/) is a zip of TFLite
models; this module runs two of them and redoes MediaPipe's graph around them
(mediapipe/tasks/cc/vision/face_landmarker/*.cc): the landmark ROI is the face rectangle rotated
so that landmark 33 -> 263 (the outer eye corners) is horizontal, scaled 1.5x and made square
on its longer side, cropped to 192x192 RGB in [0, 1] (replicated border); the model's landmarks
(crop pixels) are divided by 192 and projected back through the ROI; the blendshape model takes
146 of them (`SUBSET`) in image pixels and returns the 52 scores named in `NAMES`. Instead of
BlazeFace the ROI comes from ganivid's own face boxes and alignments.

Coordinates here are pixel-index coordinates (pixel centres at integers), like dlib's."""
from __future__ import annotations

import functools
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MODELS = Path(__file__).resolve().parents[1] / "models"
TASK_NAME = "face_landmarker_v2_with_blendshapes.task"
INPUT = 192  # the landmark model's square input
SCALE = 1.5  # MediaPipe's RectTransformation of the face rectangle (scale_x = scale_y = 1.5)

# kLandmarksSubsetIdxs of face_blendshapes_graph.cc: the blendshape model's 146 input landmarks.
SUBSET = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65,
    66, 67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136,
    144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172,
    173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269, 270, 276, 282, 283,
    284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324,
    332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385,
    386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472,
    473, 474, 475, 476, 477)
# kBlendshapeNames of the same file: the order of the blendshape model's 52 outputs.
NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight")
assert len(SUBSET) == 146 and len(NAMES) == 52

# Mesh regions (indices of the 478-point mesh; "left"/"right" as seen in the image).
EYE_LEFT = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
EYE_RIGHT = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
EYE_CORNERS = (33, 133, 362, 263)
BROWS = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
BROW_TOPS = (105, 66, 107, 334, 296, 336)
LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
        78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415)
JAW = (58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288)
MOUTH_CORNERS = (61, 291)
INNER_LIPS = (13, 14)  # upper, lower
REGIONS = {"brows": BROWS, "eyes": EYE_LEFT + EYE_RIGHT, "mouth": LIPS, "jaw": JAW}


def default_task_file() -> Path:
    """The vendored .task file (models/MODELS.md has its source, sha256 and licence)."""
    return MODELS / TASK_NAME


def unavailable(task_file: str | Path | None = None) -> str | None:
    """Why the reader cannot run here (one line), or None when it can."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return "ai_edge_litert is not installed (pip install ai-edge-litert)"
    path = Path(task_file) if task_file else default_task_file()
    return None if path.is_file() else f"{path} is missing"


@dataclass(frozen=True)
class Roi:
    """A square region: centre (index coords), side in pixels, angle (radians, image y down)."""

    cx: float
    cy: float
    size: float
    angle: float

    def crop_to_image(self) -> np.ndarray:
        """2x3 affine from crop-pixel index coords (192 px) to image index coords."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        rot = np.array([[c, -s], [s, c]]) * (self.size / INPUT)
        shift = np.array([self.cx, self.cy]) + rot @ np.array([0.5 - INPUT / 2, 0.5 - INPUT / 2])
        return np.hstack([rot, shift[:, None]])


def roi_from_points(points: np.ndarray, left: np.ndarray, right: np.ndarray) -> Roi:
    """MediaPipe's ROI from points: their axis-aligned box's centre, the angle of left -> right,
    the longer side of the box scaled 1.5x (DetectionsToRects + RectTransformation)."""
    lo, hi = points.min(0), points.max(0)
    d = np.asarray(right, float) - np.asarray(left, float)
    return Roi(float((lo[0] + hi[0]) / 2), float((lo[1] + hi[1]) / 2),
               float(SCALE * max(hi - lo)), float(np.arctan2(d[1], d[0])))


# MediaPipe's converged ROI relative to ganivid's crop alignment (align.Alignment), medians over
# 102 London and portrait faces (ROI refined twice from its own mesh): centre 0.051 of the crop
# side above the crop centre, side 1.29x the crop side, the same angle (spread ±0.04, ±0.07).
ROI_UP, ROI_SCALE = 0.051, 1.29


def roi_from_alignment(al) -> Roi:
    """The landmark ROI of a face that ganivid has aligned (`al`: align.Alignment)."""
    a = np.radians(al.angle)
    return Roi(float(al.cx + ROI_UP * al.size * np.sin(a)), float(al.cy - ROI_UP * al.size * np.cos(a)),
               float(ROI_SCALE * al.size), float(a))


@dataclass(frozen=True)
class Reading:
    """One face read: mesh (478, 3) in image pixels (z in pixels too), presence in [0, 1],
    blendshape scores (52,) in `NAMES` order, and the ROI the mesh was read in."""

    mesh: np.ndarray
    presence: float
    scores: np.ndarray
    roi: Roi

    def score(self, *names: str) -> float:
        """Mean score of the named blendshapes."""
        return float(np.mean([self.scores[NAMES.index(n)] for n in names]))

    def as_dict(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(NAMES, self.scores)}


class MediaPipeReader:
    """The landmark and blendshape models of a face_landmarker .task file, on CPU."""

    def __init__(self, task_file: str | Path | None = None, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        path = Path(task_file) if task_file else default_task_file()
        self._lock = threading.Lock()
        with zipfile.ZipFile(path) as z:
            self._mesh = Interpreter(model_content=z.read("face_landmarks_detector.tflite"), num_threads=threads)
            self._shapes = Interpreter(model_content=z.read("face_blendshapes.tflite"), num_threads=threads)
        for it in (self._mesh, self._shapes):
            it.allocate_tensors()
        outs = self._mesh.get_output_details()
        # Two outputs, told apart by size: 1434 = 478 x 3 landmarks, 1 = presence logit.
        self._lm_out = next(o["index"] for o in outs if int(np.prod(o["shape"])) == 478 * 3)
        self._presence_out = next(o["index"] for o in outs if int(np.prod(o["shape"])) == 1)

    def crop(self, image: np.ndarray, roi: Roi) -> np.ndarray:
        """The ROI resampled to 192x192 RGB float32 in [0, 1], border replicated."""
        crop = cv2.warpAffine(image, roi.crop_to_image(), (INPUT, INPUT),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        if crop.ndim == 2:  # grey (the analysis pass tracks on luma): the same value in R, G and B
            crop = np.repeat(crop[..., None], 3, axis=-1)
        return crop.astype(np.float32) / 255.0

    def mesh(self, image: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        """478 landmarks (478, 3) in image pixels and the face-presence probability."""
        self._mesh.set_tensor(self._mesh.get_input_details()[0]["index"], self.crop(image, roi)[None])
        self._mesh.invoke()
        raw = self._mesh.get_tensor(self._lm_out).reshape(478, 3).astype(np.float64)
        logit = float(self._mesh.get_tensor(self._presence_out).reshape(-1)[0])
        m = roi.crop_to_image()
        xy = (raw[:, :2] - 0.5) @ m[:, :2].T + m[:, 2]  # model output is in crop edge coords
        z = raw[:, 2] * roi.size / INPUT
        return np.column_stack([xy, z]), float(1 / (1 + np.exp(-logit)))

    def blendshapes(self, mesh: np.ndarray) -> np.ndarray:
        """52 scores from a mesh in image pixels (MediaPipe passes x * width, i.e. edge coords)."""
        pts = (mesh[list(SUBSET), :2] + 0.5).astype(np.float32)[None]
        self._shapes.set_tensor(self._shapes.get_input_details()[0]["index"], pts)
        self._shapes.invoke()
        return self._shapes.get_tensor(self._shapes.get_output_details()[0]["index"]).reshape(-1).copy()

    def read(self, image: np.ndarray, box: tuple[float, float, float, float], angle: float = 0.0,
             refine: int = 1) -> Reading:
        """Read the face in `box` (x0, y0, x1, y1; `angle` of its eye line, radians): a first
        mesh in the box's ROI, then `refine` more in the ROI of the previous mesh."""
        image = np.ascontiguousarray(image if image.ndim == 2 else image[..., :3])
        x0, y0, x1, y1 = box
        corners = np.array([[x0, y0], [x1, y1]], float)
        roi = roi_from_points(corners, (0.0, 0.0), (np.cos(angle), np.sin(angle)))
        mesh, presence = self.mesh(image, roi)
        for _ in range(refine):
            roi = roi_from_points(mesh[:, :2], mesh[33, :2], mesh[263, :2])
            mesh, presence = self.mesh(image, roi)
        return Reading(mesh.astype(np.float32), presence, self.blendshapes(mesh), roi)

    def read_aligned(self, image: np.ndarray, al) -> Reading:
        """Read the face at alignment `al` (align.Alignment): one mesh in `roi_from_alignment`.
        Safe from several threads: an interpreter runs one call at a time."""
        image = np.ascontiguousarray(image if image.ndim == 2 else image[..., :3])
        roi = roi_from_alignment(al)
        with self._lock:
            mesh, presence = self.mesh(image, roi)
            scores = self.blendshapes(mesh)
        return Reading(mesh.astype(np.float32), presence, scores, roi)

    def read_dlib(self, image: np.ndarray, landmarks68: np.ndarray, refine: int = 1) -> Reading:
        """Read the face whose dlib 68 landmarks are given: their box and eye line start it."""
        lm = np.asarray(landmarks68, float)
        d = lm[42:48].mean(0) - lm[36:42].mean(0)
        x0, y0 = lm.min(0)
        x1, y1 = lm.max(0)
        return self.read(image, (x0, y0, x1, y1), float(np.arctan2(d[1], d[0])), refine)


@functools.lru_cache(maxsize=None)
def shared_reader() -> MediaPipeReader:
    """The process's one reader of the vendored models (loading takes ~50 ms and 10 MB)."""
    return MediaPipeReader()
