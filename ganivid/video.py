"""Video files through PyAV: probe, streaming and seeking decode with timestamps, atomic writing.

Frames carry their presentation timestamp (`pts`) in the stream's time base; `VideoWriter`
(in `ganivid.videowriter`) writes them back with the same timestamps, so variable frame rates,
29.97 fps (30000/1001) and odd start times survive a round trip. Images are RGB uint8 HxWx3 in
the stored (coded) orientation; `upright=True` turns them as a player shows them (rotation from
the display matrix, multiples of 90 degrees).
"""
from __future__ import annotations

import bisect
import itertools
import struct
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ganivid.errors import VideoError
from ganivid.otherplanes import other_i420
from ganivid.streamheaders import check_complete, pick_fps, stream_seconds
from ganivid.timestamps import Retimer, notice
from ganivid.yuv import from_bt601, grey_of, i420_of, passes_as_planes, rgb_of, to_rgb


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded video frame: position, timestamp and RGB uint8 image (H, W, 3) (grey (H, W) if asked)."""

    index: int  # presentation-order position in the stream, 0-based
    pts: int  # presentation timestamp in the stream's time base
    time_s: float  # seconds since the stream's start (first frame at 0.0)
    duration: int  # time-base units until the next frame (last frame: until the stream's end)
    image: np.ndarray
    yuv: bool = False  # image holds I420 planes (H*3/2, W) (see ganivid.yuv), uint16 if 10-bit, not RGB
    limited: bool = False  # a grey image of limited-range luma (16-235) as stored (read_frames(luma=True))
    matrix: int = 2  # AVColorSpace of those planes: 1 BT.709, 9 BT.2020, else BT.601 (RGB is converted already)


@dataclass(frozen=True)
class AudioInfo:
    """One audio stream of a probed file."""

    index: int  # stream index in the container
    codec: str
    sample_rate: int
    channels: int
    layout: str
    time_base: Fraction
    duration_s: float | None


_COLOURS = {1: "BT.709", 2: "untagged (BT.601)", 5: "BT.601 (BT.470BG)", 6: "BT.601 (SMPTE 170M)", 9: "BT.2020"}
_HDR = {16: "PQ (HDR10)", 18: "HLG (HDR)"}  # AVColorTransferCharacteristic


@dataclass(frozen=True)
class VideoInfo:
    """What `probe` learns about a file: its video stream, rotation and audio streams."""

    path: Path
    format: str  # demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    video_index: int  # stream index of the video stream in the container
    codec: str
    width: int  # stored (coded) size, before rotation
    height: int
    pix_fmt: str | None
    fps: Fraction  # average frame rate, exact: 29.97 fps is 30000/1001
    time_base: Fraction
    start_pts: int  # pts of the stream's start, in time_base units
    duration_s: float | None
    frame_count: int | None  # from the container header (or counted); None if unknown
    rotation: int  # degrees counter-clockwise a player turns the stored image
    display_matrix: tuple[int, ...] | None  # FFmpeg's 3x3 display matrix, copied on write
    audio: tuple[AudioInfo, ...]
    other_streams: tuple[str, ...]  # types of the other streams (subtitles are copied where the output takes them)
    # FFmpeg's colour tags (AVColorSpace, AVColorPrimaries, AVColorTransferCharacteristic; 2 =
    # unspecified), copied on write so players show the output's colours as the input's.
    colour: tuple[int, int, int] = (2, 2, 2)

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as a player shows the video, after rotation."""
        turned = self.rotation % 180 != 0
        return (self.height, self.width) if turned else (self.width, self.height)

    def summary(self) -> list[str]:
        """Human-readable lines describing the streams (for `--dry-run`)."""
        dur = f"{self.duration_s:.3f} s" if self.duration_s is not None else "unknown duration"
        frames = f"{self.frame_count} frames" if self.frame_count is not None else "frame count unknown"
        lines = [
            f"{self.path} ({self.format}): {dur}",
            f"video #{self.video_index}: {self.codec} {self.width}x{self.height} {self.pix_fmt}, "
            f"{float(self.fps):.3f} fps ({self.fps}), time base {self.time_base}, {frames}, "
            f"rotation {self.rotation}, colours {_COLOURS.get(self.colour[0], f'AVColorSpace {self.colour[0]}')}"
            + (f", {_HDR[self.colour[2]]}" if self.colour[2] in _HDR else ""),
        ]
        for a in self.audio:
            adur = f"{a.duration_s:.3f} s" if a.duration_s is not None else "unknown duration"
            lines.append(f"audio #{a.index}: {a.codec} {a.sample_rate} Hz {a.layout} ({a.channels} ch), {adur}")
        lines += [f"{k} stream ({'copied where the output takes it' if k == 'subtitle' else 'not copied'})" for k in self.other_streams]
        return lines


