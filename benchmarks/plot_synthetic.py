"""Plot synthetic_quality.py runs (JSONL files) as edit-region gain and identity PSNR against
training minutes, one line per run label. With runs on both clocks the axis is core-minutes:
CPU time as measured (`--clock cpu`), wall time x processes x threads (`--clock wall`).

    python benchmarks/plot_synthetic.py benchmarks/results/synthetic_*.jsonl -o curves.png
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("-o", "--out", type=Path, required=True)
    args = p.parse_args(argv)
    curves: dict[str, list[dict]] = defaultdict(list)
    for path in args.runs:
        for line in path.read_text().splitlines():
            row = json.loads(line)
            curves[row.get("label") or path.stem].append(row)
    fig, (ax_gain, ax_psnr) = plt.subplots(1, 2, figsize=(11, 4))
    clock = {r.get("clock", "wall") for rows in curves.values() for r in rows}
    mixed = len(clock) > 1

    def minutes(r: dict) -> float:
        cores = r.get("processes", 1) * r.get("threads", 1) if mixed and r.get("clock", "wall") == "wall" else 1
        return r["elapsed_s"] / 60 * cores

    for label, rows in curves.items():
        rows.sort(key=lambda r: r["elapsed_s"])
        ax_gain.plot([minutes(r) for r in rows], [r["edit_gain"] for r in rows], marker="o", label=label)
        ax_psnr.plot([minutes(r) for r in rows], [r["psnr_id"] for r in rows], marker="o", label=label)
    unit = ("core-minutes (CPU time; wall x cores for wall-clock runs)" if mixed else
            "CPU minutes, all threads (60 min of 2 cores = 120)" if clock == {"cpu"} else "minutes")
    ax_gain.axhline(0.4, color="grey", ls="--", lw=1)
    if "cpu" in clock:  # the budget: 60 minutes on 2 cores
        for ax in (ax_gain, ax_psnr):
            ax.axvline(120, color="grey", ls=":", lw=1)
    ax_gain.axhline(0.0, color="black", lw=0.5)
    ax_gain.set(xlabel=f"training, {unit}", ylabel="edit-region gain (goal 0.4)")
    ax_psnr.axhline(30, color="grey", ls="--", lw=1)
    ax_psnr.set(xlabel=f"training, {unit}", ylabel="identity PSNR, dB (goal 30)")
    ax_gain.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
