"""Alignment from MediaPipe's 478-point mesh (Apache-2.0) vs today's dlib tracker, on the clips
and metrics of benchmarks/tracking.py. A report only: the tracker is not switched.

The mesh variant keeps the tracker's rows (same frames, ids, cuts) and replaces each row's
alignment: a track's mesh is read in the ROI of its previous frame's mesh, as MediaPipe tracks
video (`roi_from_points` on the mesh, eye corners 33 -> 263), seeded from the tracker's
alignment at the track's first frame, after a gap or cut, and when the mesh's presence drops
below 0.5. The alignment is `align.alignment_from_landmarks`'s formula on the mesh's eye
corners (33/133, 362/263) and mouth corners (61/291), corrected by one constant offset (centre
along/across the face, log size, angle) that makes its mean crop on London stills dlib's;
then the same gap interpolation and smoothing as the tracker's rows.

Errors are measured twice: against the benchmark's truth (dlib's alignment of the still
portrait under the known transform; the mesh's per-face disagreement with dlib counts as error)
and against the mesh's own truth (the mesh alignment of the still under the same transform:
the tracking error alone). Also size (|log ratio|) and angle (degrees) errors, the mesh vs dlib
disagreement on the two stills, jitter on real GRID clips (no truth: second differences in face
scales, crop side / 3.2), and CPU ms per frame: the tracker, and the mesh step on top of it
(best of a few rounds, the variants taking turns).

    python benchmarks/mesh_tracking.py [--fps 25] [--every 15]   # one JSON line
    python benchmarks/mesh_tracking.py --calibrate               # the offset, from ../shared London
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from tracking import evaluate, grid_clips, match, portraits, quality, second_diff, synthetic_clips  # noqa: E402

from ganivid import testclips as tc  # noqa: E402
from ganivid.align import CROP_SIDE, LEFT_EYE, RIGHT_EYE, Alignment, alignment_from_landmarks  # noqa: E402
from ganivid.mesh import roi_from_alignment, roi_from_points, shared_reader  # noqa: E402
from ganivid.smoothing import smooth  # noqa: E402
from ganivid.tracking import TrackConfig, analyse, interpolate_gaps  # noqa: E402
from ganivid.tracktable import STATES, TrackRow, TrackTable  # noqa: E402

EYE_L, EYE_R, MOUTH_LR = (33, 133), (362, 263), (61, 291)  # image-left eye, image-right eye, mouth corners
PRESENCE = 0.5  # MediaPipe's default min_tracking_confidence: below it a track is re-detected
# dlib's alignment relative to the raw mesh alignment: centre along the eye line and down the
# face (crop sides), log size ratio, angle (degrees); means over 184 London stills (--calibrate;
# spread per face 0.0022, 0.0031, 0.011, 0.38 deg: the raw formula already frames as dlib's).
OFFSET = (0.0002, 0.0025, 0.0353, 0.1152)


def raw_alignment(mesh: np.ndarray) -> Alignment:
    """align's formula on the mesh: 68-point stand-ins whose eye means are the eye-corner
    midpoints and whose mouth corners (48, 54) are the mesh's (the formula reads only these)."""
    pts = np.zeros((68, 2))
    pts[LEFT_EYE], pts[RIGHT_EYE] = mesh[list(EYE_L), :2].mean(0), mesh[list(EYE_R), :2].mean(0)
    pts[48], pts[54] = mesh[MOUTH_LR[0], :2], mesh[MOUTH_LR[1], :2]
    return alignment_from_landmarks(pts)


def _axes(al: Alignment) -> np.ndarray:
    """The face's axes in the image (rows: along the eye line, down the face)."""
    a = np.radians(al.angle)
    return np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])


def offset_of(raw: Alignment, target: Alignment) -> np.ndarray:
    """The offset (as OFFSET) that takes `raw` to `target`."""
    d = _axes(raw) @ (np.array([target.cx, target.cy]) - [raw.cx, raw.cy]) / raw.size
    return np.array([d[0], d[1], np.log(target.size / raw.size), (target.angle - raw.angle + 180) % 360 - 180])


