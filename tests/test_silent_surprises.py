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


def _run(argv: list) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in argv])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stderr


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: ") and "no usable face" not in line]


def test_subtitles_are_copied_where_the_container_takes_them(model, tmp_path):
    (tmp_path / "in.srt").write_text("1\n00:00:00,000 --> 00:00:00,100\nhello\n\n2\n00:00:00,120 --> 00:00:00,160\nworld\n")
    src = tmp_path / "subs.mkv"
    with av.open(str(tmp_path / "in.srt")) as srt, av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        s = c.add_stream_from_template(srt.streams[0])
        for i, img in enumerate(_smooth(6)):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            c.mux(v.encode(f))
        c.mux(v.encode())
        for p in srt.demux(srt.streams[0]):
            if p.size:
                p.stream = s
                c.mux(p)
    for extra in ([], ["--no-audio"]):  # subtitles are not audio
        code, err = _run(["animate", src, "--model", model, "--au", "AU12=1", "-o", tmp_path / "out.mkv", "-q", "-y",
                          *extra])
        assert code == 0 and not _warnings(err), err
        with av.open(str(tmp_path / "out.mkv")) as c:
            cues = [(p.pts, bytes(p)) for p in c.demux(c.streams.subtitles[0]) if p.size]
        assert cues == [(0, b"hello"), (120, b"world")]
    code, err = _run(["animate", src, "--model", model, "--au", "AU12=1", "-o", tmp_path / "out.mp4", "-q"])
    assert code == 0 and _warnings(err) == [
        "warning: subtitle stream #1 (subrip) cannot be copied into .mp4: left out (.mkv would keep it)"], err


def test_strength_outside_0_1_warns_as_a_value_does(model, tmp_path):
    from ganivid.curves import load_curves

    (tmp_path / "s.json").write_text('{"curves": [{"expression": "smile", "mode": "blend", "strength": 5, '
                                     '"keys": [[0, 0], [1, 1]]}]}')
    with pytest.warns(UserWarning, match="s.json, curve 1: strength 5 is outside"):
        load_curves(tmp_path / "s.json")
    src = _encode(tmp_path / "in.mp4", _smooth(4), "yuv420p")
    code, err = _run(["animate", src, "--model", model, "--au-curve", tmp_path / "s.json", "--dry-run"])
    assert code == 0 and any("strength 5 is outside [0, 1]" in w for w in _warnings(err)), err


def test_curves_that_start_after_the_end_are_named(model, tmp_path):
    (tmp_path / "late.json").write_text('{"AU12": [["10s", 0], ["12s", 1]], "AU4": [[0, 0], [1, 1]]}')
    src = _encode(tmp_path / "in.mp4", _smooth(6), "yuv420p")  # 0.24 s
    code, err = _run(["animate", src, "--model", model, "--au-curve", tmp_path / "late.json", "--dry-run"])
    late = [w for w in _warnings(err) if "after the video's end" in w]
    assert code == 0 and len(late) == 1 and "late.json, curve 1: its first key, 10s (10.00 s)" in late[0], err


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut) -> Path:
    from PIL import Image

    d = tmp_path_factory.mktemp("photos")
    frames = [Image.fromarray(astronaut), Image.fromarray(np.roll(astronaut, 8, axis=1))]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.fromarray(np.dstack([astronaut, np.full(astronaut.shape[:2], 200, np.uint8)])).save(d / "rgba.png")
    grey16 = (cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257)
    cv2.imwrite(str(d / "deep.png"), grey16)
    return d


@pytest.mark.parametrize("name,notice", [
    ("anim.gif", "anim.gif is animated (2 frames): its first frame is used as the photo"),
    ("rgba.png", "rgba.png has an alpha channel: out.png is opaque"),
    ("deep.png", "deep.png has more than 8 bits per channel: out.png has 8"),
])
def test_what_a_photo_loses_is_said(name, notice, photos, model, tmp_path):
    code, err = _run(["animate", photos / name, "--model", model, "--expression", "smile:0.5",
                      "-o", tmp_path / "out.png", "-q"])
    assert code == 0 and [notice in w for w in _warnings(err)] == [True], err
    assert (tmp_path / "out.png").is_file()
