"""A/B of `animate`'s passes between a git revision and the working tree, inside one process;
prints one JSON line.

`ab_revisions.py` runs each revision in processes of its own; on this VM the speed of a fresh
process moves by 10-30 % from one to the next, more than the changes it has to judge. Here the
revision's `ganivid` is exported as a package of another name (`ganivid_rev`) and both run in
the same process, alternating A, B, B, A, ... on the same generated 10 s 640x360 clip (each
after one unmeasured run), and the ratios are taken pair by pair. The generator is
animate_speed.py's zero-cost one (the pipeline without the generator) unless `--generator real`.
Reports medians of each pass's wall and CPU ms per frame, and of the per-pair ratios.

    python benchmarks/ab_inprocess.py REV [--pairs 10] [--generator null|real] [--reuse-analysis]
"""
from __future__ import annotations

import argparse
import importlib
import io
import json
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def export(rev: str, dest: Path) -> str:
    """`ganivid` of `rev` as the package `ganivid_rev` under `dest`; its module name."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "ganivid"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    pkg = dest / "ganivid_rev"
    (dest / "ganivid").rename(pkg)
    for f in pkg.rglob("*.py"):
        f.write_text(re.sub(r"\bganivid\.", "ganivid_rev.", f.read_text()).replace("from ganivid import", "from ganivid_rev import"))
    return "ganivid_rev"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rev")
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--generator", choices=("null", "real"), default="null")
    ap.add_argument("--reuse-analysis", action="store_true", help="time the render pass alone (cached track table)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from animate_speed import NullGenerator, make_clip

    with tempfile.TemporaryDirectory(prefix="ganivid-abin-") as tmp:
        work = Path(tmp)
        sys.path.insert(0, str(work))
        names = {"a": export(args.rev, work), "b": "ganivid"}
        clip = make_clip(work / "clip10.mp4", 10)
        model = str(ROOT / "models" / "ganivid.safetensors")
        runs = {}
        for side, name in names.items():
            # (the package's `animate` attribute is the function, which hides the module's name)
            animate = importlib.import_module(f"{name}.animate") and sys.modules[f"{name}.animate"].animate
            engine = importlib.import_module(f"{name}.engine").Engine
            real = engine.from_checkpoint(model, "cpu")
            runs[side] = (animate, real if args.generator == "real" else engine(NullGenerator(), real.image_size, "cpu"))
        res: dict[str, list[dict]] = {"a": [], "b": []}

        def once(side: str) -> dict:
            animate, engine = runs[side]
            r = animate(clip, work / f"out-{side}.mp4", expression="smile:0.8", model=engine, overwrite=True)
            if not args.reuse_analysis:
                r.track_cache.unlink(missing_ok=True)
            t, n = r.times, r.frames
            return {"fps": n / (t.analyse_wall + t.render_wall),
                    **{f"{k}_ms": 1000 * getattr(t, k) / n for k in ("analyse_wall", "analyse_cpu", "render_wall", "render_cpu")}}

        for side in names:
            once(side)  # first calls: imports, caches, page faults
        for i in range(args.pairs):
            for side in ("a", "b") if i % 2 == 0 else ("b", "a"):
                res[side].append(once(side))
    keys = list(res["a"][0])
    ratio = lambda k: round(statistics.median(b[k] / a[k] for a, b in zip(res["a"], res["b"])), 3)  # noqa: E731
    print(json.dumps({"benchmark": "ab_inprocess", "rev_a": args.rev, "rev_b": "working tree", "generator": args.generator,
                      "pairs": args.pairs, "analysis": "cached" if args.reuse_analysis else "redone each run",
                      **{side: {k: round(statistics.median(r[k] for r in res[side]), 3) for k in keys} for side in res},
                      "b_over_a": {k: ratio(k) for k in keys}}))


if __name__ == "__main__":
    main()
