"""Fine-tune a flow-prior model on real pairs beside warp pairs (#24's paired phase).

    python training/real_pairs.py --pairs runs/prior/pairs.npz --real ../shared/data --out runs/real \
        --init models/ganivid.safetensors [--minutes 50] [--resume] [--export F]

--pairs: warp pairs cached by training/ship.py (pairs.npz), or a `ganivid annotate` folder to make
them from (cached as OUT/pairs.npz). --real: real pairs cached by `realpairs.write_cache`, or the
shared data folder (london/, videos/grid/) to make them from, labelled by `realpairs.mesh_labels`
(cached as OUT/real_pairs.npz). The run writes what `ganivid train` writes, plus cpu.jsonl
(process CPU seconds per step) and samples/real_<step>.png: input | edited | attention | colour
| real target of fixed real pairs."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # ship.py beside this file
from ship import cpu_logger  # noqa: E402

from ganivid.config import load_config, parse_override  # noqa: E402
from ganivid.data import ArrayDataset, FaceDataset, open_dataset  # noqa: E402
from ganivid.pairs import make_flow_pairs  # noqa: E402
from ganivid.pairtrain import make_real_batch, prepare_real  # noqa: E402
from ganivid.priorgan import dataset_landmarks  # noqa: E402
from ganivid.realpairs import mesh_labels, read_cache, real_pairs, write_cache  # noqa: E402
from ganivid.train import train, write_samples  # noqa: E402


def warp_pairs(source: Path, out: Path, size: int, variants: int, seed: int, limit: int | None) -> ArrayDataset:
    """Warp pairs from ship.py's cache, or made from an annotate folder and cached in `out`."""
    if source.is_dir():
        cache = out / "pairs.npz"
        if not cache.is_file():
            folder = open_dataset(source, size)
            images = np.stack([folder.image(i) for i in range(len(folder))])
            ds = make_flow_pairs(images, dataset_landmarks(source, folder.names, size), variants=variants, seed=seed,
                                 source=str(cache))
            tmp = cache.with_name("pairs.tmp.npz")
            np.savez(tmp, x=ds.images, y=ds.aus, x_t=ds.targets[0], y_t=ds.targets[1], flows=ds.flows,
                     gaps=ds.gaps, changes=ds.changes)
            tmp.replace(cache)
        source = cache
    z = np.load(source)
    keep = slice(None, limit)  # --pairs-limit: the first N, for smoke runs
    return ArrayDataset(z["x"][keep], z["y"][keep], target_images=z["x_t"][keep], target_aus=z["y_t"][keep],
                        source=str(source), flows=z["flows"][keep], gaps=z["gaps"][keep], changes=z["changes"][keep])


def real_dataset(source: Path, out: Path, size: int) -> FaceDataset:
    """Real pairs from a cache, or made from the shared data folder and cached in `out`."""
    if source.is_dir():
        cache = out / "real_pairs.npz"
        if not cache.is_file():
            made = real_pairs(source, size, labeller=mesh_labels)
            print(f"real pairs: {made.counts}, skipped {made.skipped}, {made.seconds:.0f} s", file=sys.stderr)
            write_cache(made.data, cache)
        source = cache
    return prepare_real(read_cache(source))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", required=True, type=Path, help="warp pairs: ship.py's pairs.npz or an annotate folder")
    p.add_argument("--real", required=True, type=Path, help="real pairs: a realpairs cache or the shared data folder")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--config", default="training/real_pairs.toml")
    p.add_argument("--init", type=Path, default=None, help="start from this model's generator (a fine-tune)")
    p.add_argument("--minutes", type=float, default=None, help="stop after this much wall time")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--export", type=Path, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--variants", type=int, default=6, help="warp pairs per crop, when made from a folder")
    p.add_argument("--pairs-limit", type=int, default=None, help="use only the first N warp pairs")
    p.add_argument("--set", action="append", default=[], help="section.key=value override")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, cfg = load_config(args.config, dict(parse_override(s) for s in args.set))
    args.out.mkdir(parents=True, exist_ok=True)
    data = warp_pairs(args.pairs, args.out, model.image_size, args.variants, cfg.seed, args.pairs_limit)
    real = real_dataset(args.real, args.out, model.image_size)
    fixed = make_real_batch(real, np.linspace(0, len(real) - 1, cfg.sample_count).round().astype(int),
                            np.zeros(cfg.sample_count, bool))
    fixed["flow_t"] = fixed["prior"]  # write_samples hands flow_t to a prior model: here the inference prior
    log_cpu = cpu_logger(args.out, cfg.log_every, args.resume)

    def on_step(state) -> None:
        log_cpu(state)
        if state.step % cfg.sample_every == 0:
            write_samples(args.out / "samples" / f"real_{state.step:08d}.png", state.generator, fixed, torch.device("cpu"))

    init = None
    if args.init is not None and not args.resume:
        from ganivid.checkpoint import load_generator

        g, info = load_generator(str(args.init), torch.device("cpu"))
        init = g.state_dict()
        if model.flow_prior and not info.model.flow_prior:  # a head that learned the whole flow would add it twice
            init = {k: torch.zeros_like(v) if k.startswith("flow.") else v for k, v in init.items()}
    result = train(cfg, model, data, args.out, resume=args.resume, export=args.export, callback=on_step,
                   max_seconds=None if args.minutes is None else args.minutes * 60, quiet=True, init=init, real=real)
    print(json.dumps({"step": result.step, "export": str(result.export) if result.export else None,
                      "metrics": result.metrics}))


if __name__ == "__main__":
    main()
