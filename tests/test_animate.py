"""End to end: clips made here (the astronaut moving over a background), a tiny real generator,
`animate` through the library and the CLI, and every bad input a user can give it."""
from __future__ import annotations

import csv
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ganivid.checkpoint import save_inference
from ganivid.cli import app
from ganivid.config import ModelConfig
from ganivid.networks import Generator
from ganivid.testclips import background, moving_clip, sprite
from ganivid.video import from_upright, probe, read_frames
from ganivid.videowriter import EncodeOptions, VideoWriter
from gates import Rendezvous
from videoclips import write_unusable_media

CFG = ModelConfig(image_size=32, conv_dim=8, repeat_num=1, critic_dim=8)
# Lossless x264 in 4:4:4: every pixel the edit did not touch must come back bit for bit.
EXACT = dict(crf=0, pix_fmt="yuv444p", preset="ultrafast")


def write_video(path: Path, frames: list[np.ndarray], pts: list[int], time_base: Fraction, rate: Fraction,
                rotation: int = 0, audio: tuple[tuple[int, str], ...] = (), bt709: bool = False,
                colour: tuple[int, int, int] | None = None, pix_fmt: str | None = None) -> Path:
    """Encode upright `frames` (stored turned back by `rotation`) with AAC tones as long as the video;
    `bt709`: converted and tagged as BT.709 (HD) video; `colour`: any (matrix, primaries, transfer) tags."""
    colour = (1, 1, 1) if bt709 else colour
    out = av.open(str(path), "w")
    h, w = from_upright(frames[0], rotation).shape[:2]
    v = out.add_stream("libx264", rate=rate, options={"crf": "12", "preset": "ultrafast"})
    v.width, v.height = w, h
    v.pix_fmt = pix_fmt or ("yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p")
    v.time_base = v.codec_context.time_base = time_base
    if rotation:
        v.set_display_rotation(rotation)
    if colour:
        v.codec_context.colorspace, v.codec_context.color_primaries, v.codec_context.color_trc = colour
    streams = [out.add_stream("aac", rate=r, layout=lay) for r, lay in audio]
    for img, p in zip(frames, pts):
        f = av.VideoFrame.from_ndarray(from_upright(img, rotation), format="rgb24")
        f.pts, f.time_base = p, time_base
        if colour:
            f.colorspace = colour[0]  # swscale converts to the encoder's YUV with this matrix
        out.mux(v.encode(f))
    out.mux(v.encode())
    seconds = float((2 * pts[-1] - pts[-2]) * time_base)
    for k, a in enumerate(streams):
        t = np.arange(int(seconds * a.rate)) / a.rate
        tone = (0.05 * np.sin(2 * np.pi * (330 + 110 * k) * t)).astype(np.float32)
        for s0 in range(0, len(tone), 1024):
            chunk = np.repeat(tone[None, s0:s0 + 1024], a.layout.nb_channels, 0)
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=a.layout.name)
            af.sample_rate, af.pts = a.rate, s0
            out.mux(a.encode(af))
        out.mux(a.encode())
    out.close()
    return path


def audio_samples(path: Path) -> list[int]:
    """Decoded sample count of every audio stream: the duration a listener hears."""
    counts = []
    with av.open(str(path)) as c:
        for a in c.streams.audio:
            counts.append(sum(f.samples for f in c.decode(a)))
            c.seek(0)
    return counts


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("animate")


@pytest.fixture(scope="module")
def model(work) -> Path:
    torch.manual_seed(0)
    return save_inference(work / "tiny.safetensors", Generator(CFG), CFG)


@pytest.fixture(scope="module")
def face(astronaut):
    return sprite(astronaut)


def _cfr(face, work, name, n=14, size=(320, 240), rate=Fraction(25), tb=None, step=1, **kw) -> Path:
    clip = moving_clip(face, n_frames=n, fps=float(rate), size=size)
    tb = tb or 1 / rate
    return write_video(work / name, clip.frames, [i * step for i in range(n)], tb, rate, **kw)


