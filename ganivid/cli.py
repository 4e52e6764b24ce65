"""The `ganivid` command line: parse options, call the library, print user errors as one line."""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Callable

import typer

from ganivid.errors import GanividError

app = typer.Typer(
    name="ganivid",
    help="Change facial expressions in videos with an Action-Unit-conditioned GAN (GANimation).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def command(*args, **kwargs) -> Callable:
    """Register a command whose `GanividError`s become `error: ...` on stderr and exit code 1."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            try:
                return fn(*a, **kw)
            except GanividError as ex:
                if os.environ.get("GANIVID_DEBUG") == "1":
                    raise
                typer.echo(f"error: {ex}", err=True)
                raise typer.Exit(1) from None
            except KeyboardInterrupt:
                typer.echo("error: interrupted", err=True)
                raise typer.Exit(130) from None

        return app.command(*args, **kwargs)(wrapper)

    return decorate


def main() -> None:
    """Console-script entry point."""
    app()


# Commands are defined below, one section per command; each body is one library call.


# --- synth ---------------------------------------------------------------------------------
@command("synth")
def synth_cmd(
    out: Path = typer.Argument(..., help="New folder to write: imgs/*.png, aus.csv, identities.csv."),
    count: int = typer.Option(1000, "--count", "-n", help="Number of face images."),
    size: int = typer.Option(128, "--size", help="Side of the square crops in pixels."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed writes the same dataset."),
    per_identity: int = typer.Option(1, "--per-identity", help="Images per synthetic identity."),
) -> None:
    """Write a synthetic face dataset with exact AU labels (folder format: imgs/ + aus.csv)."""
    from ganivid.synth import write_dataset

    write_dataset(str(out), count, size=size, seed=seed, per_identity=per_identity)
    typer.echo(f"wrote {count} faces to {out}")


# --- train / export ------------------------------------------------------------------------
@command("train")
def train_cmd(
    data: Path = typer.Option(..., "--data", "-d", help="Dataset folder: crops + aus.csv, or the GANimation layout."),
    config: str = typer.Option("cpu", "--config", "-c", help="Preset name in training/ (paper, cpu, tiny) or a .toml file."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run folder for checkpoints, metrics and samples (default: runs/PRESET)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its newest checkpoint."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (default: the preset's, auto)."),
    steps: int | None = typer.Option(None, "--steps", help="Train for this many steps (overrides the preset)."),
    epochs: float | None = typer.Option(None, "--epochs", help="Train for this many epochs (overrides the preset)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Images per process per step."),
    set_: list[str] = typer.Option([], "--set", help="Override any key: --set train.lr_g=2e-4 (repeatable)."),
    resize: bool = typer.Option(False, "--resize", help="Resample crops of another size instead of refusing them."),
    export: Path | None = typer.Option(None, "--export", help="At the end, write the inference model here (.safetensors)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train GANimation on a face dataset (under torchrun: DDP on all processes)."""
    from ganivid.config import parse_override
    from ganivid.train import train_preset

    overrides = dict(parse_override(s) for s in set_)
    overrides.update({f"train.{k}": v for k, v in
                      (("device", device), ("batch_size", batch_size), ("epochs", epochs), ("steps", steps)) if v is not None})
    if epochs is not None and steps is None:
        overrides["train.steps"] = 0  # --epochs alone must not lose to a preset's steps
    train_preset(config, data, out_dir=out, overrides=overrides, resume=resume, resize=resize,
                 export=export, quiet=quiet)


@command("export")
def export_cmd(
    checkpoint: Path = typer.Argument(..., help="Training checkpoint (ckpt_*.pt) or a run folder (its newest)."),
    output: Path = typer.Option(..., "--output", "-o", help="Inference file to write (.safetensors)."),
) -> None:
    """Write the generator of a training checkpoint as an inference model (safetensors)."""
    from ganivid.checkpoint import export

    typer.echo(f"wrote {export(checkpoint, output)}")
