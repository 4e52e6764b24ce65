"""Make the sample clips: 4.8 s, 25 fps, 640x360 H.264 with a soft AAC tone.

    samples/hopper.mp4     the README's main sample: matplotlib's Grace Hopper portrait (U.S. Navy
                           photograph, public domain), a neutral face, so a smile edit shows
    samples/astronaut.mp4  scikit-image's `astronaut` (Eileen Collins, NASA, public domain), who
                           already smiles; the benchmarks' clip

Each picture is filmed by a virtual camera that pans, zooms in and turns slightly, so the face
moves over its background the way it would in hand-held footage. Run from the repository root:
    python samples/make_samples.py [hopper] [astronaut]     (default: both)
The output is deterministic for a given PyAV/x264 build (only the libav version strings in the
file change between builds); each committed copy is < 1 MB.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np
from skimage import data

SIZE = (640, 360)  # output width, height
FPS = 25
SECONDS = 4.8
AUDIO_RATE = 44100


def ease(u: float) -> float:
    """Smooth 0 -> 1 with zero speed at both ends, like a camera operator's move."""
    return 0.5 - 0.5 * np.cos(np.pi * u)


def grace_hopper() -> np.ndarray:
    """matplotlib's Grace Hopper portrait, RGB uint8 600x512 (U.S. Navy photograph, public domain)."""
    import matplotlib.cbook as cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


@dataclass(frozen=True)
class Subject:
    """A photo and where the camera starts: the view's centre in photo pixels and its zoom."""
    photo: Callable[[], np.ndarray]
    centre: tuple[float, float]
    zoom: float


SUBJECTS = {
    # Her face (68 landmarks) is centred at about (268, 240) in the 600x512 photo, twice the
    # astronaut's size (eyes 86 px apart). Zoom 1.30 is about the least that keeps the 640 px
    # view inside her 512 px wide photo (only a turned corner leaves it, by 3 px), so her face
    # fills more of the frame than the astronaut's (eyes 112-131 px apart against 62-71).
    "hopper": Subject(grace_hopper, (262, 262), 1.30),
    # Her face is at about (222, 126) in the 512x512 photo.
    "astronaut": Subject(data.astronaut, (238, 178), 1.42),
}


def camera(image: np.ndarray, u: float, subject: Subject) -> np.ndarray:
    """The view at progress u in [0, 1]: pan, zoom in and a slight turn around the face."""
    e = ease(u)
    cx, cy = subject.centre[0] - 30 * e, subject.centre[1] - 16 * e
    zoom = subject.zoom + 0.22 * e
    angle = -3.0 + 6.0 * e
    m = cv2.getRotationMatrix2D((cx, cy), angle, zoom)
    m[:, 2] += np.array([SIZE[0] / 2 - cx, SIZE[1] / 2 - cy])
    # Reflect at the edges: only the corners of the turned view ever leave the photo.
    return cv2.warpAffine(image, m, SIZE, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)


def tone(n: int) -> np.ndarray:
    """A quiet two-note chord with 0.3 s fades: enough to exercise the audio path, easy to hear."""
    t = np.arange(n) / AUDIO_RATE
    wave = 0.03 * np.sin(2 * np.pi * 220 * t) + 0.02 * np.sin(2 * np.pi * 330 * t)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.3)
    return (wave * fade).astype(np.float32)


def make_video(path: Path, subject: Subject) -> None:
    """Write the clip with PyAV: x264 CRF 23 yuv420p video and a mono AAC track of equal length."""
    photo = subject.photo()
    frames = round(SECONDS * FPS)
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as out:
        v = out.add_stream("libx264", rate=FPS, options={"crf": "23", "preset": "slow"})
        v.width, v.height, v.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        a = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(camera(photo, i / (frames - 1), subject), format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode())
        samples = tone(round(SECONDS * AUDIO_RATE))
        for s0 in range(0, len(samples), 1024):
            af = av.AudioFrame.from_ndarray(samples[None, s0:s0 + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts = AUDIO_RATE, s0
            out.mux(a.encode(af))
        out.mux(a.encode())


def main(names: list[str]) -> None:
    """Write NAME.mp4 beside this script for each name given (default: every subject)."""
    for name in names or list(SUBJECTS):
        if name not in SUBJECTS:
            sys.exit(f"error: unknown sample {name!r}; choose from {', '.join(SUBJECTS)}")
        path = Path(__file__).resolve().parent / f"{name}.mp4"
        make_video(path, SUBJECTS[name])
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {Fraction(FPS)} fps, {SIZE[0]}x{SIZE[1]})")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
