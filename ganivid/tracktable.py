"""The per-frame track table: where each tracked face is in every analysed frame.

`animate` caches it beside its output (npz) and `preview` reuses it; `--stats` writes it as
CSV. Rows are sorted by frame, then track id; frames without a usable face have no row and
are written unedited."""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ganivid.align import Alignment
from ganivid.errors import DataError
from ganivid.fileio import atomic_path

STATES = ("detected", "tracked", "interpolated")
DETECTED, TRACKED, INTERPOLATED = 0, 1, 2
CSV_COLUMNS = ("frame", "time_s", "track_id", "cx", "cy", "size", "angle", "state")
_VERSION = 1


@dataclass(frozen=True)
class TrackRow:
    """One face in one frame."""

    frame: int
    time_s: float
    track_id: int
    alignment: Alignment
    state: str  # detected | tracked | interpolated
    landmarks: np.ndarray  # (68, 2) float32, frame pixels


def _empty(n: int = 0) -> dict[str, np.ndarray]:
    return dict(frame=np.zeros(n, np.int64), time_s=np.zeros(n, np.float64), track_id=np.zeros(n, np.int64),
                params=np.zeros((n, 4), np.float64), state=np.zeros(n, np.int8),
                landmarks=np.zeros((n, 68, 2), np.float32))


