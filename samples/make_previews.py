"""Make the README's pictures with the shipped model, through the real CLI:

    samples/preview_frames.png       ganivid preview frames samples/hopper.mp4 --au-curve samples/smile.json
    samples/preview_grid.png         ganivid preview grid samples/hopper.mp4 --at 2.6s (the paper's Fig. 4)
    samples/heldout_grid.png         ganivid preview grid PORTRAIT (Fig. 4 on a held-out portrait)
    samples/hopper_interpolate.png   ganivid preview interpolate hopper.png --expression smile (the paper's Fig. 1)
    samples/hopper_smile.png         frame 65 of the sample clip, before | after the first command
    samples/still_smile.gif          ganivid animate hopper.png --au-curve samples/smile.json (a 256 px GIF)

PORTRAIT is the held-out congressional portrait (public domain, ../shared/data/portraits, never
trained on: benchmarks/edit_quality.py's hold-out rule) with the largest face; its picture is
skipped where that data is absent. hopper.png is matplotlib's Grace Hopper portrait (U.S. Navy,
public domain), the sample clip's source, cut to head and shoulders; no model saw it in training. Run from the repository root:
`python samples/make_previews.py [--model PATH] [--out DIR]`.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PORTRAITS = ROOT.parent / "shared" / "data" / "portraits"


def run(*args: str) -> None:
    """One `ganivid` command in a fresh process, echoed."""
    print("ganivid", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "ganivid", *args], check=True)


def held_out_portrait() -> Path | None:
    """The held-out portrait with the largest face (edit_quality's hold-out rule), if the data is here."""
    if not PORTRAITS.is_dir():
        return None
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from edit_quality import portraits_holdout

    from ganivid.errors import NoFaceError
    from ganivid.images import read_image
    from ganivid.still import find_faces

    best = (0.0, None)
    for p in portraits_holdout(PORTRAITS):
        try:
            lm = find_faces(read_image(p))[0].landmarks
        except NoFaceError:
            continue
        best = max(best, (float(np.linalg.norm(lm[42:48].mean(0) - lm[36:42].mean(0))), p), key=lambda b: b[0])
    return best[1]


def before_after(video: Path, edited: Path, index: int, path: Path) -> None:
    """Frame `index` of the input and of the edited clip side by side."""
    from PIL import Image

    from ganivid.video import read_frames

    pair = [next(f.image for f in read_frames(v) if f.index == index) for v in (video, edited)]
    Image.fromarray(np.concatenate(pair, axis=1)).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "ganivid.safetensors"))
    ap.add_argument("--out", type=Path, default=ROOT / "samples")
    args = ap.parse_args()
    import matplotlib.cbook as cbook
    from PIL import Image

    video, curve, out, model = ROOT / "samples" / "hopper.mp4", ROOT / "samples" / "smile.json", args.out, args.model
    run("preview", "frames", str(video), "--au-curve", str(curve), "--at", "0.5s,2.6s,#110",
        "-o", str(out / "preview_frames.png"), "--model", model)
    run("preview", "grid", str(video), "--at", "2.6s", "-o", str(out / "preview_grid.png"), "--model", model)
    portrait = held_out_portrait()
    if portrait is None:
        print(f"no held-out portraits in {PORTRAITS}: heldout_*.png not made")
    else:
        run("preview", "grid", str(portrait), "-o", str(out / "heldout_grid.png"), "--model", model)
    with tempfile.TemporaryDirectory() as tmp:
        edited = Path(tmp) / "hopper_smile.mp4"
        run("animate", str(video), "--au-curve", str(curve), "-o", str(edited), "--model", model, "-q")
        before_after(video, edited, 65, out / "hopper_smile.png")
        photo = Path(tmp) / "hopper.png"
        with cbook.get_sample_data("grace_hopper.jpg") as f:
            Image.open(f).convert("RGB").crop((106, 40, 406, 340)).save(photo)  # head and shoulders
        run("preview", "interpolate", str(photo), "--expression", "smile", "--steps", "6",
            "-o", str(out / "hopper_interpolate.png"), "--model", model)
        run("animate", str(photo), "--au-curve", str(curve), "--fps", "12", "--max-side", "256",
            "-o", str(out / "still_smile.gif"), "--model", model, "-y", "-q")
    for name in ("preview_frames.png", "preview_frames_curves.png", "preview_grid.png", "heldout_grid.png",
                 "hopper_interpolate.png", "hopper_smile.png", "still_smile.gif"):
        if (out / name).is_file():
            print(f"{name}: {(out / name).stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
