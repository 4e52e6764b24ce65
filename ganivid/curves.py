"""AU curves: keyframed Action Unit edits over time, from JSON, CSV or TOML files or CLI strings.

A curve drives one AU (`"au": "AU12"`) or one named expression (`"expression": "smile"`, see
`ganivid.aus.EXPRESSIONS`) through keyframes `[time, value]`, in one of three modes:
- `set`   (default) the AU takes the value (for an expression: every AU of its prototype becomes
          value x prototype; the other AUs keep the actor's);
- `add`   the value is added to the current AUs (the actor's own smoothed AUs plus earlier curves);
- `blend` the value is alpha in alpha*y_g + (1 - alpha)*y_r (GANimation's interpolation): y_r are
          the current AUs, y_g the expression's full 17-AU vector times `strength` (default 1;
          AUs outside the prototype go to 0), or for an AU curve that AU's `target` (default 1).
Times: seconds (`2.5`, `"2.5s"`, `"1500ms"`), a timecode (`"00:00:04.000"`, `"01:02.5"`) or a
frame (`"#150"`: that frame's own timestamp when the frame is among those evaluated, else
150 / fps with the video's fps, or the file's `fps` when no video is involved).
Keyframe times must be non-negative and strictly increasing within a curve.
Interpolation (`interp`): `linear` (default), `cubic` (monotone PCHIP: never overshoots the
keyframes) or `step` (holds each value until the next keyframe).
Before its first keyframe a curve does nothing (the target stays what it was, normally the
actor's own AUs); after its last keyframe it holds the last value. Curves apply in file order,
then inline edits. Final intensities are clamped to [0, 1] with a warning.

JSON:
    {"fps": 25,
     "curves": [
       {"au": "AU12", "mode": "set", "interp": "cubic",
        "keys": [["0s", 0], ["2s", 0.8], ["00:00:04.000", 0.8], ["#150", 0]]},
       {"expression": "smile", "mode": "blend", "keys": [[0, 0], [2, 1]]}]}
    Per curve: `au` or `expression`, `keys`, optional `mode`, `interp`, `strength`
    (expressions), `target` (AU blends), `comment`. Top level: `curves`, optional `fps`, `comment`.
TOML: the same fields; top-level `fps`, then one `[[curves]]` table per curve.
CSV (long format, header required, one keyframe per row):
    time,target,value,mode,interp
    0,AU12,0,set,cubic
    2s,AU12,0.8,,
    #100,surprise,1,blend,linear
    `target` (or `au`) is an AU or expression name; `mode`/`interp` may be empty (defaults) and
    must not contradict earlier rows; rows with the same target and mode form one curve.
Inline edits (constant from the first frame): `AU12=0.8` (set), `AU12+=0.2` / `AU12-=0.2` (add);
`smile:0.7` blends 70 % of the way to the smile prototype (`smile` alone: 100 %).
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ganivid.aus import AU_NAMES, EXPRESSIONS, NUM_AUS, au_index, expression
from ganivid.curveforms import EXAMPLES, check_inline, long_form, no_curves
from ganivid.errors import CurveError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MODES = ("set", "add", "blend")
INTERPS = ("linear", "cubic", "step")
_CURVE_KEYS = {"au", "expression", "keys", "mode", "interp", "strength", "target", "comment"}
_TIMECODE = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")


@dataclass(frozen=True)
class KeyTime:
    """A keyframe time: seconds, or a frame number resolved against the video."""

    seconds: float | None = None
    frame: int | None = None

    def __str__(self) -> str:
        return f"#{self.frame}" if self.frame is not None else f"{self.seconds:g}s"


@dataclass(frozen=True)
class Curve:
    """Keyframes driving one AU or one named expression."""

    target: str  # canonical AU name ("AU12") or expression name ("smile")
    is_expression: bool
    times: tuple[KeyTime, ...]
    values: tuple[float, ...]
    mode: str = "set"
    interp: str = "linear"
    strength: float = 1.0  # expressions: scale of the prototype (y_g in blend mode)
    goal: float = 1.0  # AU blends: the AU's value at alpha = 1
    where: str = ""  # where it was defined, for messages ("smile.json, curve 2")


def parse_time(value: object, where: str) -> KeyTime:
    """A keyframe time from a number (s), "2.5s", "1500ms", "HH:MM:SS.mmm", "MM:SS.mmm" or "#frame"."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise CurveError(f"{where}: time {value!r} is not a number or a time string")
    text = value.strip().lower() if isinstance(value, str) else None
    if text is not None and text.startswith("#"):
        if not text[1:].isdigit():
            raise CurveError(f"{where}: frame time {value!r} must be '#' and a whole number, e.g. #150")
        return KeyTime(frame=int(text[1:]))
    try:
        if text is None:
            seconds = float(value)
        elif (m := _TIMECODE.match(text)) is not None:
            h, mnt, s = m.groups()
            seconds = int(h or 0) * 3600 + int(mnt) * 60 + float(s)
        elif text.endswith("ms"):
            seconds = float(text[:-2]) / 1000
        else:
            seconds = float(text.removesuffix("s"))
    except ValueError:
        raise CurveError(f"{where}: cannot read time {value!r}; use seconds (2.5 or '2.5s'), "
                         "'HH:MM:SS.mmm' or '#frame'") from None
    if not math.isfinite(seconds):
        raise CurveError(f"{where}: time {value!r} is not finite")
    if seconds < 0:
        raise CurveError(f"{where}: time {value!r} is negative")
    return KeyTime(seconds=seconds)


