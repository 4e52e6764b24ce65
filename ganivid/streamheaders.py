"""What a container's headers say about a stream: its duration, frame rate and completeness
(for `ganivid.video.probe`)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from ganivid.errors import VideoError


def tag_seconds(metadata: dict[str, str]) -> float | None:
    """Matroska's per-stream DURATION tag ("00:00:04.000000000") in seconds."""
    tag = metadata.get("DURATION") or metadata.get("duration")
    try:
        h, m, s = tag.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except (AttributeError, ValueError):
        return None


def stream_seconds(stream: av.stream.Stream, container: av.container.InputContainer) -> float | None:
    """Duration of a stream from its header, its DURATION tag or the container, in seconds."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tagged = tag_seconds(stream.metadata)
    if tagged is not None:  # the tag is where the stream ends, not how long it lasts
        return tagged - float((stream.start_time or 0) * stream.time_base)
    return container.duration / av.time_base if container.duration else None


def pick_fps(stream: av.video.stream.VideoStream) -> Fraction | None:
    """Average frame rate, snapped to the nominal rate when they agree (keeps 30000/1001 exact)."""
    avg, base = stream.average_rate, stream.base_rate
    if avg and base and abs(float(avg / base) - 1) < 2e-3:
        return Fraction(base)
    for rate in (avg, stream.guessed_rate, base):
        if rate:
            return Fraction(rate)
    return None


def check_complete(stream, path: Path) -> None:
    """Refuse files whose sample table points past the end of the file (cut-off downloads)."""
    entries = stream.index_entries
    if len(entries) and max(e.pos + e.size for e in entries) > path.stat().st_size:
        raise VideoError(f"{path} is truncated: its index points past the end of the file")
