import os
import stat

import pytest

from ganivid.fileio import atomic_path


def test_atomic_path_renames_with_default_permissions(tmp_path):
    target = tmp_path / "out.mp4"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".mp4" and tmp != target
        tmp.write_bytes(b"data")
        assert not target.exists()
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_bytes() == b"data"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_path_leaves_nothing_on_error_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
