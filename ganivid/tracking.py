"""Faces through a video: detection every k frames, landmark tracking between, stable track ids.

Every frame each live track's landmarks are refitted in a canonical upright patch placed where
the previous landmarks predict the face (one landmark fit per face per frame, whatever the
resolution); a thumbnail of the refitted face is compared with the track's template from its
last detection, and the detector runs at once when that similarity drops. Periodic runs look
for new faces: they wait sure_stretch x k frames while every face is confirmed and sure, and are
skipped while nothing outside the faces changed since the last run. Detections are associated
with tracks by box overlap. A face whose refit leaves the frame, or that an unsure refit shows
a quarter hidden by a sure face, is lost without a detector run (HOG finds whole faces only); a
lost face is looked for every frame by a template search near its path and taken back (same
id) when a landmark fit there confirms it, which also restarts the periodic clock, or by the
detector when it finds a face near there; scene cuts end all tracks; short gaps are interpolated."""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from ganivid.align import alignment_from_landmarks
from ganivid.aus import NUM_AUS
from ganivid.errors import ConfigError, VideoError
from ganivid.faces import DlibDetector, _to_rgb, face_encoding
from ganivid.meshaus import read_cues
from ganivid.trackcues import PATCH, CutDetector, changed_outside, covered, patch, same_face, search, thumb
from ganivid.tracktable import DETECTED, TRACKED, TrackTable, _empty, interpolate_gaps

# Landmark-fit box side / crop side. HOG boxes range 0.70-0.83 of the crop; near 0.83 the fit
# feeds on itself (bigger box, bigger face, bigger box...) and the crop grows frame after frame,
# while 0.70 converges for every face tried, so one fixed ratio serves all tracks.
BOX_RATIO = 0.7
# Template correlation at which a lost face found by the search is taken back: at 0.5 half-hidden
# faces came back with shaky landmarks (jitter 0.27 of unsmoothed, against 0.245 at 0.6).
REVIVE = 0.6


@dataclass(frozen=True)
class TrackConfig:
    """How faces are found and followed; defaults suit 25-60 fps footage of 1-4 people."""

    detect_every: int = 15  # run the detector every k frames for new faces (and whenever a track looks unsure)
    sure_stretch: int = 2  # ... every stretch x k frames while every followed face looks sure (new faces wait)
    sure_similarity: float = 0.85  # sure: at least this like its template (faces moving in view: 0.9-1)
    skip_unchanged: bool = True  # ... and skip it while nothing outside the faces changed since the last run
    detect_side: int = 640  # detect on the frame downscaled to this longer side (faces >= ~80 px there)
    upsample: int = 0  # dlib HOG upsampling: 1 finds faces half as big, 4x slower
    cnn: bool = False  # dlib's CNN detector: finds turned faces, ~50x slower on CPU
    min_similarity: float = 0.5  # thumbnail/template correlation below which the detector is rerun
    iou_match: float = 0.3  # least box overlap to associate a detection with a track
    max_gap: int = 5  # missing frames up to this many are interpolated; longer gaps stay unedited
    reid_window: float = 2.0  # seconds a lost track can get its id back
    reid_distance: float = 0.6  # how near (in crop sizes) a returning face must be to its lost track
    cut_threshold: float = 0.12  # mean abs difference (0..1) of 64-px grey thumbnails that means a cut
    cut_hist: float = 0.2  # ... when the grey histograms also differ this much (pans keep them)
    encodings: bool = False  # 128-d identity per track (~0.2 s each) for select(..., reference=)
    mesh: bool = True  # read MediaPipe's mesh AU cues of every face (meshaus.cues, ~2.3 ms a read)
    mesh_rate: float = 12.5  # ... at most this often per second per face; rows between are interpolated
    confirm_score: float = 0.5  # a track from a weaker detection that the detector never finds again
    # in its next runs is a false positive (HOG's fire on textures near score 0; faces score ~1-2)

    def __post_init__(self):
        checks = {"detect_every": self.detect_every >= 1, "detect_side": self.detect_side >= 64,
                  "upsample": 0 <= self.upsample <= 3, "min_similarity": -1 <= self.min_similarity < 1,
                  "sure_similarity": -1 <= self.sure_similarity <= 1, "sure_stretch": self.sure_stretch >= 1,
                  "iou_match": 0 < self.iou_match < 1, "max_gap": self.max_gap >= 0,
                  "reid_window": self.reid_window >= 0, "reid_distance": self.reid_distance >= 0,
                  "mesh_rate": self.mesh_rate > 0,
                  "cut_threshold": 0 < self.cut_threshold, "cut_hist": 0 <= self.cut_hist <= 1}
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"invalid tracking option {name}={getattr(self, name)!r}")


