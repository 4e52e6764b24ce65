import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from ganivid.align import Alignment, crop_face, paste_back
from ganivid.config import ModelConfig
from ganivid.engine import Engine
from ganivid.networks import Generator
from ganivid.pipeline import EditSmoother, Job, StageClock, prefetch, render
from ganivid.video import Frame
from gates import Gate, Rendezvous

CFG = ModelConfig(image_size=32, conv_dim=8, repeat_num=1, critic_dim=8)


@pytest.fixture(scope="module")
def engine() -> Engine:
    torch.manual_seed(0)
    return Engine(Generator(CFG), 32, "cpu", batch_size=3)


def frames(n: int) -> list[Frame]:
    rng = np.random.default_rng(0)
    return [Frame(i, 100 * i, i / 25, 100, rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)) for i in range(n)]


def plan_for(i: int) -> list[Job]:
    """Faces in some frames only: none, one or two."""
    target = np.full(17, 0.1 * (i % 5), np.float32)
    jobs = [Job(Alignment(30 + i, 30, 40, 5 * i), target)] if i % 3 else []
    return jobs + ([Job(Alignment(55, 25, 30, 0), target)] if i % 4 == 0 else [])


def test_render_writes_every_frame_once_in_order(engine):
    src = frames(23)
    out: list[Frame] = []
    clock = StageClock()
    assert render(iter(src), plan_for, engine, out.append, clock) == 23
    assert [f.index for f in out] == list(range(23)) and [f.pts for f in out] == [f.pts for f in src]
    for f, g in zip(src, out):
        jobs = plan_for(f.index)
        if not jobs:
            assert g.image is f.image  # no face: the very same pixels
            continue
        want = f.image
        for j in jobs:  # the same edits, pasted the same way, one frame at a time
            crop = crop_face(f.image, j.alignment, 32)
            want = paste_back(want, crop, engine.edit([crop], j.target[None])[0].image, j.alignment)
        assert np.abs(g.image.astype(int) - want.astype(int)).max() <= 1  # batching may change the last bit
    assert clock.generator > 0 and clock.crop > 0 and clock.paste > 0


def test_render_failures_stop_every_stage(engine):
    def bad_write(frame: Frame) -> None:
        if frame.index == 5:
            raise OSError("disk full")

    before = threading.active_count()
    with pytest.raises(OSError, match="disk full"):
        render(iter(frames(40)), plan_for, engine, bad_write)

    def bad_frames():
        yield from frames(4)
        raise ValueError("decoder broke")

    with pytest.raises(ValueError, match="decoder broke"):
        render(bad_frames(), plan_for, engine, lambda f: None)

    assert threading.active_count() == before


def test_a_failing_paste_stops_every_stage(engine, monkeypatch):
    import ganivid.pipeline as pipeline

    def paste(frame, *args, **kwargs):
        if frame[0, 0, 0] == 255:
            raise MemoryError("paste failed")
        return paste_back(frame, *args, **kwargs)

    monkeypatch.setattr(pipeline, "paste_back", paste)  # fault injection in our own stage
    src = frames(40)
    src[7].image[0, 0, 0] = 255
    for f in src[:7]:
        f.image[0, 0, 0] = 0
    written: list[int] = []
    before = threading.active_count()
    with pytest.raises(MemoryError, match="paste failed"):
        render(iter(src), lambda i: plan_for(1), engine, lambda f: written.append(f.index))
    assert written == list(range(len(written))) and len(written) <= 7  # in order, none from after it
    assert threading.active_count() == before


def test_generator_threads_run_batches_at_once_and_change_no_pixel(engine):
    src = frames(23)
    one: list[Frame] = []
    render(iter(src), plan_for, Engine(engine.generator, 32, "cpu", batch_size=3), one.append)
    gen = Rendezvous(engine.generator, 2)
    two: list[Frame] = []
    clock = StageClock()
    before = threading.active_count()
    assert render(iter(src), plan_for, Engine(gen, 32, "cpu", batch_size=3), two.append, clock, workers=2) == 23
    assert gen.threads == {threading.current_thread().name, "ganivid-generator-1"} and gen.calls > 2
    assert [f.index for f in two] == list(range(23)) and [f.pts for f in two] == [f.pts for f in src]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(one, two, strict=True))
    assert clock.generator > 0 and threading.active_count() == before


def test_faces_are_cropped_by_whichever_thread_has_time(engine, monkeypatch):
    """The decoder crops while the generator has frames waiting; a generator that waits for
    frames (on CUDA, say) crops them itself, taking work from the decoder. Same frames either way."""
    import ganivid.pipeline as pipeline

    croppers: list[str] = []

    def crop_face(*args):
        croppers.append(threading.current_thread().name)
        return real(*args)

    real = pipeline.crop_face
    monkeypatch.setattr(pipeline, "crop_face", crop_face)
    src = frames(30)
    ref: list[Frame] = []
    render(iter(src), plan_for, engine, ref.append)
    first = croppers.copy()
    # A generator held at its first batch: the decoder runs ahead and crops the frames it queues.
    croppers.clear()
    gen = Gate(engine.generator)
    threading.Timer(0.5, gen.open.set).start()
    slow: list[Frame] = []
    render(iter(src), plan_for, Engine(gen, 32, "cpu", batch_size=3), slow.append)
    me = threading.current_thread().name
    assert me in first and me in croppers  # the first frame at least: nothing was queued before it
    assert croppers.count("ganivid-decode") >= 5
    assert len(croppers) == len(first) == sum(len(plan_for(f.index)) for f in src)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(ref, slow, strict=True))


