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


def commit(tmp: Path, path: Path, overwrite: bool = True) -> None:
    """Rename a finished temporary file over `path`, with the permissions a plain open() would
    give (mkstemp makes files 0600, which would hide users' outputs from everyone else).
    Without `overwrite` a file that appeared at `path` meanwhile (another run's) is never
    replaced: FileExistsError."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails, atomically, where `path` exists: a rename would replace it
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links (FAT, some shares): check, then rename
        if os.path.lexists(path):
            raise FileExistsError(17, "File exists", str(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def appeared(path: Path) -> str:
    """The message for an output that another run wrote while this one worked."""
    return f"{path} appeared while this run was writing it (another run?); kept it; pass -y to replace it"


@contextmanager
def atomic_path(path: str | Path, overwrite: bool = True, error: type[Exception] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` if the block completes and is
    removed if it raises (Ctrl-C included). With `error`, an unwritable folder and (without
    `overwrite`) a file that appeared at `path` meanwhile raise it, as one line."""
    path = Path(path)
    try:
        tmp = temp_beside(path)
    except OSError as ex:
        if error is None:
            raise
        raise error(f"cannot write in {path.parent}: {ex.strerror}") from None
    try:
        yield tmp
        try:
            commit(tmp, path, overwrite)
        except FileExistsError:
            if error is None:
                raise
            raise error(appeared(path)) from None
    finally:
        tmp.unlink(missing_ok=True)


def same_file(a: Path, b: Path) -> bool:
    """`a` and `b` name one file (through symlinks and hard links too)."""
    a, b = Path(a), Path(b)
    return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))


def check_writable(folder: Path, error: type[Exception]) -> None:
    """Refuse, as `error`, a folder where no file can be made (read-only, no permission): tried
    with a temporary file, as the write itself will, so root and read-only mounts are judged right."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ganivid-check-", dir=folder)
    except OSError as ex:
        raise error(f"cannot write in {folder}: {ex.strerror}") from None
    os.close(fd)
    os.unlink(tmp)


def check_output(path: Path, overwrite: bool, error: type[Exception], source: Path | None = None) -> None:
    """Refuse, as `error`, an output whose folder is missing or unwritable, which is a folder, which
    is the input `source`, or which exists without `overwrite`: checked before any work, so a user
    never waits for a refusal."""
    path = Path(path)
    if not path.parent.is_dir():
        raise error(f"output folder {path.parent} does not exist")
    if path.is_dir():
        raise error(f"output {path} is a directory")
    if source is not None and same_file(path, source):
        raise error(f"output {path} is the input file; choose another output path")
    if path.exists() and not overwrite:
        raise error(f"{path} already exists; pass -y (--overwrite) to replace it")
    check_writable(path.parent, error)