CASES = {
    "cfr25-audio": lambda f, w: _cfr(f, w, "cfr25.mp4", audio=((48000, "stereo"),)),
    "ntsc": lambda f, w: _cfr(f, w, "ntsc.mp4", rate=Fraction(30000, 1001), tb=Fraction(1, 30000), step=1001),
    "vfr": lambda f, w: (lambda c: write_video(w / "vfr.mkv", c.frames, [round(t * 1000) for t in c.times],
                                               Fraction(1, 1000), Fraction(25)))(moving_clip(f, 14, vfr=True)),
    "rotated": lambda f, w: _cfr(f, w, "rot.mp4", n=10, rotation=90, audio=((44100, "mono"),)),
    "odd-size": lambda f, w: _cfr(f, w, "odd.mp4", n=4, size=(639, 359)),
    "two-audio": lambda f, w: _cfr(f, w, "two.mov", n=10, audio=((48000, "stereo"), (44100, "mono"))),
}


def _outside(stats: Path, frame: int, shape: tuple[int, int]) -> np.ndarray:
    """Mask of pixels farther than the crop's half-diagonal (+2 px) from every edited face centre."""
    keep = np.ones(shape, bool)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    with open(stats) as f:
        for row in csv.DictReader(f):
            if int(row["frame"]) == frame and row["target_AU12"] != "nan":
                cx, cy, size = float(row["cx"]), float(row["cy"]), float(row["size"])
                keep &= np.hypot(xx - cx, yy - cy) > size * 0.7072 + 2
    return keep


@pytest.mark.parametrize("case", list(CASES))
def test_end_to_end_keeps_everything_but_the_face(case, face, work, model):
    from ganivid.animate import animate

    src = CASES[case](face, work)
    out = src.with_name(f"out-{src.name}")
    stats = work / f"{case}.csv"
    result = animate(src, out, au=["AU12=1.0"], model=model, stats=stats, **EXACT)
    a, b = probe(src, count_frames=True), probe(out, count_frames=True)
    assert result.frames == a.frame_count == b.frame_count
    assert result.edited_frames >= a.frame_count - 1 and result.faces == 1
    assert (b.width, b.height, b.rotation) == (a.width, a.height, a.rotation)
    assert b.fps == a.fps
    assert b.duration_s == pytest.approx(a.duration_s, abs=1e-3)
    assert audio_samples(out) == audio_samples(src)
    # A plain re-encode with the same settings is the reference for every pixel not edited.
    plain = _plain(src, EXACT)
    changed = 0
    for x, y, z in zip(read_frames(src, upright=True), read_frames(out, upright=True), read_frames(plain, upright=True)):
        assert y.time_s == pytest.approx(x.time_s, abs=1e-3) and y.index == x.index
        keep = _outside(stats, x.index, y.image.shape[:2])
        assert np.array_equal(y.image[keep], z.image[keep])
        changed += int(np.any(y.image != z.image))
    assert changed >= result.edited_frames - 1  # the random generator visibly edits each face


def test_track_table_is_cached_and_reused(face, work, model):
    from ganivid.animate import animate

    src = _cfr(face, work, "cache.mp4", n=8)
    out = work / "cache-out.mp4"
    first = animate(src, out, au=["AU25=1"], model=model)
    assert first.track_cache.is_file() and not first.cache_reused
    second = animate(src, out, au=["AU12=0.5"], model=model, overwrite=True)
    assert second.cache_reused and second.times.track == 0 and second.edited_frames == first.edited_frames
    src.touch()  # a changed input (mtime) invalidates the cache, and the stale file goes
    third = animate(src, out, au=["AU12=0.5"], model=model, overwrite=True)
    assert not third.cache_reused and not first.track_cache.exists() or first.track_cache == third.track_cache


