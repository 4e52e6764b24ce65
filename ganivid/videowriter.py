"""Atomic video writing that keeps a source video's timestamps, rotation and audio.

Odd frame sizes: H.264/H.265 in 4:2:0 need even sides (their chroma is cropped in steps of 2),
so with the default pix_fmt an odd-sized video (e.g. 639x359) is encoded as yuv444p, which keeps
the exact resolution (High 4:4:4 profile; some hardware players and browsers cannot play it).
VP9 (.webm) handles odd sizes in yuv420p. An explicit `pix_fmt="yuv420p"` with odd sides is an
error rather than a silent pad or crop.
Time bases: mp4/mov keep the source's (the muxer raises ones below 1/10000 by doubling, exactly);
mkv/webm always store milliseconds, so timestamps there are rounded to 1 ms.
"""
from __future__ import annotations

import functools
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import av

from ganivid.audiotracks import LEAD_S, AudioTracks, copies
from ganivid.errors import VideoError
from ganivid.fileio import appeared, check_output, commit, temp_beside
from ganivid.video import Frame, VideoInfo, _reason, from_upright
from ganivid.yuv import MATRICES, PLANES, from_rgb, to_video_frame, with_depth

CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
_DEFAULT_CODEC = {"webm": "libvpx-vp9"}  # every other container: libx264
_EVEN_420 = {"libx264", "libx265", "h264", "hevc", "mpeg4", "libxvid"}  # 4:2:0 needs even sides
_CRF_MAX = {"libx264": 51, "libx265": 51, "libvpx-vp9": 63}  # beyond, the encoders clamp without a word
# veryfast halves x264's CPU time per frame against medium (the biggest cost of `animate` after
# the generator); at CRF 18 files come out ~20% smaller and ~1.2 dB lower in PSNR, still ~40 dB
# (benchmarks/animate_speed.py measures both). --preset medium buys the dB back.
DEFAULT_PRESET = "veryfast"


@dataclass(frozen=True)
class EncodeOptions:
    """Encoder settings in ffmpeg terms; None picks the per-codec default."""

    codec: str | None = None  # None: libx264, or libvpx-vp9 for .webm
    crf: int | None = None  # None: 18 for x264/x265, 24 for VP9 (near transparent: re-encoding loses)
    preset: str | None = None  # x264/x265 speed/size trade-off; None: DEFAULT_PRESET
    pix_fmt: str | None = None  # None: yuv420p, or yuv444p when an H.264/H.265 frame has an odd side
    audio: bool = True  # False drops every audio stream (--no-audio)
    threads: int | None = None  # libx264's threads; None: frame threads, one set per core (ffmpeg's default)


# x264's AVX-512 routines made run-to-run different output here (small frames, mbtree/AQ on):
# every AVX-512 CPU has these older extensions, so naming them drops only AVX-512, at no
# measurable speed cost, and identical frames encode to identical files.
_X264_NO_AVX512 = "asm=MMX2,SSE2Fast,SSSE3,SSE4.2,LZCNT,AVX,FMA3,BMI2,AVX2,Cache64"


def _bits(pix_fmt: str) -> int:
    """Bits per sample of a pixel format's first component (8 if unknown)."""
    try:
        return av.VideoFormat(pix_fmt).components[0].bits
    except (ValueError, av.FFmpegError):
        return 8


@functools.cache
def _has_avx512() -> bool:
    """True on an x86 Linux machine whose CPU reports AVX-512 (elsewhere x264 picks by itself)."""
    try:
        return " avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def _check_target(path: Path, source: Path, overwrite: bool) -> str:
    """Validate the output path; returns the container format name."""
    fmt = CONTAINERS.get(path.suffix.lower())
    if path.is_dir():  # before the extension: "unsupported extension '(none)'" hides what is wrong
        raise VideoError(f"output {path} is a directory; give a file name such as {path / source.with_suffix('.mp4').name}")
    if fmt is None:
        raise VideoError(f"unsupported output extension {path.suffix or '(none)'!r} for {path}; "
                         f"use one of {', '.join(CONTAINERS)}")
    check_output(path, overwrite, VideoError, source)
    return fmt


@dataclass(frozen=True)
class Prepared:
    """A frame as `VideoWriter.prepare` made it ready for the encoder."""

    pts: int
    duration: int
    frame: av.VideoFrame


