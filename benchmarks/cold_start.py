"""Wall time of a whole `ganivid animate` command in a fresh process, as a user runs it (imports,
model loading, both passes, writing), against another git revision; prints one JSON line.

The revision is exported to a temporary folder and put first on PYTHONPATH; the two run
alternately (A, B, B, A, ...) on the same clip and curve, each in its own process, and the
ratio is taken pair by pair (this VM's speed drifts from minute to minute). The outputs of the
two are compared byte for byte.

    python benchmarks/cold_start.py REV [--pairs 8] [--clip samples/astronaut.mp4] [--curve samples/smile.json]
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
    archive = dest / "rev.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), rev], check=True)
    with tarfile.open(archive) as t:
        t.extractall(dest / "tree", filter="data")
    return short


def run(tree: Path, clip: Path, curve: Path, out: Path) -> float:
    """Seconds of one `python -m ganivid animate` with the package from `tree`."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "ganivid", "animate", str(clip), "--au-curve", str(curve), "-o", str(out),
                        "-y", "-q"], env=env, cwd=tree, capture_output=True, text=True, check=False)
    if p.returncode:
        raise SystemExit(p.stderr)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rev", help="the revision to compare the working tree with")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--clip", type=Path, default=ROOT / "samples" / "astronaut.mp4")
    ap.add_argument("--curve", type=Path, default=ROOT / "samples" / "smile.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ganivid-cold-") as tmp:
        work = Path(tmp)
        short = export(args.rev, work)
        trees = {"rev": work / "tree", "tree": ROOT}
        outs = {k: work / f"{k}.mp4" for k in trees}
        times: dict[str, list[float]] = {k: [] for k in trees}
        for i in range(args.pairs):
            for k in (("rev", "tree") if i % 2 == 0 else ("tree", "rev")):
                times[k].append(run(trees[k], args.clip, args.curve, outs[k]))
        same = filecmp.cmp(outs["rev"], outs["tree"], shallow=False)
    ratios = [b / a for a, b in zip(times["rev"], times["tree"])]
    print(json.dumps({
        "benchmark": "cold_start", "rev": short, "clip": str(args.clip.relative_to(ROOT) if args.clip.is_relative_to(ROOT)
                                                               else args.clip),
        "pairs": args.pairs, "rev_s_median": round(statistics.median(times["rev"]), 2),
        "tree_s_median": round(statistics.median(times["tree"]), 2),
        "tree_over_rev_median": round(statistics.median(ratios), 3), "ratios": [round(r, 3) for r in ratios],
        "rev_s": [round(t, 2) for t in times["rev"]], "tree_s": [round(t, 2) for t in times["tree"]],
        "outputs_identical": same}))


if __name__ == "__main__":
    main()