def mesh_alignment(mesh: np.ndarray, offset=OFFSET) -> Alignment:
    """The calibrated alignment of a mesh (478, 2+) in image pixels."""
    raw = raw_alignment(mesh)
    c = np.array([raw.cx, raw.cy]) + raw.size * (_axes(raw).T @ np.asarray(offset[:2]))
    return Alignment(float(c[0]), float(c[1]), raw.size * float(np.exp(offset[2])), raw.angle + offset[3])


def still_mesh(reader, img: np.ndarray, al: Alignment, rounds: int = 6, keep: int = 4) -> np.ndarray:
    """The mesh of a still at MediaPipe's converged ROI: refined from its own mesh `rounds`
    times from `al`'s ROI, the last `keep` readings averaged (the fixed point wobbles ~0.5 px)."""
    roi, out = roi_from_alignment(al), []
    for _ in range(rounds):
        mesh, _ = reader.mesh(img, roi)
        out.append(mesh)
        roi = roi_from_points(mesh[:, :2], mesh[33, :2], mesh[263, :2])
    return np.mean(out[-keep:], 0)


def calibrate(reader, root: Path) -> dict:
    """Mean and spread of offset_of(mesh, dlib) over the London stills (neutral and smiling)."""
    from ganivid.faces import DlibDetector
    from ganivid.images import read_image

    det, offs = DlibDetector(), []
    for p in sorted(root.glob("*/*.jpg")):
        img = read_image(p)
        found = det.detect(img)
        if found:
            al = alignment_from_landmarks(found[0].landmarks)
            offs.append(offset_of(raw_alignment(still_mesh(reader, img, al)), al))
    offs = np.array(offs)
    return {"faces": len(offs), "offset_mean": [round(float(v), 4) for v in offs.mean(0)],
            "offset_std": [round(float(v), 4) for v in offs.std(0)]}


def follow(frames, table: TrackTable, reader, offset=OFFSET) -> tuple[TrackTable, int]:
    """The tracker's rows with mesh alignments (see the module's doc), gaps interpolated as the
    tracker does, and how many times a mesh was seeded from the tracker's alignment."""
    rows, prev, seeds = [], {}, 0  # prev: track id -> (clip position, ROI for the next frame)
    cuts = set(table.cuts.tolist())
    for pos, (index, t, img) in enumerate(frames):
        if index in cuts:
            prev.clear()  # a cut ends every track, as in the tracker
        lo, hi = np.searchsorted(table.frame, [index, index + 1])
        for r in range(lo, hi):
            tid, al = int(table.track_id[r]), Alignment(*map(float, table.params[r]))
            last = prev.pop(tid, None)
            tried = [last[1]] if last and last[0] == pos - 1 else []
            for roi in tried + [None]:
                seeds += roi is None
                mesh, presence = reader.mesh(img, roi or roi_from_alignment(al))
                if presence >= PRESENCE:
                    break
            if presence < PRESENCE:
                continue  # no face read: the row is dropped (and may be interpolated)
            prev[tid] = (pos, roi_from_points(mesh[:, :2], mesh[33, :2], mesh[263, :2]))
            rows.append(TrackRow(index, t, tid, mesh_alignment(mesh, offset), STATES[table.state[r]],
                                 np.zeros((68, 2), np.float32)))
    out = TrackTable.from_rows(rows, frames=table.frames, times=table.times, cuts=table.cuts,
                               image_size=table.image_size)
    return interpolate_gaps(out, TrackConfig().max_gap), seeds


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares similarity (2x3) taking points src to dst, and its rms residual."""
    a = np.zeros((2 * len(src), 4))
    a[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(len(src)), np.zeros(len(src))])
    a[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(len(src)), np.ones(len(src))])
    (p, q, tx, ty), *_ = np.linalg.lstsq(a, dst.reshape(-1).astype(np.float64), rcond=None)
    m = np.array([[p, -q, tx], [q, p, ty]])
    return m, float(np.sqrt(np.mean((src @ m[:, :2].T + m[:, 2] - dst) ** 2)))


def mesh_truth(clip: tc.Clip, sprites: list[tc.Sprite], meshes: list[np.ndarray], offset=OFFSET):
    """truth(frame, name) for `evaluate`: the calibrated mesh alignment of the still, moved by
    the clip's known transform (found from the still's landmarks to the frame's true ones)."""
    def truth(f: int, name: str) -> np.ndarray:
        lm = clip.truth[f][name].astype(np.float64)
        fits = [similarity(s.landmarks.astype(np.float64), lm) for s in sprites]
        k = int(np.argmin([res for _, res in fits]))  # the sprite this face is made of
        m = fits[k][0]
        return mesh_alignment(meshes[k][:, :2] @ m[:, :2].T + m[:, 2], offset).as_array()
    return truth


