"""Plot edit quality against training time from recorded `edit_quality.py` runs; prints one JSON line.

    python benchmarks/plot_edit_curves.py [--results benchmarks/results/edit_quality.jsonl] [-o PNG]

Each line of the results file is `{"run": ..., "step": ..., "train_cpu_min": ..., "train_wall_min": ...,
"edit_quality": <edit_quality.py's JSON line>}`; a line without `train_cpu_min` is a reference
(the exact warp) and is drawn as a dashed level. One panel per request: MediaPipe's reading of it
(median over the held-out faces) against training CPU-minutes, one curve per run."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = ("smile", "jaw_drop", "brows_up", "frown", "blink")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "edit_quality.jsonl")
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "results" / "edit_curves.png")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(s) for s in args.results.read_text().splitlines() if s.strip()]
    fig, axes = plt.subplots(1, len(REQUESTS), figsize=(3.2 * len(REQUESTS), 3.8), sharey=True)
    runs = sorted({r["run"] for r in rows if "train_cpu_min" in r}, key=lambda n: min(
        r["train_cpu_min"] for r in rows if r["run"] == n))
    summary = {}
    for ax, name in zip(axes, REQUESTS):
        goal = next(r["edit_quality"]["requests"][name]["goals"]["mp"] for r in rows)
        ax.axhline(goal, color="green", lw=0.8, ls=":", label="goal")
        references = [r for r in rows if "train_cpu_min" not in r]
        for r, colour in zip(references, ("grey", "firebrick", "purple", "olive")):
            ax.axhline(r["edit_quality"]["requests"][name]["mp"], color=colour, lw=0.8, ls="--", label=r["run"])
        for run in runs:
            pts = sorted((r["train_cpu_min"], r["edit_quality"]["requests"][name]["mp"]) for r in rows if r["run"] == run)
            ax.plot(*zip(*pts), marker="o", label=run)
            summary.setdefault(run, {})[name] = pts[-1][1]
        ax.set_title(name)
        ax.set_xlabel("training CPU-minutes")
    axes[0].set_ylabel("MediaPipe reading, median change")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    fig.savefig(args.output, dpi=90)
    print(json.dumps({"benchmark": "plot_edit_curves", "output": str(args.output), "last_reading": summary}))


if __name__ == "__main__":
    main()
