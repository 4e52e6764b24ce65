"""Bad, unusual and hostile inputs (issue 25), every one made here with PyAV and numpy.

The table: each bad input is one line of error, a non-zero exit, no traceback, and nothing left at
or beside the target (no output, no temporary file, no track table, no dataset folder). The tests
after it: unusual inputs that must simply work, and what signals and concurrent runs must leave."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ganivid.cli import app
from videoclips import write_unusable_media

runner = CliRunner()


def _clip(path: Path, frames: list[np.ndarray], pts: list[int] | None = None, rate: int = 25,
          audio: str | None = None, codec: str = "libx264") -> Path:
    """Encode RGB frames (with a tone of `audio`'s codec as long as the video) with PyAV."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=rate)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.time_base = v.codec_context.time_base = Fraction(1, rate)
        a = out.add_stream(audio, rate=48000, layout="stereo") if audio else None
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i if pts is None else pts[i]
            out.mux(v.encode(f))
        out.mux(v.encode())
        if a is not None:
            n = 48000 * len(frames) // rate
            tone = (0.1 * np.sin(np.arange(n) / 48000 * 2 * np.pi * 440)).astype(np.float32)
            step = a.codec_context.frame_size or 1024
            for s0 in range(0, n, step):
                af = av.AudioFrame.from_ndarray(np.repeat(tone[None, s0:s0 + step], 2, 0), format="fltp", layout="stereo")
                af.sample_rate, af.pts = 48000, s0
                out.mux(a.encode(af))
            out.mux(a.encode())
    return path


def _noise(n: int, w: int = 64, h: int = 48, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), np.uint8), (5, 5), 0) for _ in range(n)]


def _mjpeg_packets(frames: list[np.ndarray], exif: bool = True) -> list[bytes]:
    """JPEG images of `frames`, each with an EXIF APP1 segment (Orientation 1) after its SOI."""
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHII", 0x0112, 3, 1, 1) + struct.pack("<I", 0)
    app1 = b"\xff\xe1" + struct.pack(">H", len(tiff) + 8) + b"Exif\x00\x00" + tiff
    enc = av.CodecContext.create("mjpeg", "w")
    h, w = frames[0].shape[:2]
    enc.width, enc.height, enc.pix_fmt, enc.time_base = w, h, "yuvj420p", Fraction(1, 25)
    out = []
    for i, img in enumerate(frames):
        f = av.VideoFrame.from_ndarray(img, format="rgb24")
        f.pts = i
        out += [bytes(p)[:2] + (app1 if exif else b"") + bytes(p)[2:] for p in enc.encode(f)]
    return out