@dataclass
class _Track:
    id: int
    al: np.ndarray  # (4,) cx, cy, size, angle of the last fit
    lm: np.ndarray  # (68, 2)
    time: float
    frame: int  # position in the clip
    template: np.ndarray  # (THUMB, THUMB) zero-mean unit-norm grey
    score: float  # detector score when the track started
    hits: int = 1  # detections matched to this track
    attempts: int = 1  # detector runs while it was live
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # per second
    similarity: float = 1.0

    def predict(self, t: float) -> np.ndarray:
        """Alignment expected at time t (constant velocity, at most 0.2 s ahead: after that it's a guess)."""
        return self.al + self.velocity * min(max(t - self.time, 0.0), 0.2)


def _frame(item) -> tuple[int, float, np.ndarray]:
    """(index, time_s, image) from a triple or from an object with index/time/image attributes."""
    if isinstance(item, (tuple, list)):
        index, t, image = item
    else:
        index, image = item.index, item.image
        # Seconds only: a `pts` attribute (video.Frame has one) counts time-base units, not seconds.
        t = next((getattr(item, n) for n in ("time_s", "time") if getattr(item, n, None) is not None), None)
    if t is None:
        raise VideoError(f"frame {index} has no timestamp")
    return int(index), float(t), _to_rgb(np.asarray(image))


@dataclass(frozen=True)
class Cued:
    """A frame whose scene-cut test is already made (`cued`): its 64-px grey thumbnail, and
    whether it starts a new shot."""
    index: int
    time_s: float
    image: np.ndarray
    cut: bool
    thumb: np.ndarray