@dataclass(frozen=True)
class TrackTable:
    """Rows (one per face per frame) plus the frame index, timestamps and scene cuts of the clip."""

    frame: np.ndarray  # (N,) int64
    time_s: np.ndarray  # (N,) float64
    track_id: np.ndarray  # (N,) int64
    params: np.ndarray  # (N, 4) float64: cx, cy, size, angle (degrees), as align.Alignment
    state: np.ndarray  # (N,) int8 index into STATES
    landmarks: np.ndarray  # (N, 68, 2) float32
    frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (F,) every analysed frame
    times: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))  # (F,) their times in s
    cuts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # frames that start a new shot
    image_size: tuple[int, int] = (0, 0)  # (height, width) of the analysed frames
    encodings: dict[int, np.ndarray] = field(default_factory=dict)  # track id -> (128,) identity
    smoothed: bool = False
    cues: np.ndarray | None = None  # (N, 17) float32 mesh AU cues (meshaus.cues), NaN where unread; None: not read

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def from_rows(cls, rows: Sequence[TrackRow], **meta) -> TrackTable:
        """A table from rows in any order."""
        cols = _empty(len(rows))
        for i, r in enumerate(sorted(rows, key=lambda r: (r.frame, r.track_id))):
            cols["frame"][i], cols["time_s"][i], cols["track_id"][i] = r.frame, r.time_s, r.track_id
            cols["params"][i] = r.alignment.as_array()
            cols["state"][i] = STATES.index(r.state)
            cols["landmarks"][i] = r.landmarks
        return cls(**cols, **meta)

    def row(self, i: int) -> TrackRow:
        """Row number i."""
        return TrackRow(int(self.frame[i]), float(self.time_s[i]), int(self.track_id[i]),
                        Alignment(*map(float, self.params[i])), STATES[self.state[i]], self.landmarks[i])

    def rows_for_frame(self, frame: int) -> list[TrackRow]:
        """The faces of one frame (empty list: leave the frame unedited)."""
        lo, hi = np.searchsorted(self.frame, [frame, frame + 1])
        return [self.row(i) for i in range(lo, hi)]

    def track_ids(self) -> list[int]:
        """Distinct track ids, ascending."""
        return [int(t) for t in np.unique(self.track_id)]

    def take(self, keep: np.ndarray) -> TrackTable:
        """The table restricted to rows where the boolean mask `keep` is true."""
        return replace(self, frame=self.frame[keep], time_s=self.time_s[keep], track_id=self.track_id[keep],
                       params=self.params[keep], state=self.state[keep], landmarks=self.landmarks[keep],
                       encodings={k: v for k, v in self.encodings.items() if k in set(self.track_id[keep].tolist())},
                       cues=None if self.cues is None else self.cues[keep])

    def shot_of(self, frames: np.ndarray) -> np.ndarray:
        """Shot number (0 = before the first cut) of each frame index."""
        return np.searchsorted(np.sort(self.cuts), frames, side="right")

    def save(self, path: str | os.PathLike) -> None:
        """Write the table as .npz, atomically (a temporary file beside it, then rename)."""
        ids = np.array(sorted(self.encodings), np.int64)
        enc = np.array([self.encodings[i] for i in ids], np.float32).reshape(len(ids), 128)
        arrays = dict(version=np.int64(_VERSION), frame=self.frame, time_s=self.time_s, track_id=self.track_id,
                      params=self.params, state=self.state, landmarks=self.landmarks, frames=self.frames,
                      times=self.times, cuts=self.cuts, image_size=np.array(self.image_size, np.int64),
                      enc_ids=ids, enc=enc, smoothed=np.bool_(self.smoothed),
                      **({} if self.cues is None else {"cues": self.cues}))
        _atomic_write(Path(path), lambda f: np.savez_compressed(f, **arrays), binary=True)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrackTable:
        """Read a table written by `save`; `DataError` if the file is missing, damaged or too new."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["version"]) > _VERSION:
                    raise DataError(f"{path}: track table version {int(z['version'])} is newer than this ganivid")
                return cls(frame=z["frame"], time_s=z["time_s"], track_id=z["track_id"], params=z["params"],
                           state=z["state"], landmarks=z["landmarks"], frames=z["frames"], times=z["times"],
                           cuts=z["cuts"], image_size=tuple(int(v) for v in z["image_size"]),
                           encodings={int(i): e for i, e in zip(z["enc_ids"], z["enc"])},
                           smoothed=bool(z["smoothed"]), cues=z["cues"] if "cues" in z.files else None)
        except (OSError, KeyError, ValueError, EOFError) as ex:
            raise DataError(f"cannot read track table {path}: {ex}") from ex

    def to_csv(self, path: str | os.PathLike,
               au_columns: Mapping[str, Sequence[float]] | np.ndarray | None = None) -> None:
        """Write `frame,time_s,track_id,cx,cy,size,angle,state` per row, then AU columns if given:
        a mapping name -> one value per row, or an (N, 17) array named by `aus.AU_NAMES`."""
        names, values = [], np.zeros((len(self), 0))
        if isinstance(au_columns, np.ndarray):
            from ganivid.aus import AU_NAMES

            values = np.asarray(au_columns, np.float64).reshape(len(self), -1)
            if values.shape[1] != len(AU_NAMES):
                raise ValueError(f"au_columns has {values.shape[1]} columns, expected {len(AU_NAMES)}")
            names = list(AU_NAMES)
        elif au_columns:
            names = list(au_columns)
            values = np.array([np.asarray(au_columns[n], np.float64) for n in names]).T.reshape(len(self), -1)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([*CSV_COLUMNS, *names])
        for i in range(len(self)):
            cx, cy, size, angle = self.params[i]
            w.writerow([int(self.frame[i]), f"{self.time_s[i]:.6f}", int(self.track_id[i]), f"{cx:.3f}", f"{cy:.3f}",
                        f"{size:.3f}", f"{angle:.3f}", STATES[self.state[i]], *(f"{v:.4f}" for v in values[i])])
        _atomic_write(Path(path), lambda f: f.write(buf.getvalue()), binary=False)


def interpolate_gaps(table: TrackTable, max_gap: int) -> TrackTable:
    """Fill gaps of at most `max_gap` frames inside each track (same shot) by interpolating in time."""
    pos = np.searchsorted(table.frames, table.frame)  # position of each row in the clip
    shot = table.shot_of(table.frame)
    names = ("frame", "time_s", "track_id", "params", "state", "landmarks") + (("cues",) if table.cues is not None else ())
    new = {k: [] for k in names}
    for tid in table.track_ids():
        idx = np.flatnonzero(table.track_id == tid)
        for i, j in zip(idx[:-1], idx[1:]):
            gap = pos[j] - pos[i] - 1
            if not 0 < gap <= max_gap or shot[i] != shot[j]:
                continue
            t0, t1 = table.time_s[i], table.time_s[j]
            p0, p1 = table.params[i], table.params[j].copy()
            p1[3] = p0[3] + (p1[3] - p0[3] + 180) % 360 - 180  # the short way round
            for q in range(pos[i] + 1, pos[j]):
                tq = table.times[q]
                u = (tq - t0) / (t1 - t0) if t1 > t0 else (q - pos[i]) / (gap + 1)
                lerp = lambda a: a[i] + u * (a[j] - a[i])  # noqa: E731
                for k, v in zip(new, (table.frames[q], tq, tid, p0 + u * (p1 - p0), INTERPOLATED,
                                      lerp(table.landmarks), *((lerp(table.cues),) if table.cues is not None else ()))):
                    new[k].append(v)
    if not new["frame"]:
        return table
    cols = {k: np.concatenate([getattr(table, k), np.array(v, getattr(table, k).dtype)]) for k, v in new.items()}
    order = np.lexsort((cols["track_id"], cols["frame"]))
    return replace(table, **{k: v[order] for k, v in cols.items()})


def _atomic_write(path: Path, write, binary: bool) -> None:
    """Write through a temporary file in the same folder so a crash never leaves half a file."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb" if binary else "w", **({} if binary else {"newline": ""})) as f:
            write(f)
    except OSError as ex:
        raise DataError(f"cannot write {path}: {ex.strerror or ex}") from ex
