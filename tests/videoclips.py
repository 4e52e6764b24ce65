"""Tiny test clips written with PyAV directly (independent of ganivid's writer)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

MARK = 16  # side of the top-left block whose grey level encodes the frame index


def mark_value(i: int) -> int:
    """Grey level of frame i's marker block: 7 levels apart, so lossy codecs keep them apart."""
    return 20 + (i % 30) * 7


def read_mark(image: np.ndarray) -> int:
    """Frame index (mod 30) encoded in an image's marker block."""
    return round((float(image[2:MARK - 2, 2:MARK - 2].mean()) - 20) / 7)


def clip_image(i: int, w: int, h: int) -> np.ndarray:
    """Frame i: a moving colour gradient with the marker block in the top-left corner."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 3 + i * 4) % 256, (yy * 3 + i * 2) % 256, (xx + yy) % 256], -1).astype(np.uint8)
    img[:MARK, :MARK] = mark_value(i)
    return img


def make_clip(path: Path, n: int = 20, size: tuple[int, int] = (64, 48), rate: Fraction | int = 25,
              pts: list[int] | None = None, time_base: Fraction | None = None, rotation: int = 0,
              audio: tuple[tuple[str, int, str], ...] = (), codec: str = "libx264", pix_fmt: str | None = None) -> Path:
    """Write a clip: frames at `pts` (default 0..n-1 in 1/rate), optional display rotation and
    audio streams given as (codec, sample rate, layout) carrying a soft tone as long as the video."""
    w, h = size
    tb = time_base or Fraction(1) / Fraction(rate)
    pts = pts if pts is not None else list(range(n))
    out = av.open(str(path), "w")
    v = out.add_stream(codec, rate=rate, options={"crf": "10", "b": "0"} if "vpx" in codec else {})
    v.width, v.height = w, h
    v.pix_fmt = pix_fmt or ("yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p")
    v.time_base = v.codec_context.time_base = tb
    if rotation:
        v.set_display_rotation(rotation)
    streams = [out.add_stream(c, rate=r, layout=lay) for c, r, lay in audio]
    for i, p in enumerate(pts):
        f = av.VideoFrame.from_ndarray(clip_image(i, w, h), format="rgb24")
        f.pts, f.time_base = p, tb
        out.mux(v.encode(f))
    out.mux(v.encode())
    seconds = float((pts[-1] + (pts[-1] - pts[-2] if len(pts) > 1 else 1)) * tb)
    for k, a in enumerate(streams):
        rate_a = a.rate
        t = np.arange(int(seconds * rate_a)) / rate_a
        tone = (0.05 * np.sin(2 * np.pi * (330 + 110 * k) * t)).astype(np.float32)
        chans = a.layout.nb_channels
        for s0 in range(0, len(tone), 960):
            chunk = np.repeat(tone[None, s0:s0 + 960], chans, 0)
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=a.layout.name)
            af.sample_rate, af.pts = rate_a, s0
            out.mux(a.encode(af))
        out.mux(a.encode())
    out.close()
    return path


def decoded_samples(path: Path) -> list[tuple[str, int, int]]:
    """(codec, sample rate, decoded sample count) of every audio stream: the duration a listener hears."""
    result = []
    with av.open(str(path)) as c:
        for a in c.streams.audio:
            result.append((a.codec_context.name, a.rate, sum(f.samples for f in c.decode(a))))
            c.seek(0)
    return result


def write_unusable_media(d: Path, good: Path) -> None:
    """Beside a good clip, files no video reader can use: truncated.mp4 (its first half), zero.mp4
    (empty), text.mp4 (text) and audio.m4a (one second of silent AAC, no video)."""
    (d / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (d / "zero.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("this is not a video\n")
    with av.open(str(d / "audio.m4a"), "w") as out:
        a = out.add_stream("aac", rate=48000, layout="mono")
        for s0 in range(0, 48000, 1024):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, s0
            out.mux(a.encode(af))
        out.mux(a.encode())