@dataclass
class DecodeStats:
    """Frames decoded by this process, all files together: tests and benchmarks read it to check
    that seeking (`read_frames_at`) decodes a few GOPs, not the whole file."""

    frames: int = 0


DECODE_STATS = DecodeStats()


def _reason(ex: Exception) -> str:
    """The FFmpeg message of a PyAV error without errno and path noise."""
    return getattr(ex, "strerror", None) or str(ex)


def open_input(path: str | Path) -> av.container.InputContainer:
    """Open a media file for reading, turning every failure into a one-line VideoError."""
    p = Path(path)
    if not p.exists():
        raise VideoError(f"no such file: {p}")
    if p.is_dir():
        raise VideoError(f"{p} is a directory, not a video file")
    if p.stat().st_size == 0:
        raise VideoError(f"{p} is empty (0 bytes)")
    try:
        return av.open(str(p), metadata_errors="ignore")
    except (av.FFmpegError, OSError) as ex:
        raise VideoError(f"cannot read {p}: not a video, or truncated ({_reason(ex)})") from ex


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    """The first real video stream (cover art in audio files does not count)."""
    for s in container.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:
            return s
    raise VideoError(f"{path} has no video stream")


def _first_frame_matrix(container: av.container.InputContainer, stream) -> tuple[int, tuple[int, ...] | None]:
    """Rotation and display matrix, read from the first decoded frame's side data."""
    try:
        frame = next(container.decode(stream))
        DECODE_STATS.frames += 1
    except StopIteration:
        raise VideoError(f"{container.name} has a video stream without decodable frames") from None
    except av.FFmpegError as ex:
        raise VideoError(f"cannot decode {container.name}: {_reason(ex)}") from ex
    side = frame.side_data
    for entry in side:  # PyAV 18 iterates the types (a mapping), older releases the entries
        try:
            sd = entry if hasattr(entry, "type") else side[entry]
            name = sd.type.name
        except (ValueError, KeyError):  # side data PyAV's enum does not know (EXIF): not ours to read
            continue
        if name == "DISPLAYMATRIX":
            return int(round(frame.rotation)), struct.unpack("9i", bytes(sd))
    rotate = stream.metadata.get("rotate")  # old-style tag from files muxed before FFmpeg 7
    return (-int(rotate) if rotate and rotate.lstrip("-").isdigit() else 0), None


def probe(path: str | Path, count_frames: bool = False) -> VideoInfo:
    """Describe a video file: streams, size, exact frame rate, time base, duration, rotation, audio.

    Args:
        path: the video file.
        count_frames: demux the whole stream to count frames when the header has no count (mkv).
    Raises:
        VideoError: missing, empty, a directory, not a video, truncated, or without a video stream.
    """
    p = Path(path)
    with open_input(p) as c:
        v = _video_stream(c, p)
        check_complete(v, p)
        fps = pick_fps(v)
        if fps is None:
            raise VideoError(f"{p}: the frame rate of the video stream is unknown")
        audio = tuple(
            AudioInfo(a.index, a.codec_context.codec.canonical_name, a.rate, a.channels, a.layout.name,
                      Fraction(a.time_base), stream_seconds(a, c))
            for a in c.streams.audio
        )
        others = tuple(s.type for s in c.streams if s.type != "audio" and s.index != v.index)
        count = v.frames or None
        start = v.start_time if v.start_time is not None else 0
        info = dict(path=p, format=c.format.name, video_index=v.index, codec=v.codec_context.codec.canonical_name,
                    width=v.codec_context.width, height=v.codec_context.height, pix_fmt=v.codec_context.pix_fmt,
                    fps=fps, time_base=Fraction(v.time_base), start_pts=start,
                    duration_s=stream_seconds(v, c), audio=audio, other_streams=others,
                    colour=tuple(int(getattr(v.codec_context, k)) for k in ("colorspace", "color_primaries", "color_trc")))
        rotation, matrix = _first_frame_matrix(c, v)
    if count_frames and count is None:
        count = len(_frame_table(p, info["video_index"])[0])
    return VideoInfo(**info, frame_count=count, rotation=rotation, display_matrix=matrix)


def to_upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored image the way a player shows it (rotation counter-clockwise, multiple of 90)."""
    return np.ascontiguousarray(np.rot90(image, k=round(rotation / 90) % 4))


def from_upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Undo `to_upright`: back to the stored orientation for encoding."""
    return np.ascontiguousarray(np.rot90(image, k=-round(rotation / 90) % 4))


