"""I420 frames: 4:2:0 planes in one (H*3/2, W) array (Y, then U, then V; cv2's and PyAV's
layout), uint8 for 8-bit video, uint16 for 10-bit (yuv420p10le), for the render pass of `animate`.

Decoded pixels stay in YUV from decoder to encoder: a frame is converted to RGB only to crop its
faces, and an edit is added to the planes as a change (like `align.paste_back`), so every pixel
the edit does not touch reaches the encoder exactly as decoded, at its own bit depth. The RGB
round trip it replaces moved luma by ~1 level on average and cost ~3 ms of a 640x360 frame's
~8 ms outside the generator (swscale's RGB -> YUV alone 2.1 ms). Colours are limited range, with
the matrix the video is tagged with (`matrix`, FFmpeg's AVColorSpace: 1 BT.709, most HD video;
9 BT.2020, phones' HDR; anything else BT.601, as PyAV/swscale decode them). Also here: which
decoded frames pass as planes, and their grey and RGB images for the other paths."""
from __future__ import annotations

import functools

import av
import cv2
import numpy as np

from ganivid.align import Alignment, crop_face, footprint, frame_flow, remap_moved, warp_by_flow, warped_change

# AVColorSpace values whose planes this module converts as swscale does, and whose tags the writer
# copies: BT.709 (1), BT.2020 (9; phones film HDR in it, with HLG or PQ), and BT.601 (5, 6) or
# untagged (2), which swscale treats as BT.601. Others come as RGB and are written untagged.
MATRICES = (1, 2, 5, 6, 9)
PLANES = ("yuv420p", "yuv420p10le")  # 4:2:0 formats that pass as planes (8 and 10 bits)
_KR_KB = {1: (0.2126, 0.0722), 9: (0.2627, 0.0593)}  # luma weights of red and blue by AVColorSpace
_BT601 = (0.299, 0.114)  # every other matrix value, as swscale treats them


@functools.cache
def rgb_to_yuv(matrix: int = 2) -> np.ndarray:
    """3x3 float32: an RGB change (0..255) -> the limited-range 8-bit Y, U, V change (rows), with
    the colour matrix of AVColorSpace `matrix` (BT.601 is cv2's RGB<->I420 matrix)."""
    kr, kb = _KR_KB.get(int(matrix), _BT601)
    y = np.array([kr, 1 - kr - kb, kb])
    u, v = (np.eye(3)[2] - y) / (2 * (1 - kb)), (np.eye(3)[0] - y) / (2 * (1 - kr))
    return (np.stack([219 * y, 224 * u, 224 * v]) / 255).astype(np.float32)


@functools.cache
def _from_601(matrix: int) -> np.ndarray | None:
    """RGB decoded from `matrix` planes with BT.601's matrix (cv2's I420 conversion) -> RGB as that
    matrix decodes them. Both are linear in the planes, so this is one 3x3 map, and it commutes
    with the crop's resampling: it runs on the face crops only, not on whole frames. None: BT.601."""
    if _KR_KB.get(int(matrix), _BT601) == _BT601:
        return None
    return np.linalg.solve(rgb_to_yuv(matrix).astype(np.float64), rgb_to_yuv(2)).astype(np.float32)


