"""The analyse pass of `animate`: faces tracked through the video (cached beside the output),
smoothed, selected, and the actor's own AUs estimated per track; then the target AUs per face."""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ganivid.aus import NUM_AUS, source_mode
from ganivid.errors import ConfigError

if TYPE_CHECKING:
    from ganivid.tracktable import TrackTable
    from ganivid.video import VideoInfo

_CACHE_VERSION = 2  # 2: tracked on grey frames
AU_MIN_CUTOFF = 1.5  # Hz: the actor's AUs are smoothed less than the alignment, speech is fast


def cache_key(info: VideoInfo, track_cfg, faces: str) -> str:
    """Cache key of the analysis: the input file's identity and every option that changes it."""
    st = info.path.stat()
    key = {"v": _CACHE_VERSION, "path": str(info.path.resolve()), "size": st.st_size, "mtime": st.st_mtime_ns,
           "track": repr(track_cfg), "ref": faces.startswith("ref:")}
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def cache_path(output: Path, key: str) -> Path:
    return output.parent / f".{output.name}.{key}.tracks.npz"


def find_cache(folders: Sequence[Path], key: Callable[[], str]) -> Path | None:
    """The newest track table cached in `folders` for any output under the key `key()` (the same
    video, unchanged, and the same options); `key` is computed only if some table is there."""
    candidates = {p for d in folders if d.is_dir() for p in d.glob(".*.tracks.npz")}
    if not candidates:
        return None
    found = [p for p in candidates if p.name.endswith(f".{key()}.tracks.npz")]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def adopt_cache(cache: Path, key: str, folders: Sequence[Path]) -> None:
    """Where `cache` is missing, copy there a table analysed under `key` for another output (the
    same video and options; found in `folders`), so that rendering it again under another name
    skips the analysis. The copy goes through a temporary file beside `cache`."""
    import shutil

    from ganivid.fileio import atomic_path

    found = None if cache.is_file() else find_cache(folders, lambda: key)
    if found is not None:
        with atomic_path(cache) as tmp:
            shutil.copyfile(found, tmp)


def analyse_video(info: VideoInfo, track_cfg, cache: Path | None,
                  on_frame: Callable[[], None]) -> tuple[TrackTable, float, float, float, bool]:
    """The raw track table of a video, from the cache when it matches:
    (table, decode s, track s, detector loading s, reused)."""
    from ganivid.faces import DlibDetector
    from ganivid.pipeline import StageClock, prefetch, timed
    from ganivid.tracking import analyse, cued
    from ganivid.video import read_frames
    from ganivid.yuv import full_range

    from ganivid.tracktable import TrackTable

    if cache is not None and cache.is_file():
        try:
            return TrackTable.load(cache), 0.0, 0.0, 0.0, True
        except Exception:  # a damaged cache is only a lost shortcut: analyse again
            cache.unlink(missing_ok=True)
    clock, wait = StageClock(), [0.0]

    def frames():
        # Grey straight from the luma plane: tracking works on grey anyway; only identity
        # encodings (--faces ref:) need colour. Limited-range luma is expanded, and the scene-cut
        # test made, in the decoding thread, beside the tracker: the landmark fits let the GIL go.
        grey = not track_cfg.encodings
        decoded = read_frames(info.path, upright=bool(info.rotation), grey=grey, info=info, luma=True)
        expanded = (replace(f, image=full_range(f.image), limited=False) if f.limited else f for f in decoded)
        it = prefetch(cued(timed(expanded, clock), track_cfg))
        while True:
            t = time.perf_counter()
            f = next(it, None)
            wait[0] += time.perf_counter() - t
            if f is None:
                return
            yield f
            on_frame()

    t0 = time.perf_counter()
    detector = DlibDetector(track_cfg.upsample, track_cfg.cnn, track_cfg.detect_side)  # ~1 s: model files
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = analyse(frames(), track_cfg, detector)
    total = time.perf_counter() - t0
    if cache is not None:
        table.save(cache)
    # Decoding runs ahead in its own thread: charge tracking only for the time not spent waiting.
    return table, clock.decode, total - wait[0], setup, False


