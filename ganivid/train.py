"""The GANimation training loop (GANIMATION.md); DDP when launched by torchrun.

Reads top to bottom like nanoGPT's train.py: setup, data, models, resume, then one loop whose
steps are, in StarGAN's order, a critic update and, every n_critic steps, a generator update.
Launch on N GPUs: `torchrun --standalone --nproc_per_node=N -m ganivid train ...`."""
from __future__ import annotations

import json
import math
import os
import random
import signal
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from ganivid.aus import AU_NAMES
from ganivid.checkpoint import (check_same_model, list_checkpoints, load_checkpoint, rng_state,
                                save_checkpoint, save_inference, set_rng_state)
from ganivid.config import ModelConfig, TrainConfig, load_config
from ganivid.batches import BatchLoader, make_batch
from ganivid.data import FaceDataset, open_dataset, to_images
from ganivid.errors import CheckpointError, ConfigError, DataError
from ganivid.losses import (CriticLoss, GeneratorLoss, au_loss, chroma_shift, critic_loss, generator_loss,
                            gradient_penalty)
from ganivid.networks import Critic, Generator, compose, condition
from ganivid.pairtrain import make_real_batch, pair_warmup_loss, prepare_real
from ganivid.priorgan import attach_landmarks, back_priors, cycle_inputs, priors


@dataclass
class TrainState:
    """What a callback sees after each step (on the writing process only)."""

    step: int
    total_steps: int
    generator: Generator
    critic: Critic
    metrics: dict[str, float] | None  # the latest logged line
    elapsed: float
    run_dir: Path


@dataclass(frozen=True)
class TrainResult:
    """Where a run ended."""

    run_dir: Path
    step: int
    checkpoint: Path | None
    export: Path | None
    metrics: dict[str, float] | None


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """torch.device of `auto|cpu|cuda|cuda:N`; under torchrun a bare `cuda` means cuda:LOCAL_RANK."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name} requested but CUDA is not available; use --device cpu")
        index = local_rank if name == "cuda" else int(name[5:]) if name[5:].isdigit() else -1
        if index is not None and not 0 <= index < torch.cuda.device_count():
            raise ConfigError(f"device {name}: there are {torch.cuda.device_count()} CUDA devices")
        return torch.device("cuda", index)
    raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")


def lr_factor(step: int, total: int, decay_fraction: float) -> float:
    """1 until the last `decay_fraction` of `total` steps, then linearly down towards 0."""
    decay = decay_fraction * total
    start = total - decay
    return 1.0 if decay <= 0 or step < start else max(0.0, (total - step) / decay)


def sample_targets(y: torch.Tensor, noise: float) -> torch.Tensor:
    """Each sample's target = the AUs of another sample in the batch + U(-noise, noise), in [0, 1].

    Drawn from torch's CPU generator so a run is reproducible on any device; the partner map
    is a random cycle, so no sample keeps its own AUs (batch > 1)."""
    y = y.cpu()
    order = torch.randperm(len(y))
    partner = torch.empty_like(order)
    partner[order] = order.roll(-1)
    jitter = (torch.rand(y.shape) * 2 - 1) * noise
    return (y[partner] + jitter).clamp_(0, 1)


def critic_warmup_loss(critic: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, lambda_y: float) -> torch.Tensor:
    """AU regression of the critic on real images only (the AU-head pre-training phase)."""
    score, aus = critic(x)
    # 0 * score: the realness head joins the graph, so DDP sees every parameter used.
    return lambda_y * au_loss(aus, y) + 0.0 * score.float().sum()


def critic_losses(critic: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, fake: torch.Tensor,
                  alpha: torch.Tensor, cfg: TrainConfig, with_gp: bool = True) -> CriticLoss:
    """Critic objective on real `x` (AUs `y`) and detached fakes; `alpha` (B, 1, 1, 1) mixes
    them for the gradient penalty, which `with_gp=False` leaves out (lazy penalty)."""
    # Real and fake in one forward: D has no batch statistics, so this equals two forwards.
    score, aus = critic(torch.cat([x, fake]))
    real_score, fake_score = score.chunk(2)
    gp = torch.zeros((), device=x.device)
    if with_gp:
        x_hat = (alpha * x + (1 - alpha) * fake).requires_grad_(True)
        gp = gradient_penalty(critic(x_hat)[0], x_hat) * cfg.gp_every
    return critic_loss(real_score, fake_score, aus[: len(x)], y, gp, cfg.lambda_gp, cfg.lambda_y)


def _given(prior: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    """G's optional prior argument."""
    return () if prior is None else (prior,)


