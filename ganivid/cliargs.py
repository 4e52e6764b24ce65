"""Checks of `ganivid`'s options that typer cannot make: an option given twice where the last would
silently win, and photo-only options given for a video."""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence

from ganivid.errors import ConfigError


def one_expression(values: Sequence[str]) -> str | None:
    """The one --expression given (typer would keep the last of several without a word)."""
    if len(values) > 1:
        raise ConfigError(f"--expression given {len(values)} times ({', '.join(values)}): give one; "
                          "to combine expressions, write them as curves in an --au-curve file")
    return values[0] if values else None


def photo_only(given: dict[str, object]) -> None:
    """Refuse photo-only options (name -> value, None when not given) for a video input."""
    named = [name for name, value in given.items() if value is not None]
    if named:
        raise ConfigError(f"{', '.join(named)} {'is' if len(named) == 1 else 'are'} for photo input; "
                          "a video keeps its own length and frame rate")


@contextlib.contextmanager
def shown_warnings(quiet: bool) -> Iterator[None]:
    """ganivid's warnings as `warning: ...` lines on stderr (as `animate` shows a video's), not
    Python's `file:line: UserWarning` form, for the commands without a reporter of their own."""
    from ganivid.reporter import Reporter

    reporter = Reporter(quiet)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        reporter.collect(caught)
        reporter.reissue()