def test_track_table_of_another_output_is_reused(face, work, model):
    from ganivid.animate import animate

    src = _cfr(face, work, "again.mp4", n=8)
    first = animate(src, work / "again-1.mp4", au=["AU25=1"], model=model)
    second = animate(src, work / "again-2.mp4", au=["AU25=1"], model=model)
    assert second.cache_reused and second.times.track == 0 and second.track_cache != first.track_cache
    assert first.track_cache.is_file() and second.track_cache.is_file()  # each output keeps its own
    assert (work / "again-1.mp4").read_bytes() == (work / "again-2.mp4").read_bytes()
    src.touch()  # changed: neither table fits any more
    third = animate(src, work / "again-3.mp4", au=["AU25=1"], model=model)
    assert not third.cache_reused and third.times.track > 0
    other = work / "elsewhere"  # an output in another folder finds the table beside the video
    other.mkdir()
    fourth = animate(src, other / "again-4.mp4", au=["AU25=1"], model=model)
    assert fourth.cache_reused and fourth.track_cache.parent == other


def _plain(src: Path, options: dict) -> Path:
    """The input re-encoded with the same settings and nothing edited."""
    plain = src.with_name(f"plain-{src.name}")
    with VideoWriter(plain, probe(src), EncodeOptions(**options), overwrite=True) as w:
        for fr in read_frames(src):
            w.write(fr)
    return plain


def _edited(stats: Path) -> dict[int, list[float]]:
    """frame -> centre x of each edited face, from a --stats CSV."""
    out: dict[int, list[float]] = {}
    with open(stats) as f:
        for row in csv.DictReader(f):
            if row["target_AU12"] != "nan":
                out.setdefault(int(row["frame"]), []).append(float(row["cx"]))
    return out


def test_frames_without_a_face_are_written_unedited(face, work, model):
    from ganivid.animate import animate
    from ganivid.testclips import cut_clip

    clip = cut_clip(face, n_frames=14, cut_at=5, back_at=10)
    src = write_video(work / "cut.mp4", clip.frames, list(range(14)), Fraction(1, 25), Fraction(25))
    stats = work / "cut.csv"
    result = animate(src, work / "cut-out.mp4", au=["AU12=1"], model=model, stats=stats, **EXACT)
    edited = _edited(stats)
    assert result.frames == 14 and set(edited) <= set(range(5)) | set(range(10, 14)) and len(edited) >= 7
    plain = _plain(src, EXACT)
    for y, z in zip(read_frames(work / "cut-out.mp4"), read_frames(plain), strict=True):
        assert np.array_equal(y.image, z.image) == (y.index not in edited)


def test_face_selection(face, grace_hopper, work, model):
    from ganivid.align import Alignment
    from ganivid.animate import animate
    from ganivid.testclips import linear, make_clip

    other = sprite(grace_hopper)
    clip = make_clip({"a": (face, linear(0, 0.4, Alignment(82, 110, 128, 0), Alignment(90, 112, 128, 3))),
                      "b": (other, linear(0, 0.4, Alignment(236, 124, 146, 0), Alignment(230, 121, 146, -3)))}, 11)
    src = write_video(work / "two.mp4", clip.frames, list(range(11)), Fraction(1, 25), Fraction(25))
    out, stats = work / "two-out.mp4", work / "two.csv"

    def run(faces: str) -> dict[int, list[float]]:
        animate(src, out, au=["AU12=1"], model=model, faces=faces, stats=stats, overwrite=True)
        return _edited(stats)

    both = run("all")
    assert all(len(xs) == 2 for xs in both.values()) and len(both) >= 10
    largest = run("largest")  # Grace Hopper's face is the bigger one, on the right
    assert all(len(xs) == 1 and xs[0] > 160 for xs in largest.values())
    with open(stats) as f:
        left = next(int(r["track_id"]) for r in csv.DictReader(f) if float(r["cx"]) < 160)
    assert all(len(xs) == 1 and xs[0] < 160 for xs in run(str(left)).values())
    ref = work / "astronaut.png"
    import cv2

    cv2.imwrite(str(ref), cv2.cvtColor(face.image, cv2.COLOR_RGB2BGR))
    assert all(len(xs) == 1 and xs[0] < 160 for xs in run(f"ref:{ref}").values())


