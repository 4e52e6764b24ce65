"""Every 4:2:0 frame size round trips through `animate`: heights 2 more than a multiple of 4 have
chroma planes that end mid-row of the I420 array (issue 25, item 1)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

SIZES = ([(64, h) for h in range(2, 65, 2)] + [(w, 64) for w in range(2, 65, 2) if w != 64]
         + [(480, 270), (1918, 1078)])
PTS = [0, 3, 5, 9]  # uneven steps: a re-timed frame would show


def _clip(path: Path, w: int, h: int, pix_fmt: str) -> Path:
    """A few frames of noise with a flat block, written with PyAV (lossless, so any lost row shows)."""
    rng = np.random.default_rng(w * 1000 + h)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=25, options={"qp": "0", "preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = w, h, pix_fmt
        v.time_base = v.codec_context.time_base = Fraction(1, 25)
        for p in PTS:
            f = av.VideoFrame.from_ndarray(rng.integers(0, 256, (h, w, 3), np.uint8), format="rgb24")
            f.pts = p
            out.mux(v.encode(f))
        out.mux(v.encode())
    return path


def _frames(path: Path) -> list[tuple[int, np.ndarray]]:
    with av.open(str(path)) as c:
        return [(f.pts, f.to_ndarray()) for f in c.decode(video=0)]  # PyAV's own I420 planes


@pytest.fixture(scope="module")
def engine(model):
    from ganivid.engine import load_engine

    return load_engine(model, "cpu", None)


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv420p10le"])
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_every_even_size_keeps_frames_timestamps_and_size(size, pix_fmt, engine, tmp_path):
    from ganivid.animate import animate
    from ganivid.video import probe

    w, h = size
    src = _clip(tmp_path / "in.mp4", w, h, pix_fmt)
    out = tmp_path / "out.mp4"
    result = animate(src, out, au=["AU12=1"], model=engine, crf=0, preset="ultrafast")
    info = probe(out)
    assert (info.width, info.height, info.pix_fmt) == (w, h, pix_fmt)
    a, b = _frames(src), _frames(out)
    assert result.frames == len(b) == len(PTS) and [p for p, _ in b] == [p for p, _ in a]
    # Lossless in 8 bits; x264's CRF 0 in 10 bits is near lossless: a few levels per row on
    # average, where noise in a shifted or lost row would be off by hundreds.
    for (_, x), (_, y) in zip(a, b):
        diff = np.abs(x.astype(int) - y.astype(int))
        assert diff.max() == 0 if pix_fmt == "yuv420p" else diff.mean(axis=1).max() < 8


@pytest.mark.parametrize("ten_bit", [False, True])
@pytest.mark.parametrize("size", [(480, 270), (320, 242), (64, 30)], ids=["480x270", "320x242", "64x30"])
def test_faces_crop_and_paste_in_planes_of_every_height(size, ten_bit, astronaut):
    """crop_i420 and paste_back_i420 on frames whose chroma planes end mid-row: the crop is the
    whole frame's RGB crop, and the paste changes the footprint only."""
    import cv2

    from ganivid.align import Alignment, crop_face
    from ganivid.yuv import crop_i420, from_rgb, paste_back_i420, to_rgb, with_depth

    w, h = size
    i420 = with_depth(from_rgb(cv2.resize(astronaut, (w, h), interpolation=cv2.INTER_AREA)), ten_bit)
    al = Alignment(w * 0.5, h * 0.45, h * 0.6, 10.0)
    crop = crop_i420(i420, al, 32)
    assert np.abs(crop.astype(int) - crop_face(to_rgb(i420), al, 32)).max() <= 2
    edited = np.clip(crop.astype(int) + 40, 0, 255).astype(np.uint8)
    out = paste_back_i420(i420, crop, edited, al)
    assert out.shape == i420.shape and out.dtype == i420.dtype
    changed = np.abs(out.astype(int) - i420.astype(int))
    assert changed[:h].any() and changed[h:].any()  # luma and chroma both took the change
    far = np.ones((h, w), bool)  # luma rows and columns well outside the footprint stay as they were
    far[max(0, int(al.cy - al.size)):int(al.cy + al.size), max(0, int(al.cx - al.size)):int(al.cx + al.size)] = False
    assert not changed[:h][far].any()


def test_a_face_at_a_height_of_2_more_than_a_multiple_of_4_is_edited(astronaut, model, tmp_path):
    from ganivid.animate import animate
    from ganivid.testclips import moving_clip, sprite

    clip = moving_clip(sprite(astronaut), n_frames=3, fps=25.0, size=(320, 242))
    src = tmp_path / "face.mp4"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=25, options={"crf": "12", "preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = 320, 242, "yuv420p"
        for i, img in enumerate(clip.frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode())
    result = animate(src, tmp_path / "out.mp4", au=["AU12=1"], model=model, device="cpu")
    assert result.frames == 3 and result.edited_frames >= 2
