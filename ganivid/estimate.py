"""Built-in AU intensities (0..1) from the 68 dlib landmarks, neutral calibration, OpenFace import.

Landmarks are first put in a similarity-normalised frame: de-rotated by the crop alignment
angle (`align.alignment_from_landmarks`), origin at the midpoint of the four eye corners,
unit = d, the distance between the two eye-corner midpoints (~63 mm on an adult; corners,
unlike lid points, do not move when the eyes close). Each supported AU then has one signed
feature that grows with the AU; its intensity is

    intensity = clip((feature - baseline - deadzone) / span, 0, 1)

where the dead zone is the repeatability of dlib's fit (0.02 d for distances, 0.04 for eye
aspect ratios: the largest change of an unmoved feature when other parts of astronaut and
grace_hopper are warped, tests/test_estimate.py), so fitting noise reads 0, and `baseline` is the feature on the same person's resting face (a low percentile over a
video track, `track_baseline`) or, for single images, a population value (`POPULATION_BASELINE`).
y grows downwards; "eye line" is the mean y of the four eye corners (0 in this frame).

| AU   | feature (d units unless said)                                        | span  |
|------|----------------------------------------------------------------------|-------|
| AU1  | inner brow (20,21 / 22,23) height above the inner eye corners         | 0.12  |
| AU2  | outer brow (17,18 / 25,26) height above the outer eye corners         | 0.12  |
| AU4  | −(mean brow 18..25 height) − 0.5 × inner brow gap (x22 − x21)          | 0.10  |
| AU5  | eye aspect ratio (lid opening / eye width, mean of both eyes)          | 0.10  |
| AU6  | unsupported: cheek raise is texture; its lid effect is AU7's           |  –    |
| AU7  | −(lower lid 40,41 / 46,47 depth below the corner line)                | 0.04  |
| AU9  | unsupported: the nostrils rise ~2 mm, within dlib's fit noise, and the |  –    |
|      | eye-line reference shifts when the lids move                           |       |
| AU10 | −(upper lip top 50..52 depth below the nostril base 31..35)          | 0.08  |
| AU12 | −(lip corners 48,54 depth below the nostril base)                     | 0.14  |
| AU14 | unsupported: the dimple is texture, the corners barely move            |  –    |
| AU15 | +(lip corners 48,54 depth below the nostril base)                     | 0.08  |
| AU17 | −(chin 8 depth below the nostril base) − lip gap: jaw shortened, shut | 0.08  |
| AU20 | mouth width (48–54) + corner depth: lateral stretch net of any lift    | 0.20  |
| AU23 | −(red lip thickness: 51→62 plus 66→57)                                | 0.08  |
| AU25 | inner lip gap (61,62,63 → 67,66,65)                                   | 0.20  |
| AU26 | chin 8 depth below the nostril base (jaw drop)                        | 0.30  |
| AU45 | −eye aspect ratio (a full blink closes the ~0.3 resting ratio)         | 0.22  |

Spans are the feature change of a strong (OpenFace ~5/5) action on an adult face, from the
anatomy (brows rise ~8 mm, jaw drops ~20 mm) cross-checked against the spread of features over
the portraits in ../shared/data (their 95th-percentile smile and mouth opening read 0.6–0.9).
Pitch (nodding) is not corrected — it shortens vertical distances like AU17/AU9 would — so
video tracks should use `track_baseline`; in-plane rotation and scale are corrected exactly."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganivid.align import landmark_angles
from ganivid.aus import AU_NAMES, NUM_AUS
from ganivid.errors import DataError

UNSUPPORTED = ("AU6", "AU9", "AU14")
SUPPORTED: np.ndarray = np.array([n not in UNSUPPORTED for n in AU_NAMES])

SPAN: np.ndarray = np.array([
    0.12, 0.12, 0.10, 0.10, np.nan, 0.04, np.nan, 0.08, 0.14,
    np.nan, 0.08, 0.08, 0.20, 0.08, 0.20, 0.30, 0.22,
], np.float32)
DEADZONE: np.ndarray = np.where(np.isin(np.arange(NUM_AUS), [3, 16]), 0.04, 0.02).astype(np.float32)

# Population neutral for single images: signed features of 300 portraits of
# ../shared/data/portraits (every 7th file of the sorted list, dlib HOG upsample 1, largest
# face, `stable_landmarks`; 293 had a face), measured with benchmarks/population_baseline.py.
# The median for AUs the portraits rarely show; the 25th percentile for AU12 and AU25, whose
# median portrait already smiles or parts its lips (about half do), so a neutral mouth reads ~0.
POPULATION_BASELINE: np.ndarray = np.array([
    0.2909, 0.2261, -0.4924, 0.2848, np.nan, -0.0316, np.nan, -0.2601, -0.3516,
    np.nan, 0.3029, -1.2649, 1.3076, -0.1897, 0.0200, 1.1737, -0.2848,
], np.float32)


def normalised(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks (…, 68, 2) de-rotated by the alignment angle, origin at the eye-corner
    midpoint, in units of the eye-corner-midpoint distance."""
    lm = np.asarray(landmarks, np.float64)
    flat = lm.reshape(-1, 68, 2)
    a = np.radians(landmark_angles(flat))
    cos, sin = np.cos(a), np.sin(a)
    rot = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)  # (N, 2, 2): undoes `angle`
    centre = flat[:, [36, 39, 42, 45]].mean(1, keepdims=True)
    d = np.linalg.norm(flat[:, [42, 45]].mean(1) - flat[:, [36, 39]].mean(1), axis=-1)
    out = (flat - centre) @ rot.transpose(0, 2, 1) / np.maximum(d, 1e-6)[:, None, None]
    return out.reshape(lm.shape)


