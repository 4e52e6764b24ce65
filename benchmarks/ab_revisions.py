"""A/B of `animate`'s speed between two git revisions of this repository; prints one JSON line.

Each revision is checked out in a temporary worktree, and `animate_speed.py --child` of that
revision runs on the same generated 10 s 640x360 clip, alternating A, B, B, A, ... in separate
processes (this VM's speed drifts between minutes, so neither side gets the faster minutes).
Reports the medians of the steady end-to-end fps (setup excluded, as animate_speed.py does),
the render pass's CPU ms per frame, and each run's fps. `--generator null` measures the pipeline
without the generator (animate_speed.py's zero-cost one), `real` with each revision's shipped model;
`--threads` sets torch's thread count (default 1; `ganivid animate` runs one per core).

    python benchmarks/ab_revisions.py REV_A REV_B [--generator null|real] [--runs 6] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(tree: Path, clip: Path, model: Path, generator: str, out: Path, threads: int) -> dict:
    """One `animate` run of the revision checked out at `tree`: its steady fps, and each pass's
    wall and CPU ms per frame."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    p = subprocess.run([sys.executable, str(tree / "benchmarks" / "animate_speed.py"), "--child", str(clip), str(out),
                        str(model), generator, str(threads)], capture_output=True, text=True, env=env, cwd=tree, check=False)
    if p.returncode:
        raise SystemExit(p.stderr)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    t = r["times"]
    per_frame = {f"{k}_ms": 1000 * t[k] / r["frames"] for k in ("analyse_wall", "analyse_cpu", "render_wall", "render_cpu")}
    return {"fps": r["frames"] / (t["analyse_wall"] + t["render_wall"]), **per_frame}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rev_a")
    ap.add_argument("rev_b")
    ap.add_argument("--generator", choices=("null", "real"), default="null")
    ap.add_argument("--runs", type=int, default=6, help="runs of each revision")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: the generator leaves a core to the other stages; "
                         "`ganivid animate` uses one per core)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from animate_speed import make_clip

    with tempfile.TemporaryDirectory(prefix="ganivid-ab-") as tmp:
        work = Path(tmp)
        trees = {}
        for name, rev in (("a", args.rev_a), ("b", args.rev_b)):
            trees[name] = work / name
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(trees[name]), rev], check=True)
        try:
            clip = make_clip(work / "clip10.mp4", 10)
            runs: dict[str, list[dict]] = {"a": [], "b": []}
            for i in range(args.runs):
                for name in ("a", "b") if i % 2 == 0 else ("b", "a"):
                    model = trees[name] / "models" / "ganivid.safetensors"  # each revision's own shipped model
                    runs[name].append(run(trees[name], clip, model, args.generator, work / f"out-{name}.mp4", args.threads))
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    med = lambda name, key: round(statistics.median(r[key] for r in runs[name]), 2)  # noqa: E731
    print(json.dumps({"benchmark": "ab_revisions", "generator": args.generator, "threads": args.threads,
                      "runs_each": args.runs,
                      **{name: {"rev": rev, "fps": med(name, "fps"),
                                **{k: med(name, k) for k in runs[name][0] if k.endswith("_ms")},
                                "fps_per_run": [round(r["fps"], 1) for r in runs[name]]}
                         for name, rev in (("a", args.rev_a), ("b", args.rev_b))},
                      "b_over_a": round(med("b", "fps") / med("a", "fps"), 3)}))


if __name__ == "__main__":
    main()
