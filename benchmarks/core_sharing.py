"""How much the generator slows down while the other core works; prints one JSON line.

`animate` gives the generator one torch thread and runs decoding, cropping, pasting and
encoding on the other core. On a machine whose cores share hardware (hyper-threads of one
physical core, or a VM's vCPUs placed so), the generator then burns more CPU per crop than
alone, and no overlap can win that back. This measures the generator's CPU ms per crop (one
thread, batch 8, shipped model or --model) with the other core idle, running a pure-Python loop
(no memory traffic) a quarter or all of the time, or streaming memory; the busy process is
either free or pinned to the other core with this one pinned too (Linux). Each busy run is set
against the idle runs just before and after it (this VM drifts between minutes); medians over
the rounds.

    python benchmarks/core_sharing.py [--rounds 3] [--model CKPT]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent


def neighbour(kind: str, duty: float, stop, cpu: int | None) -> None:
    """Keep a core busy: `py` (integer loop in L1) or `mem` (copying 64 MB) for `duty` of each 10 ms."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    a = np.ones(64 << 20, np.uint8)
    b = np.empty_like(a)
    while not stop.is_set():
        t = time.perf_counter()
        while time.perf_counter() - t < 0.01 * duty:
            if kind == "mem":
                np.copyto(b, a)
            else:
                x = 0
                for i in range(1000):
                    x += i
        time.sleep(0.01 * (1 - duty))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "ganivid.safetensors")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from ganivid.engine import Engine

    eng = Engine.from_checkpoint(str(args.model), "cpu")
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (eng.image_size, eng.image_size, 3), np.uint8) for _ in range(eng.batch_size)]
    own = np.zeros((len(crops), 17), np.float32)
    from skimage import data

    from ganivid.align import crop_landmarks
    from ganivid.still import find_faces

    face = find_faces(data.astronaut())[0]  # a real face's landmarks for the random crops' flow prior
    marks = np.repeat(crop_landmarks(face.landmarks, face.alignment, eng.image_size)[None], len(crops), 0)
    eng.edit(crops, np.full((len(crops), 17), 0.1, np.float32), own, marks)  # warm-up
    pin = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    cases = [("python_25pct", "py", 0.25, False), ("python_100pct", "py", 1.0, False),
             ("memory_100pct", "mem", 1.0, False)]
    if pin:
        cases += [("python_100pct_pinned", "py", 1.0, True)]
    step = [0]

    def measure(kind: str | None, duty: float, pinned: bool) -> float:
        """Generator CPU ms per crop over 10 batches (~2-3 s) beside the given neighbour."""
        if pin:
            os.sched_setaffinity(0, {0} if pinned else set(range(os.cpu_count())))
        stop, p = mp.Event(), None
        if kind:
            p = mp.Process(target=neighbour, args=(kind, duty, stop, 1 if pinned else None))
            p.start()
            time.sleep(0.3)
        cpu, n = time.thread_time(), 0
        for _ in range(10):
            step[0] += 1  # new targets each time: the engine's cache must not answer
            eng.edit(crops, np.full((len(crops), 17), 0.2 + 1e-4 * step[0], np.float32), own, marks)
            n += len(crops)
        if p:
            stop.set()
            p.join()
        return 1000 * (time.thread_time() - cpu) / n

    # idle, case, idle, case, ... idle: each case against the mean of the idle runs beside it,
    # since this VM's speed drifts between minutes.
    ratios: dict[str, list[float]] = {name: [] for name, *_ in cases}
    idle = [measure(None, 0.0, False)]
    busy: dict[str, list[float]] = {name: [] for name, *_ in cases}
    for _ in range(args.rounds):
        for name, kind, duty, pinned in cases:
            busy[name].append(measure(kind, duty, pinned))
            idle.append(measure(None, 0.0, False))
            ratios[name].append(busy[name][-1] / ((idle[-2] + idle[-1]) / 2))
    print(json.dumps({"benchmark": "core_sharing", "model": str(args.model.name), "cores": os.cpu_count(),
                      "idle_generator_cpu_ms_per_crop": round(float(np.median(idle)), 1),
                      "busy_generator_cpu_ms_per_crop": {k: round(float(np.median(v)), 1) for k, v in busy.items()},
                      "slowdown_vs_idle_beside": {k: round(float(np.median(v)), 3) for k, v in ratios.items()},
                      "rounds": {k: [round(x, 3) for x in v] for k, v in ratios.items()}}))


if __name__ == "__main__":
    main()
