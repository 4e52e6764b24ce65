"""The `ganivid` command line: parse options, call the library, print user errors as one line."""
from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
from pathlib import Path
from typing import Annotated, Callable

import typer

from ganivid.aus import source_mode
from ganivid.errors import GanividError

app = typer.Typer(
    name="ganivid",
    help="Change facial expressions in videos with an Action-Unit-conditioned GAN (GANimation).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C raises KeyboardInterrupt, so the same cleanup runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, frame) -> None:
    for s in _SIGNALS:  # one cleanup: a second signal must not cut the first one's short
        signal.signal(s, signal.SIG_IGN)
    raise Terminated(signum)


_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _signals_as_interrupts():
    """Within the block (main thread only: Python runs handlers there), SIGTERM and SIGHUP
    raise `Terminated`; the caller's handlers come back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _terminate) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def command(*args, group: typer.Typer | None = None, signals: bool = True, **kwargs) -> Callable:
    """Register a command whose `GanividError`s become `error: ...` on stderr and exit code 1
    (on `app`, or on a sub-app `group` such as `preview`); Ctrl-C, and with `signals` SIGTERM
    and SIGHUP, clean up and exit 128 + the signal's number (130, 143, 129)."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            try:
                with _signals_as_interrupts() if signals else contextlib.nullcontext():
                    return fn(*a, **kw)
            except GanividError as ex:
                if os.environ.get("GANIVID_DEBUG") == "1":
                    raise
                typer.echo(f"error: {ex}", err=True)
                raise typer.Exit(1) from None
            except KeyboardInterrupt as ex:
                signum = getattr(ex, "signum", signal.SIGINT)
                name = "" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})"
                typer.echo(f"error: interrupted{name}", err=True)
                raise typer.Exit(128 + signum) from None

        return (group or app).command(*args, **kwargs)(wrapper)

    return decorate


def main() -> None:
    """Console-script entry point."""
    app()


# Commands are defined below, one section per command; each body is one library call.


