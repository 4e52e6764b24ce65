"""Speed of `ganivid preview frames` for 3 frames of a generated 60 s 640x360 one-face clip;
prints one JSON line.

The clip (25 fps, x264 defaults: a keyframe every <= 250 frames) is made by
benchmarks/animate_speed.py's `make_clip`. Measured: wall and CPU seconds of the real command
in a fresh process (Python start, imports, model load, seeking, face analysis, generator,
sheet and plot), with torch on 2 threads; then, in this process, how many frames seeking
decoded out of the clip's 1500. Model: models/ganivid.safetensors if present, else a randomly
initialised generator of the `cpu` training preset (same speed as a trained one); the JSON
says which. The issue's bar: under 15 s on 2 CPU cores.

    python benchmarks/preview_speed.py [--workdir DIR] [--at 5s,#700,55s]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from animate_speed import make_clip, model_file  # noqa: E402  (the same clip and model choice)

SECONDS, LIMIT_S = 60.0, 15.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--at", default="5s,#700,55s", help="frames to preview (3 by default)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the measured command (2 cores)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ganivid-preview-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = work / "clip60.mp4"
    if not clip.is_file():
        make_clip(clip, SECONDS)
    model, how = model_file(work)
    curve = Path(__file__).resolve().parent.parent / "samples" / "smile.json"
    sheet = work / "sheet.png"
    for old in work.glob(".*.tracks.npz"):  # measure the path without animate's cache
        old.unlink()

    cmd = [sys.executable, "-m", "ganivid", "preview", "frames", str(clip), "--au-curve", str(curve),
           "--at", args.at, "-o", str(sheet), "--model", str(model), "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"preview failed: {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    from ganivid.previewframes import preview_frames
    from ganivid.video import probe

    t1 = time.perf_counter()
    r = preview_frames(clip, work / "sheet_lib.png", curve, at=args.at, model=model, device="cpu")
    lib = time.perf_counter() - t1
    total = probe(clip).frame_count
    print(json.dumps({
        "benchmark": "preview_speed", "clip": f"{SECONDS:g} s 640x360 25 fps one face", "frames_previewed": len(r.frames),
        "model": how, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "threads": args.threads,
        "library_call_s": round(lib, 2), "decoded_frames": r.decoded_frames, "clip_frames": total,
        "limit_s": LIMIT_S, "under_limit": wall < LIMIT_S, "load_avg_1min": round(os.getloadavg()[0], 2),
        "sheet": str(sheet)}))


if __name__ == "__main__":
    main()
