"""The one crop function: similarity alignment from 68 landmarks, crop, and paste-back.

Training data (`annotate`), inference (`animate`, `preview`) and tests all crop with
`crop_face`, so a model always sees faces framed the same way (misaligned crops at test time
are GANimation's best-known failure)."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

# Canonical template, in units of the eye-centre distance d of a frontal face: the square crop
# is CROP_SIDE * s wide (s: robust face scale ~ d), centred CENTRE_DOWN * eye_to_mouth below
# the eye midpoint, which frames from above the brows to below the chin. Stored in checkpoints
# as CROP_SPEC; a model trained on another framing is refused.
CROP_SIDE = 3.2
CENTRE_DOWN = 0.62
CROP_SPEC = f"ganivid-v1:side={CROP_SIDE},down={CENTRE_DOWN}"

LEFT_EYE = slice(36, 42)  # the subject's right eye, image left
RIGHT_EYE = slice(42, 48)
MOUTH = slice(48, 68)


@dataclass(frozen=True)
class Alignment:
    """Where a face is: crop centre (cx, cy), side of the square crop `size` in pixels, and
    in-plane rotation `angle` in degrees (positive = face turned counter-clockwise in the image)."""

    cx: float
    cy: float
    size: float
    angle: float

    def as_array(self) -> np.ndarray:
        return np.array([self.cx, self.cy, self.size, self.angle], np.float64)


def to_stored(al: Alignment, rotation: int, stored_size: tuple[int, int]) -> Alignment:
    """The same face in the stored frame of a video that players turn by `rotation` degrees
    (counter-clockwise, a multiple of 90, as `video.to_upright`); `stored_size` is (h, w)."""
    h, w = stored_size
    k = round(rotation / 90) % 4
    x, y = al.cx, al.cy
    cx, cy = ((x, y), (w - 1 - y, x), (w - 1 - x, h - 1 - y), (y, h - 1 - x))[k]
    return Alignment(cx, cy, al.size, (al.angle + 90 * k + 180) % 360 - 180)


# Rows: left-eye mean, right-eye mean, mouth-corner mean (corners: less sensitive to mouth
# opening), as one product: the tracker computes this for every face in every frame.
_EYES_MOUTH = np.zeros((3, 68))
_EYES_MOUTH[0, LEFT_EYE], _EYES_MOUTH[1, RIGHT_EYE], _EYES_MOUTH[2, [48, 54]] = 1 / 6, 1 / 6, 0.5


def alignment_from_landmarks(landmarks: np.ndarray) -> Alignment:
    """Alignment of the canonical crop for 68 landmarks (68, 2)."""
    (lx, ly), (rx, ry), (mx, my) = (_EYES_MOUTH @ np.asarray(landmarks, np.float64)).tolist()
    ex, ey = (lx + rx) / 2, (ly + ry) / 2  # eye midpoint
    dx, dy, ux, uy = rx - lx, ry - ly, mx - ex, my - ey  # eye to eye, eye midpoint to mouth
    # Rotation from both the eye line and the eye-mouth axis (as FFHQ's alignment does), so a
    # blink or a squint does not tilt the crop.
    angle = math.degrees(math.atan2(dy - ux, dx + uy))
    # Face scale from both distances: eye-mouth is ~1.1 d on a frontal face and survives yaw.
    scale = 0.5 * math.hypot(dx, dy) + 0.5 * math.hypot(ux, uy) / 1.1
    return Alignment(ex + CENTRE_DOWN * ux, ey + CENTRE_DOWN * uy, CROP_SIDE * scale, angle)


def landmark_angles(landmarks: np.ndarray) -> np.ndarray:
    """`alignment_from_landmarks(...).angle` (degrees) of many landmark sets (..., 68, 2) at once."""
    e = _EYES_MOUTH @ np.asarray(landmarks, np.float64)  # (..., 3, 2)
    (lx, ly), (rx, ry), (mx, my) = (e[..., k, :].T for k in range(3))
    dx, dy, ux, uy = rx - lx, ry - ly, mx - (lx + rx) / 2, my - (ly + ry) / 2
    return np.degrees(np.arctan2(dy - ux, dx + uy)).T


def crop_matrix(al: Alignment, out_size: int) -> np.ndarray:
    """2x3 affine matrix mapping frame pixels to crop pixels (out_size x out_size)."""
    k = out_size / al.size
    a = np.radians(al.angle)
    cos, sin = np.cos(a) * k, np.sin(a) * k
    # Rotate by -angle around the centre, scale, then move the centre to the crop's centre.
    m = np.array([[cos, sin, 0.0], [-sin, cos, 0.0]])
    c = (out_size - 1) / 2
    m[:, 2] = np.array([c, c]) - m[:, :2] @ np.array([al.cx, al.cy])
    return m


def crop_landmarks(landmarks: np.ndarray, al: Alignment, n: int) -> np.ndarray:
    """Frame-pixel landmarks (68, 2) in the n-px crop at `al`, in crop pixels (float32)."""
    m = crop_matrix(al, n)
    return (np.asarray(landmarks, np.float64) @ m[:, :2].T + m[:, 2]).astype(np.float32)


def footprint(al: Alignment, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The crop -> frame matrix (2x3) of an n-px crop at `al`, and where the crop's 4 corners
    fall in the frame (4, 2): what cropping and pasting need to touch only the face's region."""
    inv = cv2.invertAffineTransform(crop_matrix(al, n))
    return inv, np.array([[0, 0, 1], [n, 0, 1], [0, n, 1], [n, n, 1]], np.float64) @ inv.T


