"""I420 frames: 8-bit 4:2:0 planes in one (H*3/2, W) uint8 array (Y, then U, then V; cv2's and
PyAV's layout) for the render pass of `animate`.

Decoded pixels stay in YUV from decoder to encoder: a frame is converted to RGB only to crop its
faces, and an edit is added to the planes as a change (like `align.paste_back`), so every pixel
the edit does not touch reaches the encoder exactly as decoded. The RGB round trip it replaces
moved luma by ~1 level on average and cost ~3 ms of a 640x360 frame's ~8 ms outside the
generator (swscale's RGB -> YUV alone 2.1 ms). Colours are BT.601 limited range both ways,
as PyAV/swscale's defaults for untagged video."""
from __future__ import annotations

import cv2
import numpy as np

from ganivid.align import Alignment, warped_change

# BT.601 limited range: RGB change (0..255) -> Y, U, V change (rows); cv2's RGB<->I420 uses it.
_RGB_TO_YUV = (np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]])
               / 255).astype(np.float32)
_RGB_TO_UV = np.hstack([_RGB_TO_YUV[1:], [[128.0], [128.0]]])  # with the offset: colours, not changes


def planes(i420: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y (H, W), U and V (H/2, W/2) planes of an I420 array."""
    h = i420.shape[0] * 2 // 3
    w = i420.shape[1]
    q = h // 4
    return i420[:h], i420[h:h + q].reshape(h // 2, w // 2), i420[h + q:h + 2 * q].reshape(h // 2, w // 2)


def to_rgb(i420: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an I420 array."""
    return cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)


def from_rgb(rgb: np.ndarray) -> np.ndarray:
    """I420 array of an RGB uint8 image with even sides; chroma is the mean of each 2x2 block
    (cv2's own RGB -> I420 takes one pixel of four, which aliases); ~3x faster than swscale."""
    h, w = rgb.shape[:2]
    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)  # its luma, and chroma replaced below
    _, u, v = planes(out)
    uv = cv2.transform(cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA), _RGB_TO_UV)
    u[:], v[:] = uv[..., 0], uv[..., 1]
    return out


def paste_back_i420(frame: np.ndarray, original_crop: np.ndarray, edited_crop: np.ndarray,
                    al: Alignment, feather: float = 0.12) -> np.ndarray:
    """`align.paste_back` for an I420 frame: the feathered change (edited - original, RGB crop
    space) warped back over the crop's footprint, converted to a YUV change (chroma averaged
    over its 2x2 pixels) and added to the planes; pixels outside the footprint stay bit-identical."""
    out = frame.copy()
    y, u, v = planes(out)
    change = warped_change(original_crop, edited_crop, al, y.shape, feather, grid=2)  # even edges for the chroma
    if change is None:
        return out
    back, (x0, y0, x1, y1) = change  # (h', w', 3) RGB change
    region = y[y0:y1, x0:x1]
    region[:] = _add(region, cv2.transform(back, _RGB_TO_YUV[:1]))
    # The mean over each 2x2 block (INTER_AREA at exactly half size) is the chroma change.
    small = cv2.resize(back, ((x1 - x0) // 2, (y1 - y0) // 2), interpolation=cv2.INTER_AREA)
    for plane, row in ((u, 1), (v, 2)):
        region = plane[y0 // 2:y1 // 2, x0 // 2:x1 // 2]
        region[:] = _add(region, cv2.transform(small, _RGB_TO_YUV[row:row + 1]))
    return out


def _add(plane: np.ndarray, change: np.ndarray) -> np.ndarray:
    """uint8 plane + float change, rounded and clipped to 0..255."""
    return np.clip(plane + change, 0, 255).round().astype(np.uint8)
