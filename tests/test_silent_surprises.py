"""Issue 25's silent surprises and misleading messages: each now a notice, a refusal or an exact result."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from ganivid.cli import app

runner = CliRunner()


def _smooth(n: int, w: int = 64, h: int = 48, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [cv2.GaussianBlur(rng.integers(30, 220, (h, w, 3), np.uint8), (9, 9), 0) for _ in range(n)]


def _encode(path: Path, frames: list[np.ndarray], pix_fmt: str, codec: str = "libx264", rate: int = 25) -> Path:
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=rate)
        v.width, v.height, v.pix_fmt = w, h, pix_fmt
        v.time_base = v.codec_context.time_base = Fraction(1, rate)
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode())
    return path


def _limited_luma(path: Path) -> list[np.ndarray]:
    """Each frame's luma as limited-range (16-235) levels, full-range layouts mapped exactly."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            p = f.planes[0]
            y = np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:f.height, :f.width].astype(np.float64)
            full = f.format.name.startswith("yuvj") or f.format.name == "gray" or f.color_range == 2
            out.append(16 + y * 219 / 255 if full else y)
    return out


LAYOUTS = [("yuv444p", "libx264"), ("yuv422p", "libx264"), ("yuvj420p", "libx264"), ("yuvj420p", "mjpeg"),
           ("gray", "ffv1")]


@pytest.mark.parametrize("pix_fmt,codec", LAYOUTS, ids=[f"{p}-{c}" for p, c in LAYOUTS])
def test_other_layouts_keep_their_brightness(pix_fmt, codec, model, tmp_path):
    """Not 4:2:0: read as exact 4:2:0 planes (swscale's RGB was about a level dark), so the output's
    luma is the input's, up to the encoder's own error, as for 4:2:0 input."""
    from ganivid.video import read_frames

    src = _encode(tmp_path / "in.mkv", _smooth(4), pix_fmt, codec)
    frames = list(read_frames(src, yuv=True))
    want = _limited_luma(src)
    assert all(f.yuv for f in frames)
    assert all(np.abs(f.image[:48].astype(np.float64) - np.round(w)).max() == 0 for f, w in zip(frames, want))
    out = tmp_path / "out.mp4"
    result = runner.invoke(app, ["animate", str(src), "--model", str(model), "--au", "AU12=1", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    got = _limited_luma(out)
    assert len(got) == len(want)
    assert abs(np.mean([g.mean() - w.mean() for g, w in zip(got, want)])) < 0.3


@pytest.mark.parametrize("name,text", [
    ("short.json", '{"AU12": [[0, 0], [1, 1]], "smile": [["0.5s", 0], [2, 0.7]], "fps": 25}'),
    ("short.toml", 'fps = 25\nAU12 = [[0, 0], [1, 1]]\nsmile = [["0.5s", 0], [2, 0.7]]\n'),
])
def test_the_short_curve_form_reads_as_the_long_one(name, text, tmp_path):
    """`{"AU12": [[0, 0], [1, 1]]}`, the mapping a user writes first: each key an AU or expression."""
    from ganivid.curves import load_curves

    (tmp_path / "long.json").write_text('{"fps": 25, "curves": [{"au": "AU12", "keys": [[0, 0], [1, 1]]}, '
                                        '{"expression": "smile", "keys": [["0.5s", 0], [2, 0.7]]}]}')
    (tmp_path / name).write_text(text)
    short, long = load_curves(tmp_path / name), load_curves(tmp_path / "long.json")
    assert [(c.target, c.mode, c.interp, c.times, c.values) for c in short.curves] == \
        [(c.target, c.mode, c.interp, c.times, c.values) for c in long.curves]
    t = np.linspace(0, 3, 13)
    assert np.array_equal(short.evaluate(t), long.evaluate(t)) and short.fps == long.fps == 25
