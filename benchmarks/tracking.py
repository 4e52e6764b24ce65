"""Face tracking quality and cost on synthetic clips of real portraits with known trajectories.

Prints one JSON line. Alignment error: distance between the smoothed crop centre and the true
one (the alignment of the still portrait's landmarks under the known transform), over the true
inter-ocular distance. Jitter: mean |second difference| of the smoothed centre over the same for
the unsmoothed centre (`jitter_ratio`; part of it is the true motion's acceleration, so
`noise_jitter_ratio` takes the truth out first). Id switches: changes of the track id matched
to one true face (a new id after a true cut is by design). Cost: CPU ms per frame, detecting
every frame (the tracker with detect_every=1, and bare detector + landmarks) vs tracking, on
the clips above, a longer clip, a 720p clip and, when ../shared is present, real GRID
talking-face clips (the variants take turns, best of a few rounds each); per-clip figures for
the synthetic clips; load_avg_1min at the start and end of the cost runs.

    python benchmarks/tracking.py [--fps 25] [--every 12] [--quick]   (--quick: synthetic clips' cost only)
"""
from __future__ import annotations

import argparse
import json
import os
import time

import cv2
import numpy as np
import torch

from ganivid import testclips as tc
from ganivid.align import LEFT_EYE, RIGHT_EYE, alignment_from_landmarks
from ganivid.smoothing import smooth
from ganivid.tracking import TrackConfig, analyse


def portraits() -> tuple[np.ndarray, np.ndarray]:
    """skimage's astronaut and matplotlib's Grace Hopper (both public domain)."""
    import matplotlib.cbook as cbook
    from PIL import Image
    from skimage import data

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return data.astronaut(), np.asarray(Image.open(f).convert("RGB"))


def match(clip: tc.Clip, table) -> dict[str, list[tuple[int, int | None]]]:
    """Per true face: (frame, row index or None) for each frame where at least half of it is visible."""
    out: dict[str, list] = {}
    for f, faces in enumerate(clip.truth):
        lo, hi = np.searchsorted(table.frame, [f, f + 1])
        for name, lm in faces.items():
            if clip.visible[f][name] < 0.5:
                continue
            g = alignment_from_landmarks(lm)
            best = None
            if hi > lo:
                d = np.hypot(table.params[lo:hi, 0] - g.cx, table.params[lo:hi, 1] - g.cy)
                if d.min() < 0.25 * g.size:
                    best = lo + int(d.argmin())
            out.setdefault(name, []).append((f, best))
    return out


def second_diff(c: np.ndarray, t: np.ndarray) -> np.ndarray:
    """|second difference| of positions c (T, 2) per frame, time-aware (so VFR sampling of a
    smooth path is not counted as jitter), in pixels per mean frame step squared."""
    if len(c) < 3:
        return np.zeros(0)
    dt = np.diff(t)
    v = np.diff(c, axis=0) / dt[:, None]
    acc = 2 * np.diff(v, axis=0) / (t[2:] - t[:-2])[:, None]
    return np.hypot(*acc.T) * np.mean(dt) ** 2


def evaluate(clip: tc.Clip, raw, smoothed, truth=None) -> dict:
    """Errors, jitter terms, id switches and coverage of one clip; `truth(frame, name)` gives the
    true (cx, cy, ...) of a face (default: the alignment of its true 68 landmarks)."""
    truth = truth or (lambda f, name: alignment_from_landmarks(clip.truth[f][name]).as_array())
    err, err_raw, jit_s, jit_r, noise_s, noise_r, switches, seen, total = [], [], [], [], [], [], 0, 0, 0
    for name, pairs in match(clip, raw).items():
        # A new id after a true scene cut is by design (cuts reset tracks), not a switch.
        ids = [(int(np.searchsorted(clip.cuts, f, side="right")), int(raw.track_id[r])) for f, r in pairs if r is not None]
        switches += sum(a[0] == b[0] and a[1] != b[1] for a, b in zip(ids[:-1], ids[1:]))
        seen, total = seen + len(ids), total + len(pairs)
        run: list[tuple[int, int]] = []
        for f, r in pairs + [(-1, None)]:
            if r is not None and (not run or (f == run[-1][0] + 1 and raw.track_id[r] == raw.track_id[run[-1][1]])):
                run.append((f, r))
                continue
            if len(run) > 2:
                rows = [r for _, r in run]
                true = np.array([truth(f, name)[:2] for f, _ in run])
                iod = np.array([np.linalg.norm(clip.truth[f][name][RIGHT_EYE].mean(0) - clip.truth[f][name][LEFT_EYE].mean(0))
                                for f, _ in run])
                cs, cr = smoothed.params[rows, :2], raw.params[rows, :2]
                err += list(np.hypot(*(cs - true).T) / iod)
                err_raw += list(np.hypot(*(cr - true).T) / iod)
                t = raw.time_s[rows]
                jit_s += list(second_diff(cs, t))
                jit_r += list(second_diff(cr, t))
                noise_s += list(second_diff(cs - true, t))
                noise_r += list(second_diff(cr - true, t))
            run = [(f, r)] if r is not None else []
    return dict(err=err, err_raw=err_raw, jit_s=jit_s, jit_r=jit_r, noise_s=noise_s, noise_r=noise_r,
                switches=switches, seen=seen, total=total)


