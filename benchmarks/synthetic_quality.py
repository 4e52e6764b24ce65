"""How fast a preset learns: train it on synthetic faces for a wall time and print one JSON line
every `--every` minutes of training, measured on held-out synthetic identities.

Usage: python benchmarks/synthetic_quality.py [training/cpu.toml] --minutes 60 [--every 5]
           [--set train.n_critic=2 ...] [--out results.jsonl] [--grid best.png]
   or, one process per core (train.batch_size is per process; rank 0 evaluates and prints):
       torchrun --standalone --nproc_per_node=2 benchmarks/synthetic_quality.py ... --threads 1

Metrics (evaluation time is not counted in `elapsed_s` or `images_per_s`):
- edit_gain = 1 - L1(G(x|y_g), truth(y_g)) / L1(x, truth(y_g)) over the pixels where the
  renderer's truth differs from x, dilated by 2 px (0 = no better than leaving x alone,
  1 = exact); targets: per identity one named expression and one AU vector drawn like data.
  `gain_of_blurred_truth` calibrates it: the exact edit blurred by 1 px scores only ~0.36.
- psnr_id: PSNR (dB) of G(x|y_r) against x (an edit to the face's own AUs must change nothing).
- attention: mean retention mask A of G(x|y_g) (1 = keep every pixel).
- critic_au_mae: mean |D_y(x) - y_r| of the critic on held-out faces; _active: over AUs >= 0.25.
- images_per_s: real images through the critic per second of training."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ganivid import synth
from ganivid.aus import EXPRESSIONS, expression
from ganivid.config import load_config, parse_override, replace
from ganivid.data import ArrayDataset, to_images, to_tensor
from ganivid.losses import composite
from ganivid.train import TrainState, train


@dataclass(frozen=True)
class EvalSet:
    """Held-out faces x with AUs, edit targets y_g, exact truths at y_g and the edit masks."""

    images: np.ndarray  # (n, s, s, 3) uint8
    aus: np.ndarray  # (n, 17)
    targets: np.ndarray  # (n, 17)
    truths: np.ndarray  # (n, s, s, 3) uint8: the same identity rendered at `targets`
    masks: np.ndarray  # (n, s, s) bool: where truth != x, dilated by 2 px


def make_eval_set(identities: int, size: int, seed: int) -> EvalSet:
    """Two edits per held-out identity: a named expression and an AU vector drawn like data
    (drawn again while the edit would change nothing)."""
    data = synth.generate(identities, size, seed=seed)
    names = [e for e in EXPRESSIONS if e != "neutral"]
    pool = iter(synth.sample_aus(np.random.default_rng([seed, 99]), identities * 20))
    kernel = np.ones((5, 5), np.uint8)  # dilation by 2 px each way
    rows: list[tuple] = []
    for n, (img, a, ident) in enumerate(zip(data.images, data.aus, data.identities)):
        person = synth.random_identity(int(ident))
        for y in (expression(names[n % len(names)]), None):
            while True:
                target = y if y is not None else next(pool)
                truth = synth.render(person, target, size)
                changed = (truth != img).any(axis=2).astype(np.uint8)
                if changed.sum() >= 0.002 * size * size or y is not None:
                    break
            rows.append((img, a, target, truth, cv2.dilate(changed, kernel).astype(bool)))
    return EvalSet(*(np.stack(col) for col in zip(*rows)))


@torch.no_grad()
def edit(generator: torch.nn.Module, images: np.ndarray, aus: np.ndarray) -> tuple[np.ndarray, ...]:
    """Composited edits (n, s, s, 3) uint8, attention (n, s, s) and colour masks (uint8) of G(x|aus)."""
    outs, atts, cols = [], [], []
    for i in range(0, len(images), 32):
        x = to_tensor(images[i:i + 32])
        color, att = generator(x, torch.from_numpy(np.asarray(aus[i:i + 32], np.float32)))
        outs.append(to_images(composite(color, att, x)))
        atts.append(att[:, 0].numpy())
        cols.append(to_images(color))
    return np.concatenate(outs), np.concatenate(atts), np.concatenate(cols)


@torch.no_grad()
def evaluate(generator: torch.nn.Module, critic: torch.nn.Module, ev: EvalSet) -> dict[str, float]:
    """The benchmark's quality metrics on a held-out EvalSet."""
    modes = generator.training, critic.training
    generator.eval(), critic.eval()
    try:
        edited, att, _ = edit(generator, ev.images, ev.targets)
        recon, _, _ = edit(generator, ev.images, ev.aus)
        pred = torch.cat([critic(to_tensor(ev.images[i:i + 32]))[1] for i in range(0, len(ev.images), 32)]).numpy()
    finally:
        generator.train(modes[0]), critic.train(modes[1])
    m = ev.masks[..., None]
    truth = ev.truths.astype(np.float32)
    err_g = (np.abs(edited.astype(np.float32) - truth) * m).sum()
    err_x = (np.abs(ev.images.astype(np.float32) - truth) * m).sum()
    mse = ((recon.astype(np.float32) - ev.images.astype(np.float32)) ** 2).mean(axis=(1, 2, 3))
    active = ev.aus >= 0.25
    return {
        "edit_gain": round(float(1 - err_g / err_x), 4),
        "psnr_id": round(float((10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10))).mean()), 2),
        "attention": round(float(att.mean()), 4),
        "attention_in_edit": round(float(att[ev.masks].mean()), 4),
        "critic_au_mae": round(float(np.abs(pred - ev.aus).mean()), 4),
        "critic_au_mae_active": round(float(np.abs(pred - ev.aus)[active].mean()), 4),
    }


