"""Per-face cost of the render pass's own steps on I420 frames; prints one JSON line.

For 640x360, 1920x1080 and 3840x2160 frames with a face half the frame high (the astronaut),
cropped to 96 px: the crop from the planes' footprint (`yuv.crop_i420`, what `animate` runs)
against converting the whole frame to RGB first (`to_rgb` + `crop_face`, what it ran before),
and the paste of an edit back into the planes (`yuv.paste_back_i420`). Also the composite after
the network on 8 crops, from the tensor `to_tensor` makes (contiguous) and from the
channels-last view it made before; the composite with both uint8 conversions (the composited
crops and the colour masks) by torch and by `kernels.composite_uint8`, which the engine runs on
the CPU; and the area shrink of a 330 px RGB footprint by 0.65 (a 220 px face cut to 96 px)
by OpenCV and by `shrink.shrink`, which `crop_face` runs. One OpenCV and one torch thread;
medians of 5 timings of `--repeat` calls each.

    python benchmarks/face_steps.py [--repeat 50]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import cv2
import numpy as np
import torch
from skimage import data

from ganivid.align import Alignment, crop_face
from ganivid.data import to_images, to_tensor
from ganivid.kernels import composite_uint8
from ganivid.losses import composite
from ganivid.shrink import shrink
from ganivid.yuv import crop_i420, from_bt601, from_rgb, paste_back_i420, to_rgb


def ms(fn, repeat: int) -> float:
    """Median over 5 timings of `repeat` calls, in ms per call."""
    fn()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(repeat):
            fn()
        times.append((time.perf_counter() - t) / repeat)
    return round(1000 * statistics.median(times), 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    out = {"benchmark": "face_steps", "crop": 96, "threads": 1}
    for w, h in ((640, 360), (1920, 1080), (3840, 2160)):
        i420 = from_rgb(cv2.resize(data.astronaut(), (w, h), interpolation=cv2.INTER_AREA), 1)
        al = Alignment(0.5 * w, 0.45 * h, 0.5 * h, 5.0)
        crop = crop_i420(i420, al, 96, 1)
        edited = np.clip(crop + rng.integers(-20, 21, crop.shape), 0, 255).astype(np.uint8)
        out[f"{w}x{h}"] = {
            "crop_footprint_ms": ms(lambda: crop_i420(i420, al, 96, 1), args.repeat),  # noqa: B023
            "crop_whole_frame_ms": ms(lambda: from_bt601(crop_face(to_rgb(i420), al, 96), 1), args.repeat),  # noqa: B023
            "paste_ms": ms(lambda: paste_back_i420(i420, crop, edited, al, matrix=1), args.repeat),  # noqa: B023
        }
    crops = rng.integers(0, 256, (8, 96, 96, 3), dtype=np.uint8)
    x = to_tensor(crops)
    strided = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)  # the old to_tensor
    color, attention = torch.rand(8, 3, 96, 96) * 2 - 1, torch.rand(8, 1, 96, 96)
    with torch.inference_mode():
        out["composite_8_crops_ms"] = {"contiguous": ms(lambda: composite(color, attention, x), args.repeat),
                                       "channels_last_view": ms(lambda: composite(color, attention, strided), args.repeat)}
        out["composite_and_uint8_8_crops_ms"] = {
            "torch": ms(lambda: (to_images(composite(color, attention, x)), to_images(color)), args.repeat),
            "numba": ms(lambda: composite_uint8(x.numpy(), color.numpy(), attention.numpy()), args.repeat)}
    footprint = cv2.resize(data.astronaut(), (330, 330), interpolation=cv2.INTER_AREA)
    out["shrink_330px_rgb_by_0.65_ms"] = {
        "opencv": ms(lambda: cv2.resize(footprint, None, fx=0.65, fy=0.65, interpolation=cv2.INTER_AREA), args.repeat),
        "numba": ms(lambda: shrink(footprint, 0.65), args.repeat)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
