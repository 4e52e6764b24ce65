"""Training speed: critic images/s of full training steps (critic steps plus the generator's
share) of the real loop, for the paper and cpu presets, on random in-memory data.

Prints one JSON line. Usage: python benchmarks/train_speed.py [--presets paper cpu] [--threads 1]"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch

from ganivid.config import load_config
from ganivid.data import ArrayDataset
from ganivid.networks import Critic, Generator, count_parameters
from ganivid.train import train


def measure(preset: str, cycles: int, batch_size: int | None, overrides: dict) -> dict:
    """Time `cycles` generator cycles (n_critic steps each) after one warm-up cycle."""
    model, cfg = load_config(preset, overrides)
    if batch_size:
        cfg = replace(cfg, batch_size=batch_size)
    n = cfg.n_critic
    end = n * (cycles + 1) + 1  # the last step (checkpoint, sample grid) is not timed
    cfg = replace(cfg, steps=end, critic_warmup_steps=0, log_every=10**6, sample_every=10**6,
                  ckpt_every=10**6, device="cpu")
    rng = np.random.default_rng(0)
    count = max(cfg.batch_size * 2, 32)
    ds = ArrayDataset(rng.integers(0, 256, (count, model.image_size, model.image_size, 3), dtype=np.uint8),
                      rng.random((count, 17), dtype=np.float32))
    stamps: dict[int, tuple[float, float]] = {}

    def clock(state) -> None:
        stamps[state.step] = (time.perf_counter(), time.process_time())

    with tempfile.TemporaryDirectory() as run:
        train(cfg, model, ds, run, callback=clock, quiet=True)
    seconds = stamps[n * (cycles + 1)][0] - stamps[n][0]
    cpu_seconds = stamps[n * (cycles + 1)][1] - stamps[n][1]  # shows contention from other processes
    with torch.device("meta"):
        g_params, d_params = count_parameters(Generator(model)), count_parameters(Critic(model))
    return {"image_size": model.image_size, "conv_dim": model.conv_dim, "repeat_num": model.repeat_num,
            "critic_dim": model.critic_dim, "upsample": model.upsample, "g_params": g_params, "d_params": d_params,
            "batch_size": cfg.batch_size, "n_critic": n,
            "images_per_s": round(cycles * n * cfg.batch_size / seconds, 3),
            "generator_updates_per_min": round(60 * cycles / seconds, 3),
            "seconds_per_generator_cycle": round(seconds / cycles, 3),
            "cpu_seconds_per_generator_cycle": round(cpu_seconds / cycles, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", nargs="+", default=["paper", "cpu"])
    parser.add_argument("--cycles", type=int, default=2, help="timed generator cycles per preset")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=None, help="override the presets' batch size")
    parser.add_argument("--set", action="append", default=[], help="section.key=value override")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from ganivid.config import parse_override

    overrides = dict(parse_override(s) for s in args.set)
    result = {"benchmark": "train_speed", "device": "cpu", "threads": args.threads, "torch": torch.__version__,
              "load_average_1min": round(os.getloadavg()[0], 2)}
    for preset in args.presets:
        result[preset] = measure(preset, args.cycles, args.batch_size, overrides)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
