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