def _mux_packets(path: Path, packets: list[bytes], size: tuple[int, int], pts: list[int], dts_zero: bool = False) -> Path:
    """Mux MJPEG packets at `pts` (1/25 s); `dts_zero` lets Matroska store pts that repeat or go back."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("mjpeg", rate=25)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuvj420p"
        for data, p in zip(packets, pts):
            pkt = av.Packet(data)
            pkt.pts, pkt.dts, pkt.time_base, pkt.stream = p, 0 if dts_zero else p, Fraction(1, 25), s
            c.mux(pkt)
    return path


def _unwritable_folder(root: Path) -> Path:
    """A folder no file can be made in: read-only by its mode, or /sys where root ignores modes."""
    ro = root / "readonly"
    ro.mkdir()
    ro.chmod(0o555)
    for folder in (ro, Path("/sys")):
        try:
            fd, tmp = tempfile.mkstemp(dir=folder)
        except OSError:
            return folder
        os.close(fd)
        os.unlink(tmp)
    pytest.skip("no unwritable folder here")


@pytest.fixture(scope="module")
def files(tmp_path_factory, model, astronaut) -> dict[str, Path]:
    from ganivid.checkpoint import save_inference
    from ganivid.config import ModelConfig
    from ganivid.networks import Generator
    from ganivid.testclips import moving_clip, sprite

    d = tmp_path_factory.mktemp("inputs")
    good = _clip(d / "good.mp4", _noise(6))
    face = _clip(d / "face.mp4", moving_clip(sprite(astronaut), n_frames=4, fps=25.0, size=(320, 240)).frames)
    write_unusable_media(d, good)
    (d / "exists.mp4").write_bytes(b"keep me")
    (d / "exists.gif").write_bytes(b"keep me")
    (d / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (d / "deep.toml").write_text("a = " + "[" * 100_000 + "]" * 100_000)
    (d / "broken.json").write_text('{"curves": [\n')
    (d / "stats").mkdir()
    (d / "folder.mp4").mkdir()
    torch.save({"generator": {"w": torch.zeros(2)}}, d / "zip.safetensors")  # a torch zip under the wrong name
    cfg = ModelConfig(image_size=32, conv_dim=8, repeat_num=1, critic_dim=8)
    save_inference(d / "model.pt", Generator(cfg), cfg)  # safetensors under a checkpoint's name
    from ganivid.aus import AU_NAMES

    save_inference(d / "au7.safetensors", Generator(cfg), cfg, au_names=tuple("AU7" if n == "AU5" else n for n in AU_NAMES))
    (d / "empty.json").write_text('{"curves": []}')
    (d / "header.csv").write_text("time,target,value\n")
    (d / "smiles.json").write_text('{"smiles": [[0, 1]]}')
    (d / "imgs" / "imgs").mkdir(parents=True)  # a dataset's images without their labels
    cv2.imwrite(str(d / "photo.jpg"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(d / "photo.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    return {"d": d, "good": good, "face": face, "model": model, "ro": _unwritable_folder(d)}


V = ["{good}", "--model", "{model}", "--au", "AU12=1", "-o", "{out}/out.mp4"]  # a video run that would succeed
P = ["{d}/photo.png", "--model", "{model}", "--expression", "smile:0.5", "--duration", "0.1s"]  # a photo run
BAD = [  # (id, command line, message in the one error line, checked before the analysis)
    ("missing file", ["animate", "{d}/nope.mp4", *V[1:]], "no such file", True),
    ("directory", ["animate", "{d}", *V[1:]], "is a directory", True),
    ("not a video", ["animate", "{d}/text.mp4", *V[1:]], "cannot read", True),
    ("zero bytes", ["animate", "{d}/zero.mp4", *V[1:]], "is empty", True),
    ("truncated", ["animate", "{d}/truncated.mp4", *V[1:]], "truncated", True),
    ("no video stream", ["animate", "{d}/audio.m4a", *V[1:]], "no video stream", True),
    ("no face, required", ["animate", *V, "--require-face"], "no usable face", False),
    ("no such face track", ["animate", "{face}", *V[1:], "--faces", "99"], "no face track 99", False),
    ("unknown AU", ["animate", *V, "--au", "AU99=0.5"], "valid AUs: AU1", True),
    ("malformed AU edit", ["animate", *V, "--au", "AU12"], "AU12=0.8", True),
    ("unknown expression", ["animate", *V, "--expression", "grin"], "known: neutral", True),
    ("deeply nested JSON curve", ["animate", *V, "--au-curve", "{d}/deep.json"], "deep.json: nested too deeply", True),
    ("deeply nested TOML curve", ["animate", *V, "--au-curve", "{d}/deep.toml"], "deep.toml: nested too deeply", True),
    ("malformed JSON curve", ["animate", *V, "--au-curve", "{d}/broken.json"], "malformed JSON", True),
    ("missing curve file", ["animate", *V, "--au-curve", "{d}/none.json"], "none.json does not exist", True),
    ("nothing to change", ["animate", "{good}", "--model", "{model}", "-o", "{out}/out.mp4"], "nothing to change", True),
    ("existing output", ["animate", *V[:-1], "{d}/exists.mp4"], "already exists; pass -y (--overwrite) to", True),
    ("output is the input", ["animate", *V[:-1], "{good}", "-y"], "is the input file", True),
    ("missing output folder", ["animate", *V[:-1], "{out}/no/out.mp4"], "does not exist", True),
    ("output a folder", ["animate", *V[:-1], "{d}/folder.mp4"], "is a directory", True),
    ("unknown output extension", ["animate", *V[:-1], "{out}/out.avi"], "unsupported output extension", True),
    ("read-only output folder", ["animate", *V[:-1], "{ro}/out.mp4"], "cannot write in {ro}:", True),
    ("stats is the output", ["animate", *V, "--stats", "{out}/out.mp4"], "is the output video", True),
    ("stats is the input", ["animate", *V, "--stats", "{good}"], "is the input video", True),
    ("stats is a folder", ["animate", *V, "--stats", "{d}/stats"], "is a folder", True),
    ("stats in a read-only folder", ["animate", *V, "--stats", "{ro}/s.csv"], "cannot write in {ro}:", True),
    ("bad source AUs", ["animate", *V, "--source-aus", "maybe"], "--source-aus must be estimate or none", True),
    ("torch zip named .safetensors", ["animate", *V[:1], "--model", "{d}/zip.safetensors", *V[3:]],
     "zip.safetensors is not a ganivid", True),
    ("missing model", ["animate", *V[:1], "--model", "{d}/none.safetensors", *V[3:]], "does not exist", True),
    ("crf out of range", ["animate", *V, "--crf", "99"], "--crf 99 is out of range", True),
    ("encoder refuses a preset", ["animate", *V, "--preset", "warp9"], "cannot open the libx264", True),
    ("not a video codec", ["animate", *V, "--codec", "aac"], "'aac' is not a video encoder", True),
    ("unknown pixel format", ["animate", *V, "--pix-fmt", "yuv9000"], "unknown pixel format", True),
    ("bad face selection", ["animate", *V, "--faces", "biggest"], "--faces 'biggest'", True),
    ("no threads", ["animate", *V, "--threads", "0"], "--threads must be at least 1", True),
    ("no batch", ["animate", *V, "--batch-size", "0"], "batch", True),
    ("photo: fps NaN", ["animate", *P, "-o", "{out}/p.mp4", "--fps", "nan"], "--fps must be in (0, 240], got nan", True),
    ("photo: fps inf", ["animate", *P, "-o", "{out}/p.mp4", "--fps", "inf"], "--fps must be in (0, 240], got inf", True),
    ("photo: fps 0", ["animate", *P, "-o", "{out}/p.mp4", "--fps", "0"], "--fps must be in (0, 240]", True),
    ("photo onto itself", ["animate", "{d}/photo.jpg", *P[1:], "-o", "{d}/photo.jpg", "-y"], "is the input file", True),
    ("photo: existing GIF", ["animate", *P, "-o", "{d}/exists.gif"], "already exists", True),
    ("photo: dry run", ["animate", *P, "-o", "{out}/p.mp4", "--dry-run"], "--dry-run and --stats are for videos", True),
    ("photo: tiny max side", ["animate", *P, "-o", "{out}/p.gif", "--max-side", "4"], "--max-side", True),
    ("photo: unknown extension", ["animate", *P, "-o", "{out}/p.txt"], "unsupported output extension", True),
    ("photo: read-only folder", ["animate", *P, "-o", "{ro}/p.png"], "cannot write in {ro}:", True),
    ("export a torch zip named .safetensors", ["export", "{d}/zip.safetensors", "-o", "{out}/m.safetensors"],
     "zip.safetensors is not a ganivid training checkpoint", True),
    ("export a safetensors model", ["export", "{d}/model.pt", "-o", "{out}/m.safetensors"],
     "model.pt is an inference model (safetensors)", True),
    ("grid into a read-only folder", ["preview", "grid", "{d}/photo.png", "--model", "{model}", "-o", "{ro}/g.png"],
     "cannot write in {ro}:", True),
    ("grid onto its photo", ["preview", "grid", "{d}/photo.png", "--model", "{model}", "-o", "{d}/photo.png"],
     "is the input file", True),
    ("no curves in a JSON file", ["animate", *V, "--au-curve", "{d}/empty.json"], 'empty.json holds no curves; write them as {{"AU12"', True),
    ("header-only CSV curve", ["animate", *V, "--au-curve", "{d}/header.csv"], "header.csv holds no curves; write them as a header", True),
    ("neither curve form", ["animate", *V, "--au-curve", "{d}/smiles.json"], "unknown key 'smiles'; write AU curves as {{", True),
    ("model a folder", ["animate", *V[:1], "--model", "{d}/stats", *V[3:]], "stats is a folder; give a .safetensors", True),
    ("model a device", ["animate", *V[:1], "--model", "/dev/null", *V[3:]], "/dev/null is not a regular file", True),
    ("model of another AU list", ["animate", *V[:1], "--model", "{d}/au7.safetensors", *V[3:]],
     "is conditioned on AU7 as AU 4, where ganivid uses AU5", True),
    ("output a folder without extension", ["animate", *V[:-1], "{d}/stats"], "stats is a directory; give a file name such as", True),
    ("photo: output a folder", ["animate", *P, "-o", "{d}/stats"], "stats is a directory; give a file name such as", True),
    ("tracks not an npz", ["preview", "frames", "{good}", "--model", "{model}", "--au", "AU12=1", "--tracks",
                           "{d}/broken.json", "-o", "{out}/s.png"], "broken.json is not a track table", True),
    ("train on imgs/ without labels", ["train", "--data", "{d}/imgs", "-o", "{out}/run"], "has imgs/ but no labels: add aus.csv", True),
    ("expression given twice", ["animate", *V, "--expression", "smile:0.5", "--expression", "sad"],
     "--expression given 2 times (smile:0.5, sad): give one", True),
    ("AU set twice", ["animate", *V, "--au", "AU12=0.3"], "--au 'AU12=0.3' replaces --au 'AU12=1' given before it", True),
    ("duration for a video", ["animate", *V, "--duration", "4s"], "--duration is for photo input", True),
    ("loop and fps for a video", ["animate", *V, "--loop", "pingpong", "--fps", "10"], "--fps, --loop are for photo input", True),
    ("photo: a day long", ["animate", *P[:-2], "--duration", "100000s", "-o", "{out}/p.mp4"],
     "--duration 100000s plays 27.8 h (3,000,000 frames at 30 fps); a photo's animation is at most 60 minutes", True),
    ("annotate without a face", ["annotate", "{good}", "-o", "{out}/dataset", "-q"], "no face crop was written", False),
]


def _fill(arg: str, files: dict[str, Path], out: Path) -> str:
    return arg.format(**{k: str(v) for k, v in files.items()}, out=str(out))


def _listing(*folders: Path) -> dict[str, bytes]:
    """Every file under `folders` (hidden ones too) with its content: what a run must not change."""
    return {str(p): p.read_bytes() for f in folders for p in sorted(f.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name,argv,message,before", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_and_leaves_nothing(name, argv, message, before, files, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    if before:  # the error must come before any frame is analysed: the analysis would fail loudly
        import ganivid.analysis

        def tripwire(*a, **kw):
            raise AssertionError("analysed before refusing")

        monkeypatch.setattr(ganivid.analysis, "analyse_video", tripwire)
    watched = [files["d"], out] + ([files["ro"]] if files["ro"] != Path("/sys") else [])
    was = _listing(*watched)
    result = runner.invoke(app, [_fill(a, files, out) for a in argv])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and _fill(message, files, out) in errors[0], result.stderr
    assert result.stderr.strip().endswith(errors[0]) and "Traceback" not in result.output
    assert _listing(*watched) == was  # no output, temporary, track table or dataset; inputs untouched


def test_the_table_covers_forty_cases():
    assert len(BAD) >= 40


# ---------------------------------------------------------------- unusual inputs that must work

def _ok(argv: list[str]):
    result = runner.invoke(app, [str(a) for a in argv])
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "Traceback" not in result.output and "error" not in result.stderr
    return result


@pytest.fixture(scope="module")
def exif(files, astronaut) -> tuple[Path, Path]:
    """An MJPEG AVI and a JPEG whose frames carry EXIF, which FFmpeg hands on as side data PyAV's enum lacks."""
    packets = _mjpeg_packets([np.roll(astronaut, 2 * i, axis=1) for i in range(4)])
    d = files["d"] / "exif"
    d.mkdir()
    (d / "face.jpg").write_bytes(packets[0])
    return _mux_packets(d / "face.avi", packets, (512, 512), list(range(4))), d / "face.jpg"


