"""AU intensities (0..1) from MediaPipe's face mesh and blendshapes (ganivid/mesh.py).

Each AU is read from one cue: a blendshape score (the mean of its Left/Right pair) or a distance
on the 478-point mesh in the face's upright frame, in units of d (the distance between the two
eye-corner midpoints, as in estimate.py). Cues are chosen and calibrated on data ganivid has
(benchmarks/calibrate_mesh_aus.py): warps of known intensity, the portraits' resting faces and
the London neutral/smiling pairs."""
from __future__ import annotations

import numpy as np

from ganivid.aus import AU_NAMES, NUM_AUS
from ganivid.mesh import NAMES, shared_reader

# Candidate cues per AU, the chosen one first (benchmarks/calibrate_mesh_aus.py compares them).
CUES: dict[str, tuple[str, ...]] = {
    "AU1": ("browInnerUp", "mesh_inner_brow"),
    "AU2": ("browOuterUp", "mesh_outer_brow"),
    "AU4": ("browDown", "mesh_brow_lower"),
    "AU5": ("eyeWide", "mesh_eye_open"),
    "AU6": ("cheekSquint", "eyeSquint"),
    "AU7": ("eyeSquint", "mesh_lower_lid"),
    "AU9": ("noseSneer",),
    "AU10": ("mouthUpperUp", "mesh_upper_lip"),
    "AU12": ("mouthSmile", "mesh_corners_up"),
    "AU14": ("mouthDimple",),
    "AU15": ("mouthFrown", "mesh_corners_down"),
    "AU17": ("mouthShrugLower", "mesh_chin_up"),
    "AU20": ("mouthStretch", "mesh_mouth_width"),
    "AU23": ("mouthPress", "mouthRollLower", "mouthPucker", "mesh_lips_thin"),
    "AU25": ("lip_gap", "mesh_lip_gap", "jawOpen"),
    "AU26": ("mesh_jaw", "jawOpen"),
    "AU45": ("eyeBlink", "mesh_eye_closed"),
}


def _shape(scores: np.ndarray, name: str) -> float:
    if name in NAMES:
        return float(scores[NAMES.index(name)])
    return float((scores[NAMES.index(name + "Left")] + scores[NAMES.index(name + "Right")]) / 2)


def upright(mesh: np.ndarray) -> np.ndarray:
    """Mesh points (478, 2): de-rotated along the eye-corner line, origin at the four eye corners'
    midpoint, in units of d; y grows downwards."""
    p = np.asarray(mesh, np.float64)[:, :2]
    left, right = p[[33, 133]].mean(0), p[[362, 263]].mean(0)
    v = right - left
    d = float(np.hypot(*v)) or 1.0
    c, s = v / d
    return (p - p[[33, 133, 362, 263]].mean(0)) @ np.array([[c, -s], [s, c]]) / d


def geometry(mesh: np.ndarray) -> dict[str, float]:
    """Signed mesh distances (d units) that grow with their AU."""
    p = upright(mesh)
    y = p[:, 1]
    eye_open = ((y[145] - y[159]) / abs(p[133, 0] - p[33, 0]) + (y[374] - y[386]) / abs(p[263, 0] - p[362, 0])) / 2
    corners = (y[61] + y[291]) / 2 - y[2]  # below the nose base
    return {
        "mesh_inner_brow": float((y[133] + y[362]) / 2 - (y[[107, 66, 336, 296]]).mean()),
        "mesh_outer_brow": float((y[33] + y[263]) / 2 - (y[[70, 105, 300, 334]]).mean()),
        "mesh_brow_lower": float(y[[70, 63, 105, 66, 107, 300, 293, 334, 296, 336]].mean() - 0.5 * (p[336, 0] - p[107, 0])),
        "mesh_eye_open": float(eye_open),
        "mesh_eye_closed": float(-eye_open),
        "mesh_lower_lid": float(-(y[[145, 374]].mean())),
        "mesh_upper_lip": float(-(y[0] - y[2])),
        "mesh_corners_up": float(-corners),
        "mesh_corners_down": float(corners),
        "mesh_chin_up": float(-(y[152] - y[2]) - max(y[14] - y[13], 0.0)),
        "mesh_mouth_width": float(p[291, 0] - p[61, 0] + corners),
        "mesh_lips_thin": float(-((y[13] - y[0]) + (y[17] - y[14]))),
        "mesh_lip_gap": float(y[14] - y[13]),
        "mesh_jaw": float(y[152] - y[2]),
    }


