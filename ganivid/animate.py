"""`ganivid animate`: a video in, the same video out with only the requested facial muscles changed.

Two passes (../shared/DESIGN.md): *analyse* decodes the video once, tracks the faces, fits
landmarks and estimates the actor's AUs; its track table is cached beside the output, so a
second run with another curve skips it. *Render* decodes again, crops each face with its
smoothed alignment, asks the generator for curve(t) combined with the actor's smoothed AUs,
pastes the edit back and encodes (`ganivid.pipeline`). Frames without a usable face are
written unedited; no frame is ever dropped or duplicated."""
from __future__ import annotations

import glob
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ganivid.aus import AU_NAMES, NUM_AUS, source_mode
from ganivid.errors import ConfigError, NoFaceError, VideoError
from ganivid.reporter import Reporter

if TYPE_CHECKING:  # `import ganivid` stays light: PyAV, dlib and torch load on first use
    from ganivid.video import VideoInfo

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "ganivid.safetensors"
# Edits are averaged over ~this many seconds in face coordinates (pipeline.EditSmoother): it
# halves the generator's frame-to-frame noise at 25 fps while an expression change lags < 0.1 s.
SMOOTH_EDITS_S = 0.06
MAX_WORKERS = 4  # generator threads on a CPU (measured on 2 cores only)


@dataclass(frozen=True)
class StageTimes:
    """Seconds per stage, summed over frames (the render stages overlap, so they add up to more
    than the render's wall time). `track` and `estimate` are zero when the cache was reused."""

    decode: float = 0.0
    track: float = 0.0
    estimate: float = 0.0
    crop: float = 0.0
    generator: float = 0.0
    paste: float = 0.0
    encode: float = 0.0
    setup: float = 0.0  # loading the generator and the face models, once per call
    analyse_wall: float = 0.0
    render_wall: float = 0.0
    analyse_cpu: float = 0.0  # CPU seconds of each pass, all threads (independent of machine load)
    render_cpu: float = 0.0
    generator_cpu: float = 0.0  # CPU seconds of the thread running the generator, in its calls


@dataclass(frozen=True)
class AnimateResult:
    """What `animate` did."""

    output: Path | None  # None after a dry run
    frames: int  # frames written (= frames in the input)
    edited_frames: int  # frames in which at least one face was edited
    faces: int  # face tracks edited
    warnings: tuple[str, ...] = ()
    times: StageTimes = field(default_factory=StageTimes)
    track_cache: Path | None = None
    cache_reused: bool = False
    generated: int = 0  # crops the generator computed (identical crop + target pairs run once)


def default_output(input: Path) -> Path:
    """`clip.mp4` -> `clip.animated.mp4` beside it."""
    return input.with_name(f"{input.stem}.animated{input.suffix if input.suffix.lower() in ('.mp4', '.mov', '.mkv', '.webm') else '.mp4'}")


