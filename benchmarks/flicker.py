"""Temporal flicker of `ganivid animate` under a constant edit; prints one JSON line.

On a generated 4 s 640x360 clip (the astronaut moving over a background, as in
animate_speed.py), animate with a constant `surprise:0.8` (she already smiles, so a smile
would change little), then measure, in the face's own coordinates (each frame cropped with
the smoothed alignment `animate` used, weighted by the paste-back feather mask), the mean
absolute change between consecutive frames: output over input. A plain re-encode of the
input gives the part that compression alone adds, and `edit_strength` (mean |output - plain
re-encode| in the same region) says how much the model changed the face at all: a model that
barely edits cannot flicker. Goal: ratio <= 1.2. Model as in animate_speed.py, or --model.

    python benchmarks/flicker.py [--workdir DIR] [--seconds 4] [--model CKPT] [--smooth-edits S]
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from animate_speed import make_clip, model_file  # noqa: E402  (sibling script, not a package)


def face_change(video: Path, rows: dict[int, tuple[float, float, float, float]], n: int) -> float:
    """Mean feather-weighted |crop_t - crop_{t-1}| over consecutive frames that both have a face."""
    from ganivid.align import Alignment, crop_face, feather_mask
    from ganivid.video import read_frames

    w = feather_mask(n)[..., None]
    prev, total, count = None, 0.0, 0
    for f in read_frames(video, upright=True):
        al = rows.get(f.index)
        crop = crop_face(f.image, Alignment(*al), n).astype(np.float32) if al else None
        if crop is not None and prev is not None and prev[0] == f.index - 1:
            total += float((np.abs(crop - prev[1]) * w).sum() / (w.sum() * 3))
            count += 1
        prev = (f.index, crop) if crop is not None else None
    return total / max(count, 1)


def edit_strength(a: Path, b: Path, rows: dict[int, tuple[float, float, float, float]], n: int) -> float:
    """Mean feather-weighted |crop_a - crop_b| over the edited frames: how much the edit changes."""
    from ganivid.align import Alignment, crop_face, feather_mask
    from ganivid.video import read_frames

    w = feather_mask(n)[..., None]
    diffs = [float((np.abs(crop_face(x.image, Alignment(*rows[x.index]), n).astype(np.float32)
                           - crop_face(y.image, Alignment(*rows[x.index]), n)) * w).sum() / (w.sum() * 3))
             for x, y in zip(read_frames(a, upright=True), read_frames(b, upright=True)) if x.index in rows]
    return float(np.mean(diffs)) if diffs else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--model", type=Path, help="any inference or training checkpoint (default: see animate_speed.py)")
    ap.add_argument("--smooth-edits", type=float, default=None, help="override animate's smooth_edits (s)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from ganivid.animate import animate
    from ganivid.video import probe, read_frames
    from ganivid.videowriter import VideoWriter

    work = args.workdir or Path(tempfile.mkdtemp(prefix="ganivid-flicker-"))
    work.mkdir(parents=True, exist_ok=True)
    model, how = (args.model, f"given: {args.model}") if args.model else model_file(work)
    clip = make_clip(work / "flicker.mp4", args.seconds)
    out, stats = work / "flicker-out.mp4", work / "flicker.csv"
    from ganivid.animate import SMOOTH_EDITS_S

    tau = SMOOTH_EDITS_S if args.smooth_edits is None else args.smooth_edits
    r = animate(clip, out, expression="surprise:0.8", model=model, stats=stats, overwrite=True, smooth_edits=tau)
    plain = work / "flicker-plain.mp4"
    with VideoWriter(plain, probe(clip), overwrite=True) as w:
        for f in read_frames(clip, yuv=w.takes_i420):  # as animate passes unedited pixels: as decoded
            w.write(f)
    with open(stats) as fh:
        rows = {int(row["frame"]): tuple(float(row[k]) for k in ("cx", "cy", "size", "angle"))
                for row in csv.DictReader(fh) if row["target_AU12"] != "nan"}
    n = 128
    src, edited, reenc = (face_change(v, rows, n) for v in (clip, out, plain))
    print(json.dumps({
        "benchmark": "flicker", "model": how, "clip": f"640x360 25 fps {args.seconds:g} s, one face moving",
        "edit": "constant --expression surprise:0.8", "smooth_edits_s": tau, "frames": r.frames, "edited_frames": r.edited_frames,
        "input_change": round(src, 3), "output_change": round(edited, 3), "plain_reencode_change": round(reenc, 3),
        "edit_strength": round(edit_strength(out, plain, rows, n), 3),
        "ratio": round(edited / src, 3), "plain_reencode_ratio": round(reenc / src, 3),
        "goal_met": edited / src <= 1.2,
    }))


if __name__ == "__main__":
    main()