def generator_losses(generator: torch.nn.Module, critic: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                     y_g: torch.Tensor, outputs: tuple[torch.Tensor, ...], cfg: TrainConfig, model: ModelConfig,
                     x_t: torch.Tensor | None = None, pair_mask: torch.Tensor | None = None,
                     cycle_prior: torch.Tensor | None = None,
                     prior: torch.Tensor | None = None) -> tuple[GeneratorLoss, torch.Tensor]:
    """Generator objective given G(x | y_g)'s outputs with their graph; returns the loss and the
    cycle image. `critic` should be the bare module with requires_grad off; `x_t`, `pair_mask`:
    paired targets and which samples were edited towards them; `cycle_prior`: a flow-prior
    model's prior of the way back (priorgan.cycle_inputs), `prior` the one it was given."""
    color, attention = outputs[0], outputs[1]
    x_g, _ = compose(outputs, x)
    score, aus = critic(x_g)
    cycle = generator(x_g, condition(model, y, y_g), *_given(cycle_prior))
    attention_c = cycle[1]
    x_c, _ = compose(cycle, x_g)
    loss = generator_loss(score, aus, y_g, x, x_c, attention, attention_c, cfg.lambda_y, cfg.lambda_cyc,
                          cfg.lambda_a, cfg.lambda_tv, edited=x_g, paired=x_t, lambda_pair=cfg.lambda_pair,
                          color=color, lambda_pair_color=cfg.lambda_pair_color, pair_mask=pair_mask,
                          lambda_pair_attention=cfg.lambda_pair_attention, pair_edit_weight=cfg.pair_edit_weight)
    if cfg.lambda_chroma > 0:
        chroma = cfg.lambda_chroma * chroma_shift(x_g, x)
        loss = replace(loss, total=loss.total + chroma, chroma=chroma)
    if prior is not None and cfg.lambda_residual_flow > 0:  # geometry stays the prior's
        residual = cfg.lambda_residual_flow * (outputs[2] - prior).abs().mean()
        loss = replace(loss, total=loss.total + residual, residual=residual)
    return loss, x_c


