"""Temporal smoothing of alignments (One-Euro, forward and backward) and face selection."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ganivid.errors import ConfigError, NoFaceError
from ganivid.tracktable import TrackTable

# Defaults picked with benchmarks/tracking.py on moving, zooming, rotating faces at 25 fps.
MIN_CUTOFF = 1.0  # Hz: cutoff when the face is still (lower = steadier, but slower to follow)
BETA = 1.0  # Hz added per unit of speed (crop sizes / s): fast moves are followed closely
D_CUTOFF = 1.0  # Hz: cutoff of the speed estimate that drives the adaptive cutoff


def _alpha(dt: np.ndarray | float, cutoff: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + 1.0 / (2 * np.pi * cutoff * dt))


def one_euro(x: np.ndarray, t: np.ndarray, min_cutoff: float = MIN_CUTOFF, beta: float = BETA,
             d_cutoff: float = D_CUTOFF) -> np.ndarray:
    """One-Euro filter (Casiez et al. 2012) of samples x (T, D) taken at times t (T,) in seconds;
    the real time steps drive it, so variable-frame-rate video is filtered correctly."""
    out = np.array(x, np.float64)
    if len(out) < 2:
        return out
    x = np.asarray(x, np.float64)
    steps = np.maximum(np.diff(np.asarray(t, np.float64)), 1e-6)  # repeated timestamps: a tiny step, not 0/0
    a_d = _alpha(steps, d_cutoff)  # the speed filter's gains depend on the time steps only
    dx = np.zeros(out.shape[1:])
    for i in range(1, len(out)):
        dt = steps[i - 1]
        dx = dx + a_d[i - 1] * ((x[i] - out[i - 1]) / dt - dx)
        out[i] = out[i - 1] + _alpha(dt, min_cutoff + beta * np.abs(dx)) * (x[i] - out[i - 1])
    return out


def smooth_series(params: np.ndarray, t: np.ndarray, min_cutoff: float = MIN_CUTOFF, beta: float = BETA,
                  d_cutoff: float = D_CUTOFF) -> np.ndarray:
    """Smoothed (cx, cy, size, angle) rows (T, 4) of one continuous track segment: One-Euro run
    forward and backward and averaged, so the lag of each direction cancels."""
    p = np.asarray(params, np.float64)
    if len(p) < 3:
        return p.copy()
    # Filter in face units so the parameters mean the same at any resolution: centre in median
    # crop sizes, size as log (zoom is multiplicative), angle unwrapped in radians.
    s = float(np.median(p[:, 2]))
    z = np.column_stack([p[:, 0] / s, p[:, 1] / s, np.log(np.maximum(p[:, 2], 1e-6)), np.unwrap(np.radians(p[:, 3]))])
    t = np.asarray(t, np.float64)
    # Odd extension at both ends (as scipy's filtfilt pads): the path continues with the same
    # slope, so neither pass starts cold and the ends of a run lag no more than its middle.
    k = min(len(z) - 1, 12)
    z = np.concatenate([2 * z[0] - z[k:0:-1], z, 2 * z[-1] - z[-2:-k - 2:-1]])
    t = np.concatenate([2 * t[0] - t[k:0:-1], t, 2 * t[-1] - t[-2:-k - 2:-1]])
    fwd = one_euro(z, t, min_cutoff, beta, d_cutoff)
    bwd = one_euro(z[::-1], -t[::-1], min_cutoff, beta, d_cutoff)[::-1]
    m = (0.5 * (fwd + bwd))[k:len(z) - k]
    angle = (np.degrees(m[:, 3]) + 180) % 360 - 180
    return np.column_stack([m[:, 0] * s, m[:, 1] * s, np.exp(m[:, 2]), angle])


def smooth(table: TrackTable, min_cutoff: float = MIN_CUTOFF, beta: float = BETA,
           d_cutoff: float = D_CUTOFF) -> TrackTable:
    """The table with each track's alignment smoothed over time; landmarks stay as measured.

    Each run of consecutive frames of a track (gaps and cuts split runs) is filtered on its own."""
    if min_cutoff <= 0 or beta < 0 or d_cutoff <= 0:
        raise ConfigError(f"smoothing needs min_cutoff > 0, beta >= 0, d_cutoff > 0 "
                          f"(got {min_cutoff}, {beta}, {d_cutoff})")
    params = table.params.copy()
    pos = np.searchsorted(table.frames, table.frame)
    shot = table.shot_of(table.frame)
    for tid in table.track_ids():
        idx = np.flatnonzero(table.track_id == tid)
        breaks = np.flatnonzero((np.diff(pos[idx]) != 1) | (np.diff(shot[idx]) != 0)) + 1
        for run in np.split(idx, breaks):
            params[run] = smooth_series(table.params[run], table.time_s[run], min_cutoff, beta, d_cutoff)
    return replace(table, params=params, smoothed=True)


def select(table: TrackTable, how: str | int = "largest", reference: np.ndarray | None = None,
           threshold: float = 0.6) -> TrackTable:
    """The rows of the faces to edit.

    Args:
        how: "largest" (per shot, the track with the most face area over time: the main face,
            without flicking between people from frame to frame), "all", a track id, or
            "reference" (tracks whose identity is within `threshold` of the face in `reference`;
            needs a table analysed with `TrackConfig(encodings=True)`).
        reference: RGB image of the person to edit, for how="reference".
    Raises:
        ConfigError: unknown `how`, or unknown track id.
        NoFaceError: no face in `reference`, or no track matches it.
    """
    if isinstance(how, str) and how.isdigit():
        how = int(how)
    if how == "all" or len(table) == 0:
        return table
    if isinstance(how, (int, np.integer)) and not isinstance(how, bool):
        if int(how) not in table.track_ids():
            raise ConfigError(f"no face track {how}; tracks in this video: {table.track_ids()}")
        return table.take(table.track_id == int(how))
    if how == "largest":
        shot = table.shot_of(table.frame)
        keep = np.zeros(len(table), bool)
        for s in np.unique(shot):
            rows = shot == s
            ids = table.track_id[rows]
            area = {int(i): float(np.sum(table.params[rows][ids == i, 2] ** 2)) for i in np.unique(ids)}
            keep |= rows & (table.track_id == max(area, key=area.get))
        return table.take(keep)
    if how == "reference":
        return _select_reference(table, reference, threshold)
    raise ConfigError(f"unknown face selection {how!r}: use largest, all, reference or a track id")


def _select_reference(table: TrackTable, reference: np.ndarray | None, threshold: float) -> TrackTable:
    from ganivid.faces import DlibDetector, face_encoding

    if reference is None:
        raise ConfigError("face selection 'reference' needs a reference image")
    if not table.encodings:
        raise ConfigError("this track table has no identity encodings: analyse with TrackConfig(encodings=True)")
    found = DlibDetector(upsample=1).detect(reference)
    if not found:
        raise NoFaceError("no face found in the reference image")
    ref = face_encoding(reference, found[0].landmarks)
    dist = {tid: float(np.linalg.norm(e - ref)) for tid, e in table.encodings.items()}
    ids = [tid for tid, d in dist.items() if d <= threshold]
    if not ids:
        raise NoFaceError(f"no face in the video matches the reference image "
                          f"(closest distance {min(dist.values()):.2f} > {threshold})")
    return table.take(np.isin(table.track_id, ids))
