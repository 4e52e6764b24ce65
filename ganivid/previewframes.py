"""`ganivid preview frames`: chosen frames of a video edited along AU curves, without rendering it.

Only the chosen frames are decoded (`video.read_frames_at` seeks to the keyframe before each).
When `animate` has analysed the video before, its cached track table (beside its output, or
`tracks=`) gives the same smoothed alignments and actor AUs the render would use; otherwise each
chosen frame is analysed on its own (faces detected, AUs against the population's neutral).
One row per edited face: the input with overlays, the face before and after, the attention and
colour masks, and the actor's vs the target AUs; the AU curves are plotted beside the sheet."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ganivid.aus import AU_NAMES, NUM_AUS, photo_estimator, source_mode
from ganivid.errors import ConfigError, CurveError, NoFaceError
from ganivid.preview import MAX_FRAMES, SCREEN, PreviewResult, face_region
from ganivid.sheets import ACCENT, INK, MUTED, compose, figure_image, fit, grey, outline, overlay

if TYPE_CHECKING:
    from ganivid.align import Alignment

MAX_PLOTTED = 6  # AU subplots in the curves plot: the most changed ones


@dataclass(frozen=True)
class _Row:
    """One face in one previewed frame."""

    frame: int
    time_s: float
    label: str  # "track 3" or "face 0"
    alignment: Alignment
    landmarks: np.ndarray  # (68, 2)
    source: np.ndarray  # (17,) the actor's AUs (NaN: no estimate)


def find_track_cache(info, faces: str, detect_every: int, folders: Sequence[Path], mesh: bool = True) -> Path | None:
    """The newest track table `animate` cached for this video and these options, in `folders`."""
    from ganivid.analysis import cache_key, find_cache

    def key() -> str:  # only where some table is there: the tracker's import (scipy) is not free
        from ganivid.tracking import TrackConfig

        return cache_key(info, TrackConfig(detect_every=detect_every, encodings=faces.startswith("ref:"), mesh=mesh),
                         faces)

    return find_cache(folders, key)


def _requests(at: str | None, every: str | None, info) -> list:
    """KeyTimes of the frames to show: `at` ("0,2.5s,#120"), `every` ("2s"), or 4 spread out."""
    from ganivid.curves import KeyTime, parse_time
    from ganivid.still import parse_duration

    if at is not None and every is not None:
        raise ConfigError("give --at or --every, not both")
    duration = info.duration_s or ((info.frame_count or 1) / float(info.fps))
    if at is not None:
        keys = [parse_time(s.strip(), "--at") for s in at.split(",") if s.strip()]
        if not keys:
            raise ConfigError("--at: give times or frames, e.g. --at 0,2.5s,#120")
    elif every is not None:
        step = parse_duration(every, "--every")
        keys = [KeyTime(seconds=float(t)) for t in np.arange(0, duration, step)]
    else:
        keys = [KeyTime(seconds=duration * (k + 0.5) / 4) for k in range(4)]
    if len(keys) > MAX_FRAMES:
        raise ConfigError(f"{len(keys)} frames asked for; a sheet shows at most {MAX_FRAMES} (use a larger --every)")
    return keys


def _rows_from_cache(cache: Path, frames, faces: str, source_aus: str) -> list[_Row]:
    from ganivid.analysis import actor_aus, select_faces
    from ganivid.smoothing import smooth
    from ganivid.tracktable import TrackTable

    table = smooth(TrackTable.load(cache))  # exactly what animate renders with
    actor = actor_aus(table, source_aus)
    picked = select_faces(table, faces) if len(table) else table
    key = table.frame * 10**6 + table.track_id
    rows = []
    for f in frames:
        for r in picked.rows_for_frame(f.index):
            i = int(np.flatnonzero(key == r.frame * 10**6 + r.track_id)[0])
            rows.append(_Row(f.index, f.time_s, f"track {r.track_id}", r.alignment, r.landmarks, actor[i]))
    return rows


def _rows_from_frames(frames, faces: str, source_aus: str) -> list[_Row]:
    from ganivid.faces import DlibDetector
    from ganivid.still import find_faces

    if faces.startswith("ref:"):
        raise ConfigError("--faces ref:IMAGE needs animate's track table: run `ganivid animate` on the video "
                          "first, or pass --tracks")
    detector = DlibDetector()
    rows = []
    for f in frames:
        try:
            found = find_faces(f.image, faces, detector, photo_estimator(source_aus))
        except NoFaceError:
            continue
        for face in found:
            src = face.aus if source_aus != "none" else np.zeros(NUM_AUS, np.float32)
            rows.append(_Row(f.index, f.time_s, f"face {face.index}", face.alignment, face.landmarks, src))
    return rows


def _corners(al: Alignment) -> np.ndarray:
    a = np.radians(al.angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    h = al.size / 2
    return np.array([[-h, -h], [h, -h], [h, h], [-h, h]]) @ rot.T + (al.cx, al.cy)


def _au_lines(src: np.ndarray, tgt: np.ndarray, shown: Sequence[int]) -> list:
    lines = []
    for i in shown:
        s = " n/a" if np.isnan(src[i]) else f"{src[i]:4.2f}"
        changed = abs(tgt[i] - np.nan_to_num(src[i])) > 0.01
        lines.append((f"{AU_NAMES[i]:<5}{s} → {tgt[i]:4.2f}", ACCENT if changed else INK))
    return lines


def _changed(src: np.ndarray, tgt: np.ndarray, limit: int) -> list[int]:
    """AUs whose target differs from the actor's somewhere, most changed first."""
    diff = np.abs(tgt - np.nan_to_num(src)).max(axis=0) if len(tgt) else np.zeros(NUM_AUS)
    return [int(i) for i in np.argsort(-diff, kind="stable") if diff[i] > 0.01][:limit]


