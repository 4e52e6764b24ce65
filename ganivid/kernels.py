"""numba loops for small elementwise steps of `animate`'s render pass, each in one pass over
memory where torch or numpy take four or five, and without the GIL. Each computes what the code
it stands in for computes, in float32, op by op in the same order (no fused multiply-adds), so
the results are equal bit for bit: `tests/test_kernels.py` compares them."""
from __future__ import annotations

import numpy as np
from numba import njit

# x + 1.5 * 2**23 - 1.5 * 2**23 in float32 is x rounded to the nearest integer, halves to even
# (torch.round, np.round, OpenCV's cvRound), for |x| < 2**22.
ROUND = np.float32(12582912.0)


@njit(cache=True, nogil=True)
def _to_uint8(v):
    """data.to_images of one value: clamp(-1, 1) + 1, * 127.5, rounded."""
    v = min(max(v, np.float32(-1.0)), np.float32(1.0))
    return np.uint8(((v + np.float32(1.0)) * np.float32(127.5) + ROUND) - ROUND)


@njit(cache=True, nogil=True)
def _composite_uint8(x, color, attention, images, colours):
    for b in range(x.shape[0]):
        a = attention[b, 0].ravel()
        for c in range(x.shape[1]):
            xs, cs = x[b, c].ravel(), color[b, c].ravel()
            im, co = images[b, c].ravel(), colours[b, c].ravel()
            for i in range(a.size):
                # losses.composite: A * I + (1 - A) * C, each op rounded to float32
                im[i] = _to_uint8(a[i] * xs[i] + (np.float32(1.0) - a[i]) * cs[i])
                co[i] = _to_uint8(cs[i])


def composite_uint8(x: np.ndarray, color: np.ndarray, attention: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`to_images(composite(color, attention, x))` and `to_images(color)` of float32 (B, 3, n, n)
    inputs, colour and (B, 1, n, n) attention: (B, n, n, 3) uint8 views of channel planes, as
    `to_images` returns them (0.12 against torch's 0.96 ms for 8 crops of 96 px,
    benchmarks/face_steps.py)."""
    images, colours = (np.empty(x.shape, np.uint8) for _ in range(2))
    _composite_uint8(np.ascontiguousarray(x, np.float32), np.ascontiguousarray(color, np.float32),
                     np.ascontiguousarray(attention, np.float32), images, colours)
    return images.transpose(0, 2, 3, 1), colours.transpose(0, 2, 3, 1)


@njit(cache=True, nogil=True)
def _smooth(crop, edited, prev, keep, take, delta, out):
    for y in range(crop.shape[0]):
        for x in range(crop.shape[1]):
            for c in range(crop.shape[2]):
                d = np.float32(edited[y, x, c]) - np.float32(crop[y, x, c])
                if prev.size:
                    d = keep * prev[y, x, c] + take * d
                delta[y, x, c] = d
                v = min(max(np.float32(crop[y, x, c]) + d, np.float32(0.0)), np.float32(255.0))
                out[y, x, c] = np.uint8((v + ROUND) - ROUND)


def smooth_edit(crop: np.ndarray, edited: np.ndarray, prev: np.ndarray | None, keep: float) -> tuple[np.ndarray, np.ndarray]:
    """`pipeline.EditSmoother`'s step on (n, n, 3) uint8 crops: the edit d = edited - crop
    (float32), blended with the previous frame's as keep * prev + (1 - keep) * d if there is one
    (float32, as numpy takes Python scalars); (that edit, crop + edit rounded to uint8)."""
    delta = np.empty(crop.shape, np.float32)
    out = np.empty(crop.shape, np.uint8)
    _smooth(crop, edited, np.empty((0, 0, 0), np.float32) if prev is None else prev,
            np.float32(keep), np.float32(1 - keep), delta, out)
    return delta, out


@njit(cache=True, nogil=True)
def _add_into(plane, change, top):
    for y in range(plane.shape[0]):
        for x in range(plane.shape[1]):
            v = min(max(np.float32(plane[y, x]) + change[y, x], np.float32(0.0)), top)
            plane[y, x] = (v + ROUND) - ROUND


def add_into(plane: np.ndarray, change: np.ndarray, top: int) -> None:
    """plane[:] = clip(plane + change, 0, top), rounded (halves to even): an integer plane (a
    view, written in place) plus a float32 change, as numpy computes it, in one pass."""
    _add_into(plane, change, np.float32(top))


def warm_up() -> None:
    """Load the render pass's compiled loops (these and `shrink`'s) now, ~30 ms, rather than at
    the first frame; the first time after install numba compiles them, ~5 s."""
    from ganivid.shrink import shrink

    shrink(np.zeros((8, 8, 3), np.uint8), 0.7)
    z = np.zeros((1, 3, 4, 4), np.float32)
    images, _ = composite_uint8(z, z, z[:, :1])
    crop = np.zeros((4, 4, 3), np.uint8)
    smooth_edit(crop, images[0], None, 0.0)
    smooth_edit(crop, images[0], np.zeros((4, 4, 3), np.float32), 0.5)
    change = np.zeros((4, 4, 4), np.float32)[..., 0]  # a channel of paste_back_i420's warped change
    for plane, top in ((np.zeros((4, 4), np.uint8), 255), (np.zeros((4, 4), np.uint16), 1023)):
        add_into(plane[1:, 1:], change[1:, 1:], top)