# ---------------------------------------------------------------- CLI and bad inputs

runner = CliRunner()


@pytest.fixture(scope="module")
def clips(face, work, model) -> dict[str, Path]:
    d = work / "bad"
    d.mkdir()
    good = _cfr(face, work, "bad/good.mp4", n=6)
    empty = write_video(d / "empty.mp4", [background(160, 120)] * 6, list(range(6)), Fraction(1, 25), Fraction(25))
    write_unusable_media(d, good)
    (d / "exists.mp4").write_bytes(b"keep me")
    (d / "broken.json").write_text('{"curves": [\n  {"au": "AU12", "keys": [[0, 0], [1, 0.5]]\n]}\n')
    (d / "negative.json").write_text('{"curves": [{"au": "AU12", "keys": [[-1, 0], [1, 0.5]]}]}')
    (d / "unsorted.csv").write_text("time,target,value\n0,AU12,0\n2,AU12,1\n1,AU12,0.5\n")
    (d / "nan.json").write_text('{"curves": [{"au": "AU12", "keys": [[0, NaN]]}]}')
    (d / "unknown.toml").write_text('[[curves]]\nau = "AU99"\nkeys = [[0, 0.5]]\n')
    other = save_inference(d / "other.safetensors", Generator(CFG), CFG, crop_spec="ffhq-1024")
    return {"good": good, "empty": empty, "truncated": d / "truncated.mp4", "dir": d, "other_model": other, "model": model}


def _run(args: list[str]):
    return runner.invoke(app, ["animate", *map(str, args)])


BAD = [  # (id, input, extra args, expected message)
    ("missing file", "dir/nope.mp4", [], "no such file"),
    ("directory", "dir", [], "is a directory"),
    ("non-video", "dir/text.mp4", [], "cannot read"),
    ("truncated", "truncated", [], "truncated"),
    ("zero bytes", "dir/zero.mp4", [], "empty"),
    ("no video stream", "dir/audio.m4a", [], "no video stream"),
    ("no face, required", "empty", ["--require-face"], "no usable face"),
    ("unknown AU", "good", ["--au", "AU99=0.5"], "valid AUs: AU1, AU2, AU4"),
    ("unknown AU in curve", "good", ["--au-curve", "dir/unknown.toml"], "unknown.toml, curve 1: unknown AU 'AU99'; valid AUs: AU1"),
    ("malformed AU edit", "good", ["--au", "AU12"], "AU12=0.8"),
    ("unknown expression", "good", ["--expression", "grin:0.5"], "known: neutral, smile"),
    ("malformed curve file", "good", ["--au-curve", "dir/broken.json"], "broken.json:3:1: malformed JSON"),
    ("negative time", "good", ["--au-curve", "dir/negative.json"], "negative.json, curve 1, key 1: time -1 is negative"),
    ("unsorted times", "good", ["--au-curve", "dir/unsorted.csv"], "unsorted.csv:4: time 1s is not after"),
    ("NaN value", "good", ["--au-curve", "dir/nan.json"], "nan.json, curve 1, key 1: value is nan"),
    ("missing curve file", "good", ["--au-curve", "dir/none.json"], "none.json does not exist"),
    ("nothing to change", "good", ["--no-edit"], "nothing to change"),
    ("existing output", "good", ["-o", "dir/exists.mp4"], "already exists"),
    ("output is input", "good", ["-o", "good"], "is the input file"),
    ("missing output folder", "good", ["-o", "dir/nowhere/out.mp4"], "does not exist"),
    ("incompatible model", "good", ["--model", "other_model"], "trained on crops 'ffhq-1024'"),
    ("bad face selection", "good", ["--faces", "biggest"], "--faces 'biggest'"),
    ("bad source AUs", "good", ["--source-aus", "openface"], "--source-aus"),
    ("bad batch size", "good", ["--batch-size", "0"], "batch-size"),
    ("bad thread count", "good", ["--threads", "0"], "--threads must be at least 1"),
    ("encoder refuses a setting", "good", ["--preset", "warp9"], "cannot open the libx264 yuv420p crf=18 preset=warp9 encoder"),
    ("crf out of range", "good", ["--crf", "99"], "--crf 99 is out of range for libx264: 0 (best) to 51"),
]


