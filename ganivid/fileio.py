"""Atomic file output: write beside the target, rename over it when complete, never leave half a file."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temp_beside(path: Path) -> Path:
    """A new empty temporary file in `path`'s folder, hidden, with `path`'s extension (so
    muxers and image writers that look at the name pick the right format)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def commit(tmp: Path, path: Path) -> None:
    """Rename a finished temporary file over `path`, with the permissions a plain open() would
    give (mkstemp makes files 0600, which would hide users' outputs from everyone else)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` if the block completes and is
    removed if it raises (Ctrl-C included)."""
    path = Path(path)
    tmp = temp_beside(path)
    try:
        yield tmp
        commit(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_output(path: Path, overwrite: bool, error: type[Exception]) -> None:
    """Refuse, as `error`, an output whose folder is missing, which is a folder, or which exists
    without `overwrite`: checked before any work, so a user never waits for a refusal."""
    if not path.parent.is_dir():
        raise error(f"output folder {path.parent} does not exist")
    if path.is_dir():
        raise error(f"output {path} is a directory")
    if path.exists() and not overwrite:
        raise error(f"{path} already exists; pass -y (overwrite=True) to replace it")