def test_frames_with_exif_side_data_are_read(exif, files, tmp_path):
    from ganivid.video import probe

    avi, jpg = exif
    with av.open(str(avi)) as c:  # the case itself: side data of a type PyAV cannot name
        side = next(c.decode(video=0)).side_data
        assert 31 in {getattr(t, "value", t) for t in side.keys()}  # AV_FRAME_DATA_EXIF
    assert probe(avi).rotation == probe(jpg).rotation == 0
    _ok(["animate", avi, "--model", files["model"], "--au", "AU12=1", "-o", tmp_path / "out.mp4", "-q"])
    assert probe(tmp_path / "out.mp4", count_frames=True).frame_count == 4
    result = _ok(["annotate", avi, "-o", tmp_path / "dataset", "-q"])
    assert "dataset holds 0" not in result.stdout
    _ok(["preview", "frames", jpg, "--model", files["model"], "--au", "AU12=1", "-o", tmp_path / "sheet.png"])
    assert (tmp_path / "sheet.png").is_file()


TIMES = {  # pts in 1/25 s, as demuxed
    "repeated": [0, 1, 2, 2, 3, 4, 5],
    "a step back": [0, 1, 2, 4, 3, 5, 6],
    "a run back": [0, 1, 2, 3, 4, 5, 2, 3, 4, 5, 6],
    "a restarted clock": [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3],
}


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
@pytest.mark.parametrize("case", list(TIMES))
def test_frames_whose_timestamps_repeat_or_go_back_are_kept_in_order(case, ext, files, tmp_path):
    pts = TIMES[case]
    src = _mux_packets(tmp_path / "in.mkv", _mjpeg_packets(_noise(len(pts)), exif=False), (64, 48), pts, dts_zero=True)
    with av.open(str(src)) as c:  # the input is what the case says
        assert [f.pts for f in c.decode(video=0)] == [p * 40 for p in pts]
    base = ["animate", src, "--model", files["model"], "--au", "AU12=1"]
    dry = _ok([*base, "--dry-run"])
    assert "in.mkv: 1 frame(s) with a timestamp not after the previous frame's" in dry.stdout
    out = tmp_path / f"out{ext}"
    result = _ok([*base, "-o", out])
    notes = [line for line in result.stderr.splitlines() if "not after the previous frame's" in line]
    assert len(notes) == 1 and "1 frame(s)" in notes[0]  # once, with the count
    with av.open(str(out)) as c:
        times = [f.time for f in c.decode(video=0)]
    assert len(times) == len(pts) and all(b > a for a, b in zip(times, times[1:]))
    assert times[0] == 0 and times[2] == pytest.approx(0.08)  # the frames before the slip keep their times
    if case == "a restarted clock":  # the run after the jump keeps its own spacing
        assert np.diff(times[8:]) == pytest.approx([0.04] * 3)