def _ear(p: np.ndarray) -> np.ndarray:
    """Eye aspect ratio (…,) averaged over both eyes (Soukupová & Čech 2016)."""
    def one(o, a1, a2, i, b2, b1):
        v = np.linalg.norm(p[..., a1, :] - p[..., b1, :], axis=-1) + np.linalg.norm(p[..., a2, :] - p[..., b2, :], axis=-1)
        return v / (2 * np.linalg.norm(p[..., o, :] - p[..., i, :], axis=-1))
    return (one(36, 37, 38, 39, 40, 41) + one(45, 44, 43, 42, 47, 46)) / 2


def features(landmarks: np.ndarray) -> np.ndarray:
    """Signed AU features (…, 17) float64 of landmarks (…, 68, 2); NaN for unsupported AUs."""
    p = normalised(landmarks)
    x, y = p[..., 0], p[..., 1]
    eye = y[..., [36, 39, 42, 45]].mean(-1)  # 0 by construction; kept for clarity
    inner_c, outer_c = (y[..., 39] + y[..., 42]) / 2, (y[..., 36] + y[..., 45]) / 2
    brow = y[..., 18:26].mean(-1)
    corners = (y[..., 48] + y[..., 54]) / 2
    gap = (y[..., [67, 66, 65]] - y[..., [61, 62, 63]]).mean(-1)
    nose = y[..., 31:36].mean(-1)  # mouth features are measured from the nose base: lid
    # closure shifts dlib's eye corners, not the mouth-nose geometry
    jaw = y[..., 8] - nose
    ear = _ear(p)
    f = np.full(p.shape[:-2] + (NUM_AUS,), np.nan)
    f[..., 0] = inner_c - y[..., [20, 21, 22, 23]].mean(-1)
    f[..., 1] = outer_c - y[..., [17, 18, 25, 26]].mean(-1)
    f[..., 2] = -(eye - brow) - 0.5 * (x[..., 22] - x[..., 21])
    f[..., 3] = ear
    f[..., 5] = -(y[..., [40, 41, 46, 47]].mean(-1) - eye)
    f[..., 7] = -(y[..., 50:53].mean(-1) - nose)
    f[..., 8] = -(corners - nose)
    f[..., 10] = corners - nose
    f[..., 11] = -jaw - np.maximum(gap, 0)
    f[..., 12] = (x[..., 54] - x[..., 48]) + (corners - nose)
    f[..., 13] = -((y[..., 62] - y[..., 51]) + (y[..., 57] - y[..., 66]))
    f[..., 14] = gap
    f[..., 15] = jaw
    f[..., 16] = -ear
    return f


def track_baseline(landmarks_series: np.ndarray, percentile: float = 10.0) -> np.ndarray:
    """Neutral baseline (17,) of one person: a low percentile of each signed feature over the
    frames (T, 68, 2) of a track, so the resting face (the least of every action) reads ~0."""
    f = features(np.asarray(landmarks_series).reshape(-1, 68, 2))
    base = np.full(NUM_AUS, np.nan)
    if len(f):
        base[SUPPORTED] = np.percentile(f[:, SUPPORTED], percentile, axis=0)
    return base


def estimate_aus(landmarks: np.ndarray, baseline: np.ndarray | None = None) -> np.ndarray:
    """AU intensities (…, 17) float32 in 0..1 of landmarks (…, 68, 2); NaN where unsupported.

    `baseline` (17,) is the person's neutral (from `track_baseline`, or features of a known
    neutral frame); None uses the population baseline of single images."""
    f = features(landmarks)
    base = POPULATION_BASELINE if baseline is None else np.asarray(baseline, np.float64)
    with np.errstate(invalid="ignore"):
        out = np.clip((f - base - DEADZONE) / SPAN, 0.0, 1.0)
    out[..., ~SUPPORTED] = np.nan
    return out.astype(np.float32)


# Box jitters (dx, dy, scale) in box units: dlib's regression-tree cascade moves every point by
# 1-3 % of the box when a few pixels of the face change; the median of the fits from a 3x3x3
# grid of slightly shifted and scaled boxes halves that noise (~1 ms per fit).
_JITTER = tuple((dx, dy, ds) for ds in (0, -0.03, 0.03) for dy in (0, -0.03, 0.03) for dx in (0, -0.03, 0.03))


