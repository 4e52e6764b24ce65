"""The 17 Action Units GANimation is conditioned on, and named expressions as AU vectors."""
from __future__ import annotations

import numpy as np

from ganivid.errors import ConfigError, CurveError

# OpenFace order (its intensity columns are AU01_r ... AU45_r, 0..5; ganivid uses 0..1).
AU_NAMES: tuple[str, ...] = (
    "AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12",
    "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU45",
)
AU_DESCRIPTIONS: dict[str, str] = {
    "AU1": "inner brow raiser", "AU2": "outer brow raiser", "AU4": "brow lowerer",
    "AU5": "upper lid raiser", "AU6": "cheek raiser", "AU7": "lid tightener",
    "AU9": "nose wrinkler", "AU10": "upper lip raiser", "AU12": "lip corner puller",
    "AU14": "dimpler", "AU15": "lip corner depressor", "AU17": "chin raiser",
    "AU20": "lip stretcher", "AU23": "lip tightener", "AU25": "lips part",
    "AU26": "jaw drop", "AU45": "blink",
}
NUM_AUS = len(AU_NAMES)

# Where a face's own AUs come from: MediaPipe's mesh and blendshapes (meshaus.py), dlib's 68
# landmarks (estimate.py), or nowhere (zeros).
ESTIMATORS = ("mesh", "landmarks")


def source_mode(source_aus: str, estimator: str = "mesh") -> str:
    """The one AU source of `--source-aus estimate|none` (or mesh|landmarks) and `--estimator`:
    mesh, landmarks or none."""
    if estimator not in ESTIMATORS:
        raise ConfigError(f"--estimator must be {' or '.join(ESTIMATORS)}, got {estimator!r}")
    if source_aus == "estimate":
        return estimator
    if source_aus in (*ESTIMATORS, "none"):
        return source_aus
    raise ConfigError(f"--source-aus must be estimate or none, got {source_aus!r}")


def photo_estimator(source: str) -> str:
    """The estimator that reads a face's own AUs for a `source_mode` (none: the cheaper, unused)."""
    return "mesh" if source == "mesh" else "landmarks"

# FACS/EMFACS prototypes (Ekman & Friesen; the paper's fear = AU1+2+4+5+7+20+26).
# Intensities in 0..1 chosen so that the full expression is clear but not extreme.
EXPRESSIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    "smile": {"AU6": 0.6, "AU12": 1.0, "AU25": 0.4},
    "happiness": {"AU6": 0.8, "AU12": 1.0, "AU25": 0.6},
    "surprise": {"AU1": 1.0, "AU2": 1.0, "AU5": 0.8, "AU25": 0.8, "AU26": 0.8},
    "fear": {"AU1": 1.0, "AU2": 0.8, "AU4": 0.8, "AU5": 0.8, "AU7": 0.6, "AU20": 0.8, "AU26": 0.6},
    "sadness": {"AU1": 0.8, "AU4": 0.6, "AU15": 0.8, "AU17": 0.4},
    "anger": {"AU4": 1.0, "AU5": 0.6, "AU7": 0.8, "AU23": 0.8},
    "disgust": {"AU9": 1.0, "AU10": 0.8, "AU15": 0.4, "AU17": 0.4},
    "contempt": {"AU12": 0.6, "AU14": 0.8},
    "blink": {"AU45": 1.0},
}


def au_index(name: str) -> int:
    """Index of an AU given as `AU12`, `au12`, `AU012`, `12` or OpenFace's `AU12_r`."""
    key = name.strip().upper().removesuffix("_R").removesuffix("_C")
    key = key.removeprefix("AU")
    if key.isdigit():
        key = f"AU{int(key)}"
        if key in AU_NAMES:
            return AU_NAMES.index(key)
    raise CurveError(f"unknown AU {name!r}; valid AUs: {', '.join(AU_NAMES)}")


def expression(name: str, strength: float = 1.0) -> np.ndarray:
    """AU vector (17,) float32 of a named expression scaled by `strength`."""
    key = name.strip().lower()
    if key not in EXPRESSIONS:
        raise CurveError(f"unknown expression {name!r}; known: {', '.join(EXPRESSIONS)}")
    vec = np.zeros(NUM_AUS, np.float32)
    for au, value in EXPRESSIONS[key].items():
        vec[au_index(au)] = value * strength
    return vec
