"""AU curves: file formats, time syntax, interpolation, modes, clamping and located errors."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from ganivid.aus import AU_NAMES, expression
from ganivid.curves import AUProgram, build_program, load_curves, make_curve, parse_au_edit, parse_time
from ganivid.errors import CurveError

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
AU12, AU4 = AU_NAMES.index("AU12"), AU_NAMES.index("AU4")
T = np.arange(0, 5, 0.04)  # 25 fps, 5 s


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


SAME_CURVES = {  # one program (AU12 cubic set, smile blend) in each format
    "c.json": json.dumps({"fps": 25, "curves": [
        {"au": "AU12", "mode": "set", "interp": "cubic", "keys": [["0s", 0], ["2s", 0.8], ["00:00:04.000", 0.8], ["#110", 0]]},
        {"expression": "smile", "mode": "blend", "keys": [[1, 0], [2, 1]]}]}),
    "c.toml": 'fps = 25\n[[curves]]\nau = "AU12"\nmode = "set"\ninterp = "cubic"\n'
              'keys = [["0s", 0], ["2s", 0.8], ["00:00:04.000", 0.8], ["#110", 0]]\n'
              '[[curves]]\nexpression = "smile"\nmode = "blend"\nkeys = [[1, 0], [2, 1]]\n',
    "c.csv": "time,target,value,mode,interp\n0s,AU12,0,set,cubic\n2s,AU12,0.8,,\n00:00:04.000,AU12,0.8,,\n"
             "#110,AU12,0,,\n1,smile,0,blend,\n2,smile,1,,\n",
}


@pytest.mark.parametrize("name", list(SAME_CURVES))
def test_every_format_gives_the_same_targets(tmp_path, name):
    program = load_curves(write(tmp_path, name, SAME_CURVES[name]))
    reference = load_curves(write(tmp_path, "ref.json", SAME_CURVES["c.json"]))
    source = np.full((T.size, 17), 0.3, np.float32)
    got = program.evaluate(T, source, np.arange(T.size), fps=25)
    assert np.array_equal(got, reference.evaluate(T, source, np.arange(T.size), fps=25))
    # AU12: set by its curve, then blended towards smile's 1.0 from 1 s to 2 s
    assert got[0, AU12] == 0 and got[T.searchsorted(4.0), AU12] == pytest.approx(1.0)
    assert got[110, AU12] == pytest.approx(1.0)  # the later smile blend wins over the set curve
    only_au12 = AUProgram(program.curves[:1]).evaluate(T, source, np.arange(T.size), fps=25)[:, AU12]
    assert only_au12[110] == 0 and 0 < only_au12[105] < 0.8  # '#110' is frame 110 = 4.4 s
    assert got[10, AU4] == pytest.approx(0.3)  # before the blend starts: the actor's own
    assert got[60, AU4] == pytest.approx(0.0)  # full blend: smile has no AU4
    assert program.last_time(fps=25) == pytest.approx(4.4)


def test_time_syntax():
    assert parse_time(2.5, "k").seconds == 2.5
    assert parse_time("2.5s", "k").seconds == 2.5
    assert parse_time("1500ms", "k").seconds == 1.5
    assert parse_time("00:01:02.250", "k").seconds == pytest.approx(62.25)
    assert parse_time("01:02.5", "k").seconds == pytest.approx(62.5)
    assert parse_time("#150", "k").frame == 150
    for bad in ("-1", -0.5, "2.5x", "#1.5", "nan", None, True):
        with pytest.raises(CurveError, match="k: "):
            parse_time(bad, "k")


def test_frame_times_use_the_frames_own_timestamps():
    vfr_times = np.array([0.0, 0.04, 0.2, 0.5, 0.6])  # frame 3 is at 0.5 s, not 3/25 s
    program = AUProgram((make_curve("AU12", [("#0", 0.0), ("#3", 1.0)]),))
    y = program.evaluate(vfr_times, None, np.arange(5), fps=25)
    assert y[3, AU12] == pytest.approx(1.0) and y[2, AU12] == pytest.approx(0.4)
    with pytest.raises(CurveError, match="needs a frame rate"):
        program.evaluate(np.array([0.0, 9.0]))  # frames unknown, no fps anywhere


def test_interpolations():
    keys = [(0, 0.0), (1, 1.0), (2, 1.0), (3, 0.2)]
    t = np.linspace(0, 4, 401)
    linear, cubic, step = (AUProgram((make_curve("AU12", keys, interp=i),)).evaluate(t)[:, AU12]
                           for i in ("linear", "cubic", "step"))
    assert linear[50] == pytest.approx(0.5) and linear[250] == pytest.approx(0.6)
    assert step[99] == 0 and step[100] == 1 and step[299] == 1 and step[300] == pytest.approx(0.2)
    assert cubic.max() <= 1.0 + 1e-6 and cubic.min() >= -1e-6  # monotone: no overshoot past the plateau
    assert np.all(np.diff(cubic[:100]) >= -1e-7) and np.all(np.diff(cubic[200:300]) <= 1e-7)
    assert cubic[150] == pytest.approx(1.0)  # flat between equal keys
    assert linear[-1] == step[-1] == pytest.approx(0.2)  # holds the last value


def test_modes_and_silence_before_first_key():
    source = np.full((T.size, 17), 0.25)
    add = AUProgram((make_curve("AU12", [(1, 0.5)], mode="add"),)).evaluate(T, source)
    assert add[0, AU12] == pytest.approx(0.25) and add[-1, AU12] == pytest.approx(0.75)
    setp = AUProgram((make_curve("AU12", [(1, 0.9)], mode="set"),)).evaluate(T, source)
    assert setp[24, AU12] == pytest.approx(0.25) and setp[25, AU12] == pytest.approx(0.9)
    blend = AUProgram((make_curve("fear", [(0, 0.5)], mode="blend"),)).evaluate(T, source)
    assert np.allclose(blend[0], 0.5 * expression("fear") + 0.5 * 0.25)  # alpha*y_g + (1-alpha)*y_r
    au_blend = AUProgram((make_curve("AU12", [(0, 0.5)], mode="blend", goal=0.0),)).evaluate(T, source)
    assert au_blend[0, AU12] == pytest.approx(0.125)
    expr_set = AUProgram((make_curve("surprise", [(0, 0.5)], mode="set"),)).evaluate(T, source)
    assert np.allclose(expr_set[0], np.where(expression("surprise") > 0, 0.5 * expression("surprise"), 0.25))
    assert np.allclose(AUProgram().evaluate(T, None), 0)  # no source: zeros


def test_inline_edits_and_clamping():
    program = build_program(None, au=["AU12=0.8", "au4+=0.9"], expressions="smile:0.5")
    assert [c.mode for c in program.curves] == ["blend", "set", "add"]
    source = np.full((3, 17), 0.5)
    with pytest.warns(UserWarning, match=r"AU4 reaches 1.15.*clamped"):
        y = program.evaluate(np.zeros(3), source)
    assert y[0, AU12] == pytest.approx(0.8) and y[0, AU4] == 1.0
    assert parse_au_edit("AU12-=0.2").values == (-0.2,)
    with pytest.warns(UserWarning, match="outside"):
        make_curve("AU12", [(0, 1.5)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # in-range edits stay quiet
        build_program(None, au=["AU12=1"]).evaluate(np.zeros(2), np.full((2, 17), 0.2))
    for bad, pattern in [("AU13=0.5", "unknown AU 'AU13'; valid AUs: AU1, AU2"), ("AU12", "NAME=VALUE"),
                         ("AU12=lots", "not a number"), ("AU12=nan", "finite")]:
        with pytest.raises(CurveError, match=pattern):
            build_program(None, au=[bad])
    with pytest.raises(CurveError, match="unknown expression 'glee'; known: neutral, smile"):
        build_program(None, expressions=["glee:1"])


BAD_FILES = {
    "unknown AU": ("b.json", '{"curves": [{"au": "AU13", "keys": [[0, 1]]}]}',
                   r"b.json, curve 1: unknown AU 'AU13'; valid AUs: AU1, .*AU45"),
    "malformed JSON": ("b.json", '{"curves": [\n  {"au": "AU12" "keys": []}]}', r"b.json:2:17: malformed JSON"),
    "malformed TOML": ("b.toml", "[[curves]]\nau = AU12\n", r"b.toml: malformed TOML: .*line 2"),
    "negative time": ("b.json", '{"curves": [{"au": "AU12", "keys": [[0, 0], [-1, 1]]}]}', r"curve 1, key 2: .*negative"),
    "unsorted times": ("b.toml", '[[curves]]\nau = "AU12"\nkeys = [[0, 0], [2, 1], ["1s", 0]]\n',
                       r"b.toml, curve 1, key 3: time 1s is not after the previous key's 2s"),
    "NaN value": ("b.json", '{"curves": [{"au": "AU12", "keys": [[0, NaN]]}]}', r"curve 1, key 1: value is nan"),
    "unknown mode": ("b.json", '{"curves": [{"au": "AU12", "mode": "mul", "keys": [[0, 1]]}]}',
                     r"curve 1: unknown mode 'mul'; use one of set, add, blend"),
    "unknown interp": ("b.toml", '[[curves]]\nau = "AU12"\ninterp = "spline"\nkeys = [[0, 1]]\n',
                       r"curve 1: unknown interp 'spline'; use one of linear, cubic, step"),
    "unknown key": ("b.json", '{"curves": [{"au": "AU12", "key": [[0, 1]]}]}', r"curve 1: unknown key 'key'"),
    "both targets": ("b.json", '{"curves": [{"au": "AU12", "expression": "smile", "keys": [[0, 1]]}]}',
                     "exactly one of"),
    "no curves": ("b.json", "[1, 2]", r'b.json: no curves; write AU curves as \{"AU12": \[\[0, 0\], \[2, 0.8\]\]\}, or'),
    "CSV unsorted": ("b.csv", "time,target,value\n0,AU12,0\n2,AU12,1\n1,AU12,0\n", r"b.csv:4: time 1s is not after"),
    "CSV NaN": ("b.csv", "time,au,value\n0,AU12,nan\n", r"b.csv:2: value is 'nan'"),
    "CSV unknown AU": ("b.csv", "time,au,value\n0,AU12,0\n1,AU99,1\n", r"b.csv:3: unknown AU 'AU99'; valid AUs"),
    "CSV header": ("b.csv", "t,au,value\n0,AU12,0\n", r"b.csv:1: header must be time,target,value"),
    "CSV bad time": ("b.csv", "time,au,value\n0,AU12,0\nsoon,AU12,1\n", r"b.csv:3: cannot read time 'soon'"),
    "CSV mode": ("b.csv", "time,au,value,mode\n0,AU12,0,sometimes\n", r"b.csv:2: unknown mode 'sometimes'"),
    "extension": ("b.yaml", "curves: []", "unknown format '.yaml'"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_curve_files_say_where(tmp_path, case):
    name, text, pattern = BAD_FILES[case]
    with pytest.raises(CurveError, match=pattern) as info:
        load_curves(write(tmp_path, name, text))
    assert "\n" not in str(info.value)


def test_missing_curve_file(tmp_path):
    with pytest.raises(CurveError, match="does not exist"):
        load_curves(tmp_path / "nope.json")


def test_mixed_seconds_and_frames_are_checked_once_resolved(tmp_path):
    program = load_curves(write(tmp_path, "m.json", '{"curves": [{"au": "AU12", "keys": [["#50", 0], ["1s", 1]]}]}'))
    with pytest.raises(CurveError, match=r"curve 1, key 2: time 1s \(1.000 s\) is not after"):
        program.evaluate(T, fps=25)  # frame 50 is 2 s at 25 fps


@pytest.mark.parametrize("name", ["smile.json", "surprise.csv", "fear.toml"])
def test_samples_load_and_evaluate(name):
    program = load_curves(SAMPLES / name)
    frames = np.arange(120)
    y = program.evaluate(frames / 25, np.full((120, 17), 0.2), frames, fps=25)
    assert y.shape == (120, 17) and y.dtype == np.float32
    assert np.allclose(y[0], 0.2)  # every sample starts from the actor's own face
    assert np.abs(y - 0.2).max() > 0.5  # and changes it markedly
    assert 4.0 <= program.last_time(25) <= 4.8  # within the 4.8 s sample clip