def size_angle(clip: tc.Clip, raw: TrackTable, smoothed: TrackTable, truth) -> tuple[list, list]:
    """|log size ratio| and |angle error| (degrees) of the smoothed rows matched to true faces."""
    ds, da = [], []
    for name, pairs in match(clip, raw).items():
        for f, r in pairs:
            if r is not None:
                g = truth(f, name)
                ds.append(abs(np.log(smoothed.params[r, 2] / g[2])))
                da.append(abs((smoothed.params[r, 3] - g[3] + 180) % 360 - 180))
    return ds, da


def apart(a: TrackTable, b: TrackTable) -> float:
    """Median distance between the centres of the rows two tables share (frame and id), in face
    scales (crop side / 3.2)."""
    ka, kb = a.frame * 1000 + a.track_id, b.frame * 1000 + b.track_id
    _, ia, ib = np.intersect1d(ka, kb, return_indices=True)
    d = np.hypot(*(a.params[ia, :2] - b.params[ib, :2]).T) / (a.params[ia, 2] / CROP_SIDE)
    return round(float(np.median(d)), 4)


def jitter(table: TrackTable) -> float:
    """Mean |second difference| of each track's centre, over its face scale (crop side / 3.2)."""
    out = []
    for tid in table.track_ids():
        idx = np.flatnonzero(table.track_id == tid)
        out += list(second_diff(table.params[idx, :2], table.time_s[idx]) / (table.params[idx, 2].mean() / CROP_SIDE))
    return round(float(np.mean(out)), 5)