@torch.no_grad()
def write_samples(path: Path, generator: Generator, fixed: dict[str, torch.Tensor], device: torch.device) -> None:
    """PNG grid on a fixed batch, rows: input | edited | attention | colour | cycle (atomic); for
    a flow model on pairs: input | edited | attention | colour | target."""
    x, y = fixed["x"].to(device), fixed["y"].to(device)
    model = generator.cfg
    if model.flow and "c" in fixed and model.condition == "change":
        prior = (fixed["flow_t"].to(device),) if model.flow_prior else ()
        outputs = generator(x, fixed["c"].to(device), *prior)
        x_g, _ = compose(outputs, x)
        last = fixed["x_t"].to(device)
    else:
        y_g = y.roll(1, 0)  # another sample's AUs
        fwd, back = (cycle_inputs(fixed["lm"].numpy(), y_g - y, x.shape[-1]) if model.flow_prior
                     else (None, None))
        outputs = generator(x, condition(model, y_g, y), *_given(fwd))
        x_g, _ = compose(outputs, x)
        last, _ = compose(generator(x_g, condition(model, y, y_g), *_given(back)), x_g)
    color, attention = outputs[0], outputs[1]
    rows = [x, x_g, attention.expand_as(x) * 2 - 1, color, last]
    grid = np.concatenate([np.concatenate(list(to_images(r)), axis=1) for r in rows], axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    cv2.imwrite(str(tmp), grid[:, :, ::-1])
    os.replace(tmp, path)


class _Meter:
    """Running sums of detached scalars between two log lines."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, **values: torch.Tensor) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0) + v.detach().float()
            self.counts[k] = self.counts.get(k, 0) + 1

    def pop(self) -> dict[str, float]:
        out = {k: round(float(v) / self.counts[k], 6) for k, v in self.sums.items()}
        self.sums, self.counts = {}, {}
        return out


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop log lines past `step`: they belong to steps the resumed run will redo."""
    if path.exists():
        keep = []
        for ln in path.read_text().splitlines():
            try:
                if json.loads(ln).get("step", 0) <= step:
                    keep.append(ln)
            except (json.JSONDecodeError, AttributeError):
                pass  # a line cut off by a crash
        path.write_text("".join(f"{ln}\n" for ln in keep))


def train(cfg: TrainConfig, model: ModelConfig, data: FaceDataset | str | Path, out_dir: str | Path, *,
          resume: bool = False, max_steps: int | None = None, max_seconds: float | None = None,
          callback: Callable[[TrainState], bool | None] | None = None, export: str | Path | None = None,
          resize: bool = False, quiet: bool = False, init: dict[str, torch.Tensor] | None = None,
          real: FaceDataset | None = None) -> TrainResult:
    """Train (or with `resume`, continue) a run in `out_dir` on a dataset or dataset folder.

    Stops at the configured length, at global step `max_steps`, after `max_seconds`, when
    `callback` returns True, or on Ctrl-C; always saves a checkpoint when it stops.
    `export`: also write the inference file there at the end. `init`: generator weights to start a
    new run from (a fine-tune), instead of the paper's initialisation. `real`: real pairs
    (ganivid.realpairs), `train.real_batch_size` of them beside each paired warm-up batch.
    Raises:
        DataError, ConfigError, CheckpointError: bad dataset, options or checkpoint.
    """
    run_dir = Path(out_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run folder {run_dir} is a file")
    if export is not None and Path(export).is_dir():
        raise ConfigError(f"--export {export} is a folder; give a file name such as {Path(export) / 'model.safetensors'}")
    # ---- processes and device (nanoGPT) ----
    ddp = int(os.environ.get("RANK", -1)) != -1
    rank, world, local_rank = 0, 1, None
    if ddp:
        rank, world, local_rank = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    device = resolve_device(cfg.device, local_rank)
    own_group = ddp and not dist.is_initialized()
    if own_group:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    master = rank == 0
    cuda = device.type == "cuda"
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    memory_format = torch.channels_last if cuda else torch.contiguous_format
    from rich.console import Console
    console = Console(stderr=True, quiet=quiet or not master)

    # ---- data ----
    ds = data if isinstance(data, FaceDataset) else open_dataset(data, model.image_size, resize=resize, cache_mb=cfg.cache_mb)
    if ds.image_size != model.image_size:
        raise DataError(f"the dataset has {ds.image_size} px images; the model needs {model.image_size} px")
    if ds.unlabelled:
        console.print(f"note: {', '.join(ds.unlabelled)} are empty in every row of {ds.source}: trained as 0")
    main_steps = cfg.steps or math.ceil(cfg.epochs * len(ds) / (cfg.batch_size * world))
    if model.flow_prior and main_steps and getattr(ds, "landmarks", None) is None:
        if isinstance(data, (str, Path)):
            attach_landmarks(ds, data)  # the GAN phase makes each request's prior from them
        else:
            raise ConfigError("model.flow_prior's GAN phase needs each face's crop landmarks (dataset.landmarks)")
    if model.flow_prior and not main_steps and getattr(ds, "flows", None) is None:
        raise ConfigError("model.flow_prior's paired warm-up needs pairs of known flow (pairs.make_flow_pairs)")
    if cfg.pair_warmup_steps and not ds.has_pairs:
        raise ConfigError(f"train.pair_warmup_steps needs a dataset with paired targets; {ds.source} has none")
    if real is not None:
        if not (cfg.pair_warmup_steps and cfg.real_batch_size):
            raise ConfigError("real pairs train in the paired warm-up: set train.pair_warmup_steps and train.real_batch_size")
        real = prepare_real(real)
    critic_end = cfg.critic_warmup_steps
    warmup = critic_end + cfg.pair_warmup_steps  # both warm-ups, then the GAN
    total = warmup + main_steps
    end = min(total, max_steps) if max_steps is not None else total

    # ---- models and optimisers (same init on every rank; DDP also broadcasts rank 0's) ----
    torch.manual_seed(cfg.seed)
    raw_g = Generator(model).to(device, memory_format=memory_format)
    if init is not None and not resume:
        raw_g.load_state_dict(init)
    raw_d = Critic(model).to(device, memory_format=memory_format)
    opt_g = torch.optim.Adam(raw_g.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(raw_d.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))

    # ---- resume, or start fresh ----
    found = list_checkpoints(run_dir)
    start = 0
    if resume:
        if not found:
            raise CheckpointError(f"nothing to resume: no checkpoint (ckpt_*.pt) in {run_dir}")
        state = load_checkpoint(found[-1])
        check_same_model(state["model_config"], model, found[-1])
        raw_g.load_state_dict(state["generator"])
        raw_d.load_state_dict(state["critic"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        start = state["step"]
        rngs = state["rng"]
        if len(rngs) == world:
            set_rng_state(rngs[rank])
        else:
            console.print(f"note: checkpoint from {len(rngs)} processes, now {world}: random streams re-seeded")
            torch.manual_seed(cfg.seed + 7919 * start + rank)
        if master:
            _truncate_metrics(run_dir / "metrics.jsonl", start)
    else:
        if found:
            raise ConfigError(f"{run_dir} already holds a run (checkpoint {found[-1].name}); "
                              f"pass --resume to continue it or --out for a new run")
        seed = cfg.seed + rank  # different targets and mixes per rank, as nanoGPT's seed_offset
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
    if master:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(
            {"model": asdict(model), "train": asdict(cfg), "dataset": ds.source, "images": len(ds),
             "processes": world}, indent=2) + "\n")
    g_net = DDP(raw_g, device_ids=[device.index] if cuda else None) if ddp else raw_g
    d_net = DDP(raw_d, device_ids=[device.index] if cuda else None) if ddp else raw_d

    loader = BatchLoader(ds, cfg.batch_size, seed=cfg.seed, start_step=start, rank=rank, world=world, flip=cfg.flip)
    # Its own order, also a function of (seed, step): a resumed run sees the same real batches.
    real_loader = None if real is None else BatchLoader(real, cfg.real_batch_size, seed=cfg.seed + 1, start_step=start,
                                                        rank=rank, world=world, flip=cfg.flip, make=make_real_batch)
    fixed = make_batch(ds, np.arange(min(cfg.sample_count, len(ds))), np.zeros(min(cfg.sample_count, len(ds)), bool))

    def save(step: int) -> Path | None:
        rngs = [None] * world
        if ddp:
            dist.all_gather_object(rngs, rng_state())
        else:
            rngs = [rng_state()]
        if not master:
            return None
        return save_checkpoint(run_dir, {
            "step": step, "model": asdict(model), "train": asdict(cfg), "generator": raw_g.state_dict(),
            "critic": raw_d.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "rng": rngs, "au_names": list(AU_NAMES), "crop_spec": ds.crop_spec, "dataset": ds.source,
            "processes": world}, cfg.keep_checkpoints)

    # First Ctrl-C: finish the step, save, stop. A second one interrupts at once.
    interrupted = threading.Event()
    old_handler = None
    if threading.current_thread() is threading.main_thread():
        def on_sigint(signum: int, frame: Any) -> None:
            if interrupted.is_set():
                raise KeyboardInterrupt
            interrupted.set()
        old_handler = signal.signal(signal.SIGINT, on_sigint)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[stats]}"), TimeRemainingColumn(), console=console,
                        disable=quiet or not master)
    meter, last, ckpt = _Meter(), None, None
    step, t_start, t_log, step_log = start, time.time(), time.time(), start
    metrics_file = (run_dir / "metrics.jsonl").open("a") if master else None
    task = progress.add_task("warm-up" if start < warmup else "train", total=total, completed=start, stats="")
    progress.start()
    try:
        while step < end:
            batch = next(loader)
            x = batch["x"].to(device, non_blocking=True).contiguous(memory_format=memory_format)
            y = batch["y"].to(device, non_blocking=True)
            if step >= warmup:
                factor = lr_factor(step - warmup, main_steps, cfg.decay_fraction)
            elif step >= critic_end:
                factor = lr_factor(step - critic_end, cfg.pair_warmup_steps, cfg.pair_decay_fraction)
            else:
                factor = 1.0
            for opt, lr in ((opt_g, cfg.lr_g), (opt_d, cfg.lr_d)):
                for group in opt.param_groups:
                    group["lr"] = lr * factor  # a function of the step: nothing to restore on resume
            if critic_end <= step < warmup:
                # ---- generator warm-up on paired targets ----
                with amp:
                    g_loss = pair_warmup_loss(g_net, x, batch, cfg, model, None if real_loader is None else next(real_loader))
                opt_g.zero_grad(set_to_none=True)
                g_loss.total.backward()
                opt_g.step()
                meter.add(g_pair=g_loss.pair, g_attn=g_loss.attn, **({} if g_loss.real is None else {"g_real": g_loss.real}))
            elif step < warmup:
                # ---- critic AU-head warm-up ----
                with amp:
                    loss = critic_warmup_loss(d_net, x, y, cfg.lambda_y)
                opt_d.zero_grad(set_to_none=True)
                loss.backward()
                opt_d.step()
                meter.add(d_au=loss)
            else:
                k = step - warmup
                paired = max(cfg.lambda_pair, cfg.lambda_pair_color, cfg.lambda_pair_attention) > 0 and "y_t" in batch
                pair_mask = None
                if not paired:
                    y_g = sample_targets(batch["y"], cfg.target_noise)
                elif cfg.pair_fraction >= 1:
                    y_g = batch["y_t"]
                else:  # mixed batches: a random `pair_fraction` of the samples aim at their pair
                    pair_mask = torch.rand(len(x)) < cfg.pair_fraction
                    y_g = torch.where(pair_mask[:, None], batch["y_t"], sample_targets(batch["y"], cfg.target_noise))
                    pair_mask = pair_mask.to(device)
                y_g = y_g.to(device)
                alpha = torch.rand(len(x), 1, 1, 1).to(device)
                g_turn = (k + 1) % cfg.n_critic == 0
                # ---- fakes: with a graph on generator turns, reused by the G update below
                # (G does not change in between), so no step runs G twice on the same input ----
                fwd = priors(batch["lm"].numpy(), y_g - y, x.shape[-1]) if model.flow_prior else None
                with amp, torch.set_grad_enabled(g_turn):
                    outputs = (g_net if g_turn else raw_g)(x, condition(model, y_g, y), *_given(fwd))
                    attention = outputs[1]
                    fake = compose(outputs, x)[0].detach()
                # ---- critic update ----
                with amp:
                    d_loss = critic_losses(d_net, x, y, fake, alpha, cfg, with_gp=k % cfg.gp_every == 0)
                opt_d.zero_grad(set_to_none=True)
                d_loss.total.backward()
                opt_d.step()
                meter.add(d_total=d_loss.total, d_adv=d_loss.adv, d_gp=d_loss.gp, d_au=d_loss.au,
                          attention=attention.mean())
                # ---- generator update, every n_critic steps ----
                if g_turn:
                    raw_d.requires_grad_(False)  # gradients flow to the image only
                    x_t = batch["x_t"].to(device) if paired else None
                    with amp:
                        back = back_priors(batch["lm"].numpy(), y_g - y, x.shape[-1]) if model.flow_prior else None
                        g_loss, _ = generator_losses(g_net, raw_d, x, y, y_g, outputs, cfg, model, x_t, pair_mask, back, fwd)
                    opt_g.zero_grad(set_to_none=True)
                    g_loss.total.backward()
                    opt_g.step()
                    raw_d.requires_grad_(True)
                    meter.add(g_total=g_loss.total, g_adv=g_loss.adv, g_au=g_loss.au, g_cyc=g_loss.cyc,
                              g_attn=g_loss.attn, g_pair=g_loss.pair,
                              **{f"g_{k}": v for k in ("chroma", "residual") if (v := getattr(g_loss, k)) is not None})
            step += 1
            progress.update(task, completed=step)

            # ---- logging, samples, checkpoints (rank 0 writes) ----
            if master and (step % cfg.log_every == 0 or step == end):
                now = time.time()
                phase = "warmup" if step <= critic_end else "pair_warmup" if step <= warmup else "gan"
                last = {"step": step, "phase": phase, "lr_factor": round(factor, 6),
                        **meter.pop(),
                        "images_per_s": round((step - step_log) * cfg.batch_size * world / max(now - t_log, 1e-9), 3),
                        "elapsed_s": round(now - t_start, 2)}
                metrics_file.write(json.dumps(last) + "\n")
                metrics_file.flush()
                t_log, step_log = now, step
                progress.update(task, description="warm-up" if step < warmup else "train", stats=" ".join(
                    f"{k}={last[k]:.3g}" for k in ("d_total", "g_total", "d_au", "attention", "images_per_s") if k in last))
            if master and (step % cfg.sample_every == 0 or step == end):
                write_samples(run_dir / "samples" / f"step_{step:08d}.png", raw_g, fixed, device)
            stop = interrupted.is_set() or (max_seconds is not None and time.time() - t_start >= max_seconds)
            if master and callback is not None:
                stop = bool(callback(TrainState(step, total, raw_g, raw_d, last, time.time() - t_start, run_dir))) or stop
            if ddp:
                flag = torch.tensor([float(stop)], device=device)
                dist.all_reduce(flag)
                stop = flag.item() > 0
            if step % cfg.ckpt_every == 0 or step == end or stop:
                ckpt = save(step)
            if stop:
                break
    finally:
        progress.stop()
        loader.close()
        if real_loader is not None:
            real_loader.close()
        if metrics_file is not None:
            metrics_file.close()
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)

    exported = None
    if export is not None and master:
        exported = save_inference(Path(export), raw_g, model, crop_spec=ds.crop_spec, provenance={
            "step": step, "train_config": asdict(cfg), "dataset": ds.source, "images": len(ds),
            "processes": world, "seconds": round(time.time() - t_start, 1)})
    if own_group:
        dist.destroy_process_group()
    return TrainResult(run_dir, step, ckpt, exported, last)