@pytest.mark.parametrize("name,src,extra,message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_gives_one_clear_line(name, src, extra, message, clips):
    def resolve(a: str) -> str:
        if a in clips:
            return str(clips[a])
        return str(clips["dir"] / a[4:]) if a.startswith("dir") else a

    args = [resolve(src), *[resolve(a) for a in extra if a != "--no-edit"]]
    if not {"--au", "--au-curve", "--expression", "--no-edit"} & set(extra):
        args += ["--au", "AU12=1"]
    if "-o" not in extra:
        args += ["-o", str(clips["dir"] / "target.mp4")]
    if "--model" not in extra:
        args += ["--model", str(clips["model"])]
    result = _run(args)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and message in errors[0] and result.stderr.strip().endswith(errors[0]), result.stderr
    assert "Traceback" not in result.output
    assert not (clips["dir"] / "target.mp4").exists()
    assert (clips["dir"] / "exists.mp4").read_bytes() == b"keep me"
    assert not list(clips["dir"].glob(".*tmp*"))


def test_encoder_settings_are_checked_before_the_analysis(clips):
    # A long video's analysis takes minutes: a setting the encoder refuses must fail first.
    out = clips["dir"] / "preset-out.webm"
    result = _run([clips["good"], "-o", out, "--model", clips["model"], "--au", "AU12=1", "--pix-fmt", "yuv420p10le"])
    assert result.exit_code == 1 and "cannot open the libvpx-vp9 yuv420p10le" in result.stderr, result.stderr
    assert not list(clips["dir"].glob(".preset-out.webm*"))  # no temporary file, and no track table: not analysed


def test_no_face_anywhere_writes_an_unedited_copy(clips):
    out = clips["dir"] / "noface-out.mp4"
    result = _run([clips["empty"], "-o", out, "--model", clips["model"], "--au", "AU12=1", "--quiet",
                   "--crf", "0", "--pix-fmt", "yuv444p"])
    assert result.exit_code == 0, result.output
    assert "warning: no usable face" in result.stderr
    for x, y in zip(read_frames(clips["empty"]), read_frames(out), strict=True):
        assert np.abs(x.image.astype(int) - y.image.astype(int)).max() <= 2  # lossless but for colour conversion


def test_generator_threads_follow_torchs_thread_count(model):
    from ganivid.animate import generator_threads
    from ganivid.engine import Engine

    eng, before, got = Engine.from_checkpoint(str(model), "cpu"), torch.get_num_threads(), {}
    try:
        for n in (1, 2, 3, 8):
            torch.set_num_threads(n)
            got[n] = generator_threads(eng)
    finally:
        torch.set_num_threads(before)
    assert got == {1: (1, 1), 2: (2, 1), 3: (3, 1), 8: (4, 2)}  # up to 4 batches at once


def test_dry_run_prints_probe_faces_and_au_table(clips):
    result = _run([clips["good"], "--dry-run", "--model", clips["model"], "--expression", "smile:0.5", "--au", "AU26=0.3"])
    assert result.exit_code == 0, result.output
    text = result.stderr + result.stdout
    assert "video #0: h264 320x240" in text and "25.000 fps" in text
    assert "1 face(s)" in text
    threads = torch.get_num_threads()  # one generator thread per torch thread, up to 4
    assert f"device cpu, batch 8, {min(threads, 4)} generator thread" in text
    assert "AU12" in text and "0.50" in text and "AU26" in text and "0.30" in text
    assert not (clips["good"].with_name("good.animated.mp4")).exists()
    before = torch.get_num_threads()
    try:  # --threads sets the process's torch threads, which the generator threads follow
        result = _run([clips["good"], "--dry-run", "--model", clips["model"], "--au", "AU12=1", "--threads", "6"])
        assert "device cpu, batch 8, 4 generator threads x 1 torch thread" in result.stdout
    finally:
        torch.set_num_threads(before)


def test_yuv420p_output_keeps_the_decoded_pixels_outside_the_face(face, work, model):
    from ganivid.animate import animate
    from ganivid.yuv import planes

    # 4:2:0 in and out: frames go decoder -> encoder as YUV planes, so with lossless x264 every
    # pixel the edit does not touch is the input's as decoded (no RGB round trip at all).
    src = _cfr(face, work, "yuv.mp4", n=8)
    out, stats = work / "yuv-out.mp4", work / "yuv.csv"
    result = animate(src, out, au=["AU12=1.0"], model=model, stats=stats, crf=0, preset="ultrafast")
    assert result.frames == 8 and result.edited_frames >= 7
    for x, y in zip(read_frames(src, yuv=True), read_frames(out, yuv=True), strict=True):
        assert x.yuv and y.yuv
        keep = _outside(stats, x.index, (240, 320))
        for k, (a, b) in enumerate(zip(planes(x.image), planes(y.image))):
            mask = keep if k == 0 else keep[::2, ::2] & keep[1::2, 1::2]
            assert np.array_equal(a[mask], b[mask])
        assert x.index not in _edited(stats) or not np.array_equal(x.image, y.image)


@pytest.mark.parametrize("rotation", [0, 90])
def test_bt709_source_keeps_its_colour_tags_and_colours(face, work, model, rotation):
    from ganivid.animate import animate

    # HD video is tagged BT.709; an untagged output would show every pixel through BT.601.
    # Turned or not, the planes pass through as stored (only the face crops are turned).
    src = _cfr(face, work, f"hd{rotation}.mp4", n=6, bt709=True, rotation=rotation)
    out, stats = work / f"hd{rotation}-out.mp4", work / f"hd{rotation}.csv"
    assert probe(src).colour == (1, 1, 1) and "colours BT.709" in probe(src).summary()[1]
    animate(src, out, au=["AU12=1.0"], model=model, stats=stats, crf=0, preset="ultrafast")
    assert probe(out).colour == (1, 1, 1)
    for x, y in zip(read_frames(src, upright=True), read_frames(out, upright=True), strict=True):
        keep = _outside(stats, x.index, x.image.shape[:2])
        diff = np.abs(x.image.astype(int) - y.image)[keep]
        assert diff.max() == 0
    plain = _cfr(face, work, f"sd{rotation}.mp4", n=2, rotation=rotation)
    animate(plain, work / f"sd{rotation}-out.mp4", au=["AU12=1.0"], model=model, preset="ultrafast")
    assert probe(plain).colour == probe(work / f"sd{rotation}-out.mp4").colour == (2, 2, 2)  # untagged stays so


def test_hdr_bt2020_10bit_source_stays_10bit_with_its_tags(face, work, model):
    from ganivid.animate import animate

    # A phone's HDR video: 10-bit BT.2020 with HLG. Untagged, players would show it as SDR
    # BT.601. Its 10-bit planes pass through; only the face crops are converted, to 8-bit RGB.
    # Filmed upright on a phone: stored turned (rotation 90), as phones store portrait video.
    src = _cfr(face, work, "hlg.mp4", n=4, colour=(9, 9, 18), pix_fmt="yuv420p10le", rotation=90)
    out, stats = work / "hlg-out.mp4", work / "hlg.csv"
    assert "colours BT.2020, HLG (HDR)" in probe(src).summary()[1]
    r = animate(src, out, au=["AU12=1.0"], model=model, stats=stats, crf=0, preset="ultrafast")
    assert not r.warnings and r.edited_frames == 4
    assert probe(out).colour == (9, 9, 18) and probe(out).pix_fmt == "yuv420p10le"
    for x, y in zip(read_frames(src, yuv=True), read_frames(out, yuv=True), strict=True):
        assert x.image.dtype == y.image.dtype == np.uint16
        h = x.image.shape[0] * 2 // 3  # the luma plane's rows, as stored
        keep = from_upright(_outside(stats, x.index, (x.image.shape[1], h)), 90)
        # CRF 0 is lossless in 8 bits only: outside the faces 0.2-0.5 of a 10-bit step on average,
        # as in a plain re-encode; through 8 bits every value would move to a multiple of 4.
        assert np.abs(x.image[:h][keep].astype(int) - y.image[:h][keep]).mean() < 0.8
        assert np.mean(y.image[:h][keep] % 4 != 0) > 0.5
        assert np.abs(x.image[:h][~keep].astype(int) - y.image[:h][~keep]).max() > 8  # the face was edited
    # Where the encoder has no 10 bits (VP9 here), the output is 8-bit, with a notice.
    r = animate(src, work / "hlg-out.webm", au=["AU12=1.0"], model=model)
    assert any("10-bit source (yuv420p10le) written as 8-bit yuv420p" in w for w in r.warnings)
    assert probe(work / "hlg-out.webm").colour == (9, 9, 18)


def test_x264_runs_on_one_thread_beside_a_cpu_generator(face, work, model):
    import os
    import re

    from ganivid.animate import animate

    # x264 writes its settings into the stream: one thread when the generator keeps the CPU
    # busy (small frames), its own frame threads for a plain encode.
    src = _cfr(face, work, "threads.mp4", n=4)
    animate(src, work / "threads-out.mp4", au=["AU12=1.0"], model=model, device="cpu")
    threads = lambda p: int(re.search(rb" threads=(\d+) ", p.read_bytes()).group(1))  # noqa: E731
    assert threads(work / "threads-out.mp4") == 1
    with VideoWriter(work / "threads-plain.mp4", probe(src)) as w:
        for f in read_frames(src):
            w.write(f)
    assert threads(work / "threads-plain.mp4") > 1 or os.cpu_count() == 1


def test_animate_runs_a_generator_per_core_and_leaves_the_thread_pools_as_it_found_them(face, work, model):
    import cv2

    from ganivid.animate import animate
    from ganivid.engine import Engine
    from ganivid.errors import NoFaceError

    # On the CPU `animate` runs OpenCV on one thread (its stages are threads already), and one
    # generator thread per torch thread, each on one torch thread. Both settings are
    # process-wide, so the caller gets its own back, after errors too.
    src = _cfr(face, work, "cv2.mp4", n=3)
    before = cv2.getNumThreads(), torch.get_num_threads()
    try:
        cv2.setNumThreads(2)
        torch.set_num_threads(2)
        gen = Rendezvous(Engine.from_checkpoint(str(model), "cpu").generator, 2)
        animate(src, work / "cv2-out.mp4", au=["AU12=1.0"], model=Engine(gen, CFG.image_size, "cpu", batch_size=1))
        assert gen.threads == {threading.current_thread().name, "ganivid-generator-1"}  # two batches at once
        assert cv2.getNumThreads() == 2 and torch.get_num_threads() == 2
        blank = write_video(work / "cv2-blank.mp4", [np.full((240, 320, 3), 128, np.uint8)] * 3, [0, 1, 2],
                            Fraction(1, 25), Fraction(25))
        with pytest.raises(NoFaceError):  # raised after the pool was lowered
            animate(blank, work / "cv2-blank-out.mp4", au=["AU12=1.0"], model=model, device="cpu", require_face=True)
        assert cv2.getNumThreads() == 2 and torch.get_num_threads() == 2
    finally:
        cv2.setNumThreads(before[0])
        torch.set_num_threads(before[1])
