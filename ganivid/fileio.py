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