def _decode(container, stream, path: Path) -> Iterator[av.VideoFrame]:
    """Decode every frame, the decoder's final flush included; FFmpeg errors become VideoError."""
    try:
        for frame in container.decode(stream):  # PyAV feeds the flush packet (dts None) itself
            DECODE_STATS.frames += 1
            yield frame
    except av.FFmpegError as ex:
        raise VideoError(f"cannot decode {path}: {_reason(ex)} (file damaged or truncated?)") from ex


# Smaller frames decode on one thread faster than tracking or the generator use them; frame
# threads would add ~40% CPU (0.34 of 0.82 ms at 640x360) and threads contending for the cores.
FRAME_THREADS_PIXELS = 500_000


def _set_threads(stream, info: VideoInfo) -> None:
    if info.width * info.height >= FRAME_THREADS_PIXELS:
        stream.thread_type = "AUTO"
    else:
        stream.thread_count = 1


def read_frames(path: str | Path, start: float | None = None, *, upright: bool = False,
                grey: bool = False, yuv: bool = False, info: VideoInfo | None = None,
                luma: bool = False) -> Iterator[Frame]:
    """Stream the frames of a video in presentation order; memory does not grow with its length.

    Args:
        path: the video file.
        start: seconds from the stream's start; decoding seeks to the keyframe before it and
            yields frames from the first one at or after `start`.
        upright: return images as a player shows them (see `to_upright`).
        grey: images are grey uint8 (H, W) (see `yuv.grey_of`): for face tracking, ~4x cheaper than RGB.
        luma: with `grey`, limited-range luma comes as stored (`Frame.limited`; `yuv.full_range`
            expands it), so a consumer on another thread can expand it there: `animate`'s tracker
            does, which lets its decoding thread stay ahead of it.
        yuv: frames decoded as 8- or 10-bit limited-range 4:2:0 with even sides and BT.601,
            BT.709 or BT.2020 colours (most video) come as I420 planes without any colour
            conversion (`Frame.yuv`, `Frame.matrix`); other frames, and turned ones, as RGB.
        info: `probe(path)`, where the caller has it: probing opens the file and decodes its
            first frame (~15 ms at 640x360, 1 % of a 10 s clip's analysis).
    Raises:
        VideoError: the file cannot be opened or decoded.
    """
    info = info if info is not None else probe(path)
    if start is None or start <= 0:
        with open_input(info.path) as c:
            v = c.streams[info.video_index]
            _set_threads(v, info)
            yield from _with_durations(_decode(c, v, info.path), info, 0, upright, grey, yuv, luma)
        return
    table, keys = _frame_table(info.path, info.video_index)
    first = bisect.bisect_left(table, info.start_pts + start / info.time_base)
    if first < len(table):
        yield from _with_durations(_frames_from(info, table[first], keys), info, first, upright, grey, yuv, luma)


def _frames_from(info: VideoInfo, pts: int, keys: list[int]) -> Iterator[av.VideoFrame]:
    """Decoded frames from `pts` on: seek to the keyframe before it, decode forward.

    Some containers (MPEG-PS) seek past the keyframe asked for; then decoding restarts from the
    beginning of the file, slower but exact.
    """
    with open_input(info.path) as c:
        v = c.streams[info.video_index]
        _set_threads(v, info)
        c.seek(_key_before(keys, pts), stream=v, backward=True)
        frames = _decode(c, v, info.path)
        head = next(frames, None)
        if head is not None and head.pts is not None and head.pts <= pts:
            yield from (f for f in itertools.chain([head], frames) if f.pts is None or f.pts >= pts)
            return
    with open_input(info.path) as c:
        v = c.streams[info.video_index]
        _set_threads(v, info)
        yield from (f for f in _decode(c, v, info.path) if f.pts is None or f.pts >= pts)


def _end_pts(info: VideoInfo) -> int | None:
    """pts where the stream ends (start + duration), if the duration is known."""
    if info.duration_s is None:
        return None
    return info.start_pts + round(Fraction(info.duration_s).limit_denominator(10**9) / info.time_base)


def _with_durations(frames: Iterator[av.VideoFrame], info: VideoInfo, index: int, upright: bool,
                    grey: bool = False, yuv: bool = False, luma: bool = False) -> Iterator[Frame]:
    """Wrap decoded frames in `Frame`s, one frame of look-ahead to know each frame's duration."""
    nominal = max(1, round(1 / (info.fps * info.time_base)))
    end = _end_pts(info)
    prev: av.VideoFrame | None = None
    prev_pts = None
    retime = Retimer(nominal)  # repeated or backward pts: every frame kept, in order (ganivid.timestamps)
    for f in frames:
        pts = retime(f.pts if f.pts is not None else info.start_pts if retime.source is None else retime.source + nominal)
        if prev is not None:
            yield _make_frame(prev, index, prev_pts, pts - prev_pts, info, upright, grey, yuv, luma)
            index += 1
        prev, prev_pts = f, pts
    if prev is not None:
        # mp4/mov and mkv/webm store where a stream ends; other demuxers (MPEG-PS) estimate it,
        # often half a frame short, and a short last frame would skew an mp4 output's frame rate.
        stored = "mp4" in info.format or "matroska" in info.format
        low = 0 if stored else 0.75 * nominal
        last = end - prev_pts if end is not None and low < end - prev_pts <= 4 * nominal else nominal
        yield _make_frame(prev, index, prev_pts, last, info, upright, grey, yuv, luma)
    if retime.disordered:
        warnings.warn(notice(info.path.name, retime.disordered))


