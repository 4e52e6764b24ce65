"""8-bit 4:4:4 and 4:2:2 YUV, full-range (yuvj) YUV and grey frames as limited-range I420 planes.

swscale turns these layouts into RGB with truncating fixed-point arithmetic: a render went about
one grey level dark over the whole frame, where 4:2:0 input (read as planes) stayed exact. Here
their luma is copied (or range-mapped, rounded), their chroma averaged down to 4:2:0 (rounded),
and the result goes the 4:2:0 planes' way (`ganivid.yuv`): exact luma, no RGB round trip."""
from __future__ import annotations

import av
import numpy as np

from ganivid.yuv import MATRICES

# Layouts read here: (chroma rows per 2 luma rows, chroma columns per 2 luma columns), full range.
LAYOUTS = {"yuv444p": (2, 2, False), "yuv422p": (2, 1, False), "yuvj420p": (1, 1, True),
           "yuvj422p": (2, 1, True), "yuvj444p": (2, 2, True), "gray": (0, 0, True)}
# Full range (0-255) -> limited range: luma 16-235, chroma 16-240 around 128; rounded.
_LUMA = np.round(16 + np.arange(256) * 219 / 255).astype(np.uint8)
_CHROMA = np.round(128 + (np.arange(256) - 128) * 224 / 255).astype(np.uint8)


def _plane(p, rows: int, cols: int) -> np.ndarray:
    return np.frombuffer(p, np.uint8)[:rows * p.line_size].reshape(rows, p.line_size)[:, :cols]


def _halve(c: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A chroma plane with `rows` / `cols` samples per 2 luma pixels -> one per 2x2 (rounded mean)."""
    c = c.astype(np.uint16)
    if rows == 2:
        c = c[0::2] + c[1::2]
    if cols == 2:
        c = c[:, 0::2] + c[:, 1::2]
    n = (2 if rows == 2 else 1) * (2 if cols == 2 else 1)
    return ((c + n // 2) // n).astype(np.uint8)


def other_i420(f: av.VideoFrame) -> np.ndarray | None:
    """The limited-range I420 array (H*3/2, W) of an 8-bit frame of one of `LAYOUTS` with even sides
    and a matrix `ganivid.yuv` converts; None for any other frame."""
    layout = LAYOUTS.get(f.format.name)
    if layout is None or f.width % 2 or f.height % 2 or int(f.colorspace) not in MATRICES:
        return None
    rows, cols, full = layout
    full = full or f.color_range == 2  # 2: AVCOL_RANGE_JPEG on a plain yuv layout
    h, w = f.height, f.width
    out = np.empty((h * 3 // 2, w), np.uint8)
    y = _plane(f.planes[0], h, w)
    out[:h] = _LUMA[y] if full else y
    chroma = out[h:].reshape(2, h // 2, w // 2)  # U then V, each (H/2, W/2) flat (even sides)
    if rows == 0:  # grey: no colour
        chroma[:] = 128
        return out
    for k in (1, 2):
        c = _halve(_plane(f.planes[k], h if rows == 2 else h // 2, w if cols == 2 else w // 2), rows, cols)
        chroma[k - 1] = _CHROMA[c] if full else c
    return out