def generator_threads(engine) -> tuple[int, int]:
    """(generator threads, torch threads each) the render pass runs `engine` with."""
    if engine.device.type != "cpu":
        return 1, 0
    import torch

    # One generator thread per torch thread, each running its own batch on one torch thread,
    # instead of one batch on all of them: the cores stay busy between and within batches, and
    # other stages taking a core slow one batch, not every thread's share of each (2 cores: +27 %
    # end to end, benchmarks/ab_revisions.py --threads 2). Beyond MAX_WORKERS each takes several
    # torch threads: more batches in flight only hold more frames, and decoding limits anyway.
    threads = torch.get_num_threads()
    workers = min(threads, MAX_WORKERS)
    return workers, max(1, threads // workers)


def describe(info: VideoInfo, program, model=None, device: str = "auto") -> None:
    """Print the probe, the faces found in a few frames, the model and the target AU table."""
    from rich.console import Console
    from rich.table import Table

    from ganivid.faces import DlibDetector
    from ganivid.video import read_frames_at

    out = Console(highlight=False)  # the dry run's report is the command's output: stdout

    def say(line: str) -> None:
        out.print(line, markup=False, soft_wrap=True)

    for line in info.summary():
        say(line)
    from ganivid.timestamps import count_disordered, notice
    from ganivid.video import open_input

    with open_input(info.path) as c:  # the packets' pts only: no decoding
        if n := count_disordered(c, c.streams[info.video_index]):
            say(notice(info.path.name, n))
    dur = info.duration_s or 0.0
    detector = DlibDetector()
    for f in read_frames_at(info.path, times=[dur * k / 4 for k in range(4)], upright=bool(info.rotation)):
        found = detector.detect(f.image)
        sizes = ", ".join(f"{int(d.box[2] - d.box[0])}x{int(d.box[3] - d.box[1])} px" for d in found)
        say(f"frame #{f.index} at {f.time_s:.2f} s: {len(found)} face(s)" + (f" ({sizes})" if sizes else ""))
    from ganivid.engine import load_engine

    engine = load_engine(model, device, None)
    workers, threads = generator_threads(engine)
    say(f"model: {engine.image_size} px crops, {NUM_AUS} AUs, device {engine.device}, batch {engine.batch_size}"
        + (f", {workers} generator thread{'s' * (workers > 1)} x {threads} torch thread{'s' * (threads > 1)}"
           if engine.device.type == "cpu" else ""))
    for line in program.summary():
        say(line)
    end = max(dur, program.last_time(info.fps))
    grid = np.unique(np.round(np.r_[np.linspace(0, end, 9), dur], 3))
    target = program.evaluate(grid, fps=info.fps)
    changed = [i for i in range(NUM_AUS) if np.any(target[:, i] != 0)]
    table = Table(title="target AUs (the actor's own AUs counted as 0)")
    table.add_column("time (s)", justify="right")
    for i in changed:
        table.add_column(AU_NAMES[i], justify="right")
    for t, row in zip(grid, target):
        table.add_row(f"{t:.2f}", *(f"{row[i]:.2f}" for i in changed))
    out.print(table)


@dataclass(frozen=True)
class AnimateOptions:
    """Everything `animate` does besides which files: see `animate` for each field."""

    curve: str | Path | None = None
    au: tuple[str, ...] = ()
    expression: str | None = None
    model: object = None  # path, a loaded ganivid.engine.Engine, or None for the shipped model
    device: str = "auto"
    batch_size: int | None = None
    faces: str = "largest"
    detect_every: int = 12
    source_aus: str = "estimate"
    crf: int | None = None
    preset: str | None = None
    codec: str | None = None
    pix_fmt: str | None = None
    audio: bool = True
    stats: str | Path | None = None
    dry_run: bool = False
    quiet: bool = True
    require_face: bool = False
    overwrite: bool = False
    smooth_edits: float = SMOOTH_EDITS_S


def animate(input: str | Path, output: str | Path | None = None, curve: str | Path | None = None, *,
            au: Sequence[str] = (), expression: str | None = None, model=None,
            device: str = "auto", batch_size: int | None = None, faces: str = "largest",
            detect_every: int = 12, source_aus: str = "estimate", crf: int | None = None,
            preset: str | None = None, codec: str | None = None, pix_fmt: str | None = None,
            audio: bool = True, stats: str | Path | None = None, dry_run: bool = False,
            quiet: bool = True, require_face: bool = False, overwrite: bool = False,
            smooth_edits: float = SMOOTH_EDITS_S) -> AnimateResult:
    """Change the expression of the faces in a video along AU curves.

    Args:
        input, output: video files (output default: `<input>.animated.<ext>` beside it).
        curve: AU curve file (JSON, CSV or TOML); `au` (["AU12=0.8"]) and `expression`
            ("smile:0.7") add constant edits.
        model: inference checkpoint (default: the shipped models/ganivid.safetensors), or a
            loaded `ganivid.engine.Engine`.
        device, batch_size: where and how many crops per generator pass.
        faces: largest, all, a track id, or ref:IMAGE (the person in that photo).
        detect_every: run the face detector every k frames (tracking in between).
        source_aus: estimate or mesh (the actor's own AUs, from MediaPipe's blendshapes, fill in
            what the curve leaves), landmarks (the same from dlib's landmarks) or none (zeros).
        crf, preset, codec, pix_fmt, audio: encoder options (ffmpeg terms); audio=False drops it.
        stats: write the track table with the actor's and the target AUs as CSV.
        dry_run: print the probe, the faces found and the AU table, write nothing.
        quiet: no progress bars or notices (warnings still show).
        require_face: no face anywhere is an error instead of an unedited copy.
        overwrite: replace an existing output.
        smooth_edits: time constant (s) of the per-face smoothing of the edit over frames; 0: off.
    Raises:
        VideoError, CurveError, CheckpointError, ConfigError, NoFaceError: one-line user errors.
    """
    opts = AnimateOptions(curve, tuple(au), expression, model, device, batch_size, faces, detect_every, source_aus,
                          crf, preset, codec, pix_fmt, audio, stats, dry_run, quiet, require_face, overwrite,
                          smooth_edits)
    reporter = Reporter(quiet)
    import cv2
    import torch

    # `_run` may lower both: OpenCV's pool and torch's thread count are process-wide
    cv2_threads, torch_threads = cv2.getNumThreads(), torch.get_num_threads()
    made: list[Path] = []  # files this call made that must not outlive its failure (the track table)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            return _run(Path(input), output, opts, reporter, caught, made)
    except BaseException:  # errors, Ctrl-C, SIGTERM: a failed run leaves nothing beside its output
        for path in made:
            path.unlink(missing_ok=True)
        raise
    finally:
        cv2.setNumThreads(cv2_threads)
        torch.set_num_threads(torch_threads)
        reporter.collect(caught)
        reporter.reissue()


def _check_stats(stats: Path, out: Path, input: Path) -> None:
    """Refuse a --stats path that cannot be written, or that would replace the input or the output."""
    from ganivid.fileio import check_writable, same_file

    if stats.is_dir():
        raise ConfigError(f"--stats {stats} is a folder; give a file name such as {stats / 'stats.csv'}")
    if not stats.parent.is_dir():
        raise ConfigError(f"--stats: folder {stats.parent} does not exist")
    for path, what in ((input, "input"), (out, "output")):
        if same_file(stats, path):
            raise ConfigError(f"--stats {stats} is the {what} video; give the table a file of its own (.csv)")
    check_writable(stats.parent, ConfigError)


def _warn_unused(info: VideoInfo, program, reporter: Reporter) -> None:
    """Say which curves change nothing: those that start after the video's end."""
    end = info.duration_s
    for c in program.curves if end else ():
        first = type(program)((replace(c, times=c.times[:1], values=c.values[:1]),), program.fps).last_time(info.fps)
        if first > end + 1e-6:
            reporter.warn(f"{c.where}: its first key, {c.times[0]} ({first:.2f} s), is after the video's end "
                          f"({end:.2f} s): it changes nothing")


def _run(input: Path, output: str | Path | None, o: AnimateOptions, reporter: Reporter,
         caught: list[warnings.WarningMessage], made: list[Path]) -> AnimateResult:
    """The two passes of `animate`, inside its warning capture."""
    from ganivid.align import Alignment
    from ganivid.analysis import adopt_cache, analyse_video, cache_key, cache_path, check_faces, plan_edits
    from ganivid.curves import build_program
    from ganivid.pipeline import Job, StageClock, render
    from ganivid.tracking import TrackConfig
    from ganivid.video import FRAME_THREADS_PIXELS, probe, read_frames
    from ganivid.videowriter import EncodeOptions, VideoWriter

    info = probe(input)
    program = build_program(o.curve, o.au, o.expression)  # curve errors before any decoding
    check_faces(o.faces)
    source = source_mode(o.source_aus)  # checked here too, not only at the analysis's end
    _warn_unused(info, program, reporter)
    if o.dry_run:
        describe(info, program, o.model, o.device)
        return AnimateResult(None, 0, 0, 0, tuple(reporter.warnings))
    if program.is_empty:
        raise ConfigError("nothing to change: give --au-curve FILE, --au AU12=0.8 or --expression smile:0.7")
    out = Path(output) if output is not None else default_output(info.path)
    encode = EncodeOptions(codec=o.codec, crf=o.crf, preset=o.preset, pix_fmt=o.pix_fmt, audio=o.audio)
    writer = VideoWriter(out, info, encode, overwrite=o.overwrite)  # frames stay as stored, turned or not
    if o.stats is not None:
        _check_stats(Path(o.stats), out, info.path)
    writer.check()  # encoder settings fail before the analysis, not after it
    t_load = time.perf_counter()
    from ganivid.engine import load_engine

    engine = load_engine(o.model, o.device, o.batch_size)
    from ganivid.kernels import warm_up

    warm_up()  # the render pass's numba loops, loaded with the model rather than at the first frame
    t_load = time.perf_counter() - t_load
    if engine.device.type == "cpu" and info.width * info.height < FRAME_THREADS_PIXELS:
        # The generator keeps the cores busy: x264 on one thread spends ~12 % less CPU per frame
        # (2.55 against 2.89 ms at 640x360) and takes less from it: +11-16 % end-to-end fps
        # (benchmarks/ab_revisions.py, 6 alternating runs each). Without a CPU generator to wait
        # for (CUDA), frame threads are faster: the encoder is then what limits.
        writer.options = replace(writer.options, threads=1)
        # OpenCV's pool likewise: the stages already run in parallel threads, so its small warps
        # and conversions need no pool of their own beside the generator's core (A/Bs: +6 % and
        # -6 % end to end, i.e. within noise); `animate` restores it on return.
        import cv2

        cv2.setNumThreads(1)
    track_cfg = TrackConfig(detect_every=o.detect_every, encodings=o.faces.startswith("ref:"), mesh=source == "mesh")

    t0, c0 = time.perf_counter(), time.process_time()
    key = cache_key(info, track_cfg, o.faces)
    cache = cache_path(out, key)
    if not cache.is_file():
        made.append(cache)
    for old in out.parent.glob(f".{glob.escape(out.name)}.*.tracks.npz"):
        if old != cache:
            old.unlink(missing_ok=True)
    # The same video rendered before under another name (trying curves out, say): its table
    # (beside that output, here or beside the video) spares the analysis and the face models.
    adopt_cache(cache, key, (out.parent, info.path.parent))
    # On CUDA the generator's one-time costs (context, kernels) overlap the analysis; a reused
    # track table has no analysis to hide them behind. On CPU they are ~0.04 s and warming up
    # beside the analysis slowed it by more (~0.1-0.2 s of 0.6 s, benchmarks/animate_speed.py).
    warm = threading.Thread(target=engine.warm_up, name="ganivid-warm-up", daemon=True)
    if not cache.is_file() and engine.device.type != "cpu":
        warm.start()
    progress, advance = reporter.progress("analyse", info.frame_count)
    with progress:
        raw, t_decode, t_track, t_setup, reused = analyse_video(info, track_cfg, cache, advance)
    if warm.is_alive():
        warm.join()
    t1 = time.perf_counter()
    table, chosen, actor, targets = plan_edits(raw, program, o.faces, source, info)
    t_estimate = time.perf_counter() - t1
    if o.stats is not None:
        cols = {n: actor[:, i] for i, n in enumerate(AU_NAMES)}
        cols |= {f"target_{n}": targets[:, i] for i, n in enumerate(AU_NAMES)}
        table.to_csv(o.stats, cols)
    if not chosen.any():
        if o.require_face:
            raise NoFaceError(f"no usable face found in {info.path}")
        reporter.warn(f"no usable face found in {info.path}: writing an unedited copy")
    reporter.collect(caught)
    t_analyse = time.perf_counter() - t0 - t_setup
    c_analyse = time.process_time() - c0  # includes loading the detector (`setup`)

    plan: dict[int, list[Job]] = {}
    for i in np.flatnonzero(chosen):
        plan.setdefault(int(table.frame[i]), []).append(
            Job(Alignment(*map(float, table.params[i])), targets[i], int(table.track_id[i]), actor[i], table.landmarks[i]))
    clock = StageClock()
    workers, threads = generator_threads(engine)
    if threads:  # CPU: the generator threads share torch's (`animate` restores the caller's setting)
        import torch

        torch.set_num_threads(threads)
    progress, advance = reporter.progress("render", len(table.frames) or info.frame_count)
    t2, c2 = time.perf_counter(), time.process_time()
    with progress, writer:
        # Decoded YUV straight to the encoder where it takes it: no RGB round trip (ganivid.yuv).
        # A turned video's frames stay as stored too: only face crops are turned upright.
        frames = read_frames(info.path, yuv=writer.takes_i420)
        written = render(frames, lambda k: plan.get(k, []), engine, writer.write, clock, advance,
                         o.smooth_edits, info.rotation, workers, writer.prepare)
        if written != len(raw.frames):
            raise VideoError(f"{info.path}: decoded {written} frames on the second pass but "
                             f"{len(raw.frames)} on the first; the file may be damaged")
    reporter.collect(caught)
    times = StageTimes(t_decode + clock.decode, t_track, t_estimate, clock.crop, clock.generator, clock.paste,
                       clock.encode, t_setup + t_load, t_analyse, time.perf_counter() - t2, c_analyse,
                       time.process_time() - c2, clock.generator_cpu)
    reporter.info(f"wrote {out}: {written} frames, {len(plan)} edited")
    return AnimateResult(out, written, len(plan), len(np.unique(table.track_id[chosen])),
                         tuple(reporter.warnings), times, cache, reused, engine.images_computed)