def _number(value: object, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise CurveError(f"{where}: {what} {value!r} is not a number")
    try:
        x = float(value)
    except ValueError:
        raise CurveError(f"{where}: {what} {value!r} is not a number") from None
    if math.isnan(x) or math.isinf(x):
        raise CurveError(f"{where}: {what} is {value!r}; use a finite number")
    return x


def _target(name: object, where: str) -> tuple[str, bool]:
    """Canonical (name, is_expression) of an AU or expression name."""
    if not isinstance(name, str) or not name.strip():
        raise CurveError(f"{where}: target {name!r} is not an AU or expression name")
    key = name.strip()
    if key.lower() in EXPRESSIONS:
        return key.lower(), True
    if key.upper().startswith("AU") or key.isdigit():
        return AU_NAMES[_au(key, where)], False
    raise CurveError(f"{where}: unknown AU or expression {name!r}; AUs: {', '.join(AU_NAMES)}; "
                     f"expressions: {', '.join(EXPRESSIONS)}")


def _au(name: str, where: str) -> int:
    try:
        return au_index(name)
    except CurveError as ex:
        raise CurveError(f"{where}: {ex}") from None


def make_curve(target: str, keys: Sequence[tuple[object, object]], mode: str = "set", interp: str = "linear",
               strength: object = 1.0, goal: object = 1.0, where: str = "curve") -> Curve:
    """Validate one curve: known target, mode and interpolation, increasing times, finite values."""
    name, is_expr = _target(target, where)
    if mode not in MODES:
        raise CurveError(f"{where}: unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if interp not in INTERPS:
        raise CurveError(f"{where}: unknown interp {interp!r}; use one of {', '.join(INTERPS)}")
    if not keys:
        raise CurveError(f"{where}: no keyframes")
    times, values = [], []
    for i, key in enumerate(keys):
        at = f"{where}, key {i + 1}"
        if not isinstance(key, (list, tuple)) or len(key) != 2:
            raise CurveError(f"{at}: a keyframe is [time, value], got {key!r}")
        times.append(parse_time(key[0], at))
        values.append(_number(key[1], "value", at))
        low, high = (-1.0, 1.0) if mode == "add" else (0.0, 1.0)
        if not low <= values[-1] <= high:
            warnings.warn(f"{at}: value {values[-1]:g} is outside [{low:g}, {high:g}]; intensities are "
                          "clamped to [0, 1]", stacklevel=2)
    kinds = {t.frame is None for t in times}
    if len(kinds) == 1:  # mixed seconds/#frames can only be ordered once the fps is known
        order = [t.seconds if t.frame is None else t.frame for t in times]
        for i in range(1, len(order)):
            if order[i] <= order[i - 1]:
                raise CurveError(f"{where}, key {i + 1}: time {times[i]} is not after the previous key's "
                                 f"{times[i - 1]}; keyframe times must increase")
    scale = _number(strength, "strength", where)
    if is_expr and not 0 <= scale <= 1:  # as a value outside [0, 1] is: the targets are clamped
        warnings.warn(f"{where}: strength {scale:g} is outside [0, 1]; intensities are clamped to [0, 1]", stacklevel=2)
    return Curve(name, is_expr, tuple(times), tuple(values), mode, interp, scale, _number(goal, "target", where), where)


def _pchip(x: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    from scipy.interpolate import PchipInterpolator

    return PchipInterpolator(x, y, extrapolate=False)(t)


@dataclass(frozen=True)
class AUProgram:
    """Curves plus inline edits, evaluated per frame into target AUs (T, 17)."""

    curves: tuple[Curve, ...] = ()
    fps: Fraction | None = None  # the file's frame rate for '#frame' times when no video fps is given
    source: str = ""  # file the curves came from ("" for inline edits only)

    @property
    def is_empty(self) -> bool:
        """True when nothing would change."""
        return not self.curves

    def _seconds(self, curve: Curve, frame_map: dict[int, float], fps: Fraction | float | None) -> np.ndarray:
        """Key times of a curve in seconds; '#frame' keys via the evaluated frames or the fps."""
        out = []
        for i, t in enumerate(curve.times):
            if t.frame is None:
                out.append(t.seconds)
            elif t.frame in frame_map:
                out.append(frame_map[t.frame])
            elif fps or self.fps:
                out.append(t.frame / float(fps or self.fps))
            else:
                raise CurveError(f"{curve.where}, key {i + 1}: frame time {t} needs a frame rate "
                                 "(the video's, or \"fps\" in a JSON/TOML curve file)")
        secs = np.asarray(out, np.float64)
        bad = np.nonzero(np.diff(secs) <= 0)[0]
        if bad.size:
            i = int(bad[0]) + 1
            raise CurveError(f"{curve.where}, key {i + 1}: time {curve.times[i]} ({secs[i]:.3f} s) is not after "
                             f"the previous key's {curve.times[i - 1]} ({secs[i - 1]:.3f} s)")
        return secs

    def _values(self, curve: Curve, secs: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(active mask, value) of a curve at times t: silent before its first key, held after its last."""
        vals = np.asarray(curve.values, np.float64)
        active = t >= secs[0] - 1e-9  # tolerance: a key at a frame's own time hits that frame
        tc = np.clip(t, secs[0], secs[-1])
        if len(secs) == 1:
            v = np.full_like(t, vals[0])
        elif curve.interp == "step":
            v = vals[np.clip(np.searchsorted(secs, tc + 1e-9, side="right") - 1, 0, len(vals) - 1)]
        elif curve.interp == "cubic" and len(secs) > 2:
            v = _pchip(secs, vals, tc)
        else:
            v = np.interp(tc, secs, vals)
        return active, v

    def evaluate(self, times_s: np.ndarray, source_aus: np.ndarray | None = None,
                 frame_indices: np.ndarray | None = None, fps: Fraction | float | None = None) -> np.ndarray:
        """Target AUs (T, 17) float32 in [0, 1] at each frame time.

        Args:
            times_s: (T,) frame times in seconds from the video's start.
            source_aus: (T, 17) the actor's smoothed AUs; None (or NaN entries) count as 0.
            frame_indices: (T,) frame numbers of those times; '#frame' keys use them when present.
            fps: the video's frame rate, for '#frame' keys outside `frame_indices`.
        Raises:
            CurveError: a '#frame' time without any frame rate, or keys out of order once resolved.
        """
        t = np.asarray(times_s, np.float64).reshape(-1)
        y = np.zeros((t.size, NUM_AUS), np.float64)
        if source_aus is not None:
            src = np.asarray(source_aus, np.float64)
            if src.shape != y.shape:
                raise ValueError(f"source_aus has shape {src.shape}, expected {y.shape}")
            y = np.clip(np.nan_to_num(src, nan=0.0), 0.0, 1.0)  # estimator noise is not the curve's doing
        frame_map = {} if frame_indices is None else dict(zip(np.asarray(frame_indices).tolist(), t.tolist()))
        for curve in self.curves:
            active, v = self._values(curve, self._seconds(curve, frame_map, fps), t)
            _apply(curve, y, active, v)
        _warn_clamp(y, t)
        return np.clip(y, 0.0, 1.0).astype(np.float32)

    def last_time(self, fps: Fraction | float | None = None) -> float:
        """Time in seconds of the latest keyframe of any curve (0 for constant edits)."""
        ends = [self._seconds(c, {}, fps)[-1] for c in self.curves]
        return float(max(ends, default=0.0))

    def summary(self) -> list[str]:
        """One line per curve, for `--dry-run`."""
        lines = []
        for c in self.curves:
            keys = ", ".join(f"{t}={v:g}" for t, v in zip(c.times, c.values))
            extra = f" strength {c.strength:g}" if c.is_expression and c.strength != 1 else ""
            lines.append(f"{c.where}: {c.target} {c.mode} ({c.interp}{extra}): {keys}")
        return lines

    def with_edits(self, au: Iterable[str] = (), expressions: Iterable[str] = ()) -> AUProgram:
        """This program followed by inline edits (`--expression` first, then each `--au`)."""
        inline = [parse_au_edit(a) for a in au]
        extra = [parse_expression_edit(e) for e in expressions] + inline
        check_inline(inline)
        return AUProgram(self.curves + tuple(extra), self.fps, self.source)


def _apply(curve: Curve, y: np.ndarray, active: np.ndarray, v: np.ndarray) -> None:
    """Apply one curve's values to the rows where it is active, in place."""
    if not active.any():
        return
    rows, a = np.nonzero(active)[0], v[active][:, None]
    if curve.is_expression:
        proto = expression(curve.target).astype(np.float64)
        if curve.mode == "blend":
            alpha = np.clip(a, 0.0, 1.0)
            y[rows] = alpha * (curve.strength * proto) + (1 - alpha) * y[rows]
            return
        cols = np.nonzero(proto)[0]
        change = a * proto[cols]
        y[np.ix_(rows, cols)] = change if curve.mode == "set" else y[np.ix_(rows, cols)] + change
        return
    col = AU_NAMES.index(curve.target)
    if curve.mode == "set":
        y[rows, col] = a[:, 0]
    elif curve.mode == "add":
        y[rows, col] += a[:, 0]
    else:
        alpha = np.clip(a[:, 0], 0.0, 1.0)
        y[rows, col] = alpha * curve.goal + (1 - alpha) * y[rows, col]


def _warn_clamp(y: np.ndarray, t: np.ndarray) -> None:
    """Warn once, naming the worst AU and time, when targets leave [0, 1]."""
    excess = np.maximum(y - 1.0, 0.0) + np.maximum(-y, 0.0)
    if excess.max(initial=0.0) > 1e-6:
        r, c = np.unravel_index(int(np.argmax(excess)), y.shape)
        n = int((excess > 1e-6).any(axis=1).sum())
        warnings.warn(f"target {AU_NAMES[c]} reaches {y[r, c]:.3g} at {t[r]:.2f} s ({n} frames out of range); "
                      "intensities clamped to [0, 1]", stacklevel=3)


def parse_au_edit(text: str) -> Curve:
    """`AU12=0.8` (set) or `AU12+=0.2` / `AU12-=0.2` (add), constant from the first frame."""
    m = re.match(r"^\s*([^=+\-\s]+)\s*([+-]?)=\s*(.+?)\s*$", text)
    where = f"--au {text!r}"
    if m is None:
        raise CurveError(f"{where}: use NAME=VALUE (or NAME+=DELTA), e.g. AU12=0.8")
    name, sign, value = m.groups()
    _au(name, where)
    x = _number(value, "value", where)
    if sign:
        return make_curve(name, [(0, -x if sign == "-" else x)], "add", where=where)
    return make_curve(name, [(0, x)], "set", where=where)


def parse_expression_edit(text: str) -> Curve:
    """`smile:0.7`: blend 70 % of the way to the smile prototype, constant from the first frame."""
    name, sep, strength = text.partition(":")
    where = f"--expression {text!r}"
    if name.strip().lower() not in EXPRESSIONS:
        raise CurveError(f"{where}: unknown expression {name.strip()!r}; known: {', '.join(EXPRESSIONS)}")
    alpha = _number(strength, "strength", where) if sep else 1.0
    return make_curve(name, [(0, alpha)], "blend", where=where)


def _from_mapping(data: object, label: str, kind: str = ".json") -> AUProgram:
    """Curves from parsed JSON/TOML data, long form or short (`ganivid.curveforms`)."""
    data = long_form(data, label, kind)
    if not isinstance(data.get("curves"), list):
        raise CurveError(f"{label}: \"curves\" must be a list; write AU curves as {EXAMPLES[kind]}")
    unknown = set(data) - {"curves", "fps", "comment"}
    if unknown:
        raise CurveError(f"{label}: unknown key {sorted(unknown)[0]!r}; top-level keys are curves, fps, comment")
    fps = None
    if data.get("fps") is not None:
        rate = _number(data["fps"], "fps", label)
        if rate <= 0:
            raise CurveError(f"{label}: fps must be positive, got {data['fps']!r}")
        fps = Fraction(rate).limit_denominator(1001)
    curves = []
    for i, c in enumerate(data["curves"]):
        where = f"{label}, curve {i + 1}"
        if not isinstance(c, dict):
            raise CurveError(f"{where}: a curve is an object with \"au\" or \"expression\" and \"keys\"")
        unknown = set(c) - _CURVE_KEYS
        if unknown:
            raise CurveError(f"{where}: unknown key {sorted(unknown)[0]!r}; curve keys are {', '.join(sorted(_CURVE_KEYS))}")
        if ("au" in c) == ("expression" in c):
            raise CurveError(f"{where}: give exactly one of \"au\" and \"expression\"")
        target = c.get("au", c.get("expression"))
        if "au" in c and str(target).strip().lower() in EXPRESSIONS:
            raise CurveError(f"{where}: {target!r} is an expression; write \"expression\": {json.dumps(target)}")
        if "expression" in c and str(target).strip().lower() not in EXPRESSIONS:
            raise CurveError(f"{where}: unknown expression {target!r}; known: {', '.join(EXPRESSIONS)}")
        keys = c.get("keys")
        if not isinstance(keys, list):
            raise CurveError(f"{where}: \"keys\" must be a list of [time, value] pairs")
        curves.append(make_curve(target, keys, c.get("mode", "set"), c.get("interp", "linear"),
                                 c.get("strength", 1.0), c.get("target", 1.0), where))
    return AUProgram(tuple(curves), fps)


def _from_csv(text: str, label: str) -> AUProgram:
    """Curves from the long CSV format (time,target,value[,mode][,interp])."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise CurveError(f"{label}: empty file")
    header = [h.strip().lower() for h in rows[0]]
    header = ["target" if h == "au" else h for h in header]
    missing = [h for h in ("time", "target", "value") if h not in header]
    unknown = [h for h in header if h not in ("time", "target", "value", "mode", "interp")]
    if missing or unknown:
        raise CurveError(f"{label}:1: header must be time,target,value[,mode][,interp]; "
                         + (f"missing {', '.join(missing)}" if missing else f"unknown column {unknown[0]!r}"))
    groups: dict[tuple[str, str], dict] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise CurveError(f"{label}:{line}: {len(row)} columns, the header has {len(header)}")
        cell = dict(zip(header, (c.strip() for c in row)))
        where = f"{label}:{line}"
        if not cell.get("time") or not cell.get("target") or not cell.get("value"):
            raise CurveError(f"{where}: time, target and value are required")
        name, _ = _target(cell["target"], where)
        mode = cell.get("mode") or None
        key = (name, mode or next((m for (n, m) in groups if n == name), "set"))
        g = groups.setdefault(key, {"keys": [], "interp": None, "where": where, "lines": []})
        interp = cell.get("interp") or None
        if interp and g["interp"] and interp != g["interp"]:
            raise CurveError(f"{where}: interp {interp!r} contradicts {g['interp']!r} set earlier for {name} {key[1]}")
        g["interp"] = g["interp"] or interp
        parse_time(cell["time"], where)  # report bad times at their own line
        _number(cell["value"], "value", where)
        g["keys"].append((cell["time"], cell["value"]))
        g["lines"].append(line)
    curves = []
    for (name, mode), g in groups.items():
        try:
            curves.append(make_curve(name, g["keys"], mode, g["interp"] or "linear", where=g["where"]))
        except CurveError as ex:  # point at the row of the offending key, not the curve's first row
            m = re.match(rf"{re.escape(g['where'])}, key (\d+): (.*)", str(ex))
            if m is None:
                raise
            raise CurveError(f"{label}:{g['lines'][int(m.group(1)) - 1]}: {m.group(2)}") from None
    return AUProgram(tuple(curves))


def load_curves(path: str | Path) -> AUProgram:
    """Read an AU curve file (.json, .csv or .toml; schema in this module's docstring).

    Raises:
        CurveError: missing or malformed file, unknown AU/expression/mode/interp, negative,
            unsorted or unreadable times, NaN values; the message says where.
    """
    p = Path(path)
    if not p.is_file():
        raise CurveError(f"curve file {p} does not exist" if not p.exists() else f"curve file {p} is not a file")
    kind = p.suffix.lower()
    if kind not in (".json", ".csv", ".toml"):
        raise CurveError(f"curve file {p}: unknown format {p.suffix!r}; use .json, .csv or .toml")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as ex:
        raise CurveError(f"cannot read curve file {p}: {ex}") from None
    label = p.name
    if kind == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as ex:
            raise CurveError(f"{label}:{ex.lineno}:{ex.colno}: malformed JSON: {ex.msg}") from None
        except RecursionError:  # the parsers recurse per level: thousands of [ or { exhaust the stack
            raise CurveError(f"{label}: nested too deeply to be a curve file") from None
        program = _from_mapping(data, label, kind)
    elif kind == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as ex:
            raise CurveError(f"{label}: malformed TOML: {ex}") from None
        except RecursionError:
            raise CurveError(f"{label}: nested too deeply to be a curve file") from None
        program = _from_mapping(data, label, kind)
    else:
        program = _from_csv(text, label)
    if not program.curves:  # "give --au-curve FILE" would tell a user who gave one to give one
        raise no_curves(label, kind)
    return AUProgram(program.curves, program.fps, str(p))


def build_program(curve_file: str | Path | None = None, au: Iterable[str] = (),
                  expressions: Iterable[str] | str | None = ()) -> AUProgram:
    """The one call for `animate`: a curve file (optional) followed by inline `--expression`/`--au` edits."""
    if isinstance(expressions, str):
        expressions = [expressions]
    base = load_curves(curve_file) if curve_file is not None else AUProgram()
    return base.with_edits(au=au, expressions=expressions or ())