def _named(program) -> list[int]:
    """AUs the curves name (an AU, or the AUs of an expression's prototype)."""
    from ganivid.aus import expression

    out: list[int] = []
    for c in program.curves:
        idx = np.flatnonzero(expression(c.target)).tolist() if c.is_expression else [AU_NAMES.index(c.target)]
        out += [int(i) for i in idx if i not in out]
    return out


def plot_curves(path: Path, times: np.ndarray, target: np.ndarray, source: np.ndarray,
                marks: Sequence[tuple[float, str]], title: str, src_points: tuple[np.ndarray, np.ndarray] | None = None,
                named: Sequence[int] = ()) -> Path:
    """Plot target (solid) and actor (dashed) AU curves over time, one panel per changed AU, with
    the previewed frames marked; `src_points` (times, (K, 17)) are actor AUs known only there."""
    from matplotlib.figure import Figure

    from ganivid.images import write_image

    changed = _changed(source, target, MAX_PLOTTED)
    shown = (changed + [i for i in named if i not in changed])[:MAX_PLOTTED] or [AU_NAMES.index("AU12")]
    height = 0.9 + 1.35 * len(shown)
    fig = Figure(figsize=(10, height), dpi=100)
    fig.subplots_adjust(left=0.09, right=0.72, top=1 - 0.55 / height, bottom=0.5 / height, hspace=0.15)
    axes = fig.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
    for ax, i in zip(axes, shown):
        ax.plot(times, target[:, i], color="C3", lw=2, label="target")
        ax.plot(times, source[:, i], color="0.35", lw=1.2, ls="--",
                label="actor (interpolated)" if src_points is not None else "actor (estimated)")
        if src_points is not None:
            ax.plot(src_points[0], src_points[1][:, i], "o", color="0.35", ms=4, label="actor at previewed frames")
        for t, lab in marks:
            ax.axvline(t, color="C0", lw=0.8, alpha=0.6)
        ax.plot([t for t, _ in marks], np.interp([t for t, _ in marks], times, target[:, i]), "o", color="C3", ms=5)
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel(AU_NAMES[i], rotation=0, ha="right", va="center", fontsize=11)
        ax.grid(alpha=0.3)
    top = axes[0]
    for t, lab in marks:
        top.annotate(lab, (t, 1.05), xycoords=("data", "axes fraction"), ha="center", fontsize=8, color="C0")
    top.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9, frameon=False)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(title, fontsize=11)
    return write_image(path, figure_image(fig))