def _runs(table: TrackTable, idx: np.ndarray) -> list[np.ndarray]:
    """Split one track's rows into runs of consecutive frames within one shot."""
    pos = np.searchsorted(table.frames, table.frame[idx])
    shot = table.shot_of(table.frame[idx])
    breaks = np.flatnonzero((np.diff(pos) != 1) | (np.diff(shot) != 0)) + 1
    return np.split(idx, breaks)


def actor_aus(table: TrackTable, mode: str = "mesh") -> np.ndarray:
    """The actor's AUs (N, 17) per row: estimated against each track's own neutral and smoothed
    over time (forward-backward One-Euro); NaN where the estimator has no answer. mode: mesh
    (the table's mesh cues; landmarks if it has none), landmarks (dlib's 68 points) or none (zeros)."""
    from ganivid.estimate import estimate_aus, track_baseline
    from ganivid.meshaus import cue_baseline, mesh_aus
    from ganivid.smoothing import one_euro

    mode = source_mode(mode)
    if mode == "none":
        return np.zeros((len(table), NUM_AUS), np.float32)
    mesh = mode == "mesh" and table.cues is not None
    out = np.full((len(table), NUM_AUS), np.nan, np.float32)
    for tid in table.track_ids():
        idx = np.flatnonzero(table.track_id == tid)
        if mesh:
            aus = mesh_aus(table.cues[idx], cue_baseline(table.cues[idx]))
        else:
            aus = estimate_aus(table.landmarks[idx], track_baseline(table.landmarks[idx]))
        ok = ~np.isnan(aus).all(axis=0)
        for run in _runs(table, idx):
            k = np.searchsorted(idx, run)
            t = table.time_s[run]
            a = aus[k][:, ok]
            if len(run) >= 3:
                fwd = one_euro(a, t, AU_MIN_CUTOFF, 0.5)
                bwd = one_euro(a[::-1], -t[::-1], AU_MIN_CUTOFF, 0.5)[::-1]
                a = np.clip(0.5 * (fwd + bwd), 0, 1)
            out[run[:, None], np.flatnonzero(ok)[None]] = a
    return out


def load_reference(spec: str) -> np.ndarray:
    import cv2

    path = Path(spec)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
    if img is None:
        raise ConfigError(f"--faces ref:{spec}: cannot read the reference image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def select_faces(table: TrackTable, faces: str) -> TrackTable:
    """The rows to edit for `--faces largest|all|ID|ref:IMG`."""
    from ganivid.smoothing import select

    if faces.startswith("ref:"):
        return select(table, "reference", reference=load_reference(faces[4:]))
    return select(table, faces)


def plan_edits(raw: TrackTable, program, faces: str, source_aus: str,
               info: VideoInfo) -> tuple[TrackTable, np.ndarray, np.ndarray, np.ndarray]:
    """Smoothed table, rows to edit (N,) bool, the actor's AUs (N, 17) and target AUs (N, 17; NaN
    on rows not edited) from the raw track table and the curves."""
    from ganivid.smoothing import smooth

    table = smooth(raw)
    actor = actor_aus(table, source_aus)
    chosen = np.zeros(len(table), bool)
    if len(table):
        picked = select_faces(table, faces)
        key = lambda t: t.frame * 2**20 + t.track_id  # noqa: E731  (frame, track) as one number
        chosen = np.isin(key(table), key(picked))
    targets = np.full((len(table), NUM_AUS), np.nan, np.float32)
    if chosen.any():
        targets[chosen] = program.evaluate(table.time_s[chosen], actor[chosen], table.frame[chosen], info.fps)
    return table, chosen, actor, targets


def check_faces(faces: str) -> None:
    if faces in ("largest", "all") or faces.isdigit():
        return
    if faces.startswith("ref:"):
        load_reference(faces[4:])
        return
    raise ConfigError(f"--faces {faces!r}: use largest, all, a track id or ref:IMAGE")
