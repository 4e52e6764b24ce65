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