def test_frames_closer_than_the_outputs_time_base_are_kept(tmp_path):
    """Matroska counts milliseconds: 0.5 ms apart in a 1/90000 source, a frame moves one step later."""
    from ganivid.video import probe, read_frames
    from ganivid.videowriter import VideoWriter

    src = _clip(tmp_path / "fine.mp4", _noise(4), pts=[0, 45, 3600, 7200], rate=90000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with VideoWriter(tmp_path / "out.mkv", probe(src)) as w:
            for f in read_frames(src):
                w.write(f)
    assert w.retimed == 1 and any("moved one step later" in str(x.message) for x in caught)
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert [f.pts for f in c.decode(video=0)] == [0, 1, 40, 80]


def test_pcm_audio_into_mp4_is_reencoded_before_the_render(files, tmp_path):
    from ganivid.video import probe

    src = _clip(tmp_path / "pcm.mkv", _noise(10), audio="pcm_s16le")
    result = _ok(["animate", src, "--model", files["model"], "--au", "AU12=1", "-o", tmp_path / "out.mp4"])
    assert "audio stream #1 (pcm_s16le) cannot be copied into .mp4: re-encoding it as aac (.mov, .mkv" in result.stderr
    assert [a.codec for a in probe(tmp_path / "out.mp4").audio] == ["aac"]
    _ok(["animate", src, "--model", files["model"], "--au", "AU12=1", "-o", tmp_path / "out.mov", "-q"])
    assert [a.codec for a in probe(tmp_path / "out.mov").audio] == ["pcm_s16le"]  # kept where it fits


def _starts(path: Path) -> tuple[float, float, int, float]:
    """Seconds of the first video frame and of the first audio packet, and the audio samples a
    player plays from 0 on and the time of the first of them."""
    with av.open(str(path)) as c:
        video = float(next(c.decode(video=0)).time)
    with av.open(str(path)) as c:
        packet = next(p for p in c.demux(audio=0) if p.pts is not None)
        first = round(float(packet.pts * packet.time_base), 3)  # Matroska counts milliseconds
    with av.open(str(path)) as c:
        audio = [f for f in c.decode(audio=0) if f.time >= 0]
    return video, first, sum(f.samples for f in audio), float(audio[0].time)


def test_mp4_to_mkv_keeps_the_first_timestamps(files, tmp_path):
    src = _clip(tmp_path / "aac.mp4", _noise(25), audio="aac")  # AAC's priming packet sits at -21 ms
    _ok(["animate", src, "--model", files["model"], "--au", "AU12=1", "-o", tmp_path / "out.mkv", "-q"])
    assert _starts(src) == (0.0, -0.021, 48128, 0.0)
    assert _starts(tmp_path / "out.mkv") == _starts(src)  # nothing shifted; every sample plays when it did


# ---------------------------------------------------------------- signals and concurrent runs

@pytest.mark.parametrize("sig", [15, 1], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_clean_up_as_ctrl_c(sig, files, tmp_path):
    src = _clip(tmp_path / "long.mp4", _noise(400, 320, 240))
    out = tmp_path / "out" / "long.mp4"
    out.parent.mkdir()
    cmd = [sys.executable, "-m", "ganivid", "animate", src, "--model", files["model"], "--au", "AU12=1",
           "-o", out, "-q", "--detect-every", "100"]
    proc = subprocess.Popen([str(c) for c in cmd], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.parent.glob(".long.tmp-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the render has begun once its temporary output exists
    assert proc.poll() is None, "the run ended before it could be signalled"
    proc.send_signal(sig)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 128 + sig, err
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "interrupted" in errors[0] and "Traceback" not in err, err
    assert list(out.parent.iterdir()) == []  # no video, no temporary file, no track table


def test_a_file_that_appears_during_the_run_is_not_replaced_without_y(files, tmp_path, monkeypatch):
    import ganivid.analysis

    out = tmp_path / "out.mp4"
    analyse = ganivid.analysis.analyse_video

    def another_run_finishes_meanwhile(*a, **kw):
        result = analyse(*a, **kw)
        out.write_bytes(b"the other run's video")
        return result

    monkeypatch.setattr(ganivid.analysis, "analyse_video", another_run_finishes_meanwhile)
    result = runner.invoke(app, ["animate", str(files["good"]), "--model", str(files["model"]), "--au", "AU12=1",
                                 "-o", str(out), "-q"])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert result.exit_code == 1 and len(errors) == 1 and "appeared while this run was writing it" in errors[0]
    assert out.read_bytes() == b"the other run's video"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_an_image_that_appears_meanwhile_is_not_replaced_without_y(tmp_path):
    from ganivid.errors import ConfigError
    from ganivid.fileio import atomic_path

    target = tmp_path / "sheet.png"
    with pytest.raises(ConfigError, match="appeared while this run was writing it"):
        with atomic_path(target, overwrite=False, error=ConfigError) as tmp:
            tmp.write_bytes(b"ours")
            target.write_bytes(b"theirs")
    assert target.read_bytes() == b"theirs" and [p.name for p in tmp_path.iterdir()] == ["sheet.png"]
    with atomic_path(target, overwrite=True) as tmp:  # -y: replaced
        tmp.write_bytes(b"ours")
    assert target.read_bytes() == b"ours"
