"""Train the shipped model: warp pairs of annotated portraits (supervised warm-up), GAN losses on.

    python training/ship.py --data DATASET --out runs/ship [--minutes 90] [--resume] [--export F]

DATASET is a `ganivid annotate` folder (imgs/, aus.csv, manifest.jsonl with landmarks). Pairs
(ganivid/pairs.py) are made once and cached beside the run (pairs.npz). `--no-pairs` trains the
same preset on the plain dataset (the unpaired paper loop), for the comparison in MODELS.md.
The adversarial phase without pairs continues a run with
`ganivid train --config training/ship.toml --data DATASET --out RUN --resume --set train.lambda_pair=0`."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ganivid.config import load_config
from ganivid.data import ArrayDataset, open_dataset
from ganivid.pairs import make_flow_pairs, make_pairs
from ganivid.priorgan import dataset_landmarks
from ganivid.train import train


def cpu_logger(out: Path, every: int, resume: bool):
    """A train() callback appending {step, cpu_s, wall_s} to OUT/cpu.jsonl every `every` steps:
    process CPU seconds, the fair clock when runs share 2 cores with other jobs."""
    log = out / "cpu.jsonl"
    start = json.loads(log.read_text().splitlines()[-1])["cpu_s"] if resume and log.is_file() else 0.0

    def on_step(state) -> None:
        if state.step % every == 0:
            with log.open("a") as f:
                f.write(json.dumps({"step": state.step, "cpu_s": round(start + time.process_time(), 1),
                                    "wall_s": round(state.elapsed, 1)}) + "\n")
    return on_step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--config", default="training/ship.toml")
    p.add_argument("--minutes", type=float, default=None, help="stop after this much wall time")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-pairs", action="store_true")
    p.add_argument("--variants", type=int, default=2, help="pairs per crop")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--export", type=Path, default=None)
    p.add_argument("--init", type=Path, default=None, help="start from this model's generator (a fine-tune); "
                   "a flow-prior model's residual head starts at 0")
    p.add_argument("--set", action="append", default=[], help="section.key=value override")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from ganivid.config import parse_override
    overrides = dict(parse_override(s) for s in args.set)
    if args.no_pairs:
        overrides.setdefault("train.lambda_pair", 0.0)
    model, cfg = load_config(args.config, overrides)
    folder = open_dataset(args.data, model.image_size)
    data = folder
    if not args.no_pairs:
        args.out.mkdir(parents=True, exist_ok=True)
        cache = args.out / "pairs.npz"
        if cache.is_file():
            z = np.load(cache)
            known = {k: z[k] for k in ("flows", "gaps", "changes") if k in z}
            data = ArrayDataset(z["x"], z["y"], target_images=z["x_t"], target_aus=z["y_t"], source=str(cache), **known)
        else:
            images = np.stack([folder.image(i) for i in range(len(folder))])
            lms = dataset_landmarks(Path(args.data), folder.names, model.image_size)
            pairs = make_flow_pairs if model.flow else make_pairs  # flow models learn from every move's exact flow
            data = pairs(images, lms, variants=args.variants, seed=cfg.seed, source=str(cache))
            tmp = cache.with_name("pairs.tmp.npz")
            known = {"flows": data.flows, "gaps": data.gaps, "changes": data.changes} if model.flow else {}
            np.savez(tmp, x=data.images, y=data.aus, x_t=data.targets[0], y_t=data.targets[1], **known)
            tmp.replace(cache)
    log_cpu = cpu_logger(args.out, cfg.log_every, args.resume)

    init = None
    if args.init is not None and not args.resume:
        from ganivid.checkpoint import load_generator

        init = load_generator(str(args.init), torch.device("cpu"))[0].state_dict()
        if model.flow_prior:  # a head that learned the whole flow would add it twice to the prior
            init = {k: torch.zeros_like(v) if k.startswith("flow.") else v for k, v in init.items()}
    train(cfg, model, data, args.out, resume=args.resume, export=args.export, callback=log_cpu,
          max_seconds=None if args.minutes is None else args.minutes * 60, quiet=True, init=init)


if __name__ == "__main__":
    main()
