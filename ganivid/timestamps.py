"""Frame timestamps put in order. Real files repeat a frame's pts or go back (broken VFR captures,
remuxed streams, B-frame timestamp glitches); every frame is kept, with strictly increasing pts:
a repeat or a small step back is nudged one step after the previous frame, and a run that starts
far back (a splice, a restarted clock) is moved, at its own spacing, to follow the previous frame."""
from __future__ import annotations

import heapq
from collections.abc import Iterable

RESTART = 1  # frame periods: a jump back further than this restarts the clock (moved as a run)


class Retimer:
    """Strictly increasing pts for frames in presentation order (`nominal`: one frame period,
    `step`: the smallest step, both in the stream's time base)."""

    def __init__(self, nominal: int, step: int = 1) -> None:
        self.nominal, self.step = max(1, nominal), max(1, step)
        self.offset = 0  # added to every pts since the last restart
        self.last: int | None = None  # the previous frame's pts, as given out
        self.source: int | None = None  # and as it came
        self.disordered = 0  # frames whose own pts repeated or went back

    def __call__(self, pts: int) -> int:
        if self.source is not None and pts <= self.source:
            self.disordered += 1
        self.source = pts
        out = pts + self.offset
        if self.last is not None and out <= self.last:
            if self.last - out > RESTART * self.nominal:
                self.offset += self.last + self.nominal - out
                out = self.last + self.nominal
            else:
                out = self.last + self.step
        self.last = out
        return out



def notice(name: str, count: int) -> str:
    """The one line that tells a user about `count` re-timed frames of `name`."""
    return (f"{name}: {count} frame(s) with a timestamp not after the previous frame's (repeated or going back); "
            "kept, with new timestamps in order")


def count_disordered(container, stream) -> int:
    """`disordered` for a stream of an open container, from its packets (demuxed, not decoded)."""
    pts = (p.pts for p in container.demux(stream) if p.pts is not None and p.size)
    return disordered(pts, stream.codec_context.reorder_depth)


def disordered(pts_in_decode_order: Iterable[int], reorder_depth: int) -> int:
    """How many frames a decoder will give out with a pts not after the previous one's, from the
    packets' pts in decode order (no decoding): the decoder's reorder buffer of `reorder_depth`
    frames (B-frames) is replayed, so a stream's normal reordering does not count."""
    held: list[int] = []
    count, last = 0, None

    def out(p: int) -> None:
        nonlocal count, last
        if last is not None and p <= last:
            count += 1
        last = p

    for p in pts_in_decode_order:
        heapq.heappush(held, p)
        if len(held) > reorder_depth:
            out(heapq.heappop(held))
    while held:
        out(heapq.heappop(held))
    return count
