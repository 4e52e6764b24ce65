"""ganivid.kernels stands in for torch and numpy steps of the render pass: equal bit for bit."""
import numpy as np
import torch

from ganivid.data import to_images
from ganivid.kernels import add_into, composite_uint8, smooth_edit
from ganivid.losses import composite


def test_composite_uint8_is_to_images_of_composite():
    g = torch.Generator().manual_seed(0)
    for trial in range(6):
        x = torch.rand(5, 3, 40, 40, generator=g) * 2.4 - 1.2  # past [-1, 1] too: the clamp
        color = torch.tanh(torch.randn(5, 3, 40, 40, generator=g) * 3) * (1.1 if trial % 2 else 1.0)
        attention = torch.rand(5, 1, 40, 40, generator=g)
        if trial == 0:  # every value that lands exactly between two levels: rounding halves to even
            color = (torch.arange(5 * 3 * 40 * 40, dtype=torch.float32).reshape(5, 3, 40, 40) % 256 + 0.5) / 127.5 - 1
            attention = torch.zeros_like(attention)
        images, colours = composite_uint8(x.numpy(), color.numpy(), attention.numpy())
        assert images.shape == colours.shape == (5, 40, 40, 3) and images.dtype == np.uint8
        assert np.array_equal(images, to_images(composite(color, attention, x)))
        assert np.array_equal(colours, to_images(color))


def _numpy_step(crop, edited, prev, keep):
    """EditSmoother's step as it was written in numpy."""
    delta = edited.astype(np.float32) - crop
    if prev is not None:
        delta = keep * prev + (1 - keep) * delta
    return delta, np.clip(crop + delta, 0, 255).round().astype(np.uint8)


def test_smooth_edit_is_the_numpy_step():
    rng = np.random.default_rng(5)
    crop = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    planes = rng.integers(0, 256, (3, 48, 48), dtype=np.uint8)
    edited = planes.transpose(1, 2, 0)  # a view of channel planes, as the engine's edits are
    prev = None
    for keep in (0.0, 0.37, 0.8187307530779818, 0.999):
        ours = smooth_edit(crop, edited, prev, keep)
        theirs = _numpy_step(crop, edited, prev, keep)
        assert ours[0].dtype == np.float32 and np.array_equal(ours[0], theirs[0]), keep
        assert np.array_equal(ours[1], theirs[1]), keep
        prev = ours[0] * 7.3  # large previous edits: the result saturates at 0 and 255


def test_add_into_is_numpys_clipped_rounded_sum():
    rng = np.random.default_rng(11)
    for dtype, top in ((np.uint8, 255), (np.uint16, 1023)):
        frame = rng.integers(0, top + 1, (40, 60), dtype=dtype)
        change = (rng.normal(0, 40, (30, 50, 4)) * (4 if top > 255 else 1)).astype(np.float32)
        change[0, :10, 0] = np.arange(10) + 0.5  # halves: to even
        region = frame[5:35, 7:57]
        expected = np.clip(region + change[..., 0], 0, top).round().astype(dtype)
        before = frame.copy()
        add_into(region, change[..., 0], top)
        assert np.array_equal(region, expected)
        outside = np.ones(frame.shape, bool)
        outside[5:35, 7:57] = False
        assert np.array_equal(frame[outside], before[outside])  # only the region is written
