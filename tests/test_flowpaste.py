"""Paste-back of a flow edit (edited = A·warp(I, F) + (1 − A)·C) at the frame's own resolution:
the frame's pixels moved by F carried to frame coordinates, then the colour change added, in RGB
and in I420 planes (8 and 10 bits), against an exact warp of a band-limited analytic texture."""
import cv2
import numpy as np
import pytest

from ganivid.align import Alignment, crop_face, crop_matrix, footprint, frame_flow, paste_back, warp_by_flow
from ganivid.yuv import paste_back_i420, planes, to_rgb

N = 96
SIDE = 512
# A bump that moves a patch of the crop (centre, radius, peak displacement, crop px): C2-smooth,
# exactly zero from the radius on, well inside the feather (the outer 12 %: 11.5 px).
CENTRE, RADIUS, PEAK = (48.0, 52.0), 30.0, (2.5, -2.0)


def bump_at(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """The bump's flow (..., 2) in crop pixels at crop positions px, py (...)."""
    s = np.clip(1 - ((px - CENTRE[0]) ** 2 + (py - CENTRE[1]) ** 2) / RADIUS**2, 0, None) ** 3
    return s[..., None] * np.array(PEAK)


def bump_flow() -> np.ndarray:
    """The bump on the crop's pixel grid, (N, N, 2) float32."""
    py, px = np.mgrid[:N, :N].astype(np.float64)
    return bump_at(px, py).astype(np.float32)


def waves(seed: int, k: int = 6, fmax: float = 0.25) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k plane waves: frequencies (k, 2) in cycles/px up to fmax, phases (k,), amplitudes (k,)."""
    rng = np.random.default_rng(seed)
    r, a = rng.uniform(0.03, fmax, k), rng.uniform(0, 2 * np.pi, k)
    return np.stack([r * np.cos(a), r * np.sin(a)], 1), rng.uniform(0, 2 * np.pi, k), np.full(k, 105.0 / k)


def texture(w: tuple, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A band-limited texture (..., float) at any positions x, y (...): exact under any warp."""
    f, ph, amp = w
    return 128 + np.cos(2 * np.pi * (x[..., None] * f[:, 0] + y[..., None] * f[:, 1]) + ph) @ amp


def exact_displacement(al: Alignment, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The bump carried to frame coordinates, analytically: inv[:, :2] @ F(M q), (..., 2)."""
    m = crop_matrix(al, N)
    px, py = m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]
    inv, _ = footprint(al, N)
    return bump_at(px, py) @ inv[:, :2].T


def inside(al: Alignment, size: tuple[int, int]) -> np.ndarray:
    """Frame pixels (h, w) bool whose centre the crop covers."""
    return cv2.warpAffine(np.ones((N, N), np.uint8), footprint(al, N)[0], size[::-1], flags=cv2.INTER_NEAREST) > 0


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def rgb_scene(angle: float) -> tuple[Alignment, np.ndarray, np.ndarray, np.ndarray]:
    """A face 4x the crop (al.size = 4 N) on an RGB texture: alignment, frame (SIDE, SIDE, 3)
    uint8, the exact warp (SIDE, SIDE, 3) float of the frame by the bump, and the bump's frame
    displacement (SIDE, SIDE, 2)."""
    al = Alignment(256.3, 250.7, 4 * N, angle)
    y, x = np.mgrid[:SIDE, :SIDE].astype(np.float64)
    d = exact_displacement(al, x, y)
    ws = [waves(c) for c in range(3)]
    frame = np.stack([np.round(texture(w, x, y)) for w in ws], 2).astype(np.uint8)
    exact = np.stack([texture(w, x + d[..., 0], y + d[..., 1]) for w in ws], 2)
    return al, frame, exact, d


@pytest.mark.parametrize("angle", [0.0, 23.0])
def test_flow_paste_matches_the_exact_full_resolution_warp(angle):
    al, frame, exact, d = rgb_scene(angle)
    crop, flow = crop_face(frame, al, N), bump_flow()
    warped = warp_by_flow(crop, flow)
    out = paste_back(frame, crop, warped, al, flow=flow)
    foot = inside(al, frame.shape[:2])
    moved = np.hypot(d[..., 0], d[..., 1]) > 0.5
    new, old = psnr(out[foot], exact[foot]), psnr(paste_back(frame, crop, warped, al)[foot], exact[foot])
    moved_new = psnr(out[moved], exact[moved])
    print(f"\nangle {angle}: flow paste {new:.1f} dB over the footprint ({moved_new:.1f} where it moves > 0.5 px), "
          f"change paste {old:.1f} dB")
    assert new >= 40 and moved_new >= 45
    assert new >= old + 15  # the change paste leaves the old edges in place: ghosts
    assert np.array_equal(out[~foot], frame[~foot])


def test_zero_flow_unedited_crop_is_bit_identical(astronaut):
    al = Alignment(251.3, 197.6, 208.0, 9.0)
    crop = crop_face(astronaut, al, N)
    zero = np.zeros((N, N, 2), np.float32)
    assert np.array_equal(paste_back(astronaut, crop, crop, al, flow=zero, warped_crop=crop), astronaut)
    assert np.array_equal(paste_back(astronaut, crop, crop, al, flow=zero), astronaut)  # warp(I, 0) = I
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    assert np.array_equal(paste_back(grey, crop, crop, al, flow=zero), grey)


def test_zero_flow_reduces_to_the_change_paste(astronaut):
    al = Alignment(251.3, 197.6, 208.0, -14.0)
    crop = crop_face(astronaut, al, N)
    edited = crop.copy()
    edited[30:70, 20:60] = (250, 40, 90)
    zero = np.zeros((N, N, 2), np.float32)
    assert np.array_equal(paste_back(astronaut, crop, edited, al, flow=zero), paste_back(astronaut, crop, edited, al))


def test_only_moved_or_changed_pixels_change():
    """Pixels whose displacement is exactly 0 keep their value bit for bit (the crop's border
    among them: the bump is 0 there), and nothing outside the footprint's box ever changes."""
    al, frame, _, _ = rgb_scene(17.0)
    crop, flow = crop_face(frame, al, N), bump_flow()
    disp, (x0, y0, x1, y1) = frame_flow(flow, al, frame.shape[:2])
    moved = np.zeros(frame.shape[:2], bool)
    moved[y0:y1, x0:x1] = np.any(disp != 0, axis=2)
    warped = warp_by_flow(crop, flow)
    changed = np.any(paste_back(frame, crop, warped, al, flow=flow) != frame, axis=2)
    assert changed.sum() > 5000 and not np.any(changed & ~moved)
    # Moved pixels lie where the bump is: its radius (+1 crop px of bilinear reach), not the border.
    y, x = np.mgrid[:SIDE, :SIDE]
    m = crop_matrix(al, N)
    r = np.hypot(m[0, 0] * x + m[0, 1] * y + m[0, 2] - CENTRE[0], m[1, 0] * x + m[1, 1] * y + m[1, 2] - CENTRE[1])
    assert not np.any(moved & (r > RADIUS + 1.5))
    # A flow and a colour change over the whole crop: still nothing outside the box.
    edited = np.clip(warped.astype(int) + 60, 0, 255).astype(np.uint8)
    out = paste_back(frame, crop, edited, al, flow=np.full((N, N, 2), (3.0, -2.0), np.float32), warped_crop=warped)
    box = np.zeros_like(moved)
    box[y0:y1, x0:x1] = True
    assert np.any(out[box] != frame[box]) and np.array_equal(out[~box], frame[~box])


def test_displacement_falls_to_zero_at_the_crop_border():
    """A flow that moves the whole crop: the frame's displacement is feathered to ~0 at the crop's
    border, and exactly 0 outside it."""
    al = Alignment(256.3, 250.7, 4 * N, 31.0)
    disp, (x0, y0, x1, y1) = frame_flow(np.full((N, N, 2), (3.0, -2.0), np.float32), al, (SIDE, SIDE))
    size = np.hypot(*disp.transpose(2, 0, 1))
    foot = inside(al, (SIDE, SIDE))[y0:y1, x0:x1]
    ring = foot & ~cv2.erode(foot.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert size.max() == pytest.approx(4 * np.hypot(3, 2), rel=1e-4)  # the crop's px are 4 frame px
    assert size[ring].max() < 0.05 * size.max()
    grown = cv2.dilate(foot.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert not np.any(size[~grown])


def test_flow_then_colour_is_move_then_change_paste(astronaut):
    """The colour part is today's change paste, from warp(I, F) to the edit, on the moved frame."""
    al = Alignment(251.3, 197.6, 2 * N, 12.0)
    crop, flow = crop_face(astronaut, al, N), bump_flow()
    warped = warp_by_flow(crop, flow)
    edited = warped.copy()
    edited[40:60, 30:70] = (255, 255, 255)
    moved = paste_back(astronaut, crop, warped, al, flow=flow)
    assert np.array_equal(paste_back(astronaut, crop, edited, al, flow=flow), paste_back(moved, warped, edited, al))


def test_grey_frame_moves_as_each_rgb_channel(astronaut):
    al = Alignment(251.3, 197.6, 2 * N, -8.0)
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    crop, flow = crop_face(grey, al, N), bump_flow()
    warped = warp_by_flow(crop, flow)
    out = paste_back(grey, crop, warped, al, flow=flow)
    assert np.any(out != grey)
    assert np.array_equal(out, paste_back(np.dstack([grey] * 3), crop, warped, al, flow=flow)[..., 0])


def i420_scene(angle: float, deep: bool) -> tuple[Alignment, np.ndarray, list[np.ndarray]]:
    """A face 4x the crop on I420 textures (SIDE x SIDE luma; 10-bit in uint16 if `deep`):
    alignment, frame, and the exact warps of its Y, U, V planes (float, 8-bit levels)."""
    al = Alignment(256.3, 250.7, 4 * N, angle)
    y, x = np.mgrid[:SIDE, :SIDE].astype(np.float64)
    cy, cx = np.mgrid[:SIDE // 2, :SIDE // 2].astype(np.float64)
    d = exact_displacement(al, x, y)
    dc = exact_displacement(al, 2 * cx + 0.5, 2 * cy + 0.5) / 2  # chroma sits between its 2x2 lumas
    ws = [waves(10 + c, fmax=0.25 if c == 0 else 0.12) for c in range(3)]  # chroma: smoother, as in video
    grids, shifts = [(x, y), (cx, cy), (cx, cy)], [d, dc, dc]
    scale = 4 if deep else 1
    frame = np.empty((SIDE * 3 // 2, SIDE), np.uint16 if deep else np.uint8)
    for p, w, (gx, gy) in zip(planes(frame), ws, grids):
        p[:] = np.round(scale * texture(w, gx, gy))
    exact = [scale * texture(w, gx + s[..., 0], gy + s[..., 1]) for w, (gx, gy), s in zip(ws, grids, shifts)]
    return al, frame, exact


@pytest.mark.parametrize("deep", [False, True])
def test_i420_zero_flow_is_bit_identical_and_reduces_to_the_change_paste(astronaut, deep):
    from ganivid.yuv import from_rgb, with_depth

    frame = with_depth(from_rgb(astronaut), deep)
    al = Alignment(251.3, 197.6, 208.0, 9.0)
    crop = crop_face(to_rgb(frame), al, N)
    zero = np.zeros((N, N, 2), np.float32)
    assert np.array_equal(paste_back_i420(frame, crop, crop, al, flow=zero, warped_crop=crop), frame)
    edited = crop.copy()
    edited[30:70, 20:60] = (250, 40, 90)
    assert np.array_equal(paste_back_i420(frame, crop, edited, al, matrix=1, flow=zero),
                          paste_back_i420(frame, crop, edited, al, matrix=1))


@pytest.mark.parametrize("deep", [False, True])
def test_i420_flow_paste_matches_the_exact_warp(deep):
    al, frame, exact = i420_scene(19.0, deep)
    crop, flow = crop_face(to_rgb(frame), al, N), bump_flow()
    warped = warp_by_flow(crop, flow)
    out = paste_back_i420(frame, crop, warped, al, flow=flow)
    foot = inside(al, (SIDE, SIDE))
    peak = 1023.0 if deep else 255.0
    got = [psnr(p[f], e[f], peak) for p, e, f in zip(planes(out), exact, (foot, foot[::2, ::2], foot[::2, ::2]))]
    print(f"\nI420 {'10' if deep else '8'}-bit: Y {got[0]:.1f}, U {got[1]:.1f}, V {got[2]:.1f} dB over the footprint")
    assert min(got) >= 40
    # Unmoved pixels bit-identical, in every plane: the flow's field and its half for the chroma
    disp, (x0, y0, x1, y1) = frame_flow(flow, al, (SIDE, SIDE), grid=2)
    half = cv2.resize(disp, ((x1 - x0) // 2, (y1 - y0) // 2), interpolation=cv2.INTER_AREA)
    for p, q, d, (a, b) in zip(planes(out), planes(frame), (disp, half, half), ((x0, y0), (x0 // 2, y0 // 2), (x0 // 2, y0 // 2))):
        moved = np.zeros(p.shape, bool)
        moved[b:b + d.shape[0], a:a + d.shape[1]] = np.any(d != 0, axis=2)
        assert np.any(p != q) and np.array_equal(p[~moved], q[~moved])


def test_flow_at_the_frame_edge(astronaut):
    """A face cut by the frame's edge moves what is inside the frame (the kernel's reach past the
    edge replicates it); one wholly outside changes nothing."""
    frame = astronaut[:, 180:].copy()  # the face's left half is outside
    al = Alignment(251.3 - 180, 197.6, 2 * N, 6.0)
    crop, flow = crop_face(frame, al, N), np.full((N, N, 2), (3.0, -2.0), np.float32)
    out = paste_back(frame, crop, warp_by_flow(crop, flow), al, flow=flow)
    assert out.shape == frame.shape and np.any(out != frame)
    far = Alignment(-500, -500, 100, 0)
    assert np.array_equal(paste_back(frame, crop, crop, far, flow=flow), frame)