def test_frames_are_prepared_for_the_encoder_in_the_paste_thread(engine):
    ref: list[Frame] = []
    render(iter(frames(9)), plan_for, engine, ref.append)
    got: list[tuple[str, Frame]] = []
    render(iter(frames(9)), plan_for, engine, got.append, prepare=lambda f: (threading.current_thread().name, f))
    assert {name for name, _ in got} == {"ganivid-paste"}
    assert all(np.array_equal(a.image, b.image) for a, (_, b) in zip(ref, got, strict=True))


def test_a_failing_generator_thread_stops_every_stage(engine):
    gen = Rendezvous(engine.generator, 2, fail_at=3)
    written: list[int] = []
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="generator broke"):
        render(iter(frames(60)), plan_for, Engine(gen, 32, "cpu", batch_size=3),
               lambda f: written.append(f.index), workers=2)
    assert written == list(range(len(written))) and len(written) < 20  # in order, stopped early
    assert threading.active_count() == before


def test_prefetch_keeps_order_and_reraises():
    assert list(prefetch(range(100), depth=3)) == list(range(100))

    def broken():
        yield 1
        raise RuntimeError("boom")

    it = prefetch(broken())
    assert next(it) == 1
    with pytest.raises(RuntimeError, match="boom"):
        next(it)
    before = threading.active_count()
    it = prefetch(iter(range(1000)), depth=2)  # stopping early ends the producer thread
    assert next(it) == 0 and threading.active_count() == before + 1
    it.close()
    assert threading.active_count() == before


def test_edit_smoother_averages_noise_not_constant_edits():
    rng = np.random.default_rng(0)
    crop = rng.integers(60, 200, (16, 16, 3)).astype(np.uint8)
    smooth, off = EditSmoother(0.06), EditSmoother(0.0)
    const = np.clip(crop.astype(int) + 30, 0, 255).astype(np.uint8)
    assert all(np.array_equal(smooth(7, i, i / 25, crop, const)[0], const) for i in range(5))
    noisy = [np.clip(crop.astype(int) + 30 + rng.integers(-20, 21, crop.shape), 0, 255).astype(np.uint8) for _ in range(30)]
    out = [smooth(1, i, i / 25, crop, e)[0].astype(float) for i, e in enumerate(noisy)]
    raw = [off(1, i, i / 25, crop, e)[0].astype(float) for i, e in enumerate(noisy)]
    jump = lambda xs: np.mean([np.abs(b - a).mean() for a, b in zip(xs[1:], xs[2:])])  # noqa: E731
    assert jump(out) < 0.7 * jump(raw) and abs(np.mean(out[10:]) - np.mean(raw[10:])) < 1
    # After a gap (frame 40 follows 29) a track starts afresh: no memory of the old edit.
    assert np.array_equal(smooth(1, 40, 40 / 25, crop, const)[0], const)


def test_render_edits_i420_frames_like_rgb_ones(engine):
    import cv2

    from ganivid.yuv import from_rgb, planes, to_rgb

    src = [replace(f, image=from_rgb(cv2.GaussianBlur(f.image, (9, 9), 3)), yuv=True) for f in frames(13)]
    rgb = [replace(f, image=to_rgb(f.image), yuv=False) for f in src]
    out_yuv: list[Frame] = []
    out_rgb: list[Frame] = []
    assert render(iter(src), plan_for, engine, out_yuv.append) == render(iter(rgb), plan_for, engine, out_rgb.append)
    for f, y, r in zip(src, out_yuv, out_rgb, strict=True):
        assert y.yuv and y.pts == f.pts
        jobs = plan_for(f.index)
        if not jobs:
            assert y.image is f.image  # no face: the decoded planes themselves
            continue
        # Outside every crop's footprint (+1 px of bilinear reach) the planes are the decoded ones.
        reach = np.zeros((60, 80), np.uint8)
        for j in jobs:
            full = np.full((32, 32, 3), 255, np.uint8)
            reach |= paste_back(np.zeros((60, 80, 3), np.uint8), full * 0, full, j.alignment).any(axis=2)
        reach = cv2.dilate(reach, np.ones((3, 3), np.uint8))
        block = cv2.resize(reach, (40, 30), interpolation=cv2.INTER_AREA) > 0
        for k, (a, b) in enumerate(zip(planes(y.image), planes(f.image))):
            keep = reach == 0 if k == 0 else ~block
            assert np.array_equal(a[keep], b[keep])
        assert not np.array_equal(y.image, f.image)
        # Inside, the same change as the RGB path's (then converted to YUV), up to rounding.
        diff = np.abs((y.image.astype(int) - f.image) - (from_rgb(r.image).astype(int) - from_rgb(to_rgb(f.image))))
        assert diff.max() <= 2 and diff.mean() < 0.1