def train_preset(preset: str | Path, data: str | Path, *, out_dir: str | Path | None = None,
                 overrides: dict[str, Any] | None = None, resume: bool = False, resize: bool = False,
                 export: str | Path | None = None, quiet: bool = False, init: str | Path | None = None) -> TrainResult:
    """`ganivid train`: configs from a preset and overrides, then train(); `init`: an inference
    model or checkpoint whose generator the run starts from (a fine-tune)."""
    model, cfg = load_config(preset, overrides)
    out = Path(out_dir) if out_dir is not None else Path("runs") / Path(str(preset)).stem
    start = None
    if init is not None and not resume:
        from ganivid.checkpoint import load_generator

        generator, info = load_generator(str(init), torch.device("cpu"))
        start = generator.state_dict()
        wanted = Generator(model).state_dict()
        if any(k not in start or start[k].shape != v.shape for k, v in wanted.items()):
            raise ConfigError(f"--init {init}: its generator is not the preset's model "
                              f"({', '.join(k for k in asdict(model) if getattr(info.model, k) != getattr(model, k))} differ)")
    result = train(cfg, model, data, out, resume=resume, export=export, resize=resize, quiet=quiet, init=start)
    if not quiet and int(os.environ.get("RANK", 0)) == 0:
        from rich.console import Console
        done = f"trained to step {result.step} in {result.run_dir}"
        if result.export:
            done += f"; generator exported to {result.export}"
        Console(stderr=True).print(done)
    return result
