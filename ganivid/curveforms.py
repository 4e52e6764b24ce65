"""The short form of a curve file, `{"AU12": [[0, 0], [2, 0.8]]}`, and the examples its messages show.

The short form is what a user writes first: each key an AU or expression name, each value its
keyframes, with the default mode (set) and interpolation (linear); `fps` and `comment` may sit
beside them. It becomes the long form (`{"curves": [...]}`) before any other check."""
from __future__ import annotations

from collections.abc import Sequence

from ganivid.aus import EXPRESSIONS
from ganivid.errors import CurveError

_TOP = ("fps", "comment")
EXAMPLES = {  # one line each: the short form, then the long form with every option
    ".json": '{"AU12": [[0, 0], [2, 0.8]]}, or {"curves": [{"au": "AU12", "mode": "set", "keys": [[0, 0], [2, 0.8]]}]}',
    ".toml": 'AU12 = [[0, 0], [2, 0.8]], or [[curves]] au = "AU12" keys = [[0, 0], [2, 0.8]]',
    ".csv": "a header time,target,value and rows such as 0,AU12,0 and 2s,AU12,0.8",
}


def _is_target(name: object) -> bool:
    if not isinstance(name, str):
        return False
    key = name.strip()
    return key.lower() in EXPRESSIONS or (key.upper().startswith("AU") and key[2:].isdigit())


def long_form(data: object, label: str, kind: str = ".json") -> object:
    """`data` with a short form rewritten as the long one; anything else unchanged, except what is
    neither, refused with an example of both."""
    if isinstance(data, dict) and "curves" in data:
        return data
    names = [k for k in data if k not in _TOP] if isinstance(data, dict) else []
    if names and all(_is_target(k) and isinstance(data[k], list) for k in names):
        curves = [{"expression" if k.strip().lower() in EXPRESSIONS else "au": k, "keys": data[k]} for k in names]
        return {"curves": curves, **{k: data[k] for k in _TOP if k in data}}
    bad = next((k for k in names if not _is_target(k)), None)
    what = f"unknown key {bad!r}" if bad is not None else "no curves"
    raise CurveError(f"{label}: {what}; write AU curves as {EXAMPLES.get(kind, EXAMPLES['.json'])}")


def no_curves(label: str, kind: str) -> CurveError:
    """The error for a curve file that holds no curve at all."""
    return CurveError(f"{label} holds no curves; write them as {EXAMPLES.get(kind, EXAMPLES['.json'])}")


def check_inline(edits: Sequence) -> None:
    """Refuse an --au edit that sets an AU an earlier --au edited: the last would silently win."""
    given: dict[str, str] = {}
    for c in edits:
        if c.mode == "set" and c.target in given:
            raise CurveError(f"{c.where} replaces {given[c.target]} given before it; give {c.target} once")
        given[c.target] = c.where
