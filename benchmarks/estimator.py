"""The two AU estimators side by side: landmarks (dlib's 68 points, estimate.py) and mesh
(MediaPipe's blendshapes and mesh, meshaus.py); prints one JSON line.

    python benchmarks/estimator.py [--grid-clips 10] [--faces 30]

- `london_auc12`: AUC of AU12 between the neutral and the smiling photo of the held-out London
  identities (`london_holdout`; single images, the population's neutral). Goal >= 0.95.
- `grid`: Pearson r of AU25 and AU26 against the speech envelope of each GRID clip (best lag
  within ±3 frames, each track's own neutral), median over clips; `grid_candidates`: the same
  for every mesh cue of AU25/AU26. Goal: above the landmark estimator's.
- `warp_spearman`: held-out faces (portraits and London neutral photos) moved by `warps.py` at
  intensities 0, 0.25 .. 1 of one AU; Spearman of the AU read (the unmoved photo as the
  person's neutral, as a video track's own neutral) against the intensity, median over faces,
  per AU the estimator supports. Goal >= 0.8.
- `known_faces`: AU12 of the astronaut (goal > 0.5) and Grace Hopper (goal < 0.15).
- `cost`: ms per face of the mesh read; the analysis pass (`analysis.analyse_video`) on a
  640x360 clip with and without it, in fps."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from animate_speed import make_clip  # noqa: E402
from edit_quality import DATA, london_holdout, portraits_holdout  # noqa: E402
from grid_aus import best_r, envelope  # noqa: E402

from ganivid.align import alignment_from_landmarks  # noqa: E402
from ganivid.aus import au_index  # noqa: E402
from ganivid.estimate import estimate_aus, features, stable_landmarks, track_baseline  # noqa: E402
from ganivid.images import read_image  # noqa: E402
from ganivid.mesh import shared_reader  # noqa: E402
from ganivid import meshaus  # noqa: E402
from ganivid.meshaus import CUES, cue_baseline, cue_values, mesh_aus, read_cues  # noqa: E402
from ganivid.still import find_faces  # noqa: E402
from ganivid.warps import MOVES, warp_face  # noqa: E402

LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
ESTIMATORS = ("landmarks", "mesh")


def rnd(v, nd: int = 3):
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


def auc(neg: list[float], pos: list[float]) -> float:
    """P(a positive reads above a negative), ties counting half."""
    n, p = np.asarray(neg)[:, None], np.asarray(pos)[None]
    return float(((p > n) + 0.5 * (p == n)).mean())


def read_still(image: np.ndarray, estimator: str, face=None) -> np.ndarray:
    face = face or find_faces(image)[0]
    return mesh_aus(read_cues(image, face.landmarks)) if estimator == "mesh" else estimate_aus(face.landmarks)


def raw(image: np.ndarray, estimator: str, face) -> np.ndarray:
    """What an estimator reads before calibration: mesh cues (17,) or the landmarks (68, 2)."""
    return read_cues(image, face.landmarks) if estimator == "mesh" else face.landmarks


def calibrated(values: np.ndarray, estimator: str, neutral: np.ndarray) -> np.ndarray:
    """AUs of `raw` values against the `raw` values of the person's neutral."""
    return mesh_aus(values, neutral) if estimator == "mesh" else estimate_aus(values, features(neutral))


def london_auc() -> dict:
    ids = sorted(p.stem for p in (DATA / "london" / "neutral").glob("*.jpg"))
    out = {e: {"neutral": [], "smiling": []} for e in ESTIMATORS}
    for i in london_holdout(ids):
        for kind in ("neutral", "smiling"):
            img = read_image(DATA / "london" / kind / f"{i}.jpg")
            face = find_faces(img)[0]
            for e in ESTIMATORS:
                out[e][kind].append(float(read_still(img, e, face)[au_index("AU12")]))
    return {e: {"auc": rnd(auc(v["neutral"], v["smiling"])), "neutral_median": rnd(np.median(v["neutral"])),
                "smiling_median": rnd(np.median(v["smiling"])), "ids": len(v["neutral"])} for e, v in out.items()}


