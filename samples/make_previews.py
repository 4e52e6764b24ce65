"""Make the README's preview pictures with the shipped model, through the real CLI:

    samples/preview_grid.png         ganivid preview grid samples/astronaut.mp4 --at 1s
    samples/preview_interpolate.png  ganivid preview interpolate samples/astronaut.mp4 --at 1s --expression surprise --masks
    samples/preview_frames.png       ganivid preview frames samples/astronaut.mp4 --au-curve samples/smile.json
    samples/still_smile.gif          ganivid animate astronaut.png --au-curve samples/smile.json (a 256 px GIF)

The photo is scikit-image's `astronaut` (Eileen Collins, NASA, public domain), cut to head and
shoulders. Run from the
repository root: `python samples/make_previews.py [--model PATH] [--out DIR]`.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> None:
    """One `ganivid` command in a fresh process, echoed."""
    print("ganivid", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "ganivid", *args], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "ganivid.safetensors"))
    ap.add_argument("--out", type=Path, default=ROOT / "samples")
    args = ap.parse_args()
    from PIL import Image
    from skimage import data

    video, curve, out, model = ROOT / "samples" / "astronaut.mp4", ROOT / "samples" / "smile.json", args.out, args.model
    run("preview", "grid", str(video), "--at", "1s", "-o", str(out / "preview_grid.png"), "--model", model)
    run("preview", "interpolate", str(video), "--at", "1s", "--expression", "surprise", "--steps", "6", "--masks",
        "-o", str(out / "preview_interpolate.png"), "--model", model)
    run("preview", "frames", str(video), "--au-curve", str(curve), "--at", "0.5s,2.5s,#90",
        "-o", str(out / "preview_frames.png"), "--model", model)
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "astronaut.png"
        Image.fromarray(data.astronaut()[10:330, 60:380]).save(photo)  # head and shoulders: a big face at 256 px
        run("animate", str(photo), "--au-curve", str(curve), "--fps", "12", "--max-side", "256",
            "-o", str(out / "still_smile.gif"), "--model", model, "-y", "-q")
    for name in ("preview_grid.png", "preview_interpolate.png", "preview_frames.png", "preview_frames_curves.png",
                 "still_smile.gif"):
        print(f"{name}: {(out / name).stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