def quality(res: dict[str, dict]) -> dict:
    """The printed quality figures of `evaluate`'s results per clip."""
    cat = lambda k: np.concatenate([np.asarray(r[k], float) for r in res.values()])
    return {
        "align_err_median": round(float(np.median(cat("err"))), 4), "align_err_p95": round(float(np.percentile(cat("err"), 95)), 4),
        "align_err_raw_median": round(float(np.median(cat("err_raw"))), 4),
        "align_err_raw_p95": round(float(np.percentile(cat("err_raw"), 95)), 4),
        "align_err_median_per_clip": {k: round(float(np.median(r["err"])), 4) for k, r in res.items()},
        "jitter_ratio": round(float(cat("jit_s").mean() / cat("jit_r").mean()), 3),
        "noise_jitter_ratio": round(float(cat("noise_s").mean() / cat("noise_r").mean()), 3),
        "jitter_ratio_per_clip": {k: round(float(np.mean(r["jit_s"]) / np.mean(r["jit_r"])), 3) for k, r in res.items()},
        "id_switches": {k: r["switches"] for k, r in res.items()},
        "face_frames_fraction": {k: round(r["seen"] / max(r["total"], 1), 3) for k, r in res.items()},
    }


def costs(frames, every: TrackConfig, cfg: TrackConfig, repeat: int = 3) -> dict[str, float]:
    """Best-of-`repeat` CPU ms per frame (CPU time: the machine is shared) of detecting every
    frame (the tracker with `every`), tracking (`cfg`) and the bare baseline (the grey frame, the
    same detector at the same downscale, dlib's 68 landmarks in each box; no ids, cuts or checks).
    The variants take turns within each round, so a load change on the machine hits them alike."""
    from ganivid.faces import DlibDetector

    det = DlibDetector(cfg.upsample, cfg.cnn, cfg.detect_side)
    frames = list(frames)

    def bare():
        for _, _, img in frames:
            grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
            for box, _ in det.boxes(grey):
                det.landmarks(grey, box)

    runs = {"detect_every_frame": lambda: analyse(frames, every), "tracking": lambda: analyse(frames, cfg),
            "bare_detect_every_frame": bare}
    best = dict.fromkeys(runs, np.inf)
    for _ in range(repeat):
        for name, run in runs.items():
            t0 = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - t0)
    return {name: 1000 * b / len(frames) for name, b in best.items()}


def grid_clips(n: int = 4) -> list[tuple[int, float, np.ndarray]]:
    """Frames of a few real talking-face clips (GRID corpus, CC BY 4.0) if ../shared has them,
    chained into one stream with a cut between clips; else an empty list."""
    import glob
    import os

    import av

    root = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "videos", "grid")
    out: list[tuple[int, float, np.ndarray]] = []
    for path in sorted(glob.glob(os.path.join(root, "*.mpg")))[:n]:
        t0, first = (out[-1][1] + 0.04 if out else 0.0), None
        with av.open(path) as src:
            for f in src.decode(video=0):
                first = f.time if first is None else first
                out.append((len(out), t0 + float(f.time - first), f.to_ndarray(format="rgb24")))
    return out


def synthetic_clips(a, g, fps: float) -> dict:
    """The five clips with known trajectories, of the astronaut's (a) and Hopper's (g) sprites."""
    return {"moving": tc.moving_clip(a, fps=fps), "moving_vfr": tc.moving_clip(g, fps=fps, vfr=True),
            "crossing": tc.crossing_clip(a, g, fps=fps), "reentry": tc.reentry_clip(g, fps=fps),
            "cut": tc.cut_clip(a, fps=fps)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--every", type=int, default=TrackConfig().detect_every)
    ap.add_argument("--quick", action="store_true", help="cost of the synthetic clips only")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # CPU time of one thread: comparable between runs on a shared machine
    astronaut, hopper = portraits()
    a, g = tc.sprite(astronaut), tc.sprite(hopper)
    clips = synthetic_clips(a, g, args.fps)
    cfg = TrackConfig(detect_every=args.every)
    res = {}
    for name, clip in clips.items():
        raw = analyse(clip, cfg)
        res[name] = evaluate(clip, raw, smooth(raw))
    # The baseline is the same tracker with the detector on every frame (no stretch, no skip); the
    # bare baseline skips everything but the detector and one landmark fit per box.
    every = TrackConfig(detect_every=1, sure_stretch=1, skip_unchanged=False)
    speed, per_clip = {}, {}
    load0 = os.getloadavg()[0]
    # Best of 5 rounds for the 320x240 clips (every variant alike): the landmark model reads
    # ~4 MB per fit, so it slows more than the detector when other jobs share the memory.
    for name, frames, repeat in [("synthetic_clips_320x240", None, 5),
                                 ("moving_75_frames_320x240", tc.moving_clip(a, n_frames=75, fps=args.fps), 5),
                                 ("moving_30_frames_1280x720", tc.moving_clip(a, n_frames=30, size=(1280, 720), fps=args.fps), 2),
                                 ("grid_360x288", grid_clips(), 1)]:
        if name == "synthetic_clips_320x240":
            per_clip = {k: costs(c, every, cfg, repeat) for k, c in clips.items()}
            got = {key: np.mean([v[key] for v in per_clip.values()]) for key in per_clip["moving"]}
        elif frames and not args.quick:
            got = costs(frames, every, cfg, repeat)
        else:
            continue  # the GRID clips are only on the development machine
        c1, ck, c0 = got["detect_every_frame"], got["tracking"], got["bare_detect_every_frame"]
        speed[name] = {"detect_every_frame": round(float(c1), 2), "bare_detect_every_frame": round(float(c0), 2),
                       "tracking": round(float(ck), 2), "speedup": round(float(c1 / ck), 2),
                       "speedup_vs_bare": round(float(c0 / ck), 2)}
    out = {
        "benchmark": "tracking", "clips": {k: len(c.frames) for k, c in clips.items()}, "detect_every": args.every,
        **quality(res),
        "cpu_ms_per_frame": speed,
        "cpu_ms_per_frame_per_clip": {k: {n: round(float(v[n]), 2) for n in ("detect_every_frame", "tracking")}
                                      for k, v in per_clip.items()},
        "load_avg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
