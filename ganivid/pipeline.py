"""The render pass of `animate`: decode + crop, batched generator, paste + encode, overlapped.

Stages joined by bounded queues: a decoder thread crops each face as frames arrive (or leaves
that to the generator's thread when it waits for frames), the calling thread batches crops
across consecutive frames and runs them through the generator, handing batches to helper
threads when it has more than one (on CPU one per core, each with one torch thread: a batch per
core), a paste thread adds the edits back in order (compositing them first when the generator
is the slowest stage), and an encoder thread writes. torch, OpenCV and FFmpeg release the GIL in
their heavy calls, so the slowest stage sets the pace and memory stays a few batches deep
whatever the video's length. Frames keep their order; frames without faces pass through untouched."""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ganivid.align import Alignment, crop_face, crop_landmarks, paste_back, to_stored
from ganivid.engine import Engine, Pending
from ganivid.video import Frame, to_upright
from ganivid.yuv import crop_i420, paste_back_i420

_END = object()


@dataclass(frozen=True)
class Job:
    """One face to edit in one frame: where it is and the AUs it should show."""

    alignment: Alignment
    target: np.ndarray  # (17,) float32 in [0, 1]
    track: int = 0  # face track id: its edits are smoothed over consecutive frames
    source: np.ndarray | None = None  # (17,) the face's own AUs: what "change" models edit from
    landmarks: np.ndarray | None = None  # (68, 2) upright frame pixels: what flow-prior models move


@dataclass
class _Item:
    frame: Frame
    jobs: list[Job]
    crops: list[np.ndarray] | None  # None: not cut yet
    edits: list[Pending] = field(default_factory=list)


@dataclass
class StageClock:
    """Seconds spent in each stage of the render pass (stages overlap in time)."""

    decode: float = 0.0
    crop: float = 0.0
    generator: float = 0.0
    paste: float = 0.0
    encode: float = 0.0
    # CPU seconds of the calling thread inside the generator: below `generator` when other
    # threads take its core (with one torch thread, where all of its work runs).
    generator_cpu: float = 0.0


class _Failed(Exception):
    """A worker failed or the run was cancelled; the real error is in `_Stages.error`."""


class _Stages:
    """Bounded queues between threads that give up when another stage has failed."""

    def __init__(self, depth: int, out_depth: int | None = None):
        self.q_in: queue.Queue = queue.Queue(depth)
        self.q_out: queue.Queue = queue.Queue(out_depth or depth)
        self.q_write: queue.Queue = queue.Queue(depth)
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def put(self, q: queue.Queue, item) -> None:
        while True:
            if self.stop.is_set():
                raise _Failed
            try:
                q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def get(self, q: queue.Queue):
        while True:
            if self.stop.is_set():
                raise _Failed
            try:
                return q.get(timeout=0.05)
            except queue.Empty:
                continue

    def result(self, fut: Future):
        """The future's result, waiting for it unless a stage fails meanwhile."""
        while True:
            if self.stop.is_set():
                raise _Failed
            try:
                return fut.result(timeout=0.05)
            except FutureTimeout:
                continue

    def fail(self, ex: BaseException) -> None:
        if self.error is None:
            self.error = ex
        self.stop.set()

    def thread(self, body: Callable[[], None], name: str) -> threading.Thread:
        """A thread running one stage: its error stops every stage, and the calling thread re-raises it."""

        def run() -> None:
            try:
                body()
            except _Failed:
                pass
            except BaseException as ex:
                self.fail(ex)

        return threading.Thread(target=run, name=name, daemon=True)


def timed(it: Iterable[Frame], clock: StageClock) -> Iterator[Frame]:
    """Iterate, charging the time spent waiting for each frame to `clock.decode`."""
    it = iter(it)
    while True:
        t = time.perf_counter()
        try:
            frame = next(it)
        except StopIteration:
            return
        clock.decode += time.perf_counter() - t
        yield frame


@dataclass(frozen=True)
class _Raised:
    error: BaseException