def crop_face(image: np.ndarray, al: Alignment, out_size: int) -> np.ndarray:
    """The aligned face crop (out_size, out_size, 3) uint8 of an RGB image; outside the frame
    the border is replicated, so faces cut by the frame edge still give a full crop."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    m = crop_matrix(al, out_size)
    interp = cv2.INTER_AREA if al.size > 1.5 * out_size else cv2.INTER_LINEAR
    if interp == cv2.INTER_AREA:  # warpAffine has no area filter: pre-shrink, then warp
        f = 1.5 * out_size / al.size
        # Shrink only the crop's footprint (plus a filter margin), not the whole frame: a face in
        # a 4K frame then costs what it costs in a small one. Where the footprint leaves the
        # frame the region ends at the frame's edge, so the replicated border is the same.
        h, w = image.shape[:2]
        _, corners = footprint(al, out_size)
        pad = 2 / f + 2
        x0, y0 = (max(int(np.floor(v - pad)), 0) for v in corners.min(0))
        x1, y1 = min(int(np.ceil(corners[:, 0].max() + pad)), w), min(int(np.ceil(corners[:, 1].max() + pad)), h)
        if min(x1 - x0, y1 - y0) < pad:  # (almost) entirely outside: the whole frame, as before
            x0, y0, x1, y1 = 0, 0, w, h
        from ganivid.shrink import shrink  # numba: imported where first needed

        image = shrink(image[y0:y1, x0:x1], f)  # cv2.resize's INTER_AREA: the same pixels, ~4x faster
        m = np.hstack([m[:, :2] / f, m[:, 2:] + m[:, :2] @ np.array([[x0], [y0]], np.float64)])
        interp = cv2.INTER_LINEAR
    return cv2.warpAffine(image, m, (out_size, out_size), flags=interp, borderMode=cv2.BORDER_REPLICATE)


@functools.lru_cache(maxsize=8)
def feather_mask(out_size: int, feather: float = 0.12) -> np.ndarray:
    """Crop-space weight (out_size, out_size) float32: 1 inside, falling smoothly to 0 over the
    outer `feather` fraction of the crop, so pasted edits never show a crop border."""
    r = max(1.0, feather * out_size)
    t = np.arange(out_size, dtype=np.float32)
    edge = np.minimum(t + 0.5, out_size - t - 0.5) / r
    ramp = np.clip(edge, 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no kink at either end
    mask = np.outer(ramp, ramp).astype(np.float32)
    mask.flags.writeable = False  # one array per size, shared by every caller
    return mask


@functools.lru_cache(maxsize=8)
def _feather3(out_size: int, feather: float) -> np.ndarray:
    """`feather_mask` on three channels, for OpenCV's per-element product."""
    return cv2.merge([feather_mask(out_size, feather)] * 3)