def grid(max_clips: int) -> dict:
    from ganivid.faces import DlibDetector
    from ganivid.video import read_frames

    clips = sorted((DATA / "videos" / "grid").glob("*.mpg"))[:max_clips]
    det = DlibDetector()
    names = {"AU25": CUES["AU25"], "AU26": CUES["AU26"]}
    rs = {e: {a: [] for a in names} for e in ESTIMATORS}
    cand = {a: {c: [] for c in cs} for a, cs in names.items()}
    for clip in clips:
        lms, cues, vals, times = [], [], [], []
        for f in read_frames(clip):
            found = det.boxes(f.image)
            if not found:
                continue
            box = max(found, key=lambda b: (b[0][2] - b[0][0]) * (b[0][3] - b[0][1]))[0]
            lm = stable_landmarks(det, f.image, box)
            r = shared_reader().read_aligned(f.image, alignment_from_landmarks(lm))
            lms.append(lm)
            vals.append(cue_values(r.scores, r.mesh, lm))
            cues.append(meshaus.cues(r.scores, r.mesh, lm))  # the same read as read_cues's
            times.append(f.time_s)
        lms, cues, times = np.stack(lms), np.stack(cues), np.array(times)
        env = envelope(clip, times, 25.0)
        aus = {"landmarks": estimate_aus(lms, track_baseline(lms)), "mesh": mesh_aus(cues, cue_baseline(cues))}
        for e in ESTIMATORS:
            for a in names:
                rs[e][a].append(best_r(aus[e][:, au_index(a)], env)[0])
        for a, cs in names.items():
            for c in cs:
                cand[a][c].append(best_r(np.array([v[c] for v in vals]), env)[0])
    return {"clips": len(clips),
            **{e: {a: rnd(np.median(v)) for a, v in rs[e].items()} for e in ESTIMATORS},
            "candidates": {a: {c: rnd(np.median(v)) for c, v in cs.items()} for a, cs in cand.items()}}


def warp_spearman(count: int) -> dict:
    ids = sorted(p.stem for p in (DATA / "london" / "neutral").glob("*.jpg"))
    paths = [DATA / "london" / "neutral" / f"{i}.jpg" for i in london_holdout(ids)][: count // 2]
    paths += portraits_holdout()[: count - len(paths)]
    rho = {e: {a: [] for a in MOVES} for e in ESTIMATORS}
    used = 0
    for path in paths:
        img = read_image(path)
        try:
            face = find_faces(img)[0]
        except Exception:
            continue
        used += 1
        neutral = {e: raw(img, e, face) for e in ESTIMATORS}
        for a in MOVES:
            reads = {e: [] for e in ESTIMATORS}
            for level in LEVELS:
                moved = warp_face(img, face.landmarks, {a: level})[0] if level else img
                try:
                    f = find_faces(moved, estimator="landmarks")[0]
                except Exception:
                    f = face
                for e in ESTIMATORS:
                    reads[e].append(float(calibrated(raw(moved, e, f), e, neutral[e])[au_index(a)]))
            for e in ESTIMATORS:
                v = np.array(reads[e])
                if np.isnan(v).all():
                    continue  # not supported by this estimator
                rho[e][a].append(spearmanr(LEVELS, v).statistic if np.ptp(v) > 0 else 0.0)
        print(f"warp {used} {path.name}", file=sys.stderr, flush=True)
    return {"faces": used, **{e: {a: rnd(np.median(v)) if v else None for a, v in rho[e].items()} for e in ESTIMATORS}}


def known_faces() -> dict:
    import matplotlib.cbook as cbook
    from PIL import Image
    from skimage import data

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.asarray(Image.open(f).convert("RGB"))
    return {name: {e: rnd(read_still(img, e)[au_index("AU12")]) for e in ESTIMATORS}
            for name, img in (("astronaut", data.astronaut()), ("grace_hopper", hopper))}


def cost() -> dict:
    from ganivid.analysis import analyse_video
    from ganivid.tracking import TrackConfig
    from ganivid.video import probe

    img = read_image(DATA / "london" / "neutral" / sorted(p.name for p in (DATA / "london" / "neutral").glob("*.jpg"))[0])
    lm = find_faces(img)[0].landmarks
    read_cues(img, lm)
    t = time.perf_counter()
    for _ in range(100):
        read_cues(img, lm)
    per_face = (time.perf_counter() - t) * 10
    with tempfile.TemporaryDirectory() as tmp:
        info = probe(make_clip(Path(tmp) / "clip.mp4", 6.0))
        fps = {}
        for mesh in (False, True, False, True):
            t = time.perf_counter()
            table = analyse_video(info, TrackConfig(detect_every=12, mesh=mesh), None, lambda: None)[0]
            fps.setdefault(mesh, []).append(len(table.frames) / (time.perf_counter() - t))
    return {"mesh_ms_per_face": rnd(per_face, 2), "analysis_fps_landmarks": rnd(max(fps[False]), 1),
            "analysis_fps_mesh": rnd(max(fps[True]), 1),
            "mesh_share_of_analysis": rnd(1 - max(fps[True]) / max(fps[False]))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid-clips", type=int, default=10)
    p.add_argument("--faces", type=int, default=30, help="held-out faces for the warp test")
    p.add_argument("--only", default="london,grid,warp,known,cost")
    args = p.parse_args()
    parts = set(args.only.split(","))
    out = {"benchmark": "estimator"}
    if "known" in parts:
        out["known_faces"] = known_faces()
    if "london" in parts:
        out["london_auc12"] = london_auc()
    if "grid" in parts:
        out["grid"] = grid(args.grid_clips)
    if "warp" in parts:
        out["warp_spearman"] = warp_spearman(args.faces)
    if "cost" in parts:
        out["cost"] = cost()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
