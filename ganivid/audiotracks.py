"""The source's audio streams in a video `VideoWriter` writes: copied packet for packet where the
output container holds the codec, else re-encoded (AAC; Opus in .webm) with a notice that names
the containers that would keep it. Whether a container holds a stream is tried on a file in
memory, header to trailer, before any frame is rendered: a muxer's codec list also names codecs
it fails on only at the end (PCM or FLAC from Matroska into MP4 or MOV)."""
from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import av

from ganivid.video import VideoInfo, open_input

FALLBACK = {"webm": ("libopus", 48000)}  # every other container: AAC at the source rate
NOT_COPIED = {"mp4": {"vorbis"}, "mov": {"vorbis", "opus"}}  # accepted only as experimental
LEAD_S = 0.5  # audio muxed this far ahead of the video keeps players' buffers small
_NAMED = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}  # FFmpeg's defaults
TRIAL_PACKETS = 8  # enough for a muxer to see the stream's packets, not only its header


def copies(fmt: str, options: Mapping[str, str], source: Path, index: int) -> bool:
    """Whether audio stream `index` of `source` can be copied into a `fmt` container written with
    muxer `options`: its first packets muxed into one in memory (once per file and format)."""
    st = Path(source).stat()
    kept = tuple(sorted((k, v) for k, v in options.items() if k != "movflags"))  # faststart rewrites a real file only
    return _trial(fmt, kept, str(Path(source).resolve()), st.st_mtime_ns, index)


@functools.lru_cache(maxsize=64)
def _trial(fmt: str, options: tuple[tuple[str, str], ...], source: str, mtime_ns: int, index: int) -> bool:
    with open_input(source) as c:
        src = c.streams[index]
        name = src.codec_context.codec.canonical_name
        out = av.open(io.BytesIO(), "w", format=fmt)
        if name not in out.supported_codecs - NOT_COPIED.get(fmt, set()):
            out.close()
            return False
        out.options.update(dict(options))
        try:
            copy = out.add_stream_from_template(src)
            out.start_encoding()
            packets = (p for p in c.demux(src) if p.size)
            for _, pkt in zip(range(TRIAL_PACKETS), packets):
                pkt.stream = copy
                out.mux(pkt)
            out.close()
            return True
        except (av.FFmpegError, ValueError):
            try:
                out.close()
            except (av.FFmpegError, ValueError):  # a header never written has no trailer
                pass
            return False


class AudioTracks:
    """The audio streams of `template` (unless not `audio`) and its subtitle streams added to the
    open output `out` (format `fmt`, muxer `options`); `pump` muxes them up to a time, `finish` the
    rest, `close` lets the source go. `containers` (extension -> format) are the ones a notice may
    name instead. Subtitles are copied where the container takes them, else left out with a
    notice; other video, data streams (timecodes) and attachments (fonts) are left out with one."""

    def __init__(self, out: av.container.OutputContainer, fmt: str, options: Mapping[str, str], template: VideoInfo,
                 containers: Mapping[str, str], notice: Callable[[str], None], audio: bool = True) -> None:
        self._out = out
        self._in = open_input(template.path)
        self._map: dict[int, tuple[av.stream.Stream, bool]] = {}  # in index -> (out stream, copy?)
        streams = [self._in.streams[a.index] for a in template.audio] if audio else []
        for src in list(streams):
            if copies(fmt, options, template.path, src.index):
                try:
                    self._map[src.index] = (out.add_stream_from_template(src), True)
                    continue
                except ValueError:
                    pass
            name = src.codec_context.codec.canonical_name
            codec, rate = FALLBACK.get(fmt, ("aac", None))
            rates = av.Codec(codec, "w").audio_rates or ()
            rate = rate or (src.rate if src.rate in rates else 48000)
            layout = src.layout.name
            if "channels" in layout:  # an unnamed order ("2 channels", PCM from Matroska): AAC wants a named one
                layout = _NAMED.get(src.layout.nb_channels, layout)
            self._map[src.index] = (out.add_stream(codec, rate=rate, layout=layout), False)
            keep = [ext for ext, f in containers.items() if f != fmt and copies(f, options, template.path, src.index)]
            where = f" ({', '.join(keep)} would keep it as it is)" if keep else ""
            ext = next((e for e, f in containers.items() if f == fmt), fmt)
            notice(f"audio stream #{src.index} ({name}) cannot be copied into {ext}: re-encoding it as {codec}{where}")
        ext = next((e for e, f in containers.items() if f == fmt), fmt)  # after the audio: their order kept
        for src in self._in.streams:
            if src.type == "audio" or src.index == template.video_index:
                continue
            kind = f"{src.type} stream #{src.index}"
            if src.type == "subtitle" and copies(fmt, options, template.path, src.index):
                try:
                    self._map[src.index] = (out.add_stream_from_template(src), True)
                    streams.append(src)
                    continue
                except ValueError:
                    pass
            keep = [e for e, f in containers.items() if f != fmt and src.type == "subtitle"
                    and copies(f, {}, template.path, src.index)]  # this muxer's options are not theirs
            context = getattr(src, "codec_context", None)
            codec = context.codec.canonical_name if context is not None else src.type
            notice(f"{kind} ({codec}) cannot be copied into {ext}: left out"
                   + (f" ({', '.join(keep)} would keep it)" if keep else ""))
        self._packets: Iterator[av.Packet] = iter(self._in.demux(*streams) if streams else ())
        self._next: av.Packet | None = next(self._packets, None)

    def pump(self, until_s: float | None) -> None:
        """Mux (copy or re-encode) source audio packets up to `until_s` seconds (None: all)."""
        while self._next is not None:
            pkt = self._next
            ts = pkt.dts if pkt.dts is not None else pkt.pts
            if until_s is not None and ts is not None and float((ts - (pkt.stream.start_time or 0)) * pkt.time_base) > until_s:
                return
            out, copy = self._map[pkt.stream.index]
            if copy:
                if pkt.size:  # empty packets only mark the end of the stream
                    pkt.stream = out
                    self._out.mux(pkt)
            else:  # decoding the empty end packet flushes the decoder's last frames
                for af in pkt.decode():
                    self._out.mux(out.encode(af))
            self._next = next(self._packets, None)

    def finish(self) -> None:
        """Mux every packet left and flush the encoders."""
        self.pump(None)
        for out, copy in self._map.values():
            if not copy:
                self._out.mux(out.encode(None))

    def close(self) -> None:
        self._in.close()