# --- synth ---------------------------------------------------------------------------------
@command("synth")
def synth_cmd(
    out: Path = typer.Argument(..., help="New folder to write: imgs/*.png, aus.csv, identities.csv."),
    count: int = typer.Option(1000, "--count", "-n", help="Number of face images."),
    size: int = typer.Option(128, "--size", help="Side of the square crops in pixels."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed writes the same dataset."),
    per_identity: int = typer.Option(1, "--per-identity", help="Images per synthetic identity."),
) -> None:
    """Write a synthetic face dataset with exact AU labels (folder format: imgs/ + aus.csv)."""
    from ganivid.synth import write_dataset

    write_dataset(str(out), count, size=size, seed=seed, per_identity=per_identity)
    typer.echo(f"wrote {count} faces to {out}")


# --- train / export ------------------------------------------------------------------------
def _check_dataset(data: Path) -> None:
    """imgs/ without its labels: name both layouts' label files, not only GANimation's pickle."""
    from ganivid.errors import DataError

    if (data / "imgs").is_dir() and not (data / "aus.csv").exists() and not (data / "aus_openface.pkl").exists():
        raise DataError(f"dataset folder {data} has imgs/ but no labels: add aus.csv (ganivid's layout; "
                        "`ganivid annotate` writes it) or aus_openface.pkl (GANimation's)")


@command("train", signals=False)  # torchrun stops workers with SIGTERM: one in a collective must die at once
def train_cmd(
    data: Path = typer.Option(..., "--data", "-d", help="Dataset folder: crops + aus.csv, or the GANimation layout."),
    config: str = typer.Option("cpu", "--config", "-c", help="Preset name in training/ (paper, cpu, cpu_paired, ship, tiny) or a .toml file."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run folder for checkpoints, metrics and samples (default: runs/PRESET)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its newest checkpoint."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (default: the preset's, auto)."),
    steps: int | None = typer.Option(None, "--steps", help="Train for this many steps (overrides the preset)."),
    epochs: float | None = typer.Option(None, "--epochs", help="Train for this many epochs (overrides the preset)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Images per process per step."),
    set_: list[str] = typer.Option([], "--set", help="Override any key: --set train.lr_g=2e-4 (repeatable)."),
    resize: bool = typer.Option(False, "--resize", help="Resample crops of another size instead of refusing them."),
    export: Path | None = typer.Option(None, "--export", help="At the end, write the inference model here (.safetensors)."),
    init: Path | None = typer.Option(None, "--init", help="Start from this model's generator (.safetensors or checkpoint of the preset's model): a fine-tune."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train GANimation on a face dataset (under torchrun: DDP on all processes)."""
    from ganivid.config import parse_override
    from ganivid.train import train_preset

    _check_dataset(data)

    overrides = dict(parse_override(s) for s in set_)
    overrides.update({f"train.{k}": v for k, v in
                      (("device", device), ("batch_size", batch_size), ("epochs", epochs), ("steps", steps)) if v is not None})
    if epochs is not None and steps is None:
        overrides["train.steps"] = 0  # --epochs alone must not lose to a preset's steps
    if init is not None and not init.is_file():
        from ganivid.errors import ConfigError

        raise ConfigError(f"--init {init}: no such file")
    train_preset(config, data, out_dir=out, overrides=overrides, resume=resume, resize=resize,
                 export=export, quiet=quiet, init=init)


@command("export")
def export_cmd(
    checkpoint: Path = typer.Argument(..., help="Training checkpoint (ckpt_*.pt) or a run folder (its newest)."),
    output: Path = typer.Option(..., "--output", "-o", help="Inference file to write (.safetensors)."),
) -> None:
    """Write the generator of a training checkpoint as an inference model (safetensors)."""
    from ganivid.checkpoint import export

    typer.echo(f"wrote {export(checkpoint, output)}")


# --- animate -------------------------------------------------------------------------------
@command("animate")
def animate_cmd(
    input: Path = typer.Argument(..., help="Input video (mp4, mov, mkv, webm, ...) or photo (png, jpg, webp, ...)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Output video \\[default: INPUT.animated.EXT]."),
    au_curve: Path | None = typer.Option(None, "--au-curve", help="AU curve file: JSON, CSV or TOML keyframes."),
    au: list[str] = typer.Option([], "--au", help="Constant AU edit NAME=VALUE, e.g. AU12=0.8 (repeatable)."),
    expression: list[str] = typer.Option([], "--expression", metavar="NAME[:STRENGTH]", help="Constant named expression NAME[:STRENGTH], e.g. smile:0.7."),
    overwrite: bool = typer.Option(False, "-y", "--overwrite", help="Replace an existing output."),
    model: Path | None = typer.Option(None, "--model", help="Inference checkpoint \\[default: models/ganivid.safetensors]."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Face crops per generator pass \\[default: 8 on CPU, automatic on CUDA]."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for the generator \\[default: one per core]; up to 4 batches run at once."),
    faces: str = typer.Option("largest", "--faces", help="Faces to edit: largest, all, a track id, or ref:IMAGE."),
    detect_every: int = typer.Option(12, "--detect-every", help="Run the face detector every K frames for new faces (2K while every tracked face is sure and the picture outside them is unchanged; at once when a track is unsure), track in between; 1 = every frame."),
    source_aus: str = typer.Option("estimate", "--source-aus", help="estimate: keep the actor's own AUs where the curve is silent; none: zeros."),
    estimator: str = typer.Option("mesh", "--estimator", help="How the actor's own AUs are read: mesh (MediaPipe's blendshapes) or landmarks (dlib's 68 points)."),
    crf: int | None = typer.Option(None, "--crf", help="Encoder quality (x264/x265 default 18, VP9 24; lower is better)."),
    preset: str | None = typer.Option(None, "--preset", help="x264/x265 preset \\[default: veryfast]."),
    codec: str | None = typer.Option(None, "--codec", help="Video codec \\[default: libx264; libvpx-vp9 for .webm]."),
    pix_fmt: str | None = typer.Option(None, "--pix-fmt", help="Pixel format \\[default: yuv420p; yuv420p10le for 10-bit video; yuv444p for odd sizes]."),
    no_audio: bool = typer.Option(False, "--no-audio", help="Drop the audio streams."),
    stats: Path | None = typer.Option(None, "--stats", help="Write the per-frame track table with the actor's and target AUs (CSV)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the streams, faces found and the AU table, then stop."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or notices."),
    require_face: bool = typer.Option(False, "--require-face", help="Fail if no face is found (default: write an unedited copy)."),
    duration: str | None = typer.Option(None, "--duration", help="Photo input: length of the animation, e.g. 4s \\[default: the curve's last keyframe]."),
    fps: float | None = typer.Option(None, "--fps", help="Photo input: frames per second of the animation \\[default: 30]."),
    loop: str | None = typer.Option(None, "--loop", help="Photo input: none, or pingpong (forward then back) \\[default: none]."),
    repeat: int | None = typer.Option(None, "--repeat", help="Photo input: play the animation this many times \\[default: 1]."),
    at: str | None = typer.Option(None, "--at", help="Photo input with an image output: curve time to show \\[default: its end]."),
    max_side: int | None = typer.Option(None, "--max-side", help="Photo input: shrink the output to this longer side (small GIFs)."),
) -> None:
    """Change the facial expression in a video along AU curves; everything else stays as it was.
    A photo as INPUT becomes a video, a GIF (.gif) or one edited photo (.png, .jpg, .webp)."""
    from ganivid.cliargs import one_expression, photo_only, shown_warnings
    from ganivid.errors import ConfigError
    from ganivid.images import is_image

    expr = one_expression(expression)
    source_aus = source_mode(source_aus, estimator)
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {threads}")
        import torch

        torch.set_num_threads(threads)  # this process's setting: the generator's threads follow it
    if is_image(input):
        from ganivid.still import animate_image

        if dry_run or stats is not None:
            raise ConfigError("--dry-run and --stats are for videos; to see a photo's edit first, use "
                              "`ganivid preview interpolate` or `ganivid preview grid`")
        with shown_warnings(quiet):
            animate_image(input, output if output is not None else input.with_name(f"{input.stem}.animated.mp4"),
                          au_curve, au=au, expression=expr, duration=duration, fps=30.0 if fps is None else fps,
                          loop=loop or "none", repeat=1 if repeat is None else repeat, at=at, model=model,
                          device=device, batch_size=batch_size, faces=faces, source_aus=source_aus, max_side=max_side,
                          crf=crf, preset=preset, codec=codec, pix_fmt=pix_fmt, overwrite=overwrite, quiet=quiet)
        return
    photo_only({"--duration": duration, "--fps": fps, "--loop": loop, "--repeat": repeat, "--at": at,
                "--max-side": max_side})
    from ganivid.animate import animate

    animate(input, output, au_curve, au=au, expression=expr, model=model, device=device,
            batch_size=batch_size, faces=faces, detect_every=detect_every, source_aus=source_aus, crf=crf,
            preset=preset, codec=codec, pix_fmt=pix_fmt, audio=not no_audio, stats=stats, dry_run=dry_run,
            quiet=quiet, require_face=require_face, overwrite=overwrite)


@command("annotate")
def annotate_cmd(
    inputs: list[Path] = typer.Argument(..., help="Images, videos or folders (searched recursively)."),
    output: Path = typer.Option(..., "--output", "-o", help="Dataset folder (imgs/, aus.csv, manifest.jsonl); rerunning continues it."),
    size: int = typer.Option(128, "--size", help="Crop side in pixels."),
    every: str = typer.Option("0.5s", "--every", help="Time between sampled video frames, e.g. 0.5s or 200ms; 0 = every frame."),
    openface: Path | None = typer.Option(None, "--openface", help="OpenFace CSV or folder of CSVs (AU01_r ... /5) to label the crops with."),
    estimator: str = typer.Option("mesh", "--estimator", help="Built-in AU labels: mesh (MediaPipe's blendshapes) or landmarks (dlib's 68 points)."),
    min_face: int = typer.Option(40, "--min-face", help="Ignore faces narrower than this many pixels."),
    workers: int | None = typer.Option(None, "--workers", help="Processes for image files [default: up to 2]."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Crop every face of images and videos and label it with AUs: a dataset for `ganivid train --data`."""
    from ganivid.annotate import annotate, parse_every

    summary = annotate(inputs, output, size=size, every=parse_every(every), openface=openface, estimator=estimator,
                       min_face=min_face, workers=workers, progress=not quiet)
    typer.echo(summary.report())


# --- preview -------------------------------------------------------------------------------
preview_app = typer.Typer(name="preview", no_args_is_help=True,
                          help="See an edit before rendering: frame sheets, paper-style AU grids, interpolations, samples.")
app.add_typer(preview_app, name="preview")
_MODEL_HELP = "Inference checkpoint [default: models/ganivid.safetensors]."
_SHEET_HELP = "Sheet to write: .png, .jpg or .webp [default: beside the input]."

# Options the preview commands share.
ModelOption = Annotated[Path | None, typer.Option("--model", help=_MODEL_HELP)]
DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
AtOption = Annotated[str | None, typer.Option("--at", help="Video frame: seconds, timecode or #frame.")]
CropsOption = Annotated[bool, typer.Option("--crops", help="Show the model's aligned crops instead of the photo around the face.")]
FullOption = Annotated[bool, typer.Option("--full", help="Show the whole photo instead of the region around the face.")]


def _beside(input: Path, output: Path | None, kind: str) -> Path:
    return output if output is not None else input.with_name(f"{input.stem}.{kind}.png")


def _check_tracks(tracks: Path | None) -> None:
    """A --tracks file that is not an .npz (a zip): say what it must be, not numpy's pickle advice."""
    from ganivid.errors import ConfigError

    if tracks is not None and tracks.is_file():
        with open(tracks, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise ConfigError(f"--tracks {tracks} is not a track table: give the .tracks.npz that "
                                  "`ganivid animate` writes beside its output")


@command("frames", group=preview_app)
def preview_frames_cmd(
    video: Path = typer.Argument(..., help="Input video."),
    output: Path | None = typer.Option(None, "--output", "-o", help=_SHEET_HELP + " The AU curves plot is written beside it (*_curves.png)."),
    au_curve: Path | None = typer.Option(None, "--au-curve", help="AU curve file: JSON, CSV or TOML keyframes."),
    au: list[str] = typer.Option([], "--au", help="Constant AU edit NAME=VALUE, e.g. AU12=0.8 (repeatable)."),
    expression: list[str] = typer.Option([], "--expression", metavar="NAME[:STRENGTH]", help="Constant named expression NAME[:STRENGTH], e.g. smile:0.7."),
    at: str | None = typer.Option(None, "--at", help="Frames to show: times and frame numbers, e.g. 0,2.5s,00:00:03,#120 [default: 4 spread out]."),
    every: str | None = typer.Option(None, "--every", help="Show one frame every this long, e.g. 2s."),
    faces: str = typer.Option("largest", "--faces", help="Faces to edit: largest, all, a track id, or ref:IMAGE."),
    source_aus: str = typer.Option("estimate", "--source-aus", help="estimate: keep the actor's own AUs where the curve is silent; none: zeros."),
    estimator: str = typer.Option("mesh", "--estimator", help="How the actor's own AUs are read: mesh (MediaPipe's blendshapes) or landmarks (dlib's 68 points)."),
    detect_every: int = typer.Option(12, "--detect-every", help="As given to animate: finds its cached track table."),
    tracks: Path | None = typer.Option(None, "--tracks", help="Track table to use [default: animate's cache beside the video or the sheet]."),
    model: ModelOption = None,
    device: DeviceOption = "auto",
) -> None:
    """Edit only the chosen frames of a video (seeking, no full decode) and lay them out on a sheet."""
    from ganivid.previewframes import preview_frames

    _check_tracks(tracks)
    from ganivid.cliargs import one_expression

    r = preview_frames(video, _beside(video, output, "preview"), au_curve, au=au, expression=one_expression(expression), at=at,
                       every=every, faces=faces, source_aus=source_mode(source_aus, estimator),
                       detect_every=detect_every, tracks=tracks,
                       model=model, device=device)
    typer.echo(f"wrote {r.output} ({r.size[0]}x{r.size[1]}) and {r.curves_plot}")


@command("grid", group=preview_app)
def preview_grid_cmd(
    image: Path = typer.Argument(..., help="Photo, or a video with --at."),
    output: Path | None = typer.Option(None, "--output", "-o", help=_SHEET_HELP),
    aus: str = typer.Option("AU1,AU2,AU4,AU12,AU25,AU26,AU45", "--aus", help="AUs, one row each."),
    levels: str = typer.Option("0,0.33,0.66,1", "--levels", help="Intensities in [0, 1], one column each."),
    at: AtOption = None,
    crops: CropsOption = False,
    full: FullOption = False,
    model: ModelOption = None,
    device: DeviceOption = "auto",
) -> None:
    """The paper's Fig. 4: one row per AU set to increasing intensities, other AUs kept."""
    from ganivid.preview import parse_levels, preview_grid

    r = preview_grid(image, _beside(image, output, "grid"), aus=[a for a in aus.split(",") if a.strip()],
                     levels=parse_levels(levels), at=at, crops=crops, full=full, model=model, device=device)
    typer.echo(f"wrote {r.output} ({r.size[0]}x{r.size[1]})")


@command("interpolate", group=preview_app)
def preview_interpolate_cmd(
    image: Path = typer.Argument(..., help="Photo, or a video with --at."),
    output: Path | None = typer.Option(None, "--output", "-o", help=_SHEET_HELP),
    expression: list[str] = typer.Option([], "--expression", metavar="NAME[:STRENGTH]", help="Target expression NAME[:STRENGTH] [default: smile unless --au]."),
    au: list[str] = typer.Option([], "--au", help="Target AU NAME=VALUE (repeatable)."),
    steps: int = typer.Option(6, "--steps", help="Columns from alpha = 0 to 1."),
    masks: bool = typer.Option(False, "--masks", help="Add the attention and colour-mask rows."),
    at: AtOption = None,
    crops: CropsOption = False,
    full: FullOption = False,
    model: ModelOption = None,
    device: DeviceOption = "auto",
) -> None:
    """The paper's Fig. 1: from the face's own AUs to a target, alpha from 0 to 1."""
    from ganivid.cliargs import one_expression
    from ganivid.preview import preview_interpolate

    r = preview_interpolate(image, _beside(image, output, "interpolate"),
                            expression=one_expression(expression) or (None if au else "smile"), au=au, steps=steps, masks=masks,
                            at=at, crops=crops, full=full, model=model, device=device)
    typer.echo(f"wrote {r.output} ({r.size[0]}x{r.size[1]})")


@command("sample", group=preview_app)
def preview_sample_cmd(
    image: Path = typer.Argument(..., help="Photo, or a video with --at."),
    output: Path | None = typer.Option(None, "--output", "-o", help=_SHEET_HELP),
    count: int = typer.Option(16, "--count", help="Number of random AU vectors."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same vectors."),
    at: AtOption = None,
    crops: CropsOption = False,
    full: FullOption = False,
    model: ModelOption = None,
    device: DeviceOption = "auto",
) -> None:
    """The paper's Fig. 7: the face under random plausible AU vectors."""
    from ganivid.preview import preview_sample

    r = preview_sample(image, _beside(image, output, "sample"), count=count, seed=seed, at=at, crops=crops, full=full,
                       model=model, device=device)
    typer.echo(f"wrote {r.output} ({r.size[0]}x{r.size[1]})")