def _make_frame(f: av.VideoFrame, index: int, pts: int, duration: int, info: VideoInfo, upright: bool,
                grey: bool = False, yuv: bool = False, luma: bool = False) -> Frame:
    """One `Frame` from a decoded PyAV frame (RGB, grey (H, W) if `grey`, I420 if `yuv` and possible)."""
    time_s = float((pts - info.start_pts) * info.time_base)
    turn = upright and info.rotation
    if yuv and not turn and passes_as_planes(f):  # (H*3/2, W): the planes as decoded
        return Frame(index, pts, time_s, duration, i420_of(f), yuv=True, matrix=int(f.colorspace))
    # 4:4:4, 4:2:2 (for 4:2:0 output), yuvj and grey: as 4:2:0 planes, not swscale's RGB (a level dark)
    other = other_i420(f) if not grey and (yuv or f.format.name in ("yuvj420p", "gray")) else None
    if other is not None and yuv and not turn:
        return Frame(index, pts, time_s, duration, other, yuv=True, matrix=int(f.colorspace))
    image, limited = ((from_bt601(to_rgb(other), int(f.colorspace)), False) if other is not None
                      else grey_of(f, expand=not luma) if grey else (rgb_of(f), False))
    if turn:
        image = to_upright(image, info.rotation)
    return Frame(index, pts, time_s, duration, image, limited=limited)


def _frame_table(path: Path, video_index: int) -> tuple[list[int], list[int]]:
    """Sorted pts of every frame and of every keyframe, from packets only (no decoding)."""
    pts, keys = [], []
    with open_input(path) as c:
        try:
            for pkt in c.demux(c.streams[video_index]):
                if pkt.pts is None or pkt.size == 0 or pkt.is_discard:
                    continue
                pts.append(pkt.pts)
                if pkt.is_keyframe:
                    keys.append(pkt.pts)
        except av.FFmpegError as ex:
            raise VideoError(f"cannot read {path}: {_reason(ex)} (file damaged or truncated?)") from ex
    return sorted(pts), sorted(keys)


def _key_before(keys: list[int], pts: int) -> int:
    """The last keyframe at or before `pts` (the first keyframe if there is none)."""
    i = bisect.bisect_right(keys, pts) - 1
    return keys[max(i, 0)] if keys else pts


def read_frames_at(path: str | Path, *, indices: Sequence[int] | None = None,
                   times: Sequence[float] | None = None, upright: bool = False) -> list[Frame]:
    """Decode only the requested frames (by index, or shown at `times` seconds), in request order.

    Each request seeks to the keyframe before it and decodes forward, so a preview of a few
    frames of a long video costs a few GOPs, not the whole file.
    Raises:
        VideoError: the file cannot be read, or an index is out of range.
    """
    info = probe(path)
    table, keys = _frame_table(info.path, info.video_index)
    if not table:
        raise VideoError(f"{info.path} has no video frames")
    wanted: list[int] = []
    for i in indices or ():
        if not 0 <= i < len(table):
            raise VideoError(f"frame #{i} is out of range: {info.path} has {len(table)} frames")
        wanted.append(table[i])
    for t in times or ():
        target = info.start_pts + t / info.time_base
        wanted.append(table[max(bisect.bisect_right(table, target) - 1, 0)])
    found: dict[int, Frame] = {}
    end = _end_pts(info)
    for pts in sorted(set(wanted)):
        frames = _frames_from(info, pts, keys)
        try:  # convert while the decoder that made the frame is still open
            f = next((x for x in frames if x.pts == pts), None)  # the first, unless pts go back (ganivid.timestamps)
            if f is None:
                raise VideoError(f"{info.path}: cannot decode the frame at "
                                 f"{float((pts - info.start_pts) * info.time_base):.3f} s")
            i = bisect.bisect_left(table, pts)
            nxt = table[i + 1] if i + 1 < len(table) else (end if end and end > pts else pts + 1)
            found[pts] = _make_frame(f, i, pts, nxt - pts, info, upright)
        finally:
            frames.close()
    return [found[p] for p in wanted]