def _box(al: Alignment, n: int, frame_size: tuple[int, int],
         grid: int = 1) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """The crop -> frame matrix (2x3) of an n-px crop at `al`, and the bounding box (x0, y0, x1, y1)
    of its footprint grown by 1 px for bilinear reach (edges widened to multiples of `grid`, clipped
    to the frame of size (h, w)); None where it misses the frame."""
    inv, corners = footprint(al, n)
    h, w = frame_size
    x0, y0 = (np.floor(corners.min(0)).astype(int) - 1) // grid * grid
    x1, y1 = -(-(np.ceil(corners.max(0)).astype(int) + 1) // grid) * grid
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    return inv, (None if x1 <= x0 or y1 <= y0 else (int(x0), int(y0), int(x1), int(y1)))


def warped_change(original_crop: np.ndarray, edited_crop: np.ndarray, al: Alignment, frame_size: tuple[int, int],
                  feather: float = 0.12, grid: int = 1,
                  colour: np.ndarray | None = None) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """The feathered change (edited - original, crop space) warped back into the frame: a float
    (h', w', 4) array (the 4th channel: the footprint's coverage, 0..1) over the bounding box
    (x0, y0, x1, y1) of the crop's footprint (edges widened to multiples of `grid`, clipped to the
    frame of size (h, w)), or None if nothing changes. `colour`: a 3x3 map applied to the change
    first (RGB -> YUV, say); both are linear, so mapping the crop is mapping the frame region, at
    a fifth of the pixels."""
    n = original_crop.shape[0]
    delta = cv2.multiply(cv2.subtract(edited_crop, original_crop, dtype=cv2.CV_32F), _feather3(n, feather))
    inv, box = _box(al, n, frame_size, grid)
    if box is None or not np.any(delta):
        return None
    x0, y0, x1, y1 = box
    if colour is not None:
        delta = cv2.transform(delta, colour)
    # Four channels: OpenCV's bilinear warp of float32 has a vector path for 1 and 4 channels
    # only (3: 0.30 ms, 4: 0.17 ms for a 96 px crop over 198 x 198 pixels), same values.
    delta = cv2.cvtColor(delta, cv2.COLOR_RGB2RGBA)
    # Warp only the bounding box of the crop's footprint: cheap on 4K frames.
    shift = inv.copy()
    shift[:, 2] -= (x0, y0)
    back = cv2.warpAffine(delta, shift, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return back, box


def warp_by_flow(crop: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """warp(crop, F)(p) = crop(p + F(p)), bilinear, border replicated: a crop (n, n, ...) moved
    by a backward flow (n, n, 2) float32 in crop pixels (channel 0 dx, 1 dy)."""
    n = crop.shape[0]
    flow = np.asarray(flow, np.float32)
    grid = np.stack(np.meshgrid(np.arange(n, dtype=np.float32), np.arange(n, dtype=np.float32)), axis=2)
    return cv2.remap(crop, grid + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def frame_flow(flow: np.ndarray, al: Alignment, frame_size: tuple[int, int], feather: float = 0.12,
               grid: int = 1) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """A crop's backward flow (n, n, 2) float32 (crop pixels; dx, dy) carried into the frame of
    size (h, w): D(q) = inv[:, :2] @ (feather · F)(M q) for each frame pixel q, a float32 (h', w', 2)
    array over the footprint's bounding box (x0, y0, x1, y1) (as `warped_change`'s), zero outside
    the footprint; None if it misses the frame or nothing moves."""
    n = flow.shape[0]
    flow = np.asarray(flow, np.float32)
    inv, box = _box(al, n, frame_size, grid)
    if box is None or not np.any(flow):
        return None
    x0, y0, x1, y1 = box
    # Feathered so the frame's displacement falls to 0 at the crop's border: no seam.
    f = np.zeros((n, n, 4), np.float32)  # 4 channels: warpAffine's vector path (2: ~12x slower)
    f[..., :2] = cv2.transform(flow * feather_mask(n, feather)[..., None], inv[:, :2])  # crop px -> frame px
    shift = inv.copy()
    shift[:, 2] -= (x0, y0)
    disp = cv2.warpAffine(f, shift, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    disp = np.ascontiguousarray(disp[..., :2])  # OpenCV takes channel-contiguous arrays only
    return (disp, box) if np.any(disp) else None


MOVED_PX = 0.01  # displacement (pixels) below which a pixel keeps its value


def remap_moved(plane: np.ndarray, disp: np.ndarray, x0: int, y0: int, top: int | None = None) -> None:
    """plane(q) <- plane(q + D(q)) in place (Lanczos-4, border replicated), for the pixels q of the
    region at (x0, y0) that `disp` (h', w', 2) float32 covers; `plane`: (H, W) or (H, W, c).
    Pixels whose D is below MOVED_PX keep their value bit for bit; `top` clips (10-bit in uint16)."""
    disp = np.ascontiguousarray(disp, np.float32)  # the complex view below needs (dx, dy) adjacent
    # A hundredth of a pixel changes no value: such pixels keep theirs, and only the box of the
    # pixels that really move is resampled (a smile moves a quarter of the face's footprint).
    moved = np.abs(disp.view(np.complex64)[..., 0]) >= MOVED_PX
    rows, cols = np.flatnonzero(moved.any(1)), np.flatnonzero(moved.any(0))
    if not len(rows):
        return
    (r0, r1), (c0, c1) = (rows[0], rows[-1] + 1), (cols[0], cols[-1] + 1)
    disp, moved, x0, y0 = disp[r0:r1, c0:c1], np.ascontiguousarray(moved[r0:r1, c0:c1]), x0 + c0, y0 + r0
    h, w = disp.shape[:2]
    # Absolute coordinates into the whole plane: the kernel reads real pixels beyond the box.
    where = disp + np.stack(np.meshgrid(np.arange(x0, x0 + w, dtype=np.float32),
                                        np.arange(y0, y0 + h, dtype=np.float32)), axis=2)
    # Lanczos: 0.87-0.96 of a face's Laplacian energy kept, bilinear 0.72 (calibration)
    res = cv2.remap(plane, where, None, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)
    if top is not None:
        np.minimum(res, top, out=res)
    region = plane[y0:y0 + h, x0:x0 + w]
    # Copied back through the mask into the view, in place (np.copyto's where: ~70x slower)
    if cv2.copyTo(res, moved.view(np.uint8), region) is not region:  # a binding that copied: write it
        np.copyto(region, res, where=moved if region.ndim == 2 else moved[..., None])


def paste_back(frame: np.ndarray, original_crop: np.ndarray, edited_crop: np.ndarray,
               al: Alignment, feather: float = 0.12, flow: np.ndarray | None = None,
               warped_crop: np.ndarray | None = None) -> np.ndarray:
    """Frame (H, W, 3) or (H, W) uint8 with the edit of one crop (n, n, 3) uint8 pasted in.

    The *change* (edited - original, in crop space) is warped back and added under the
    feathered border mask. The generator's attention is already in that change
    (edited = A·I + (1 − A)·C, so edited − I = (1 − A)(C − I)), which makes a crop the
    generator returned unchanged paste back as the exact input, with no resampling blur or
    colour shift, and leaves every pixel outside the warped crop bit-identical.

    With a backward `flow` (n, n, 2) float32 (crop pixels, channel 0 dx, 1 dy; edited =
    A·warp(I, F) + (1 − A)·C), the frame's own full-resolution pixels are moved first (`frame_flow`,
    `remap_moved`: sharp, no ghost of the old edges), then the change edited - warp(I, F) is added
    as above. `warped_crop`: warp(I, F) (n, n, 3) as the generator saw it; None computes it
    (`warp_by_flow`). Pixels that neither move nor change stay bit-identical."""
    out = frame.copy()
    if flow is not None:
        moved = frame_flow(flow, al, frame.shape[:2], feather)
        if moved is not None:
            disp, (x0, y0, _, _) = moved
            remap_moved(out, disp, x0, y0)
        original_crop = warp_by_flow(original_crop, flow) if warped_crop is None else warped_crop
    change = warped_change(original_crop, edited_crop, al, frame.shape[:2], feather)
    if change is None:
        return out
    back, (x0, y0, x1, y1) = change
    back = cv2.cvtColor(back, cv2.COLOR_RGBA2RGB)
    region = out[y0:y1, x0:x1]
    if region.ndim == 2:
        back = back.mean(axis=2)
    out[y0:y1, x0:x1] = np.clip(region.astype(np.float32) + back, 0, 255).round().astype(np.uint8)
    return out