def stable_landmarks(detector, image: np.ndarray, box: tuple[float, float, float, float],
                     n: int = len(_JITTER)) -> np.ndarray:
    """68 landmarks (68, 2) float32: median of `n` fits of `detector.landmarks` in jittered boxes."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    fits = []
    for dx, dy, ds in _JITTER[:max(1, n)]:
        hw, hh = w * (1 + ds) / 2, h * (1 + ds) / 2
        x, y = cx + dx * w, cy + dy * h
        fits.append(detector.landmarks(image, (x - hw, y - hh, x + hw, y + hh)))
    return np.median(fits, axis=0).astype(np.float32)


# --- OpenFace import -----------------------------------------------------------------------
# FeatureExtraction / FaceLandmarkVidMulti / FaceLandmarkImg write one CSV per input, named
# after it, with headers like "frame, face_id, timestamp, confidence, success, ..., AU01_r";
# FaceLandmarkImg says "face" instead of "face_id" and has no frame. Columns are read by name
# (after stripping the spaces OpenFace puts after each comma), never by position.
OPENFACE_COLUMNS = tuple(f"AU{int(n[2:]):02d}_r" for n in AU_NAMES)


@dataclass(frozen=True)
class OpenFaceRow:
    """One face in one frame of an OpenFace CSV."""

    frame: int | None  # OpenFace's frame number (1-based), None for FaceLandmarkImg
    face: int
    aus: tuple[float, ...]  # 17 intensities in 0..1 (OpenFace's 0..5 divided by 5)
    landmarks: np.ndarray | None  # (68, 2) from x_0..x_67, y_0..y_67 when present


@dataclass
class OpenFaceLabels:
    """OpenFace rows by input-file stem, and the problems met reading them (one line each)."""

    rows: dict[str, list[OpenFaceRow]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def match(self, source: Path, frame: int | None, landmarks: np.ndarray) -> list[float] | None:
        """AUs of the OpenFace face matching a detected face (frame: 0-based video frame, None
        for images), by nearest landmarks when the CSV has them; None when nothing matches."""
        rows = [r for r in self.rows.get(Path(source).stem, [])
                if frame is None or r.frame is None or r.frame == frame + 1]
        with_lm = [r for r in rows if r.landmarks is not None]
        if with_lm:
            size = float(np.ptp(landmarks[:, 0])) or 1.0
            dist = [float(np.linalg.norm(r.landmarks - landmarks, axis=1).mean()) for r in with_lm]
            best = int(np.argmin(dist))
            return list(with_lm[best].aus) if dist[best] < 0.15 * size else None
        return list(rows[0].aus) if len(rows) == 1 else None


def _number(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return float("nan")


def read_openface(path: Path) -> OpenFaceLabels:
    """Rows of an OpenFace CSV or of every CSV under a folder. Files without the 17 AU columns
    and rows that failed (success 0) or hold non-numbers are reported and skipped.

    Raises:
        DataError: `path` does not exist or holds no CSV.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.rglob("*.csv"))
    elif path.is_file():
        files = [path]
    else:
        raise DataError(f"--openface {path}: no such file or folder")
    if not files:
        raise DataError(f"--openface {path}: no .csv file in it")
    out = OpenFaceLabels()
    for f in files:
        try:
            with open(f, newline="", encoding="utf-8-sig") as fh:
                table = list(csv.reader(fh))
        except (OSError, UnicodeDecodeError) as ex:
            out.problems.append(f"{f.name}: unreadable ({ex}), ignored")
            continue
        header = [h.strip() for h in table[0]] if table else []
        col = {h: i for i, h in enumerate(header)}
        missing = [c for c in OPENFACE_COLUMNS if c not in col]
        if missing:
            out.problems.append(f"{f.name}: no column {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''} "
                                f"(not an OpenFace AU file?), ignored")
            continue
        has_lm = all(f"x_{i}" in col and f"y_{i}" in col for i in range(68))
        face_col = col.get("face_id", col.get("face"))
        bad = failed = 0
        rows = out.rows.setdefault(f.stem, [])
        for line in table[1:]:
            if not any(c.strip() for c in line):
                continue
            cells = [c.strip() for c in line] + [""] * (len(header) - len(line))
            if "success" in col and _number(cells[col["success"]]) == 0:
                failed += 1
                continue
            aus = np.array([_number(cells[col[c]]) for c in OPENFACE_COLUMNS])
            if not np.all(np.isfinite(aus)):
                bad += 1
                continue
            lm = None
            if has_lm:
                lm = np.array([[_number(cells[col[f"x_{i}"]]), _number(cells[col[f"y_{i}"]])] for i in range(68)])
                lm = lm if np.all(np.isfinite(lm)) else None
            frame = _number(cells[col["frame"]]) if "frame" in col else float("nan")
            face = _number(cells[face_col]) if face_col is not None else 0.0
            rows.append(OpenFaceRow(int(frame) if np.isfinite(frame) else None, int(face) if np.isfinite(face) else 0,
                                    tuple(float(v) for v in np.clip(aus / 5.0, 0.0, 1.0)), lm))
        if failed or bad:
            out.problems.append(f"{f.name}: {failed} rows with success 0 and {bad} with missing or "
                                f"non-numeric AUs skipped")
    return out
