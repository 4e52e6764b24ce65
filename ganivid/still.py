"""Facial animation from a single image: a still photo plus AU curves becomes a video, a GIF or one
edited photo (the paper's title promise).

The faces are found once; the curve is evaluated at every output frame's time and combined with
the AUs estimated on the photo; each distinct target runs through the generator once (a hold or a
ping-pong reuses earlier edits), and each frame is the untouched photo with the edited crops
pasted back at full resolution, so every pixel outside the faces is the photo's own."""
from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ganivid.aus import NUM_AUS, photo_estimator, source_mode
from ganivid.errors import ConfigError, CurveError, NoFaceError

if TYPE_CHECKING:
    from ganivid.align import Alignment

LOOPS = ("none", "pingpong")
MIN_SCORE = 0.3  # dlib HOG detection score below which a box is doubted
MAX_SECONDS = 3600  # a photo's animation: an hour at 30 fps is already 108,000 generator-edited frames


@dataclass(frozen=True)
class StillFace:
    """A face found on a still image (index 0 = the largest)."""

    index: int
    box: tuple[float, float, float, float]
    landmarks: np.ndarray  # (68, 2) float32, image pixels
    alignment: Alignment
    aus: np.ndarray  # (17,) float32 estimated on the photo; NaN where the estimator has no answer

    def corners(self) -> np.ndarray:
        """The crop square's 4 corners (4, 2) in image pixels, for overlays."""
        a = np.radians(self.alignment.angle)
        r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        half = self.alignment.size / 2
        sq = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
        return sq @ r.T + (self.alignment.cx, self.alignment.cy)


@dataclass(frozen=True)
class StillResult:
    """What `animate_image` wrote."""

    output: Path
    frames: int  # frames written (1 for an image output)
    faces: int  # faces edited
    distinct_targets: int  # generator inputs actually computed, over all faces
    seconds: float  # wall time of the whole call
    seconds_per_frame: float  # wall time of the render (edit + paste + encode) per output frame


def find_faces(image: np.ndarray, faces: str = "largest", detector=None, estimator: str = "mesh") -> list[StillFace]:
    """Faces of a photo, largest first, with stable landmarks and AUs estimated against the
    population's neutral face; `faces` is `largest`, `all` or a face number (0 = largest);
    `estimator` mesh (MediaPipe's blendshapes, meshaus.py) or landmarks (estimate.py).

    Raises:
        NoFaceError: no face found (small faces are retried with the detector's upsampling).
        ConfigError: a bad `faces` value.
    """
    from ganivid.align import alignment_from_landmarks
    from ganivid.estimate import estimate_aus, stable_landmarks
    from ganivid.faces import DlibDetector
    from ganivid.meshaus import mesh_aus, read_cues

    if faces not in ("largest", "all") and not faces.isdigit():
        raise ConfigError(f"--faces {faces!r}: use largest, all or a face number (0 = largest)")
    det = detector or DlibDetector()
    boxes = det.boxes(image)
    if not boxes and detector is None:  # faces under ~80 px: one more try at twice the size
        det = DlibDetector(upsample=1)
        boxes = det.boxes(image)
    if not boxes:
        raise NoFaceError("no face found in the image; try a larger, frontal, well-lit face")
    # HOG scores below ~0.3 are mostly faces in patterns (astronaut's mission patch scores 0.07):
    # keep them only when nothing better was found.
    strong = [b for b in boxes if b[1] >= MIN_SCORE]
    boxes = strong or [max(boxes, key=lambda b: b[1])]
    boxes.sort(key=lambda b: -(b[0][2] - b[0][0]) * (b[0][3] - b[0][1]))
    wanted = {"largest": [0], "all": list(range(len(boxes)))}.get(faces) or [int(faces)]
    if wanted[0] >= len(boxes):
        raise ConfigError(f"--faces {faces}: only {len(boxes)} face(s) found (numbered from 0, largest first)")
    found = []
    for i in wanted:
        lm = stable_landmarks(det, image, boxes[i][0])
        al = alignment_from_landmarks(lm)
        aus = mesh_aus(read_cues(image, lm)) if estimator == "mesh" else estimate_aus(lm)
        found.append(StillFace(i, boxes[i][0], lm, al, aus))
    return found


def parse_duration(text: str | float | None, what: str = "--duration") -> float | None:
    """`4`, `4s`, `2.5 s`, `1500ms` or `00:00:04.5` -> positive seconds (None stays None)."""
    if text is None:
        return None
    try:
        if isinstance(text, (int, float)):
            seconds = float(text)
        elif ":" in (s := text.strip().lower().replace(" ", "")):
            seconds = sum(float(p) * 60 ** k for k, p in enumerate(reversed(s.split(":"))))
        elif s.endswith("ms"):
            seconds = float(s[:-2]) / 1000
        else:
            seconds = float(s.removesuffix("s"))
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"{what} {text!r}: use a positive time in seconds (4, 4s, 1500ms) or a timecode (00:00:04)")
    return seconds