class EditSmoother:
    """Exponential smoothing, per face track, of the edit (edited minus original crop, and a flow
    edit's flow) over consecutive frames. Crops are in the face's own coordinates, so this
    averages the generator's frame-to-frame noise, not head motion; `tau` seconds (real
    timestamps, VFR-safe) sets how fast a changing expression is followed (0: off)."""

    def __init__(self, tau: float):
        self.tau = tau
        # track -> (frame, time, delta, flow or None)
        self._prev: dict[int, tuple[int, float, np.ndarray, np.ndarray | None]] = {}

    def __call__(self, track: int, index: int, time_s: float, crop: np.ndarray, edited: np.ndarray,
                 flow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The smoothed edited crop (n, n, 3) uint8 of `track` in frame `index`, and the smoothed
        flow (n, n, 2) of a flow edit (`crop` is then the warped crop: the colour change is smoothed
        apart from the geometry)."""
        if self.tau <= 0:
            return edited, flow
        from ganivid.kernels import smooth_edit

        prev = self._prev.get(track)
        keep = 0.0
        if prev is not None and prev[0] == index - 1 and (prev[3] is None) == (flow is None):  # a gap starts afresh
            keep = float(np.exp(-max(time_s - prev[1], 0.0) / self.tau))
            # keep * prev + (1 - keep) * (edited - crop), in float32, in one numba pass
            delta, smoothed = smooth_edit(crop, edited, prev[2], keep)
            if flow is not None:
                flow = (keep * prev[3] + (1 - keep) * flow).astype(np.float32)
        else:
            delta, smoothed = smooth_edit(crop, edited, None, 0.0)
        self._prev = {k: v for k, v in self._prev.items() if v[0] >= index - 1 and k != track}
        self._prev[track] = (index, time_s, delta, flow)
        return smoothed, flow


def prefetch(items: Iterable, depth: int = 8) -> Iterator:
    """Iterate `items` in a background thread, `depth` items ahead (decoding overlaps the consumer).

    An error in the producer is re-raised in the consumer after the items before it; closing
    the iterator stops the producer."""
    stages = _Stages(depth)

    def produce() -> None:
        try:
            try:
                for item in items:
                    stages.put(stages.q_in, item)
                stages.put(stages.q_in, _END)
            except _Failed:
                raise
            except BaseException as ex:  # delivered in order, after the items already produced
                stages.put(stages.q_in, _Raised(ex))
        except _Failed:
            pass

    worker = threading.Thread(target=produce, name="ganivid-prefetch", daemon=True)
    worker.start()
    try:
        while (item := stages.get(stages.q_in)) is not _END:
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stages.stop.set()
        worker.join()


def render(frames: Iterable[Frame], plan: Callable[[int], list[Job]], engine: Engine,
           write: Callable[[Any], None], clock: StageClock | None = None,
           on_frame: Callable[[], None] | None = None, smooth_edits: float = 0.0, rotation: int = 0,
           workers: int = 1, prepare: Callable[[Frame], Any] | None = None) -> int:
    """Edit every frame's planned faces and `write` each frame once, in order; returns the count.

    Args:
        frames: decoded frames in presentation order, RGB or I420 (`Frame.yuv`: faces are cropped
            from an RGB copy of their footprint and edits added to the planes, so unedited pixels
            pass as decoded).
        plan: frame index -> faces to edit there (empty: the frame is written unedited).
        engine: the generator; crops are batched across consecutive frames up to its batch size.
        write: called with each finished frame (or what `prepare` made of it) from the encoder thread.
        clock: accumulates per-stage seconds (decode, crop, generator, paste, encode).
        on_frame: called after each written frame (progress).
        smooth_edits: time constant in seconds of `EditSmoother` (0: each frame on its own).
        rotation: the frames are stored, and written, as a player turns them by this many degrees
            (`video.to_upright`), while the plan's alignments are upright: faces are cropped
            from an upright copy and their edits pasted into the stored frame.
        workers: threads running the generator on successive batches at once, the calling
            thread and workers - 1 helpers (CPU: one per core, each with one torch thread); the
            edits do not depend on it.
        prepare: called with each finished frame in the paste thread; `write` gets its result
            (`VideoWriter.prepare`: the encoder's thread is left the encoding alone).
    """
    clock = clock or StageClock()
    n = engine.image_size
    # q_out holds every batch not yet pasted: those waiting for a helper (q_gen), in a generator
    # thread, and one more, so no generator thread waits for the paste stage.
    stages = _Stages(depth=max(4, 2 * engine.batch_size), out_depth=2 * workers + 1)
    q_gen: queue.Queue = queue.Queue(max(1, workers - 1))
    written = [0]
    smoother = EditSmoother(smooth_edits)
    clock_lock = threading.Lock()

    def cut(item: _Item) -> _Item:
        t = time.perf_counter()
        frame = item.frame
        if frame.yuv:  # from the planes as stored: only each crop's footprint becomes RGB
            stored = (frame.image.shape[0] * 2 // 3, frame.image.shape[1])
            item.crops = [crop_i420(frame.image, to_stored(j.alignment, rotation, stored) if rotation else j.alignment,
                                    n, frame.matrix) for j in item.jobs]
        else:
            rgb = to_upright(frame.image, rotation) if rotation and item.jobs else frame.image
            item.crops = [crop_face(rgb, j.alignment, n) for j in item.jobs]
        with clock_lock:
            clock.crop += time.perf_counter() - t
        return item

    def decode() -> None:
        for frame in timed(frames, clock):
            item = _Item(frame, plan(frame.index), None)
            # Crops are cut here while the generator has decoded frames waiting (a CPU generator
            # always has); a generator that waits for frames (CUDA, or none) cuts them itself:
            # this thread is then the slowest stage, and cropping was a third of its work.
            if not item.jobs or stages.q_in.qsize() >= 2:
                cut(item)
            stages.put(stages.q_in, item)
        stages.put(stages.q_in, _END)

    def generate(batch: list[_Item]) -> list[_Item]:
        t, c = time.perf_counter(), time.thread_time()
        jobs = [j for it in batch for j in it.jobs]
        sources = np.stack([j.source for j in jobs]) if engine.by_change else None
        marks = np.stack([crop_landmarks(j.landmarks, j.alignment, n) for j in jobs]) if engine.prior else None
        edits = engine.edit_later([crop for it in batch for crop in it.crops], np.stack([j.target for j in jobs]),
                                  sources, marks)
        # Compositing (`Pending.get`, ~1.5% of a CPU pass) goes to whichever thread has time:
        # the paste thread's when decoded crops queue up for the generator, else this one.
        if not stages.q_in.full():
            for e in edits:
                e.get()
        with clock_lock:
            clock.generator += time.perf_counter() - t
            clock.generator_cpu += time.thread_time() - c
        k = 0
        for it in batch:
            it.edits, k = edits[k:k + len(it.crops)], k + len(it.crops)
        return batch

    def run(batch: list[_Item], done: Future) -> None:
        try:
            done.set_result(generate(batch))
        except BaseException as ex:  # the paste stage sees it too, in the batch's turn
            done.set_exception(ex)
            raise

    def generator() -> None:
        while (job := stages.get(q_gen)) is not _END:
            run(*job)

    def paste() -> None:
        while (done := stages.get(stages.q_out)) is not _END:
            for item in stages.result(done):  # batches are pasted in order
                t = time.perf_counter()
                image = item.frame.image
                f = item.frame
                stored = (image.shape[0] * 2 // 3, image.shape[1]) if f.yuv else image.shape[:2]
                for job, crop, pending in zip(item.jobs, item.crops, item.edits):
                    e = pending.get()
                    base = crop if e.flow is None else e.warped  # a flow edit's colour change is from its warp
                    edited, flow = smoother(job.track, f.index, f.time_s, base, e.image, e.flow)
                    al = to_stored(job.alignment, rotation, stored) if rotation else job.alignment
                    image = (paste_back_i420(image, crop, edited, al, matrix=f.matrix, flow=flow, warped_crop=e.warped)
                             if f.yuv else paste_back(image, crop, edited, al, flow=flow, warped_crop=e.warped))
                clock.paste += time.perf_counter() - t
                done = replace(item.frame, image=image) if item.jobs else item.frame
                stages.put(stages.q_write, done if prepare is None else prepare(done))
        stages.put(stages.q_write, _END)

    def encode() -> None:
        # Its own thread, apart from pasting: without a generator to wait for, paste + encode
        # on one thread was the slowest stage (1.7 + 2.7 ms of a 640x360 frame).
        while (frame := stages.get(stages.q_write)) is not _END:
            t = time.perf_counter()
            write(frame)
            clock.encode += time.perf_counter() - t
            written[0] += 1
            if on_frame is not None:
                on_frame()

    def flush(pending: list[_Item]) -> None:
        if not pending:
            return
        done: Future = Future()
        batch = pending.copy()
        pending.clear()
        stages.put(stages.q_out, done)
        if not any(it.crops for it in batch):
            done.set_result(batch)
            return
        if workers > 1:  # a helper takes it, or this thread runs it while the helpers are busy
            try:
                q_gen.put_nowait((batch, done))
                return
            except queue.Full:
                pass
        run(batch, done)

    threads = [stages.thread(decode, "ganivid-decode"), stages.thread(paste, "ganivid-paste"),
               stages.thread(encode, "ganivid-encode")]
    # The calling thread is the first generator thread: with one, the generator runs where it
    # always did (glibc's main arena; in a thread of its own, with its own arena, peak RSS rose by 5-14 %).
    threads += [stages.thread(generator, f"ganivid-generator-{k}") for k in range(1, workers)]
    for w in threads:
        w.start()
    try:
        pending: list[_Item] = []
        crops = 0
        while (item := stages.get(stages.q_in)) is not _END:
            if item.crops is None:
                cut(item)
            pending.append(item)
            crops += len(item.crops)
            # A batch is full, or a long stretch without faces should not wait for one.
            if crops >= engine.batch_size or (crops == 0 and len(pending) >= 1) or len(pending) >= 4 * engine.batch_size:
                flush(pending)
                crops = 0
        flush(pending)
        for _ in range(workers - 1):
            stages.put(q_gen, _END)
        stages.put(stages.q_out, _END)
        threads[2].join()
    except _Failed:
        pass
    except BaseException as ex:  # KeyboardInterrupt included: stop the workers, then re-raise
        stages.fail(ex)
    finally:
        for w in threads:
            w.join()
    if stages.error is not None:
        raise stages.error
    return written[0]