def preview_frames(video: str | Path, output: str | Path, curve: str | Path | None = None, *,
                   au: Sequence[str] = (), expression: str | None = None, at: str | None = None,
                   every: str | None = None, faces: str = "largest", source_aus: str = "estimate",
                   detect_every: int = 12, tracks: str | Path | None = None, model=None,
                   device: str = "auto") -> PreviewResult:
    """Edit only the chosen frames of a video along its AU curves and lay them out on a sheet.

    Args:
        video: the input video; output: the sheet (.png, .jpg, .webp); `<stem>_curves<ext>` is
            written beside it.
        curve, au, expression: the edit, as for `animate`.
        at: frames as "0,2.5s,00:00:03,#120"; every: a step ("2s"); default: 4 spread out.
        faces, source_aus, detect_every: as for `animate` (they also pick its cached track table).
        tracks: a track table file to use (default: animate's cache beside the video or the output).
        model, device: the generator (a path, or a loaded Engine).
    Raises:
        VideoError, CurveError, ConfigError, CheckpointError, DataError: one-line user errors.
    """
    from ganivid.align import crop_face, crop_landmarks, paste_back
    from ganivid.curves import build_program
    from ganivid.images import check_image_output, write_image
    from ganivid.engine import load_engine
    from ganivid.video import DECODE_STATS, probe, read_frames_at

    output = Path(output)
    check_image_output(output, source=video)
    source_aus = source_mode(source_aus)
    program = build_program(curve, au, [expression] if expression else [])
    if program.is_empty:
        raise CurveError("nothing to preview: give --au-curve FILE, --au NAME=VALUE or --expression NAME")
    info = probe(video)
    keys = _requests(at, every, info)
    if tracks is not None and not Path(tracks).is_file():
        raise ConfigError(f"--tracks: {tracks} does not exist")
    cache = Path(tracks) if tracks is not None else find_track_cache(
        info, faces, detect_every, [info.path.parent, output.parent], source_aus == "mesh")
    decoded0 = DECODE_STATS.frames
    got = read_frames_at(info.path, indices=[k.frame for k in keys if k.frame is not None],
                         times=[k.seconds for k in keys if k.frame is None], upright=True)
    decoded = DECODE_STATS.frames - decoded0
    frames = sorted({f.index: f for f in got}.values(), key=lambda f: f.index)
    rows = _rows_from_cache(cache, frames, faces, source_aus) if cache else _rows_from_frames(frames, faces, source_aus)
    engine = load_engine(model, device)
    src = np.array([r.source for r in rows], np.float32).reshape(-1, NUM_AUS)
    tgt = program.evaluate(np.array([r.time_s for r in rows]), src, np.array([r.frame for r in rows]), info.fps) \
        if rows else np.zeros((0, NUM_AUS), np.float32)
    crops = [crop_face(next(f.image for f in frames if f.index == r.frame), r.alignment, engine.image_size) for r in rows]
    marks = np.array([crop_landmarks(r.landmarks, r.alignment, engine.image_size) for r in rows], np.float32)
    edits = engine.edit(crops, tgt, src, marks) if rows else []

    n_rows = len(rows) + sum(1 for f in frames if all(r.frame != f.index for r in rows))
    h = int(np.clip((SCREEN[1] - 160) // max(n_rows, 1), 120, 220))
    aspect = frames[0].image.shape[1] / frames[0].image.shape[0]
    w_in = int(min(2.2, aspect) * h)
    shown = (_changed(src, tgt, 8) + [i for i in _named(program) if i not in _changed(src, tgt, 8)])[:8]
    panels, labels, notes = [], [], []
    for f in frames:
        mine = [(k, r) for k, r in enumerate(rows) if r.frame == f.index]
        scale = fit(f.image, w_in, h).shape[1] / f.image.shape[1]
        inp = fit(f.image, w_in, h)
        for _, r in mine:
            inp = overlay(inp, scale, _corners(r.alignment), r.landmarks, r.label.replace("track ", "#"))
        labels.append(f"#{f.index}\n{f.time_s:.2f} s")
        if not mine:
            panels.append([inp])
            notes.append([("no usable face: written unedited", MUTED)])
            continue
        for j, (k, r) in enumerate(mine):
            x0, y0, x1, y1 = face_region(r.alignment, f.image.shape)
            local = replace(r.alignment, cx=r.alignment.cx - x0, cy=r.alignment.cy - y0)
            before = f.image[y0:y1, x0:x1]
            after = paste_back(before, crops[k], edits[k].image, local, flow=edits[k].flow, warped_crop=edits[k].warped)
            panels.append([inp if j == 0 else None, fit(before, h, h), fit(after, h, h),
                           outline(fit(grey(edits[k].attention), h, h)), fit(edits[k].color, h, h)])
            if j:
                labels.append("")
            notes.append([(r.label, MUTED), *_au_lines(src[k], tgt[k], shown)])
    name = Path(model).name if isinstance(model, (str, Path)) else "shipped model" if model is None else "model"
    origin = f"animate's track table {cache.name}" if cache else "each frame analysed on its own"
    sheet = compose(panels, labels, ["input", "face", "edited", "attention", "colour"],
                    title=f"{info.path.name}: {len(frames)} frame(s) previewed ({name}; {origin})",
                    notes=notes,
                    legend=["input: the crop the model edits (red), 68 landmarks (green), track or face number. "
                            "face / edited: the frame before / after the edit.",
                            "attention: white = kept from the input, black = taken from the colour mask "
                            "(generator's aligned crop). Beside each row: actor's AU → target (red: changed)."])
    write_image(output, sheet.image)
    plot = _plot(output, program, info, rows, src, tgt, frames, cache, faces, source_aus)
    return PreviewResult(output, sheet, plot, tuple(f.index for f in frames), decoded, cache)


def _plot(output: Path, program, info, rows: list[_Row], src: np.ndarray, tgt: np.ndarray, frames,
          cache: Path | None, faces: str, source_aus: str) -> Path:
    """The curves plot beside the sheet: over the whole video from the track table when cached,
    else with the actor's AUs known only at the previewed frames."""
    marks = [(f.time_s, f"#{f.index}") for f in frames]
    path = output.with_name(f"{output.stem}_curves{output.suffix}")
    duration = info.duration_s or (frames[-1].time_s + 1.0)
    if cache is not None:
        from ganivid.analysis import actor_aus, select_faces
        from ganivid.smoothing import smooth
        from ganivid.tracktable import TrackTable

        table = smooth(TrackTable.load(cache))
        actor = actor_aus(table, source_aus)
        if len(table):
            keep = np.isin(table.frame * 10**6 + table.track_id,
                           (p := select_faces(table, faces)).frame * 10**6 + p.track_id)
            ids, counts = np.unique(table.track_id[keep], return_counts=True)
            if len(ids):
                one = keep & (table.track_id == ids[np.argmax(counts)])
                t = table.time_s[one]
                a = actor[one]
                y = program.evaluate(t, a, table.frame[one], info.fps)
                title = f"AU curves of {info.path.name}, track {ids[np.argmax(counts)]} (actor from animate's track table)"
                return plot_curves(path, t, y, a, marks, title, named=_named(program))
    grid = np.linspace(0, duration, 400)
    first = {}
    for r, s in zip(rows, src):
        first.setdefault(r.frame, (r.time_s, s))
    pts_t = np.array([v[0] for v in first.values()])
    pts_a = np.array([v[1] for v in first.values()], np.float32).reshape(-1, NUM_AUS)
    if len(pts_t):
        a = np.stack([np.interp(grid, pts_t, np.nan_to_num(pts_a[:, i])) for i in range(NUM_AUS)], axis=1)
    else:
        a = np.zeros((len(grid), NUM_AUS), np.float32)
    y = program.evaluate(grid, a, fps=info.fps)
    return plot_curves(path, grid, y, a, marks, f"AU curves of {info.path.name}", (pts_t, pts_a), _named(program))