class VideoWriter:
    """Write frames like `template`'s (timestamps, time base, rotation, audio) to `path` atomically.

    Frames must come with the source's `pts` (from `read_frames`); each is encoded at its own
    timestamp, so variable frame rates are kept. Audio streams of the source are copied packet for
    packet when the container takes the codec, otherwise re-encoded (AAC; Opus in .webm) with a
    warning. Output goes to a hidden temporary file beside `path` and replaces `path` only when
    the context exits cleanly; any exception, Ctrl-C included, removes it.
    Raises:
        VideoError: bad output path, existing output without `overwrite`, encoder failures.
    """

    def __init__(self, path: str | Path, template: VideoInfo, options: EncodeOptions | None = None,
                 *, overwrite: bool = False, upright: bool = False) -> None:
        self.path = Path(path)
        self.template = template
        self.options = options or EncodeOptions()
        self.upright = upright  # frames come turned as a player shows them (read_frames(upright=True))
        self.notices: list[str] = []  # what was changed on the way (re-encoded audio, pix_fmt), also warned
        self.frames_written = 0
        self.retimed = 0  # frames moved one step of the output's time base later (see `write`)
        self.overwrite = overwrite
        self._fmt = _check_target(self.path, template.path, overwrite)
        self._tmp: Path | None = None
        self._out = None
        self._audio: AudioTracks | None = None
        self._step = 1  # the output time base's step in template units (`_start`)
        self._durations: dict[int, int] = {}  # pts -> frame duration, for packets leaving the encoder
        self._held: av.Packet | None = None  # last video packet, muxed late to fix the final duration
        self._first_dts: int | None = None
        self._last_pts = self._end_pts = None

    def _notice(self, message: str) -> None:
        self.notices.append(message)
        warnings.warn(message, stacklevel=3)

    def __enter__(self) -> VideoWriter:
        try:
            self._tmp = temp_beside(self.path)
        except OSError as ex:
            raise VideoError(f"cannot write in {self.path.parent}: {ex.strerror}") from ex
        try:
            self._out = av.open(str(self._tmp), "w", format=self._fmt)
            self._add_video()
            if (self.options.audio and self.template.audio) or self.template.other_streams:
                self._audio = AudioTracks(self._out, self._fmt, self._muxer_options(), self.template, CONTAINERS,
                                          self._notice, self.options.audio)
            self._start()
        except BaseException as ex:
            self._abort()
            if isinstance(ex, (av.FFmpegError, ValueError)):
                raise VideoError(f"cannot write {self.path}: {_reason(ex)}") from ex
            raise
        return self

    def _start(self) -> None:
        try:
            self._out.start_encoding()
        except av.FFmpegError as ex:
            raise VideoError(f"cannot open the {self._settings} encoder: {_reason(ex)}; "
                             "check --codec, --crf, --preset and --pix-fmt") from ex
        self._step = max(1, math.ceil(self._video.time_base / self.template.time_base))  # mkv: 1 ms

    def _muxer_options(self) -> dict[str, str]:
        t = self.template
        if self._fmt in ("mp4", "mov"):  # index first: plays while downloading
            return {"movflags": "+faststart", "movie_timescale": str(t.time_base.denominator)}
        # Matroska starts at 0: FFmpeg would shift every stream by AAC's priming (21 ms) rather
        # than store the priming packet before 0, and the source's first timestamps would be lost.
        return {"avoid_negative_ts": "disabled"}

    def check(self) -> None:
        """Open the video encoder on a file in memory and close it again: a setting it refuses
        fails now, not after a long analysis pass (notices come when the real file opens)."""
        notices = list(self.notices)
        self._out = av.open(io.BytesIO(), "w", format=self._fmt)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._add_video()
            self._start()
            for a in self.template.audio if self.options.audio else ():  # tried now, not after the analysis
                copies(self._fmt, self._muxer_options(), self.template.path, a.index)
        except (av.FFmpegError, ValueError) as ex:
            raise VideoError(f"cannot write {self.path}: {_reason(ex)}") from ex
        finally:
            try:
                self._out.close()
            except av.FFmpegError:  # an encoder that never opened has nothing to flush
                pass
            self._out, self.notices = None, notices

    def _add_video(self) -> None:
        t, o = self.template, self.options
        codec = o.codec or _DEFAULT_CODEC.get(self._fmt, "libx264")
        # 10-bit video (phones' HDR) stays 10-bit where the encoder has it: its planes pass through.
        deep = t.pix_fmt == "yuv420p10le" and codec in ("libx264", "libx265")
        pix_fmt = o.pix_fmt or ("yuv420p10le" if deep else "yuv420p")
        odd = t.width % 2 or t.height % 2
        if odd and codec in _EVEN_420 and pix_fmt in ("yuv420p", "yuvj420p", "nv12", "yuv422p", "yuv420p10le"):
            if o.pix_fmt is not None:
                raise VideoError(f"{codec} cannot store {t.width}x{t.height} in {pix_fmt} (needs even sides); "
                                 "use --pix-fmt yuv444p, or a .webm output (VP9)")
            pix_fmt = "yuv444p10le" if deep else "yuv444p"
            self._notice(f"odd frame size {t.width}x{t.height}: encoding {codec} as {pix_fmt} to keep it exact "
                         "(some players cannot play 4:4:4; --pix-fmt chooses)")
        top = _CRF_MAX.get(codec)
        if codec == "libx264" and _bits(pix_fmt) > 8:  # x264's scale grows 6 steps per extra bit
            top += 6 * (_bits(pix_fmt) - 8)
        if o.crf is not None and top is not None and not 0 <= o.crf <= top:
            raise VideoError(f"--crf {o.crf} is out of range for {codec}: 0 (best) to {top}")
        opts: dict[str, str] = {}
        if codec in ("libx264", "libx265"):
            opts = {"crf": str(o.crf if o.crf is not None else 18), "preset": o.preset or DEFAULT_PRESET}
            if codec == "libx264" and _has_avx512():
                opts["x264-params"] = _X264_NO_AVX512
        elif codec == "libvpx-vp9":  # constant quality needs b=0; row-mt uses both cores
            opts = {"crf": str(o.crf if o.crf is not None else 24), "b": "0", "row-mt": "1", "cpu-used": "4"}
        elif o.crf is not None:
            opts = {"crf": str(o.crf)}
        try:
            kind = av.Codec(codec, "w").type
        except (av.FFmpegError, ValueError):
            kind = None
        if kind != "video":
            raise VideoError(f"{codec!r} is not a video encoder available here; e.g. libx264, libx265, libvpx-vp9")
        try:
            s = self._out.add_stream(codec, rate=t.fps, options=opts)
        except (av.FFmpegError, ValueError) as ex:
            raise VideoError(f"cannot use video codec {codec!r} in {self.path.suffix}: {_reason(ex)}") from ex
        self._settings = " ".join([codec, pix_fmt] + [f"{k}={v}" for k, v in opts.items() if k != "x264-params"])
        s.width, s.height = t.width, t.height
        # Frame threads, as the ffmpeg command line uses: PyAV's default (slices) costs x264 ~12%
        # more CPU per frame and ~2% more bytes at the same CRF (benchmarks/animate_speed.py).
        s.thread_type = "AUTO"
        if codec == "libx264" and o.threads is not None:
            s.thread_count = o.threads
        try:
            s.pix_fmt = pix_fmt
        except (av.FFmpegError, ValueError) as ex:
            raise VideoError(f"unknown pixel format {pix_fmt!r} (--pix-fmt); e.g. yuv420p, yuv444p") from ex
        s.time_base = t.time_base  # mp4/mov keep it; mkv/webm use 1/1000 regardless
        if t.colour[0] in MATRICES:
            # The source's colour tags: untagged output would show a BT.709 source's colours
            # through BT.601 in most players (a visible shift of every pixel), and HDR as SDR. RGB
            # frames are converted with the same matrix (`write`: from_rgb, or swscale via the
            # frame's tag).
            cc = s.codec_context
            cc.colorspace, cc.color_primaries, cc.color_trc = t.colour
        self._matrix = t.colour[0] if t.colour[0] in MATRICES else 2
        if o.pix_fmt is None and t.pix_fmt is not None and _bits(t.pix_fmt) > _bits(pix_fmt):
            self._notice(f"{_bits(t.pix_fmt)}-bit source ({t.pix_fmt}) written as {_bits(pix_fmt)}-bit {pix_fmt} "
                         f"(ganivid keeps 10 bits with libx264 or libx265); smooth gradients may band, HDR ones most")
        s.codec_context.time_base = t.time_base
        if t.display_matrix is not None:
            s.set_display_matrix(t.display_matrix)
        elif t.rotation:
            s.set_display_rotation(t.rotation)
        self._out.options.update(self._muxer_options())
        self._video = s

    @property
    def takes_i420(self) -> bool:
        """I420 frames (`Frame.yuv`) of its bit depth reach the encoder of this open writer without
        any conversion (of the other, 8 or 10 bits, after `yuv.with_depth`)."""
        return self._out is not None and self._video.pix_fmt in PLANES

    def prepare(self, frame: Frame) -> Prepared:
        """The checked, converted encoder frame of `frame`: `write` does this itself; called
        beforehand (on another thread: it reads only settings fixed at open), it takes this work
        off the encoding thread, which x264 keeps the busiest of `animate`'s render pass."""
        if self._out is None:
            raise RuntimeError("VideoWriter.prepare outside its `with` block")
        h, w = self.template.height, self.template.width
        dtype = "uint8"
        if frame.yuv:  # I420 planes as decoded: no colour conversion at all for output of their format
            deep = frame.image.dtype.name == "uint16"
            image, want, layout = frame.image, (h * 3 // 2, w), "yuv420p10le" if deep else "yuv420p"
            dtype = "uint16" if deep else dtype
        else:
            turned = self.upright and self.template.rotation
            image, want, layout = (from_upright(frame.image, self.template.rotation) if turned else frame.image,
                                   (h, w, 3), "rgb24")
        if image.shape != want or image.dtype.name != dtype or (frame.yuv and (h % 2 or w % 2)):
            raise ValueError(f"frame image is {image.dtype}{image.shape}, expected {dtype}{want}")
        if layout == "rgb24" and self._video.pix_fmt in PLANES and h % 2 == w % 2 == 0:
            image, layout = from_rgb(image, self._matrix), "yuv420p"  # cv2: ~6x faster than PyAV's swscale conversion
        if layout in PLANES and self._video.pix_fmt in PLANES and layout != self._video.pix_fmt:
            # 8 <-> 10 bits by rounding: swscale's 10 -> 8 bits truncates (1-3 levels dark).
            image, layout = with_depth(image, self._video.pix_fmt == "yuv420p10le"), self._video.pix_fmt
        vf = to_video_frame(image) if layout in PLANES else av.VideoFrame.from_ndarray(image, format=layout)
        if self._matrix in (1, 9):
            vf.colorspace = self._matrix  # RGB for swscale: converted with this frame's matrix
        vf.pts, vf.time_base = frame.pts, self.template.time_base
        return Prepared(frame.pts, frame.duration, vf)

    def write(self, frame: Frame | Prepared) -> None:
        """Encode one frame (RGB, or I420 in stored orientation; or `prepare`d) at its own
        timestamp; one on or before the previous frame's in the output's time base (a repeated
        pts; Matroska's 1 ms) is moved one step of it later (`retimed`), so none is lost."""
        if self._out is None:
            raise RuntimeError("VideoWriter.write outside its `with` block")
        vf = (frame if isinstance(frame, Prepared) else self.prepare(frame)).frame
        pts = frame.pts
        if self._last_pts is not None and pts < self._last_pts + self._step:
            pts, self.retimed = self._last_pts + self._step, self.retimed + 1
            vf.pts = pts
        self._durations[pts] = max(1, frame.pts + frame.duration - pts)
        self._last_pts = pts
        self._end_pts = max(self._end_pts or 0, pts + self._durations[pts])
        try:
            self._mux_video(self._video.encode(vf))
            if self._audio is not None:
                self._audio.pump(float((pts - self.template.start_pts) * self.template.time_base) + LEAD_S)
        except av.FFmpegError as ex:
            raise VideoError(f"cannot write {self.path}: {_reason(ex)}") from ex
        self.frames_written += 1

    def _mux_video(self, packets: list[av.Packet]) -> None:
        """Give packets their frame's duration; hold the last one back for `_finish_video`."""
        for pkt in packets:
            pkt.duration = self._durations.pop(pkt.pts, 0)
            if self._first_dts is None:
                self._first_dts = pkt.dts
            if self._held is not None:
                self._out.mux(self._held)
            self._held = pkt

    def _finish_video(self) -> None:
        self._mux_video(self._video.encode())
        pkt = self._held
        if pkt is None:
            return
        if self._fmt in ("mp4", "mov") and self._first_dts is not None:
            # mov's track duration is last dts + last duration - first dts: make it span exactly
            # from the first frame to the end of the last one, whatever the encoder's dts delay.
            first_pts = self.template.start_pts
            pkt.duration = max(1, self._end_pts - first_pts - (pkt.dts - self._first_dts))
        self._out.mux(pkt)
        self._held = None

    def _abort(self) -> None:
        """Close everything quietly and delete the temporary file."""
        for c in (self._out, self._audio):
            if c is not None:
                try:
                    c.close()
                except Exception:  # already failing: the first error is the one to report
                    pass
        self._out = self._audio = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._abort()
            return
        try:
            if self.frames_written == 0:
                raise VideoError(f"no frames were written to {self.path}; nothing saved")
            self._finish_video()
            if self._audio is not None:
                self._audio.finish()
                self._audio.close()
                self._audio = None
            self._out.close()
            self._out = None
            if self.retimed:
                self._notice(f"{self.retimed} frame(s) fell on the previous frame's timestamp in {self.path.suffix}'s "
                             f"time base ({self._video.time_base}): each moved one step later, none dropped")
            commit(self._tmp, self.path, self.overwrite)  # without -y, never over another run's file
            self._tmp = None
        except BaseException as ex:
            self._abort()
            if isinstance(ex, FileExistsError):
                raise VideoError(appeared(self.path)) from None
            if isinstance(ex, av.FFmpegError):
                raise VideoError(f"cannot write {self.path}: {_reason(ex)}") from ex
            raise