def planes(i420: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y (H, W), U and V ((H + 1) // 2, (W + 1) // 2) planes of a C-contiguous I420
    array. The chroma planes follow each other as flat runs, not as whole rows of W: at a height of
    2 more than a multiple of 4 (270) each ends in the middle of a row."""
    h, w = i420.shape[0] * 2 // 3, i420.shape[1]
    ch, cw = (h + 1) // 2, (w + 1) // 2
    flat = i420.reshape(-1)
    n, q = h * w, ch * cw
    return i420[:h], flat[n:n + q].reshape(ch, cw), flat[n + q:n + 2 * q].reshape(ch, cw)


def i420_of(f: av.VideoFrame) -> np.ndarray:
    """The I420 array (H*3/2, W) of a decoded yuv420p or yuv420p10le frame with even sides, each
    plane read with its own line size and height (decoders pad rows, and the chroma's differ)."""
    dtype = np.dtype(np.uint16 if f.format.name == "yuv420p10le" else np.uint8)
    out = np.empty((f.height * 3 // 2, f.width), dtype)
    for plane, dst in zip(f.planes, planes(out)):
        rows, cols = dst.shape
        if plane.line_size < cols * dtype.itemsize or plane.height < rows:
            raise ValueError(f"a {f.format.name} plane of {plane.width}x{plane.height} in a {f.width}x{f.height} frame")
        step = plane.line_size // dtype.itemsize  # a row of the decoder's plane, padding included
        dst[:] = np.frombuffer(plane, dtype)[:rows * step].reshape(rows, step)[:, :cols]
    return out


def with_depth(i420: np.ndarray, ten_bit: bool) -> np.ndarray:
    """The same planes in 8 bits (uint8, rounded) or 10 bits (uint16, 4 steps per level)."""
    if (i420.dtype == np.uint16) == ten_bit:
        return i420
    return i420.astype(np.uint16) << 2 if ten_bit else np.minimum((i420 + 2) >> 2, 255).astype(np.uint8)


def to_rgb(i420: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an I420 array (10-bit: rounded to 8 bits first), with BT.601's
    matrix (for other planes, follow with `from_bt601` where the colours matter)."""
    return cv2.cvtColor(with_depth(i420, False), cv2.COLOR_YUV2RGB_I420)


def from_bt601(rgb: np.ndarray, matrix: int) -> np.ndarray:
    """RGB uint8 that `to_rgb` decoded from planes of AVColorSpace `matrix`, as that matrix decodes
    them (to within rounding; colours beyond what BT.601 RGB holds stay clipped)."""
    m = _from_601(matrix)
    return rgb if m is None else cv2.transform(rgb, m)


def crop_i420(i420: np.ndarray, al: Alignment, n: int, matrix: int = 2) -> np.ndarray:
    """`align.crop_face` of an I420 frame's RGB image (as `from_bt601(to_rgb(...), matrix)`), with
    only the crop's footprint converted: the whole frame cost 0.15 ms at 640x360 and ~5 ms at 4K
    for a crop of 96 px. Equal to cropping the whole frame's RGB but for rare 1-level roundings."""
    h, w = i420.shape[0] * 2 // 3, i420.shape[1]
    _, corners = footprint(al, n)
    pad = 3 * al.size / n + 4  # crop_face's area filter margin and the warp's reach, and more
    x0, y0 = (max(int(np.floor(v - pad)) // 2 * 2, 0) for v in corners.min(0))
    x1, y1 = (min(-(-int(np.ceil(v + pad)) // 2) * 2, top) for v, top in zip(corners.max(0), (w, h)))
    if x1 - x0 < 2 * pad or y1 - y0 < 2 * pad:  # (almost) all outside the frame: crop_face replicates its edge
        return from_bt601(crop_face(to_rgb(i420), al, n), matrix)
    y, u, v = planes(i420)
    hh, ww = y1 - y0, x1 - x0
    part = np.empty(hh * ww * 3 // 2, i420.dtype)  # an I420 array of the footprint alone (any height)
    part[:hh * ww] = y[y0:y1, x0:x1].ravel()
    q = hh * ww // 4
    part[hh * ww:hh * ww + q] = u[y0 // 2:y1 // 2, x0 // 2:x1 // 2].ravel()
    part[hh * ww + q:] = v[y0 // 2:y1 // 2, x0 // 2:x1 // 2].ravel()
    rgb = to_rgb(part.reshape(hh * 3 // 2, ww))
    return from_bt601(crop_face(rgb, Alignment(al.cx - x0, al.cy - y0, al.size, al.angle), n), matrix)


def to_video_frame(i420: np.ndarray) -> av.VideoFrame:
    """An encoder frame (yuv420p; yuv420p10le of a uint16 array) with the planes of an I420 array,
    copied straight into the frame's own (PyAV's from_ndarray took 0.18-0.21 against 0.04 ms at
    640x360)."""
    h, w = i420.shape[0] * 2 // 3, i420.shape[1]
    vf = av.VideoFrame(w, h, "yuv420p10le" if i420.dtype == np.uint16 else "yuv420p")
    for plane, src in zip(vf.planes, planes(np.ascontiguousarray(i420))):
        rows, cols = src.shape
        step = plane.line_size // i420.itemsize  # a row of the frame's plane, padding included
        np.frombuffer(plane, i420.dtype)[:rows * step].reshape(rows, step)[:, :cols] = src
    return vf


def from_rgb(rgb: np.ndarray, matrix: int = 2) -> np.ndarray:
    """8-bit I420 array of an RGB uint8 image with even sides; chroma is the mean of each 2x2 block
    (cv2's own RGB -> I420 takes one pixel of four, which aliases); ~3x faster than swscale."""
    h, w = rgb.shape[:2]
    m = rgb_to_yuv(matrix)
    if _from_601(matrix) is not None:  # cv2 has BT.601's luma only
        out = np.empty((h * 3 // 2, w), np.uint8)
        out[:h] = cv2.transform(rgb, np.hstack([m[:1], [[16.0]]]))
    else:
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)  # its luma; chroma replaced below
    _, u, v = planes(out)
    uv = cv2.transform(cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA),
                       np.hstack([m[1:], [[128.0], [128.0]]]))
    u[:], v[:] = uv[..., 0], uv[..., 1]
    return out


def paste_back_i420(frame: np.ndarray, original_crop: np.ndarray, edited_crop: np.ndarray,
                    al: Alignment, feather: float = 0.12, matrix: int = 2, flow: np.ndarray | None = None,
                    warped_crop: np.ndarray | None = None) -> np.ndarray:
    """`align.paste_back` for an I420 frame (H*3/2, W) (uint8 8-bit, uint16 10-bit): the
    feathered change (edited - original, RGB crop space, (n, n, 3) uint8) warped back over the
    crop's footprint, converted to a YUV change (chroma averaged over its 2x2 pixels; `matrix`:
    the planes' AVColorSpace) and added to the planes; pixels outside the footprint stay
    bit-identical. With a backward `flow` (n, n, 2) float32 (crop pixels; dx, dy) the planes' own
    pixels are moved first, as `align.paste_back` moves RGB ones (chroma by half the displacement,
    sampled at its own positions), and the change is taken from `warped_crop` (warp(I, F),
    computed if None)."""
    out = frame.copy()
    y, u, v = planes(out)
    deep = out.dtype == np.uint16  # 10-bit planes: 4 steps per 8-bit level
    top = 1023 if deep else 255
    if flow is not None:
        clip = top if deep else None  # Lanczos overshoot: uint16 saturates at 65535, not 1023
        moved = frame_flow(flow, al, y.shape, feather, grid=2)  # even edges for the chroma
        if moved is not None:
            disp, (x0, y0, x1, y1) = moved
            remap_moved(y, disp, x0, y0, clip)
            # Chroma sample (i, j) sits at luma (2j + 0.5, 2i + 0.5): the mean of its 2x2 block's
            # displacements is the bilinear value there; halved into chroma pixels.
            half = cv2.resize(disp, ((x1 - x0) // 2, (y1 - y0) // 2), interpolation=cv2.INTER_AREA) * 0.5
            for plane in (u, v):
                remap_moved(plane, half, x0 // 2, y0 // 2, clip)
        original_crop = warp_by_flow(original_crop, flow) if warped_crop is None else warped_crop
    m = rgb_to_yuv(matrix) * 4 if deep else rgb_to_yuv(matrix)
    # The change as YUV in crop space, then warped: (h', w', 4) Y, U, V changes and the coverage
    change = warped_change(original_crop, edited_crop, al, y.shape, feather, grid=2, colour=m)  # even edges for the chroma
    if change is None:
        return out
    back, (x0, y0, x1, y1) = change
    from ganivid.kernels import add_into

    # each plane + its change, clipped to 0..top and rounded, in place
    add_into(y[y0:y1, x0:x1], back[..., 0], top)
    # The mean over each 2x2 block (INTER_AREA at exactly half size) is the chroma change.
    small = cv2.resize(back, ((x1 - x0) // 2, (y1 - y0) // 2), interpolation=cv2.INTER_AREA)
    for plane, k in ((u, 1), (v, 2)):
        add_into(plane[y0 // 2:y1 // 2, x0 // 2:x1 // 2], small[..., k], top)
    return out


def passes_as_planes(f: av.VideoFrame) -> bool:
    """A decoded frame whose planes this module handles: limited-range 4:2:0, 8 or 10 bits, even
    sides, one of `MATRICES`."""
    return (f.format.name in PLANES and f.color_range != 2 and f.width % 2 == f.height % 2 == 0
            and int(f.colorspace) in MATRICES)


def rgb_of(f: av.VideoFrame) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a decoded frame: 4:2:0 planes converted here, the way `animate`
    crops faces (swscale truncates: its RGB comes out ~1 level dark from 8-bit planes, 1-3 from
    10-bit ones; this module rounds); other formats by swscale."""
    if passes_as_planes(f):
        return from_bt601(to_rgb(i420_of(f)), int(f.colorspace))
    return f.to_ndarray(format="rgb24")


# 8-bit formats whose first plane is luma, and limited-range (16-235) luma -> full-range grey.
_LUMA_FIRST = {"yuv420p", "yuv422p", "yuv444p", "yuv440p", "yuv411p", "yuv410p", "yuva420p", "nv12", "nv21",
               "nv16", "nv24", "yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "gray"}
_LUMA_FIRST_10 = {"yuv420p10le", "yuv422p10le", "yuv444p10le"}  # 10-bit, little-endian: phones' HDR
_LUMA_LUT = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


def grey_of(f: av.VideoFrame, expand: bool = True) -> tuple[np.ndarray, bool]:
    """Grey uint8 (H, W) of a decoded frame, and whether it is limited-range luma (16-235) as stored
    (`expand` False; `full_range` expands it): the luma plane itself where there is one (no colour
    conversion at all; swscale's own yuv->gray path costs more than yuv->rgb24; 10-bit luma
    rounded to 8 bits), else RGB -> grey."""
    name = f.format.name
    p = f.planes[0]
    if name in _LUMA_FIRST_10:
        y = with_depth(np.frombuffer(p, np.uint16).reshape(-1, p.line_size // 2)[:f.height, :f.width], False)
        limited = f.color_range != 2
    elif name not in _LUMA_FIRST:
        return cv2.cvtColor(rgb_of(f), cv2.COLOR_RGB2GRAY), False
    else:
        y = np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:f.height, :f.width]
        limited = not (name.startswith("yuvj") or name == "gray" or f.color_range == 2)  # 2: AVCOL_RANGE_JPEG
    if limited and expand:
        return full_range(y), False
    return np.ascontiguousarray(y), limited


def full_range(luma: np.ndarray) -> np.ndarray:
    """Limited-range (16-235) luma -> full-range grey (0-255)."""
    return cv2.LUT(luma, _LUMA_LUT)