def blurred_truth_gain(ev: EvalSet, sigma: float) -> float:
    """edit_gain of a perfect edit seen through a Gaussian blur of `sigma` px (the truth,
    blurred, pasted where it differs from x): how sharp a generator must be to reach a gain."""
    truth, x = ev.truths.astype(np.float32), ev.images.astype(np.float32)
    blurred = np.stack([cv2.GaussianBlur(t, (0, 0), sigma) for t in truth])
    out = np.where((ev.truths != ev.images).any(axis=3, keepdims=True), blurred, x)
    m = ev.masks[..., None]
    return round(float(1 - (np.abs(out - truth) * m).sum() / (np.abs(x - truth) * m).sum()), 4)


def sample_grid(generator: torch.nn.Module, ev: EvalSet, n: int = 8) -> np.ndarray:
    """RGB grid, one row per edit: input | edited | truth | attention | colour | reconstruction."""
    pick = np.arange(n) * 2 * max(1, len(ev.images) // (2 * n))  # named-expression edits
    edited, att, col = edit(generator, ev.images[pick], ev.targets[pick])
    recon, _, _ = edit(generator, ev.images[pick], ev.aus[pick])
    a = np.repeat((att * 255).round().astype(np.uint8)[..., None], 3, axis=3)
    cols = (ev.images[pick], edited, ev.truths[pick], a, col, recon)
    return np.concatenate([np.concatenate(row, axis=1) for row in zip(*cols)], axis=0)


def _training_faces(count: int, size: int, seed: int, cache: Path | None) -> synth.SynthSet:
    path = cache / f"synth_{count}_{size}_{seed}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path) as f:
            return synth.SynthSet(f["images"], f["aus"], f["identities"])
    data = synth.generate(count, size, seed=seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.npz")
        np.savez(tmp, images=data.images, aus=data.aus, identities=data.identities)
        os.replace(tmp, path)
    return data


def paired_faces(data: synth.SynthSet, seed: int, identity: float = 0.1) -> ArrayDataset:
    """The training faces with renderer truths: each face also rendered at a target drawn like
    data (or, with probability `identity`, at its own AUs), for `train.lambda_pair`."""
    rng = np.random.default_rng([seed, 0x9A12])
    targets = synth.sample_aus(rng, len(data.images))
    own = rng.random(len(targets)) < identity
    targets[own] = data.aus[own]
    truths = np.stack([synth.render(synth.random_identity(int(i)), t, data.images.shape[1])
                       for i, t in zip(data.identities, targets)])
    return ArrayDataset(data.images, data.aus, target_images=truths, target_aus=targets,
                        source=f"synthetic pairs x{len(targets)}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("preset", nargs="?", default="training/cpu.toml")
    p.add_argument("--minutes", type=float, default=60.0, help="training wall time")
    p.add_argument("--every", type=float, default=5.0, help="minutes of training between JSON lines")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--train-images", type=int, default=4000)
    p.add_argument("--eval-identities", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    p.add_argument("--grid", type=Path, help="write a sample grid PNG here at every line")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="budget and elapsed_s in wall time, or in this process's CPU time (for a "
                        "machine shared with other jobs: it sums all threads, so with --threads 2, --minutes 120 "
                        "is what 60 minutes of 2 free cores give)")
    p.add_argument("--label", default="", help="name of the run in every JSON line")
    p.add_argument("--cache", type=Path, help="folder to keep the rendered training faces in between runs")
    p.add_argument("--pairs", action="store_true",
                   help="give every training face the renderer's truth at another AU vector (trained "
                        "when train.lambda_pair or train.lambda_pair_color > 0)")
    args = p.parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", 1))  # processes under torchrun
    if args.clock == "cpu" and world > 1:
        p.error("--clock cpu counts this process's CPU time only; under torchrun use --clock wall")
    torch.set_num_threads(args.threads)
    overrides = dict(parse_override(o) for o in args.overrides)
    model, cfg = load_config(args.preset, overrides)
    # A GAN phase runs at a constant learning rate unless the run is given a length: a wall-time
    # budget has no epochs. A preset without a GAN phase (steps = epochs = 0) keeps its schedule.
    if (cfg.steps or cfg.epochs) and not any(k in overrides for k in ("train.steps", "train.epochs", "train.decay_fraction")):
        cfg = replace(cfg, steps=10**7, decay_fraction=0.0)
    cfg = replace(cfg, device="cpu", sample_every=10**9, ckpt_every=10**9, log_every=10)

    size = model.image_size
    # Training and held-out faces come from different seed streams: disjoint identities.
    data = _training_faces(args.train_images, size, args.seed, args.cache)
    ev = make_eval_set(args.eval_identities, size, seed=10_000 + args.seed)
    assert not set(data.identities.tolist()) & set(synth.identity_seeds(args.eval_identities, 10_000 + args.seed).tolist())
    if args.pairs:
        path = args.cache / f"pairs_{args.train_images}_{size}_{args.seed}.npz" if args.cache else None
        if path is not None and path.is_file():
            with np.load(path) as f:
                ds = ArrayDataset(data.images, data.aus, target_images=f["truths"], target_aus=f["targets"],
                                  source=f"synthetic pairs x{args.train_images}")
        else:
            ds = paired_faces(data, args.seed)
            if path is not None:  # atomic: runs started together share the cache
                tmp = path.with_name(f".{path.stem}.{os.getpid()}.npz")
                np.savez(tmp, truths=ds.targets[0], targets=ds.targets[1])
                os.replace(tmp, path)
    else:
        ds = ArrayDataset(data.images, data.aus, source=f"synthetic x{args.train_images}")

    # The metric's sharpness scale: the exact edit blurred by 0.5 / 1 / 2 px scores this much.
    ceilings = {f"blur_{s}px": blurred_truth_gain(ev, s) for s in (0.5, 1, 2)}
    budget, every = args.minutes * 60, args.every * 60
    clock = time.process_time if args.clock == "cpu" else time.time
    state = {"eval_s": 0.0, "next": every, "t0": clock()}
    base = {"label": args.label, "preset": str(args.preset), "overrides": overrides, "clock": args.clock,
            "threads": args.threads, "processes": world, "train_images": args.train_images,
            "pairs": args.pairs, "gain_of_blurred_truth": ceilings}

    def trained() -> float:
        return clock() - state["t0"] - state["eval_s"]

    def report(ts: TrainState) -> None:
        t0, seconds = clock(), trained()
        after_critic = max(0, ts.step - cfg.critic_warmup_steps)
        pair_steps = min(after_critic, cfg.pair_warmup_steps)  # supervised generator-only steps
        g_steps = pair_steps + max(0, after_critic - cfg.pair_warmup_steps) // cfg.n_critic
        line = {**base, "step": ts.step, "g_steps": g_steps, "pair_warmup_steps": pair_steps,
                "elapsed_s": round(seconds, 1),
                "images_per_s": round(ts.step * cfg.batch_size * world / max(seconds, 1e-9), 2),
                **evaluate(ts.generator, ts.critic, ev)}
        print(json.dumps(line), flush=True)
        if args.out:
            with args.out.open("a") as f:
                f.write(json.dumps(line) + "\n")
        if args.grid:
            grid = sample_grid(ts.generator, ev)
            cv2.imwrite(str(args.grid), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        state["eval_s"] += clock() - t0

    def callback(ts: TrainState) -> bool:
        seconds = trained()
        state["last"] = ts
        if seconds >= state["next"] or seconds >= budget:
            report(ts)
            state["next"] += every
            state["reported"] = ts.step
        return seconds >= budget

    with tempfile.TemporaryDirectory() as run_dir:
        train(cfg, model, ds, run_dir, callback=callback, quiet=True)
    if "last" in state and state.get("reported") != state["last"].step:
        report(state["last"])  # a schedule (train.steps) that ended inside the budget


if __name__ == "__main__":
    sys.exit(main())
