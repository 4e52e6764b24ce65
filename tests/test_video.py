"""Video I/O: probing, streaming and seeking decode, writing that keeps timestamps, rotation and audio."""
from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from videoclips import clip_image, decoded_samples, make_clip, read_mark

from ganivid.errors import VideoError
from ganivid.video import Frame, from_upright, probe, read_frames, read_frames_at, to_upright
from ganivid.videowriter import EncodeOptions, VideoWriter

AAC = ("aac", 44100, "stereo")
OPUS = ("libopus", 48000, "mono")
VFR_PTS = [0, 40, 80, 200, 220, 240, 400, 410, 420, 500, 530, 600]

# name: (file name, make_clip keyword arguments)
CLIPS = {
    "cfr25_aac": ("a.mp4", dict(n=25, audio=(AAC,))),
    "ntsc_mov": ("b.mov", dict(n=12, rate=Fraction(30000, 1001))),
    "vfr_mp4": ("c.mp4", dict(pts=VFR_PTS, time_base=Fraction(1, 1000))),
    "vfr_mkv": ("d.mkv", dict(pts=VFR_PTS, time_base=Fraction(1, 1000), audio=(AAC,))),
    "rotated": ("e.mp4", dict(n=10, rotation=-90, audio=(AAC,))),
    "odd_639x359": ("f.mp4", dict(n=3, size=(639, 359))),
    "two_audio_mkv": ("g.mkv", dict(n=15, audio=(AAC, OPUS))),
    "webm_opus": ("h.webm", dict(n=10, codec="libvpx-vp9", audio=(OPUS,))),
    "hdr_10bit": ("i.mp4", dict(n=6, pix_fmt="yuv420p10le", rotation=90)),  # a phone's
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Every clip of CLIPS, written once per module."""
    root = tmp_path_factory.mktemp("clips")
    return {name: make_clip(root / fname, **kw) for name, (fname, kw) in CLIPS.items()}


def copy_video(src: Path, dst: Path, options: EncodeOptions | None = None, upright: bool = False) -> VideoWriter:
    """Plain re-encode through read_frames and VideoWriter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with VideoWriter(dst, probe(src), options, upright=upright) as w:
            for f in read_frames(src, upright=upright):
                w.write(f)
    return w


def test_probe_cfr_and_ntsc(clips):
    a = probe(clips["cfr25_aac"])
    assert (a.width, a.height, a.fps, a.frame_count, a.rotation) == (64, 48, Fraction(25), 25, 0)
    assert a.duration_s == pytest.approx(1.0)
    assert [(x.codec, x.sample_rate, x.channels) for x in a.audio] == [("aac", 44100, 2)]
    b = probe(clips["ntsc_mov"])
    assert b.fps == Fraction(30000, 1001) and b.audio == ()
    assert b.duration_s == pytest.approx(12 * 1001 / 30000)
    assert any("30000/1001" in line for line in b.summary())


def test_probe_rotation_and_counting(clips):
    e = probe(clips["rotated"])
    assert e.rotation == -90 and e.display_matrix is not None and e.display_size == (48, 64)
    g = probe(clips["two_audio_mkv"])
    assert g.frame_count is None  # matroska headers do not count frames
    assert probe(clips["two_audio_mkv"], count_frames=True).frame_count == 15
    assert [x.codec for x in g.audio] == ["aac", "opus"]


@pytest.mark.parametrize("name", list(CLIPS))
def test_round_trip_keeps_timing_rotation_and_audio(clips, tmp_path, name):
    src = clips[name]
    dst = tmp_path / ("out" + src.suffix)
    w = copy_video(src, dst)
    a, b = probe(src), probe(dst)
    fa, fb = list(read_frames(src)), list(read_frames(dst))
    assert len(fb) == len(fa) == w.frames_written
    assert [f.time_s for f in fb] == pytest.approx([f.time_s for f in fa], abs=1e-9)
    assert [f.index for f in fb] == list(range(len(fa)))
    assert [read_mark(f.image) for f in fb] == list(range(len(fa)))
    assert b.duration_s == pytest.approx(a.duration_s, abs=1e-6)
    assert (b.width, b.height, b.rotation, b.display_matrix) == (a.width, a.height, a.rotation, a.display_matrix)
    assert b.fps == a.fps
    if src.suffix in (".mp4", ".mov"):
        assert b.time_base == a.time_base
    assert [(x.codec, x.sample_rate, x.channels) for x in b.audio] == [(x.codec, x.sample_rate, x.channels) for x in a.audio]
    # mkv/webm keep audio timestamps in ms, so their DURATION tags round by a few ms;
    # the decoded sample counts (what a listener hears) must match exactly.
    tol = 1e-6 if src.suffix in (".mp4", ".mov") else 5e-3
    assert [x.duration_s for x in b.audio] == pytest.approx([x.duration_s for x in a.audio], abs=tol)
    assert decoded_samples(dst) == decoded_samples(src)  # copied packet for packet
    if name == "odd_639x359":
        assert len(w.notices) == 1 and "yuv444p" in w.notices[0]
    else:
        assert w.notices == []


def test_vfr_timestamps_are_exact(clips):
    frames = list(read_frames(clips["vfr_mp4"]))
    assert [round(f.time_s * 1000) for f in frames] == VFR_PTS
    assert [f.duration * 1000 * probe(clips["vfr_mp4"]).time_base for f in frames[:-1]] == \
        [b - a for a, b in zip(VFR_PTS, VFR_PTS[1:])]


def test_mpeg_ps_input_seeks_and_remuxes(tmp_path):
    src = make_clip(tmp_path / "i.mpg", n=30, codec="mpeg1video", audio=(("mp2", 44100, "stereo"),))
    info = probe(src)
    assert info.start_pts > 0 and info.duration_s < 1.2  # MPEG-PS: late start, estimated duration
    picked = read_frames_at(src, indices=[0, 13, 29], times=[0.5])
    assert [(f.index, read_mark(f.image)) for f in picked] == [(0, 0), (13, 13), (29, 29), (12, 12)]
    assert picked[0].time_s == 0.0 and next(read_frames(src, start=0.5)).index == 13
    w = copy_video(src, tmp_path / "o.mp4")
    out = probe(tmp_path / "o.mp4")
    assert (out.fps, out.duration_s, out.frame_count, w.notices) == (25, pytest.approx(1.2), 30, [])
    assert [read_mark(f.image) for f in read_frames(tmp_path / "o.mp4")] == list(range(30))
    assert [n for _, _, n in decoded_samples(tmp_path / "o.mp4")] == [n for _, _, n in decoded_samples(src)]


def test_audio_reencoded_when_container_refuses_it(clips, tmp_path):
    src, dst = clips["cfr25_aac"], tmp_path / "x.webm"
    with pytest.warns(UserWarning, match="re-encoding it as libopus"):
        with VideoWriter(dst, probe(src)) as w:
            for f in read_frames(src):
                w.write(f)
    (_, ra, na), = decoded_samples(src)
    (codec, rb, nb), = decoded_samples(dst)
    assert codec == "opus" and abs(na / ra - nb / rb) < 0.02  # within one Opus frame
    assert len(w.notices) == 1 and len(list(read_frames(dst))) == 25


def test_no_audio_drops_audio(clips, tmp_path):
    copy_video(clips["two_audio_mkv"], tmp_path / "x.mkv", EncodeOptions(audio=False))
    assert probe(tmp_path / "x.mkv").audio == ()


def test_reencode_is_deterministic(clips, tmp_path):
    for name in ("one.mp4", "two.mp4"):
        copy_video(clips["cfr25_aac"], tmp_path / name)
    one, two = read_frames(tmp_path / "one.mp4"), read_frames(tmp_path / "two.mp4")
    assert all(np.array_equal(a.image, b.image) and a.pts == b.pts for a, b in zip(one, two, strict=True))


@pytest.mark.parametrize("yuv", [False, True])
def test_frames_prepared_on_another_thread_encode_the_same(clips, tmp_path, yuv):
    """`animate` converts each frame for the encoder in its paste thread (VideoWriter.prepare)."""
    from concurrent.futures import ThreadPoolExecutor

    src = clips["rotated"]  # turned: stored planes, or upright RGB turned back by the writer
    copy = tmp_path / "direct.mp4"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with VideoWriter(copy, probe(src), upright=not yuv) as w:
            for f in read_frames(src, upright=not yuv, yuv=yuv):
                w.write(f)
        with VideoWriter(tmp_path / "prepared.mp4", probe(src), upright=not yuv) as w, ThreadPoolExecutor(1) as pool:
            for f in read_frames(src, upright=not yuv, yuv=yuv):
                w.write(pool.submit(w.prepare, f).result())
    assert w.frames_written == 10
    assert (tmp_path / "prepared.mp4").read_bytes() == copy.read_bytes()


def test_odd_size_keeps_exact_resolution(clips, tmp_path):
    src = clips["odd_639x359"]
    with pytest.warns(UserWarning, match="yuv444p"):
        with VideoWriter(tmp_path / "x.mp4", probe(src)) as w:
            for f in read_frames(src):
                w.write(f)
    out = probe(tmp_path / "x.mp4")
    assert (out.width, out.height, out.pix_fmt) == (639, 359, "yuv444p")
    with pytest.raises(VideoError, match="even sides"):
        VideoWriter(tmp_path / "y.mp4", probe(src), EncodeOptions(pix_fmt="yuv420p")).__enter__()
    assert not list(tmp_path.glob(".y*"))


def test_upright_reading_and_writing(clips, tmp_path):
    src = clips["rotated"]
    up = list(read_frames(src, upright=True))
    assert up[0].image.shape == (64, 48, 3)  # a player shows the 64x48 clip turned by 90 degrees
    stored = next(read_frames(src)).image
    assert np.array_equal(from_upright(up[0].image, -90), stored)
    assert np.array_equal(to_upright(stored, -90), np.rot90(stored, -1))
    copy_video(src, tmp_path / "x.mp4", upright=True)
    assert probe(tmp_path / "x.mp4").rotation == -90
    assert [read_mark(f.image) for f in read_frames(tmp_path / "x.mp4")] == list(range(10))


def test_start_and_seeking(clips):
    src = clips["cfr25_aac"]
    late = list(read_frames(src, start=0.5))
    assert late[0].index == 13 and late[0].time_s == pytest.approx(0.52) and len(late) == 12
    assert read_mark(late[0].image) == 13
    picked = read_frames_at(src, indices=[20, 3, 3])
    assert [f.index for f in picked] == [20, 3, 3]
    assert [read_mark(f.image) for f in picked] == [20, 3, 3]
    by_time = read_frames_at(clips["vfr_mp4"], times=[0.0, 0.39, 0.405, 9.0])
    assert [f.index for f in by_time] == [0, 5, 6, 11]  # the frame on screen at each time
    with pytest.raises(VideoError, match="out of range"):
        read_frames_at(src, indices=[25])


def test_frame_shape_matches_written_image(clips):
    f = next(read_frames(clips["cfr25_aac"]))
    assert isinstance(f, Frame) and f.image.dtype == np.uint8 and f.image.shape == (48, 64, 3)
    assert np.abs(f.image.astype(int) - clip_image(0, 64, 48)).mean() < 6  # lossy, but close


def test_a_given_probe_is_not_probed_again(clips):
    """`animate` probes once: its two passes hand the probe to read_frames, which then decodes
    each frame once and not the first one again (~15 ms per pass at 640x360)."""
    from ganivid.video import DECODE_STATS

    path = clips["rotated"]
    info = probe(path)
    for given, extra in ((None, 1), (info, 0)):
        before = DECODE_STATS.frames
        frames = list(read_frames(path, upright=True, info=given))
        assert DECODE_STATS.frames - before == len(frames) + extra == 10 + extra
        assert [f.image.shape for f in frames] == [(64, 48, 3)] * 10  # the probe's rotation is used


@pytest.mark.parametrize("name", ["cfr25_aac", "rotated", "odd_639x359", "webm_opus", "hdr_10bit"])
def test_grey_frames_are_the_luma_of_the_rgb_ones(clips, name):
    import cv2

    rgb = list(read_frames(clips[name], upright=True))
    grey = list(read_frames(clips[name], upright=True, grey=True))
    assert [(f.index, f.pts, f.duration) for f in grey] == [(f.index, f.pts, f.duration) for f in rgb]
    for g, c in zip(grey, rgb):
        assert g.image.dtype == np.uint8 and g.image.shape == c.image.shape[:2] and g.image.flags.c_contiguous
        # Full range like RGB -> grey, up to rounding and the chroma the RGB image went through
        # (the raw limited-range Y plane would be ~6 levels off).
        assert np.abs(g.image.astype(int) - cv2.cvtColor(c.image, cv2.COLOR_RGB2GRAY)).mean() < 2.5
    # luma=True: the limited-range plane as stored, for the consumer to expand (animate's tracker does).
    from ganivid.yuv import full_range

    stored = list(read_frames(clips[name], upright=True, grey=True, luma=True))
    assert all(f.limited for f in stored) and not any(f.limited for f in grey)
    assert all(np.array_equal(full_range(s.image), g.image) for s, g in zip(stored, grey, strict=True))
    assert not any(np.array_equal(s.image, g.image) for s, g in zip(stored, grey))


def _bad_inputs(tmp_path: Path, clips) -> dict[str, tuple[Path, str]]:
    """Bad input files and the message each must give."""
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    good = make_clip(tmp_path / "late_index.mkv", n=25)  # mkv: index at the end, cut it off
    (tmp_path / "cut.mkv").write_bytes(good.read_bytes()[:300])
    fast = tmp_path / "fast.mp4"  # faststart mp4: index first, frames missing
    copy_video(clips["cfr25_aac"], fast)
    (tmp_path / "cut.mp4").write_bytes(fast.read_bytes()[: fast.stat().st_size // 2])
    plain = make_clip(tmp_path / "plain.mp4", n=25)  # index at the end: cut loses it
    (tmp_path / "cut2.mp4").write_bytes(plain.read_bytes()[: plain.stat().st_size // 2])
    with av.open(str(tmp_path / "sound.m4a"), "w") as out:
        a = out.add_stream("aac", rate=44100, layout="mono")
        af = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="fltp", layout="mono")
        af.sample_rate, af.pts = 44100, 0
        out.mux(a.encode(af))
        out.mux(a.encode())
    return {
        "missing": (tmp_path / "nope.mp4", "no such file"),
        "directory": (tmp_path, "is a directory"),
        "zero-byte": (empty, r"empty \(0 bytes\)"),
        "not a video": (text, "not a video"),
        "truncated (index first)": (tmp_path / "cut.mp4", "truncated"),
        "truncated (index last)": (tmp_path / "cut2.mp4", "truncated"),
        "truncated mkv": (tmp_path / "cut.mkv", "truncated|decodable|damaged"),
        "no video stream": (tmp_path / "sound.m4a", "has no video stream"),
    }


def test_bad_inputs_give_one_clear_line(tmp_path, clips):
    for case, (path, pattern) in _bad_inputs(tmp_path, clips).items():
        with pytest.raises(VideoError, match=pattern) as info:
            probe(path)
            list(read_frames(path))
        assert "\n" not in str(info.value), case


def test_output_path_rules(clips, tmp_path):
    src = clips["cfr25_aac"]
    info = probe(src)
    with pytest.raises(VideoError, match="is the input file"):
        VideoWriter(src, info, overwrite=True)
    with pytest.raises(VideoError, match="does not exist"):
        VideoWriter(tmp_path / "no" / "x.mp4", info)
    with pytest.raises(VideoError, match="unsupported output extension"):
        VideoWriter(tmp_path / "x.avi", info)
    target = tmp_path / "x.mp4"
    target.write_bytes(b"old")
    with pytest.raises(VideoError, match="already exists"):
        VideoWriter(target, info)
    with VideoWriter(target, info, overwrite=True) as w:
        for f in read_frames(src):
            w.write(f)
    assert probe(target).frame_count == 25


@pytest.mark.parametrize("options, pattern", [
    (EncodeOptions(preset="superslow"), "cannot open the libx264 .* encoder"),
    (EncodeOptions(codec="foo"), "'foo' is not a video encoder"),
    (EncodeOptions(codec="aac"), "'aac' is not a video encoder"),
    (EncodeOptions(pix_fmt="yuv9000"), "unknown pixel format 'yuv9000'"),
])
def test_bad_encoder_options(clips, tmp_path, options, pattern):
    with pytest.raises(VideoError, match=pattern):
        with VideoWriter(tmp_path / "x.mp4", probe(clips["cfr25_aac"]), options):
            pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_failure_mid_write_leaves_nothing(clips, tmp_path, exc):
    src = clips["cfr25_aac"]
    target = tmp_path / "x.mp4"
    target.write_bytes(b"previous result")
    with pytest.raises(exc):
        with VideoWriter(target, probe(src), overwrite=True) as w:
            for f in read_frames(src):
                w.write(f)
                if f.index == 10:
                    raise exc("stop")
    assert target.read_bytes() == b"previous result"  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mp4"]  # no temporary left


def test_nothing_written_is_an_error(clips, tmp_path):
    with pytest.raises(VideoError, match="no frames"):
        with VideoWriter(tmp_path / "x.mp4", probe(clips["cfr25_aac"])):
            pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, planes", [("cfr25_aac", True), ("vfr_mkv", True), ("rotated", False),
                                          ("odd_639x359", False)])
def test_yuv_frames_are_the_decoded_planes(clips, tmp_path, name, planes):
    from ganivid.yuv import to_rgb

    rgb = list(read_frames(clips[name], upright=True))
    yuv = list(read_frames(clips[name], upright=True, yuv=True))
    assert [(f.index, f.pts, f.duration) for f in yuv] == [(f.index, f.pts, f.duration) for f in rgb]
    for y, c in zip(yuv, rgb):
        # 4:2:0 with even sides, stored upright: the planes; otherwise (turned, 4:4:4) RGB as before.
        assert y.yuv == planes and y.image.dtype == np.uint8
        if not planes:
            assert np.array_equal(y.image, c.image)
            continue
        h, w = c.image.shape[:2]
        assert y.image.shape == (h * 3 // 2, w)
        # cv2 rounds to nearest where swscale's yuv -> rgb24 rounds down (Y 33 is RGB 19.8: 20 vs 19).
        assert np.abs(to_rgb(y.image).astype(int) - c.image - 0.5).mean() < 1
    if planes:  # lossless 4:2:0 output of I420 frames decodes to exactly the same planes
        out = tmp_path / f"yuv-{name}.mkv"
        with VideoWriter(out, probe(clips[name]), EncodeOptions(crf=0, preset="ultrafast")) as w:
            assert w.takes_i420
            for f in yuv:
                w.write(f)
        back = list(read_frames(out, yuv=True))
        assert len(back) == len(yuv) and all(np.array_equal(a.image, b.image) for a, b in zip(back, yuv))


@pytest.mark.parametrize("name", ["cfr25_aac", "vfr_mkv", "webm_opus", "hdr_10bit"])
def test_frame_threads_decode_the_same_frames(clips, name, monkeypatch):
    import ganivid.video

    one = list(read_frames(clips[name], yuv=True))  # small frames: one decoder thread
    monkeypatch.setattr(ganivid.video, "FRAME_THREADS_PIXELS", 0)  # every size: frame threads
    threaded = list(read_frames(clips[name], yuv=True))
    assert [(f.index, f.pts, f.duration, f.yuv) for f in threaded] == [(f.index, f.pts, f.duration, f.yuv) for f in one]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(one, threaded))


@pytest.mark.parametrize("matrix", [1, 9])  # BT.709 (HD video), BT.2020 (phones' HDR)
def test_planes_convert_with_their_own_matrix(matrix):
    import cv2

    from ganivid.align import Alignment, crop_face
    from ganivid.yuv import from_bt601, from_rgb, paste_back_i420, to_rgb

    # Saturated colours, where the matrices differ most: every hue across, rising saturation down.
    hsv = np.zeros((96, 128, 3), np.uint8)
    hsv[..., 0], hsv[..., 1], hsv[..., 2] = np.arange(128)[None] * 180 // 128, np.linspace(60, 230, 96)[:, None], 200
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)

    def shown(i420: np.ndarray, m: int) -> np.ndarray:
        """RGB as a player shows these planes (8- or 10-bit): swscale, honouring the frame's colour tag."""
        f = av.VideoFrame.from_ndarray(i420, format="yuv420p10le" if i420.dtype == np.uint16 else "yuv420p")
        f.colorspace = m
        return f.to_ndarray(format="rgb24").astype(int)

    err = lambda a, b: np.abs(a - b.astype(int)).mean()  # noqa: E731
    # RGB -> planes: each matrix round-trips as players decode it (up to 4:2:0 and swscale's
    # rounding, ~1.7 levels here); the wrong one shifts colours (BT.709: 6.6).
    assert err(shown(from_rgb(rgb, matrix), matrix), rgb) < 2
    assert err(shown(from_rgb(rgb), 2), rgb) < 2
    assert err(shown(from_rgb(rgb), matrix), rgb) > 4
    # Planes -> RGB: cv2 decodes BT.601; the 3x3 correction gives the matrix's colours (1.2 against 6.9),
    # from 10-bit planes of the same colours too (4 steps per level; swscale's own 10-bit path
    # comes out ~2 levels darker, so its 8-bit decoding is the reference).
    planes = from_rgb(rgb, matrix)
    deep = planes.astype(np.uint16) << 2
    assert err(from_bt601(to_rgb(planes), matrix), shown(planes, matrix)) < 1.5
    assert np.array_equal(to_rgb(deep), to_rgb(planes))
    assert err(to_rgb(planes), shown(planes, matrix)) > 4
    # An edit pasted into the planes shows as the RGB change it was: +60 red, nothing else, at either depth.
    al = Alignment(64, 48, 60, 10)
    crop = crop_face(rgb, al, 32)
    edited = np.clip(crop.astype(int) + [60, 0, 0], 0, 255).astype(np.uint8)
    inner = (slice(38, 58), slice(54, 74))
    for base, m, ok in ((planes, matrix, True), (deep, matrix, True), (planes, 2, False)):
        pasted = paste_back_i420(base, crop, edited, al, matrix=m)
        assert pasted.dtype == base.dtype
        mean = (shown(pasted, matrix) - shown(base, matrix))[inner].reshape(-1, 3).mean(0)
        assert (np.abs(mean - [60, 0, 0]).max() < 1.5) == ok, mean
    # Outside the crop's footprint, the planes are untouched.
    far = paste_back_i420(deep, crop, edited, al, matrix=matrix)
    assert np.array_equal(far[:96, :20], deep[:96, :20])


def test_faces_are_cropped_from_their_footprint_in_the_planes(astronaut):
    """crop_i420 converts only the crop's footprint to RGB: the same crop as from the whole
    frame's RGB, for faces big and small, turned, and partly or wholly outside the frame."""
    import cv2

    from ganivid.align import Alignment, crop_face
    from ganivid.yuv import crop_i420, from_bt601, from_rgb, to_rgb, with_depth

    planes = from_rgb(cv2.resize(astronaut, (320, 180), interpolation=cv2.INTER_AREA))
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(60):
        al = Alignment(*rng.uniform([-60, -60, 12, -60], [380, 240, 260, 60]))
        for ten_bit, matrix in ((False, 2), (True, 1)):
            i420 = with_depth(planes, ten_bit)
            crop = crop_i420(i420, al, 32, matrix)
            assert crop.dtype == np.uint8 and crop.shape == (32, 32, 3)
            diffs.append(np.abs(crop.astype(int) - from_bt601(crop_face(to_rgb(i420), al, 32), matrix)))
    diffs = np.concatenate([d.ravel() for d in diffs])
    assert diffs.max() <= 2 and (diffs > 0).mean() < 1e-3  # a rounding here and there


def test_video_keeps_its_brightness_through_rgb(tmp_path):
    # swscale truncates on its 10-bit <-> RGB paths (~1.3 levels darker each way) and on 8-bit
    # yuv420p -> RGB (~1 level darker); ganivid decodes those planes itself and rounds.
    ten = make_clip(tmp_path / "10.mp4", n=3, pix_fmt="yuv420p10le")
    truth = np.mean([clip_image(i, 64, 48).astype(float).mean() for i in range(3)])
    mean = lambda p: np.mean([f.image.astype(float).mean() for f in read_frames(p)])  # noqa: E731
    assert abs(mean(ten) - truth) < 0.5
    copy_video(ten, tmp_path / "10-copy.mp4")  # RGB frames into a 10-bit encoder
    copy_video(ten, tmp_path / "10-as-8.mp4", EncodeOptions(pix_fmt="yuv420p"))
    assert probe(tmp_path / "10-copy.mp4").pix_fmt == "yuv420p10le"
    assert abs(mean(tmp_path / "10-copy.mp4") - truth) < 0.5
    assert abs(mean(tmp_path / "10-as-8.mp4") - truth) < 0.5
    eight = make_clip(tmp_path / "8.mp4", n=3)
    assert abs(mean(eight) - truth) < 0.5


@pytest.mark.parametrize("width,ten_bit", [(640, False), (642, False), (318, True)])
def test_to_video_frame_copies_the_planes(width, ten_bit):
    """The encoder frame of an I420 array holds its planes (PyAV's own from_ndarray as reference),
    whatever the padding of the frame's rows."""
    from ganivid.yuv import to_video_frame

    rng = np.random.default_rng(width)
    top = 1023 if ten_bit else 255
    i420 = rng.integers(0, top + 1, (3 * 120 // 2, width), dtype=np.uint16 if ten_bit else np.uint8)
    ours = to_video_frame(i420)
    theirs = av.VideoFrame.from_ndarray(i420, format="yuv420p10le" if ten_bit else "yuv420p")
    assert ours.format.name == theirs.format.name and (ours.width, ours.height) == (width, 120)
    assert np.array_equal(ours.to_ndarray(), theirs.to_ndarray()) and np.array_equal(ours.to_ndarray(), i420)