def _geometry(mesh: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    """`geometry`, plus the lip gap fused with dlib's: the mean of the two, steadier than either."""
    from ganivid.estimate import features

    geo = geometry(mesh)
    return geo | {"lip_gap": (geo["mesh_lip_gap"] + float(features(landmarks)[14])) / 2}


def _cue(name: str, geo: dict[str, float], scores: np.ndarray) -> float:
    """One cue: a mesh distance of `geo`, else a blendshape score."""
    return geo[name] if name in geo else _shape(scores, name)


def cue_values(scores: np.ndarray, mesh: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    """Every candidate cue of `CUES` for one reading (52 scores, its (478, 2+) mesh) and the
    face's 68 dlib landmarks."""
    geo = _geometry(mesh, landmarks)
    return {c: _cue(c, geo, scores) for cues in CUES.values() for c in cues}


# The cue of each AU and its resting value on single images (benchmarks/calibrate_mesh_aus.py):
# the portraits' 10th percentile for blendshapes (actions only add to a score) and the inner-lip
# gap (closed lips are its rest), their 75th for other mesh distances: they vary with anatomy as
# much as a full action, and a photo should read an action only where one is clear. AU6
# (cheekSquint), AU9 (noseSneer) and AU14 (mouthDimple) stay unsupported: the first two read 0
# on every face, the last has no data here.
# Spans: a strong action reads 0.8 of a blendshape's range (the London posed smiles' median
# mouthSmile, 0.585, then reads AU12 0.73); a mesh distance's span is its rise when warps.py
# moves a face by intensity 1, the anatomical scale the warps were built on.
_TABLE: dict[str, tuple[str, float, float]] = {  # AU: (cue, rest, span)
    "AU1": ("browInnerUp", 0.0001, 0.8),
    "AU2": ("browOuterUp", 0.0005, 0.8),
    "AU4": ("browDown", 0.0932, 0.8),
    "AU5": ("mesh_eye_open", 0.3394, 0.0491),
    "AU7": ("eyeSquint", 0.3357, 0.8),
    "AU10": ("mesh_upper_lip", -0.2009, 0.0203),
    "AU12": ("mouthSmile", 0.0352, 0.8),
    "AU15": ("mesh_corners_down", 0.3146, 0.0664),
    "AU17": ("mouthShrugLower", 0.0014, 0.8),
    "AU20": ("mouthStretch", 0.0029, 0.8),
    "AU23": ("mesh_lips_thin", -0.1837, 0.0134),
    "AU25": ("lip_gap", 0.0019, 0.1730),
    "AU26": ("mesh_jaw", 1.2188, 0.2169),
    "AU45": ("eyeBlink", 0.0690, 0.8),
}
SUPPORTED = np.array([a in _TABLE for a in AU_NAMES])
CUE = tuple(_TABLE[a][0] if a in _TABLE else "" for a in AU_NAMES)
REST = np.array([_TABLE[a][1] if a in _TABLE else np.nan for a in AU_NAMES])
SPAN = np.array([_TABLE[a][2] if a in _TABLE else np.nan for a in AU_NAMES])
# So that fitting noise reads 0: 0.01 of a blendshape score (resting scores vary by less), 5 %
# of a distance's span (the mesh jitters a third as much as dlib's fit; a wider zone lost GRID's
# quiet lip movements and the weakest warps of AU17).
DEADZONE = np.where([c in ("", "lip_gap") or c.startswith("mesh_") for c in CUE], 0.05 * SPAN, 0.01)


def cues(scores: np.ndarray, mesh: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 17 AUs' cues (17,) float32 of one reading (52 scores, its mesh) and the face's 68
    dlib landmarks; NaN where unsupported."""
    geo = _geometry(mesh, landmarks)
    return np.array([_cue(c, geo, scores) if c else np.nan for c in CUE], np.float32)


def read_cues(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Cues (17,) of the face with 68 dlib `landmarks` in `image` (RGB or grey): the mesh is read
    in the ROI of the landmarks' crop alignment."""
    from ganivid.align import alignment_from_landmarks

    r = shared_reader().read_aligned(image, alignment_from_landmarks(landmarks))
    return cues(r.scores, r.mesh, landmarks)


def cue_baseline(series: np.ndarray, percentile: float = 10.0) -> np.ndarray:
    """One person's resting cues (17,): a low percentile of each over a track's frames (T, 17)."""
    series = np.asarray(series, np.float64).reshape(-1, NUM_AUS)
    ok = ~np.isnan(series[:, SUPPORTED]).any(axis=1)
    if not ok.any():
        return REST.copy()
    return np.where(SUPPORTED, np.percentile(series[ok], percentile, axis=0), np.nan)


def mesh_aus(values: np.ndarray, baseline: np.ndarray | None = None) -> np.ndarray:
    """AU intensities (..., 17) float32 in 0..1 of cues (..., 17); NaN where unsupported or
    unread. `baseline` (17,): the person's resting cues (`cue_baseline`), None for the
    population's (single images)."""
    base = REST if baseline is None else np.asarray(baseline, np.float64)
    with np.errstate(invalid="ignore"):
        out = np.clip((np.asarray(values, np.float64) - base - DEADZONE) / SPAN, 0.0, 1.0)
    out[..., ~SUPPORTED] = np.nan
    return out.astype(np.float32)
