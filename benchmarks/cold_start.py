"""Wall time of a whole `ganivid animate` command in a fresh process, as a user runs it (imports,
model loading, both passes, writing), against another git revision; prints one JSON line.

The revision (and `--against`, else the working tree) is exported to a temporary folder and put
first on PYTHONPATH; the two run alternately (A, B, B, A, ...) on the same clip and curve, each
in its own process, and the ratio is taken pair by pair (this VM's speed drifts from minute to
minute). Each run starts without a cached track table (a cold start), or with `--again` as a
user trying a second curve does: the same clip rendered before under another name in the same
folder (its cached table there). The outputs of the two are compared byte for byte.

    python benchmarks/cold_start.py REV [--against REV2] [--again] [--pairs 8] [--clip C] [--curve F]
"""
from __future__ import annotations

import argparse
import filecmp
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def export(rev: str, dest: Path) -> str:
    """`rev`'s tree into `dest`; its short hash."""
    short = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True, text=True,
                           check=True).stdout.strip()
    dest.mkdir(parents=True)
    archive = dest / "rev.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), rev], check=True)
    with tarfile.open(archive) as t:
        t.extractall(dest, filter="data")
    return short


def run(tree: Path, clip: Path, curve: Path, out: Path) -> float:
    """Seconds of one `python -m ganivid animate` with the package from `tree`, writing `out`
    without a track table of its own to reuse (tables of other outputs beside it stay)."""
    for old in out.parent.glob(f".{out.name}.*.tracks.npz"):
        old.unlink()
    out.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=str(tree))
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "ganivid", "animate", str(clip), "--au-curve", str(curve), "-o", str(out),
                        "-q"], env=env, cwd=tree, capture_output=True, text=True, check=False)
    if p.returncode:
        raise SystemExit(p.stderr)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rev", help="the revision to compare with")
    ap.add_argument("--against", help="the other revision (default: the working tree)")
    ap.add_argument("--again", action="store_true", help="the clip was rendered before under another name")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--clip", type=Path, default=ROOT / "samples" / "astronaut.mp4")
    ap.add_argument("--curve", type=Path, default=ROOT / "samples" / "smile.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ganivid-cold-") as tmp:
        work = Path(tmp)
        names = {"a": export(args.rev, work / "a"), "b": export(args.against, work / "b") if args.against else "tree"}
        trees = {"a": work / "a", "b": work / "b" if args.against else ROOT}
        outs = {}
        for k in trees:
            (work / f"out-{k}").mkdir()
            outs[k] = work / f"out-{k}" / "second.mp4"
            if args.again:
                run(trees[k], args.clip, args.curve, work / f"out-{k}" / "first.mp4")
        times: dict[str, list[float]] = {k: [] for k in trees}
        for i in range(args.pairs):
            for k in (("a", "b") if i % 2 == 0 else ("b", "a")):
                times[k].append(run(trees[k], args.clip, args.curve, outs[k]))
        same = filecmp.cmp(outs["a"], outs["b"], shallow=False)
    ratios = [b / a for a, b in zip(times["a"], times["b"])]
    clip = args.clip.resolve()
    print(json.dumps({
        "benchmark": "cold_start", "a": names["a"], "b": names["b"], "again": args.again,
        "clip": str(clip.relative_to(ROOT) if clip.is_relative_to(ROOT) else clip), "pairs": args.pairs,
        "a_s_median": round(statistics.median(times["a"]), 2), "b_s_median": round(statistics.median(times["b"]), 2),
        "b_over_a_median": round(statistics.median(ratios), 3), "ratios": [round(r, 3) for r in ratios],
        "a_s": [round(t, 2) for t in times["a"]], "b_s": [round(t, 2) for t in times["b"]], "outputs_identical": same}))


if __name__ == "__main__":
    main()