def cued(frames: Iterable, config: TrackConfig | None = None) -> Iterator[Cued]:
    """`frames` (as `analyse` takes them) with the scene-cut test made as they pass. It needs
    nothing from the tracking, so a decoding thread (`pipeline.prefetch`) can run it beside the
    tracker: 6-8 % of the tracker's thread at 640x360."""
    cfg = config or TrackConfig()
    cuts = CutDetector(cfg.cut_threshold, cfg.cut_hist)
    for item in frames:
        index, t, img = _frame(item)
        cut = cuts(img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
        yield Cued(index, t, img, cut, cuts.thumb)


def _box(al: np.ndarray) -> np.ndarray:
    """Upright detector-like box (x0, y0, x1, y1) for an alignment."""
    h = 0.5 * BOX_RATIO * al[2]
    return np.array([al[0] - h, al[1] - h, al[0] + h, al[1] + h])


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes a (n, 4) and b (m, 4)."""
    a, b = a[:, None], b[None]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


class _Fitter:
    """68 landmarks fitted in a canonical upright patch around a guessed alignment."""

    def __init__(self, detector: DlibDetector):
        self.detector = detector

    def __call__(self, img: np.ndarray, al: np.ndarray, iters: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(landmarks (68, 2), alignment (4,), thumbnail) of the face near `al`.

        Tracked frames start close and take one fit. Starts further off take `iters`, stopping
        once a fit moves the alignment less than 0.5% of its size; beyond the second the moves
        only went back and forth by 0.3-2% of the size (the fit's own noise, which the following
        tracked frames refine anyway), so no caller asks for more than two."""
        c, h = (PATCH - 1) / 2, 0.5 * BOX_RATIO * PATCH
        for i in range(iters):
            p, m = patch(img, al, PATCH)
            lm_p = self.detector.landmarks(p, (c - h, c - h, c + h, c + h)).astype(np.float64)
            inv = cv2.invertAffineTransform(m)
            lm = lm_p @ inv[:, :2].T + inv[:, 2]
            prev, al = al, alignment_from_landmarks(lm).as_array()
            if i + 1 < iters and np.hypot(*(al[:2] - prev[:2])) < 0.005 * al[2] and abs(np.log(al[2] / prev[2])) < 0.005:
                break  # converged to within ~0.1 px on a face of ~100 px
        return lm.astype(np.float32), al, thumb(p, m, al)


class Tracker:
    """Stateful per-frame analysis; `analyse` drives it over a whole clip."""

    def __init__(self, config: TrackConfig | None = None, detector: DlibDetector | None = None):
        self.cfg = config or TrackConfig()
        self.detector = detector or DlibDetector(self.cfg.upsample, self.cfg.cnn, self.cfg.detect_side)
        self.fit = _Fitter(self.detector)
        self.cuts = CutDetector(self.cfg.cut_threshold, self.cfg.cut_hist)
        self.live: list[_Track] = []
        self.lost: list[_Track] = []
        self.next_id, self.since_detect, self.pos = 0, self.cfg.detect_every, -1
        self.encodings: dict[int, np.ndarray] = {}
        self.seen: tuple[np.ndarray, list[np.ndarray]] | None = None  # thumbnail and faces at the last detector run
        self.tracks: dict[int, _Track] = {}  # every track ever started, by id

    def false_positives(self) -> set[int]:
        """Ids of tracks that started from a weak detection the detector never confirmed in >= 2 later runs."""
        return {i for i, tr in self.tracks.items()
                if tr.hits == 1 and tr.attempts >= 3 and tr.score < self.cfg.confirm_score}

    def step(self, t: float, img: np.ndarray, cue: tuple[bool, np.ndarray] | None = None,
             ) -> tuple[list[tuple[_Track, int]], bool]:
        """Analyse the next frame: ([(track, state)], is_cut). `cue`: the frame's cut test made
        beforehand (`cued`: is_cut, thumbnail), else it is made here."""
        self.pos += 1
        colour = img  # only identity encodings need colour
        # Grey once per frame for the cut test, the detector and every landmark fit: they all
        # work on intensities (and animate decodes grey straight from the luma plane).
        img = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        cut, now = cue if cue is not None else (self.cuts(img), self.cuts.thumb)
        if cut:  # a new shot: nothing carries over, and look for faces right away
            self.live, self.lost, self.since_detect, self.seen = [], [], self.cfg.detect_every, None
        h, w = img.shape[:2]
        refits, gone, preds = {}, [], {}
        for tr in self.live:
            pred = preds[tr.id] = tr.predict(t)
            lm, al, th = self.fit(img, pred)
            sim = float((th * tr.template).sum())
            ok = self._sure(al, pred, sim, w, h)
            if not (0 <= al[0] < w and 0 <= al[1] < h):
                gone.append(tr)  # left the frame: HOG finds whole faces only, so only the search can help
                continue
            refits[tr.id] = (lm, al, th, sim, ok)
        # An unsure face a quarter covered by a sure one's head is being hidden (HOG would not
        # find it either): like one that left, it goes to the search.
        sure_heads = [r[1] for r in refits.values() if r[4]]
        for tr in self.live:
            if tr.id in refits and not refits[tr.id][4] and covered(preds[tr.id], sure_heads) >= 0.25:
                gone.append(tr)
                del refits[tr.id]
        unsure = any(not r[4] for r in refits.values())
        if gone:
            self.live = [tr for tr in self.live if tr not in gone]
        if self.lost:
            self._find_lost(img, t, refits)
        self.lost += gone  # searched from the next frame on
        self.since_detect += 1
        # Periodic runs find new faces (lost ones have the search) and confirm weak ones: they can
        # wait longer while every followed face is confirmed and close to its template.
        every, sure = self.cfg.detect_every, bool(self.live) and all(
            refits[tr.id][3] >= self.cfg.sure_similarity and (tr.hits > 1 or tr.score >= self.cfg.confirm_score)
            for tr in self.live)
        literal = every == 1  # `--detect-every 1` asks for the detector on every frame: no shortcuts
        if sure and not literal:
            every *= self.cfg.sure_stretch
        due = self.since_detect >= every
        if due and sure and not literal and self.cfg.skip_unchanged and self.seen is not None:
            # ... and need not run at all while the picture outside them is as it was at the last run.
            due = changed_outside(now, self.seen[0], [r[1] for r in refits.values()] + self.seen[1], w)
        states: dict[int, int] = {}
        if unsure or due:
            self.since_detect = 0
            states = self._detect(t, img, refits, colour)
            self.seen = (now, [tr.al for tr in self.live])
        else:
            for tr in self.live:
                self._update(tr, t, *refits[tr.id][:4])
                states[tr.id] = TRACKED
        self._dedupe(states)
        self.lost = [tr for tr in self.lost if t - tr.time <= self.cfg.reid_window]
        return [(tr, states[tr.id]) for tr in self.live], cut

    def _sure(self, al: np.ndarray, pred: np.ndarray, sim: float, w: int, h: int) -> bool:
        """A refit is sure unless it looks unlike the template, jumped from `pred`, or left the frame."""
        # math on scalars: numpy's per-call overhead here was a tenth of a tracked face's bookkeeping
        return (sim >= self.cfg.min_similarity and abs(math.log(al[2] / pred[2])) < 0.25
                and math.hypot(al[0] - pred[0], al[1] - pred[1]) < 0.25 * pred[2] and 0 <= al[0] < w and 0 <= al[1] < h)

    def _find_lost(self, img: np.ndarray, t: float, refits: dict) -> None:
        """Take back lost faces that a template search (~0.2 ms) finds where `_revive` would give
        their id back and a landmark fit there confirms: a returning face's id depends on being
        seen early, and waiting for the detector (which wants a whole face) lost frames."""
        h, w = img.shape[:2]
        for tr in list(self.lost):
            followed = [r[1] for r in refits.values()]
            end = tr.al[:2] + tr.velocity[:2] * min(t - tr.time, 1.0)
            score, xy = search(img, tr.template, tr.al, end, self.cfg.reid_distance, followed)
            if score < REVIVE:
                continue
            start = np.array([*xy, *tr.al[2:]])
            lm, al, th = self.fit(img, start, iters=2)  # a coarse start: ~4 px steps, the old size and angle
            sim = float((th * tr.template).sum())
            if sim < REVIVE or not self._sure(al, start, sim, w, h) or (followed and _iou(
                    _box(al)[None], np.array([_box(f) for f in followed])).max() > self.cfg.iou_match):
                continue
            self.lost.remove(tr)
            tr.al, tr.time, tr.velocity = al, t, np.zeros(4)
            self.live.append(tr)
            refits[tr.id] = (lm, al, th, sim, True)
            # The search and a fit just confirmed it; while it comes back partly hidden the
            # detector (whole faces only) would not, so the periodic run counts from here.
            self.since_detect = 0

    def _update(self, tr: _Track, t: float, lm: np.ndarray, al: np.ndarray, th: np.ndarray, sim: float) -> None:
        dt = t - tr.time
        if dt > 0:  # smoothed velocity: raw landmark noise would make the prediction overshoot
            tr.velocity = 0.5 * tr.velocity + 0.5 * (al - tr.al) / dt
        tr.al, tr.lm, tr.time, tr.frame, tr.similarity = al, lm, t, self.pos, sim

    def _detect(self, t: float, img: np.ndarray, refits: dict, colour: np.ndarray) -> dict[int, int]:
        """Run the detector, associate boxes with live tracks, revive or start tracks."""
        found = self.detector.boxes(img)
        boxes = np.array([b for b, _ in found], np.float64).reshape(-1, 4)
        # Confident tracks are where their refit says; unsure ones where they were predicted.
        cur = np.array([_box(refits[tr.id][1] if refits[tr.id][4] else tr.predict(t))
                        for tr in self.live]).reshape(-1, 4)
        iou = _iou(cur, boxes)
        rows, cols = linear_sum_assignment(-iou) if iou.size else ((), ())
        matched = {r: c for r, c in zip(rows, cols) if iou[r, c] >= self.cfg.iou_match}
        states, keep = {}, []
        for r, tr in enumerate(self.live):
            lm, al, th, sim, ok = refits[tr.id]
            tr.attempts += 1
            if r in matched:
                tr.hits += 1
                box = boxes[matched[r]]
                if not ok:  # the refit lost it: start again from the detector's box
                    lm, al, th = self._fit_box(img, box)
                    sim = float((th * tr.template).sum())
                tr.template = th
                states[tr.id] = DETECTED
            elif not ok:
                self.lost.append(tr)
                continue
            else:
                states[tr.id] = TRACKED
            self._update(tr, t, lm, al, th, sim)
            keep.append(tr)
        self.live = keep
        taken = [_box(tr.al) for tr in self.live]
        for c in sorted(set(range(len(boxes))) - set(matched.values()), key=lambda c: boxes[c, 0] - boxes[c, 2]):
            box, score = boxes[c], found[c][1]
            if taken and _iou(box[None], np.array(taken)).max() > self.cfg.iou_match:
                continue  # a second box on a face that is already followed
            lm, al, th = self._fit_box(img, box)
            if (tr := next((k for k in self.live if same_face(al, k.al)), None)) is not None:
                if states.get(tr.id) != DETECTED:  # its refit drifted off the face: the detection puts it back
                    tr.hits, tr.template, states[tr.id] = tr.hits + 1, th, DETECTED
                    self._update(tr, t, lm, al, th, 1.0)
                continue
            tr = self._revive(t, al)
            if tr is None:
                tr = _Track(self.next_id, al, lm, t, self.pos, th, score)
                self.tracks[tr.id] = tr
                self.next_id += 1
                if self.cfg.encodings:
                    self.encodings[tr.id] = face_encoding(colour, lm)
            else:
                tr.template, tr.velocity, tr.hits, tr.attempts = th, np.zeros(4), tr.hits + 1, tr.attempts + 1
                self._update(tr, t, lm, al, th, 1.0)
            self.live.append(tr)
            taken.append(_box(al))
            states[tr.id] = DETECTED
        return states

    def _fit_box(self, img: np.ndarray, box: np.ndarray):
        """(landmarks, alignment, thumbnail) for a detector box, refitted once in the canonical
        patch as every tracked frame is, so detected and tracked frames agree (the fit in the box
        already brought the alignment close: a second canonical fit changed it by noise only)."""
        al = alignment_from_landmarks(self.detector.landmarks(img, tuple(box))).as_array()
        return self.fit(img, al)

    def _revive(self, t: float, al: np.ndarray) -> _Track | None:
        """The lost track this new face most plausibly is (near its last or extrapolated place), if any."""
        best, best_d = None, self.cfg.reid_distance
        for tr in self.lost:
            if abs(np.log(al[2] / tr.al[2])) > 0.4:
                continue
            a, b = tr.al[:2], tr.al[:2] + tr.velocity[:2] * min(t - tr.time, 1.0)
            u = np.clip(np.dot(al[:2] - a, b - a) / max(np.dot(b - a, b - a), 1e-9), 0, 1)
            d = np.hypot(*(al[:2] - (a + u * (b - a)))) / tr.al[2]  # distance to the path it was on
            if d < best_d:
                best, best_d = tr, d
        if best is not None:
            self.lost.remove(best)
        return best

    def _dedupe(self, states: dict[int, int]) -> None:
        """Two tracks on one face (after an occlusion): keep the one that looks more like its template."""
        order = sorted(self.live, key=lambda tr: (-tr.similarity, tr.id))
        keep: list[_Track] = []
        for tr in order:
            if any(same_face(tr.al, k.al) for k in keep):
                self.lost.append(tr)
                states.pop(tr.id, None)
            else:
                keep.append(tr)
        self.live = sorted(keep, key=lambda tr: tr.id)


MESH_AHEAD = 16  # frames the tracker may run ahead of the mesh reads (their images are kept)


def _read_frame(img: np.ndarray, rows: list[int], landmarks: list[np.ndarray]) -> tuple[list[int], list[np.ndarray]]:
    return rows, [read_cues(img, lm) for lm in landmarks]


def _fill_cues(cues: np.ndarray, track_id: np.ndarray, time_s: np.ndarray) -> np.ndarray:
    """Cues (N, 17) with the rows not read (NaN) interpolated in time within each track."""
    out = cues.copy()
    read = ~np.isnan(cues).all(axis=1)
    for tid in np.unique(track_id):
        idx = np.flatnonzero(track_id == tid)
        have = idx[read[idx]]
        if len(have) and len(have) < len(idx):
            for j in range(cues.shape[1]):
                out[idx, j] = np.interp(time_s[idx], time_s[have], cues[have, j])
    return out


def _cue_table(reads: list[tuple[list[int], list[np.ndarray]]], track_id: list[int], time_s: list[float]) -> np.ndarray:
    """The (N, 17) cue column from the mesh reads of some rows, the others interpolated."""
    out = np.full((len(track_id), NUM_AUS), np.nan, np.float32)
    for rows, values in reads:
        out[rows] = values
    return _fill_cues(out, np.asarray(track_id), np.asarray(time_s))


def analyse(frames: Iterable, config: TrackConfig | None = None, detector: DlibDetector | None = None) -> TrackTable:
    """Track every face through `frames`: (index, time_s, image) triples or objects with
    `index`, `time_s` (or `time`, in seconds) and `image` (RGB or grey uint8), e.g. video.Frame,
    or `Cued` frames (the cut test made beforehand, in another thread say).

    Returns the unsmoothed TrackTable; every frame is listed in `frames`/`times`, and frames
    without a usable face simply have no row."""
    cfg = config or TrackConfig()
    tracker = Tracker(cfg, detector)
    cols = {k: [] for k in ("frame", "time_s", "track_id", "params", "state", "landmarks")}
    frames_, times, cuts, size = [], [], [], (0, 0)
    # The mesh reads run beside the tracker in a thread of their own: LiteRT lets the GIL go.
    reads = ThreadPoolExecutor(1, thread_name_prefix="ganivid-mesh") if cfg.mesh else None
    pending: deque = deque()
    cues: list[np.ndarray] = []
    last_read: dict[int, float] = {}  # track id -> time of its last mesh read
    try:
        for item in frames:
            cue = (item.cut, item.thumb) if isinstance(item, Cued) else None
            index, t, img = (item.index, item.time_s, item.image) if cue else _frame(item)
            if frames_ and index <= frames_[-1]:
                raise VideoError(f"frame indices must increase: {index} after {frames_[-1]}")
            faces, cut = tracker.step(t, img, cue)
            frames_.append(index)
            times.append(t)
            size = img.shape[:2]
            if cut:
                cuts.append(index)
            due = []
            for tr, state in faces:
                if reads is not None and t - last_read.get(tr.id, -np.inf) >= 1 / cfg.mesh_rate - 1e-6:
                    last_read[tr.id] = t
                    due.append((len(cols["frame"]), tr.lm.copy()))
                for k, v in zip(cols, (index, t, tr.id, tr.al, state, tr.lm)):
                    cols[k].append(v)
            if due:
                pending.append(reads.submit(_read_frame, img, *map(list, zip(*due))))
                if len(pending) > MESH_AHEAD:
                    cues.append(pending.popleft().result())
        while pending:
            cues.append(pending.popleft().result())
    finally:
        if reads is not None:
            reads.shutdown(cancel_futures=True)
    table = TrackTable(**{k: np.array(v, dtype=_empty()[k].dtype).reshape((-1, *_empty()[k].shape[1:]))
                          for k, v in cols.items()},
                       frames=np.array(frames_, np.int64), times=np.array(times, np.float64),
                       cuts=np.array(cuts, np.int64), image_size=tuple(size), encodings=tracker.encodings,
                       cues=_cue_table(cues, cols["track_id"], cols["time_s"]) if cfg.mesh else None)
    false = tracker.false_positives()
    if false:
        table = table.take(~np.isin(table.track_id, list(false)))
    return interpolate_gaps(table, cfg.max_gap)