def costs(frames, cfg: TrackConfig, reader, repeat: int) -> dict[str, float]:
    """Best-of-`repeat` CPU ms per frame of the tracker and of the mesh step given its rows."""
    frames = list(frames)
    table = analyse(frames, cfg)
    runs = {"tracking": lambda: analyse(frames, cfg), "mesh_step": lambda: follow(frames, table, reader)}
    best = dict.fromkeys(runs, np.inf)
    for _ in range(repeat):
        for name, run in runs.items():
            t0 = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - t0)
    ms = {name: round(1000 * b / len(frames), 2) for name, b in best.items()}
    return ms | {"mesh_step_per_face": round(1000 * best["mesh_step"] / max(len(table), 1), 2),
                 "tracking_plus_mesh": round(ms["tracking"] + ms["mesh_step"], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--every", type=int, default=TrackConfig().detect_every)
    ap.add_argument("--calibrate", action="store_true", help="print the offset measured on the London stills")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # CPU time of one thread: comparable between runs on a shared machine
    reader = shared_reader()
    if args.calibrate:
        print(json.dumps(calibrate(reader, REPO.parent / "shared" / "data" / "london")))
        return
    sprites = [tc.sprite(p) for p in portraits()]
    a, g = sprites
    meshes = [still_mesh(reader, s.image, s.alignment) for s in sprites]
    clips = synthetic_clips(a, g, args.fps)
    cfg = TrackConfig(detect_every=args.every)
    res = {"dlib": {}, "mesh": {}, "mesh_own_truth": {}}
    sa = {k: ([], []) for k in res}
    seeds, mesh_rows, between = 0, 0, {}
    for name, clip in clips.items():
        dlib_raw = analyse(clip, cfg)
        mesh_raw, n = follow(clip, dlib_raw, reader)
        seeds, mesh_rows = seeds + n, mesh_rows + len(mesh_raw)
        between[name] = apart(smooth(dlib_raw), smooth(mesh_raw))
        own = mesh_truth(clip, sprites, meshes)
        for key, raw, truth in (("dlib", dlib_raw, None), ("mesh", mesh_raw, None), ("mesh_own_truth", mesh_raw, own)):
            sm = smooth(raw)
            res[key][name] = evaluate(clip, raw, sm, truth)
            truth = truth or (lambda f, nm, c=clip: alignment_from_landmarks(c.truth[f][nm]).as_array())
            for acc, v in zip(sa[key], size_angle(clip, raw, sm, truth)):
                acc += v
    out = {"benchmark": "mesh_tracking", "clips": {k: len(c.frames) for k, c in clips.items()},
           "detect_every": args.every, "offset": list(OFFSET)}
    # How far the calibrated mesh crop of each test still is from dlib's (centre in inter-ocular
    # distances, |log size|, degrees): the floor of the mesh's error against dlib's truth.
    for nm, s, m in zip(("astronaut", "grace_hopper"), sprites, meshes):
        got, want = mesh_alignment(m), s.alignment
        iod = np.linalg.norm(s.landmarks[RIGHT_EYE].mean(0) - s.landmarks[LEFT_EYE].mean(0))
        out.setdefault("still_mesh_vs_dlib", {})[nm] = [
            round(float(np.hypot(got.cx - want.cx, got.cy - want.cy) / iod), 4),
            round(float(abs(np.log(got.size / want.size))), 4), round(float(got.angle - want.angle), 2)]
    for key, r in res.items():
        # Absolute jitter (mean |second difference|, px per frame step squared): the ratios above
        # divide by each variant's own unsmoothed jitter, so they do not compare variants.
        cat = {k: float(np.mean(np.concatenate([np.asarray(v[k], float) for v in r.values()])))
               for k in ("jit_s", "jit_r", "noise_s", "noise_r")}
        out[key] = quality(r) | {
            "size_err_median": round(float(np.median(sa[key][0])), 4),
            "angle_err_median_deg": round(float(np.median(sa[key][1])), 3),
            "jitter_px": round(cat["jit_s"], 4), "jitter_raw_px": round(cat["jit_r"], 4),
            "noise_jitter_px": round(cat["noise_s"], 4), "noise_jitter_raw_px": round(cat["noise_r"], 4)}
    out["mesh_seeds"], out["mesh_rows"] = seeds, mesh_rows
    out["dlib_vs_mesh_centre_median_per_clip"] = between  # smoothed, in face scales
    grid = grid_clips()
    if grid:
        t = analyse(grid, cfg)
        m, _ = follow(grid, t, reader)
        out["grid_jitter_per_face_scale"] = {"dlib": {"raw": jitter(t), "smoothed": jitter(smooth(t))},
                                             "mesh": {"raw": jitter(m), "smoothed": jitter(smooth(m))}}
    load0 = os.getloadavg()[0]
    speed = {"synthetic_clips_320x240": {}}
    per = [costs(c, cfg, reader, 5) for c in clips.values()]
    speed["synthetic_clips_320x240"] = {k: round(float(np.mean([p[k] for p in per])), 2) for k in per[0]}
    speed["moving_30_frames_1280x720"] = costs(tc.moving_clip(a, n_frames=30, size=(1280, 720), fps=args.fps),
                                               cfg, reader, 2)
    if grid:
        speed["grid_360x288"] = costs(grid, cfg, reader, 1)
    out["cpu_ms_per_frame"] = speed
    out["load_avg_1min"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