def frame_order(n: int, loop: str = "none", repeat: int = 1) -> list[int]:
    """Indices into n rendered frames for playback: once, or forward then back (ping-pong, the
    turning frames not doubled), the whole repeated `repeat` times."""
    if loop not in LOOPS:
        raise ConfigError(f"--loop {loop!r}: use {' or '.join(LOOPS)}")
    if repeat < 1:
        raise ConfigError(f"--repeat must be at least 1, got {repeat}")
    order = list(range(n))
    if loop == "pingpong" and n > 2:
        order += list(range(n - 2, 0, -1))
    return order * repeat


def _distinct(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of targets (T, 17) in order of first appearance, and each row's number."""
    keys = np.round(np.asarray(targets, np.float32), 4)  # 1e-4 of an AU is far below what shows
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return keys[np.sort(first)], rank[inverse.reshape(-1)]


class FaceEditor:
    """Edits one photo's faces for a sequence of targets, each distinct target computed once."""

    def __init__(self, engine, image: np.ndarray, faces: Sequence[StillFace], max_side: int | None = None):
        from ganivid.align import Alignment, crop_face
        self.engine, self.faces = engine, list(faces)
        self.crops = [crop_face(image, f.alignment, engine.image_size) for f in self.faces]
        self.computed = 0
        # Output smaller than the photo: crop from the full photo, paste into the shrunk one.
        self.image = _resize(image, max_side)
        k = self.image.shape[1] / image.shape[1]
        self.paste_at = [Alignment((a.cx + 0.5) * k - 0.5, (a.cy + 0.5) * k - 0.5, a.size * k, a.angle)
                         for a in (f.alignment for f in self.faces)]

    def edits(self, targets: Sequence[np.ndarray], sources: Sequence[np.ndarray] | None = None) -> list[list]:
        """The engine's `Edit`s [face][k] for targets[face] (K, 17) from each face's own AUs
        `sources[face]` (17,) (default: its estimate), in batches of the engine's size."""
        from ganivid.align import crop_landmarks

        out = []
        for f, (crop, tg) in enumerate(zip(self.crops, targets)):
            source = self.faces[f].aus if sources is None else sources[f]
            uniq, which = _distinct(tg)
            done: list = []
            b = self.engine.batch_size
            marks = crop_landmarks(self.faces[f].landmarks, self.faces[f].alignment, self.engine.image_size)
            for s in range(0, len(uniq), b):
                chunk = uniq[s:s + b]
                done += self.engine.edit([crop] * len(chunk), chunk, np.repeat(np.asarray(source, np.float32)[None], len(chunk), 0),
                                         np.repeat(marks[None], len(chunk), 0))
            self.computed += len(uniq)
            out.append([done[i] for i in which])
        return out

    def paste(self, edits: Sequence) -> np.ndarray:
        """The photo with each face's `Edit` pasted back."""
        from ganivid.align import paste_back

        img = self.image
        for al, orig, e in zip(self.paste_at, self.crops, edits):
            img = paste_back(img, orig, e.image, al, flow=e.flow, warped_crop=e.warped)
        return img


def _video_template(path: Path, size: tuple[int, int], fps: Fraction):
    from ganivid.video import VideoInfo

    return VideoInfo(path=path, format="image", video_index=0, codec="image", width=size[0], height=size[1],
                     pix_fmt="rgb24", fps=fps, time_base=1 / fps, start_pts=0, duration_s=None, frame_count=None,
                     rotation=0, display_matrix=None, audio=(), other_streams=())


def _check_gif(path: Path, overwrite: bool, source: Path | None = None) -> None:
    from ganivid.errors import VideoError
    from ganivid.fileio import check_output

    check_output(path, overwrite, VideoError, source)


def _write_gif(path: Path, frames: Iterator[np.ndarray], fps: Fraction, overwrite: bool) -> None:
    """An endlessly looping GIF, one shared palette (from the first frame) so still pixels never
    flicker; written beside `path` first, then renamed."""
    from PIL import Image

    from ganivid.errors import VideoError
    from ganivid.fileio import atomic_path

    _check_gif(path, overwrite)
    first = next(frames)
    palette = Image.fromarray(first).quantize(256, method=Image.Quantize.MEDIANCUT)

    def q(a: np.ndarray) -> Image.Image:
        return Image.fromarray(a).quantize(palette=palette, dither=Image.Dither.NONE)

    with atomic_path(path, overwrite, VideoError) as tmp:
        # GIF delays are whole centiseconds: 30 fps plays at 1/0.03 = 33.3 fps.
        q(first).save(tmp, format="GIF", save_all=True, append_images=(q(a) for a in frames),
                      duration=max(20, round(1000 / float(fps), -1)), loop=0, disposal=1)


def _write_video(output: Path, input: Path, anim: StillAnimation, options, overwrite: bool) -> None:
    """Encode the animation with `VideoWriter` (atomic), frame k at pts k in a 1/fps time base."""
    from ganivid.video import Frame
    from ganivid.videowriter import VideoWriter

    h, w = anim.editor.image.shape[:2]
    with VideoWriter(output, _video_template(input, (w, h), anim.fps), options, overwrite=overwrite) as writer:
        for i, img in enumerate(anim):
            writer.write(Frame(i, i, i / float(anim.fps), 1, img))


def _at_seconds(at: str | float, fps: float) -> float:
    """`--at` for an image output: seconds, a timecode or '#frame' (at the animation's fps)."""
    from ganivid.curves import parse_time

    k = parse_time(at, "--at")
    return k.seconds if k.frame is None else k.frame / float(fps)


def _resize(image: np.ndarray, max_side: int | None) -> np.ndarray:
    if not max_side or max(image.shape[:2]) <= max_side:
        return image
    from ganivid.sheets import fit

    return fit(image, max_side, max_side)


@dataclass
class StillAnimation:
    """Frames of a photo animated along AU curves, rendered lazily in playback order."""

    editor: FaceEditor
    edits: list[list]  # [face][rendered frame] the engine's Edits
    order: list[int]  # playback order of the rendered frames (ping-pong, repeats)
    fps: Fraction
    times: np.ndarray  # (n,) seconds of each rendered frame
    targets: list[np.ndarray]  # [face] (n, 17) target AUs

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[np.ndarray]:
        for k in self.order:  # pasting is cheap next to the generator: no frame is kept
            yield self.editor.paste([e[k] for e in self.edits])


def animate_faces(image: np.ndarray, program, engine, *, times: np.ndarray | None = None,
                  duration: float | None = None, fps: float | Fraction = 30, loop: str = "none", repeat: int = 1,
                  faces: str | Sequence[StillFace] = "largest", source_aus: str = "estimate",
                  max_side: int | None = None) -> StillAnimation:
    """Edit a photo's faces for every frame of an animation (library core of `animate_image`).

    Args:
        image: RGB uint8 photo.
        program: a `ganivid.curves.AUProgram` (curves and inline edits).
        engine: a `ganivid.engine.Engine`.
        times: evaluate exactly these times (seconds) instead of a duration at `fps`.
        duration: seconds (default: the program's last keyframe); fps: frames per second.
        loop, repeat: playback order (see `frame_order`).
        faces: largest, all, a face number, or faces already found.
        source_aus: estimate or mesh (the photo's AUs fill in what the curves leave; `add` adds
            to them), landmarks (the same from dlib's landmarks) or none (zeros).
        max_side: paste into the photo shrunk to this longer side.
    Raises:
        CurveError: no duration from either the curves or `duration`.
    """
    source_aus = source_mode(source_aus)
    rate = Fraction(fps).limit_denominator(1001) if 0 < float(fps) <= 240 else Fraction(0)  # NaN, inf: refused
    if not 0 < rate <= 240:
        raise ConfigError(f"--fps must be in (0, 240], got {float(fps):g}")
    if times is None:
        seconds = duration if duration is not None else program.last_time(rate)
        if seconds is None or seconds <= 0:
            raise CurveError("the AU edit has no duration of its own (a constant, or keys only at 0 s); "
                             "pass --duration, e.g. --duration 4s")
        times = np.arange(max(1, round(seconds * rate))) / float(rate)
    order = frame_order(len(times), loop, repeat)
    found = find_faces(image, faces, estimator=photo_estimator(source_aus)) if isinstance(faces, str) else list(faces)
    editor = FaceEditor(engine, image, found, max_side)
    targets, sources = [], []
    for f in found:
        source = np.zeros(NUM_AUS, np.float32) if source_aus == "none" else f.aus
        sources.append(source)
        targets.append(program.evaluate(times, np.repeat(source[None], len(times), 0), fps=rate))
    return StillAnimation(editor, editor.edits(targets, sources), order, rate, np.asarray(times, np.float64), targets)


def animate_image(input: str | Path, output: str | Path, curve: str | Path | None = None, *,
                  au: Sequence[str] = (), expression: str | None = None, duration: str | float | None = None,
                  fps: float = 30.0, loop: str = "none", repeat: int = 1, at: str | float | None = None,
                  model: str | Path | None = None, device: str = "auto", batch_size: int | None = None,
                  faces: str = "largest", source_aus: str = "estimate", max_side: int | None = None,
                  crf: int | None = None, preset: str | None = None, codec: str | None = None,
                  pix_fmt: str | None = None, overwrite: bool = False, quiet: bool = True) -> StillResult:
    """Animate the face(s) of a still photo along AU curves.

    Args:
        input: the photo (EXIF orientation is applied).
        output: a video (.mp4 .mov .mkv .webm), a .gif, or an image (.png .jpg .webp) for one
            edited photo (the curves at time `at`, default their last keyframe).
        curve, au, expression: the AU curve file and/or constant edits, as for videos; `add`
            mode adds to the AUs estimated on the photo.
        duration: length of the animation (default: the curves' last keyframe); fps: frame rate.
        loop, repeat: `pingpong` plays forward then back; the sequence is played `repeat` times.
        model, device, batch_size: the generator and where it runs.
        faces: largest, all, or a face number (0 = largest).
        source_aus: estimate or mesh (the photo's own AUs fill in what the curves leave),
            landmarks (the same from dlib's landmarks) or none (zeros).
        max_side: shrink the output so its longer side is at most this (GIFs for sharing).
        crf, preset, codec, pix_fmt: video encoder options; overwrite: replace an existing output.
    Raises:
        DataError (unreadable image), NoFaceError, CurveError (no duration), ConfigError,
        VideoError, CheckpointError: one-line user errors.
    """
    from ganivid.curves import build_program
    from ganivid.images import FORMATS, check_image_output, read_image, warn_lost, write_image
    from ganivid.videowriter import CONTAINERS, EncodeOptions, _check_target

    t_start = time.perf_counter()
    input, output = Path(input), Path(output)
    suffix = output.suffix.lower()
    if output.is_dir():
        raise ConfigError(f"output {output} is a directory; give a file name such as {output / (input.stem + '.mp4')}")
    if suffix in FORMATS:
        check_image_output(output, overwrite, input)  # -o the photo itself -y would replace it
    elif suffix == ".gif":
        _check_gif(output, overwrite, input)
    elif suffix in CONTAINERS:
        _check_target(output, input, overwrite)
    else:
        raise ConfigError(f"unsupported output extension {output.suffix or '(none)'!r} for {output}; use a video "
                          f"({', '.join(CONTAINERS)}), .gif, or an image ({', '.join(FORMATS)})")
    if max_side is not None and max_side < 16:
        raise ConfigError(f"--max-side must be at least 16, got {max_side}")
    if not 0 < float(fps) <= 240:  # NaN and inf too: before the photo and the model are loaded
        raise ConfigError(f"--fps must be in (0, 240], got {float(fps):g}")
    program = build_program(curve, au, [expression] if expression else [])
    if program.is_empty:
        raise CurveError("nothing to animate: give --au-curve FILE, --au NAME=VALUE or --expression NAME")
    seconds = parse_duration(duration)
    played = (seconds or 0) * max(1, repeat) * (2 if loop == "pingpong" else 1)  # what would be rendered
    if played > MAX_SECONDS:
        raise ConfigError(f"--duration {duration} plays {played / 3600:.1f} h ({round(played * float(fps)):,} frames at "
                          f"{float(fps):g} fps); a photo's animation is at most {MAX_SECONDS // 60} minutes")
    source_aus = source_mode(source_aus)
    image = read_image(input)
    warn_lost(input, output)
    found = find_faces(image, faces, estimator=photo_estimator(source_aus))
    from ganivid.engine import load_engine

    engine = load_engine(model, device, batch_size)
    t_render = time.perf_counter()
    if suffix in FORMATS:
        t = _at_seconds(at, fps) if at is not None else program.last_time(fps)
        anim = animate_faces(image, program, engine, times=np.array([t]), faces=found, source_aus=source_aus,
                             max_side=max_side)
        write_image(output, next(iter(anim)), overwrite)
    else:
        anim = animate_faces(image, program, engine, duration=seconds, fps=fps, loop=loop, repeat=repeat,
                             faces=found, source_aus=source_aus, max_side=max_side)
        if suffix == ".gif":
            _write_gif(output, iter(anim), anim.fps, overwrite)
        else:
            _write_video(output, input, anim, EncodeOptions(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt,
                                                            audio=False), overwrite)
    now = time.perf_counter()
    if not quiet:
        print(f"wrote {output}: {len(anim)} frame(s), {len(found)} face(s), "
              f"{anim.editor.computed} generator input(s)", file=sys.stderr)
    return StillResult(output, len(anim), len(found), anim.editor.computed, now - t_start,
                       (now - t_render) / len(anim))
