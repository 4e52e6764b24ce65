"""`ganivid annotate` end to end on real faces: crops, labels, resume, OpenFace import, bad input."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ganivid.annotate import parse_every
from ganivid.aus import AU_NAMES, au_index
from ganivid.cli import app
from ganivid.data import open_dataset
from ganivid.errors import ConfigError
from ganivid.estimate import OPENFACE_COLUMNS, stable_landmarks
from ganivid.faces import DlibDetector
from ganivid.warps import warp_face

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, ["annotate", *args, "--quiet"])


def _rows(out: Path) -> list[dict]:
    with open(out / "aus.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture()
def inputs(tmp_path, astronaut, grace_hopper) -> Path:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    Image.fromarray(astronaut).save(d / "astronaut.png")
    Image.fromarray(grace_hopper).save(d / "sub" / "grace.jpg", quality=92)
    (d / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(d / "blank.png")
    (d / "notes.txt").write_text("not media: ignored in folders")
    return d


def test_images_and_folders_make_a_trainable_dataset(inputs, tmp_path):
    out = tmp_path / "ds"
    res = _run(str(inputs), "-o", str(out), "--size", "64", "--workers", "2")
    assert res.exit_code == 0, res.output
    assert "2 new crops" in res.output and "no face: blank.png" in res.output and "unreadable: broken.jpg" in res.output
    rows = _rows(out)
    assert list(rows[0]) == ["file", *AU_NAMES]
    assert len(rows) == 2
    for r in rows:
        assert r["AU6"] == r["AU9"] == r["AU14"] == ""  # unsupported: empty, never 0
        assert all(0.0 <= float(r[a]) <= 1.0 for a in AU_NAMES if a not in ("AU6", "AU9", "AU14"))
        assert Image.open(out / r["file"]).size == (64, 64)
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {Path(m["source"]).name for m in manifest} == {"astronaut.png", "grace.jpg"}
    assert all(np.array(m["landmarks"]).shape == (68, 2) and m["score"] > 0 and m["frame"] is None for m in manifest)
    assert all(m["labels"] == "mesh" for m in manifest)  # which estimator labelled the crop
    smile = {Path(m["source"]).name: m["aus"][AU_NAMES.index("AU12")] for m in manifest}
    assert smile["astronaut.png"] > 0.5 > 0.15 > smile["grace.jpg"]
    ds = open_dataset(out, 64)  # what `ganivid train --data` opens
    assert len(ds) == 2 and set(ds.unlabelled) == {"AU6", "AU9", "AU14"}


def test_landmark_estimator_stays_selectable(inputs, tmp_path):
    out = tmp_path / "ds"
    res = _run(str(inputs / "astronaut.png"), "-o", str(out), "--workers", "1", "--estimator", "landmarks")
    assert res.exit_code == 0, res.output
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [m["labels"] for m in manifest] == ["landmarks"]
    res = _run(str(inputs / "sub"), "-o", str(out), "--workers", "1")  # the folder was made with other labels
    assert res.exit_code == 1 and res.output.startswith("error:") and "labels landmarks (now mesh)" in res.output
    res = _run(str(inputs / "sub"), "-o", str(tmp_path / "x"), "--estimator", "openfac")
    assert res.exit_code == 1 and res.output.startswith("error: --estimator must be mesh or landmarks")


def test_rerun_skips_done_inputs_and_refuses_other_options(inputs, tmp_path):
    out = tmp_path / "ds"
    assert _run(str(inputs / "astronaut.png"), "-o", str(out), "--size", "64", "--workers", "1").exit_code == 0
    before = (out / "aus.csv").read_text()
    res = _run(str(inputs), "-o", str(out), "--size", "64", "--workers", "1")
    assert res.exit_code == 0 and "1 already done" in res.output and "1 new crops" in res.output
    assert len(_rows(out)) == 2 and (out / "aus.csv").read_text().startswith(before)
    res = _run(str(inputs), "-o", str(out), "--size", "64", "--workers", "1")
    assert "0 new crops" in res.output and len(_rows(out)) == 2
    res = _run(str(inputs), "-o", str(out), "--size", "96")
    assert res.exit_code == 1 and res.output.startswith("error:") and "size 64" in res.output


def test_interrupted_input_is_redone_without_duplicates(inputs, tmp_path):
    out = tmp_path / "ds"
    assert _run(str(inputs / "astronaut.png"), "-o", str(out), "--workers", "1").exit_code == 0
    # Simulate a crash after the crops of an input were listed but before it was marked done.
    (out / "inputs.jsonl").write_text("")
    assert _run(str(inputs / "astronaut.png"), "-o", str(out), "--workers", "1").exit_code == 0
    assert len(_rows(out)) == 1 and len((out / "manifest.jsonl").read_text().splitlines()) == 1


def test_several_faces_in_one_image(tmp_path, astronaut, grace_hopper):
    both = np.zeros((600, 1024, 3), np.uint8)
    both[:512, :512], both[:, 512:] = astronaut, grace_hopper
    Image.fromarray(both).save(tmp_path / "two.png")
    res = _run(str(tmp_path / "two.png"), "-o", str(tmp_path / "ds"), "--workers", "1")
    assert res.exit_code == 0 and "several faces: two.png" in res.output
    assert [r["file"][-6:] for r in _rows(tmp_path / "ds")] == ["-0.png", "-1.png"]
    res = _run(str(tmp_path / "two.png"), "-o", str(tmp_path / "ds2"), "--workers", "1", "--min-face", "150")
    assert len(_rows(tmp_path / "ds2")) == 1  # astronaut's face (~90 px) is below --min-face


def _clip(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.options = {"qscale": "2"}
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode())


def test_video_track_baseline_follows_the_jaw(tmp_path, astronaut):
    small = cv2.resize(astronaut[20:340, 100:420], (256, 256), interpolation=cv2.INTER_AREA)
    det = DlibDetector()
    lm = stable_landmarks(det, small, det.boxes(small)[0][0])
    opening = [0, 0, 0, 0.5, 1.0, 1.0, 0.5, 0, 0, 0, 0, 0.6, 0.3, 0]
    frames = [warp_face(small, lm, {"AU26": s})[0] for s in opening]
    _clip(tmp_path / "talk.mp4", frames)
    (tmp_path / "empty.mp4").write_bytes(b"")
    out = tmp_path / "ds"
    res = _run(str(tmp_path / "talk.mp4"), str(tmp_path / "empty.mp4"), "-o", str(out), "--every", "0")
    assert res.exit_code == 0, res.output
    assert "unreadable: empty.mp4" in res.output and "near-duplicate" in res.output
    rows = _rows(out)
    frame_of = {int(r["file"].rsplit("-f", 1)[1][:6]): float(r["AU26"]) for r in rows}
    assert 4 in frame_of and 0 in frame_of and 1 not in frame_of  # frame 1 repeats frame 0
    assert frame_of[0] < 0.1 and frame_of[4] > 0.4 and frame_of[4] > frame_of[3] > frame_of[0]
    assert len(rows) < len(opening)


def _openface_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    # OpenFace writes ", " between header fields: the reader must strip the spaces.
    path.write_text(", ".join(columns) + "\n" + "\n".join(", ".join(str(r.get(c, "")) for c in columns) for r in rows) + "\n")


def test_openface_labels_by_column_name(inputs, tmp_path):
    of = tmp_path / "of"
    of.mkdir()
    cols = ["face", "confidence", "success", *reversed(OPENFACE_COLUMNS), "AU12_c"]  # order must not matter
    row = {c: 0.0 for c in cols} | {"confidence": 0.98, "success": 1, "AU12_r": 4.0, "AU25_r": 2.5, "AU45_r": 5.0}
    _openface_csv(of / "astronaut.csv", [row], cols)
    _openface_csv(of / "grace.csv", [row | {"AU12_r": "nan"}], cols)  # NaN row: skipped, reported
    _openface_csv(of / "blank.csv", [{"face": 0, "AU01_r": 1}], ["face", "AU01_r"])  # no AU columns
    out = tmp_path / "ds"
    res = _run(str(inputs), "-o", str(out), "--openface", str(of), "--workers", "1")
    assert res.exit_code == 0, res.output
    assert "blank.csv: no column AU02_r" in res.output and "grace.csv: 0 rows with success 0 and 1" in res.output
    assert "1 faces without a usable OpenFace row" in res.output
    (r,) = _rows(out)
    assert "astronaut" in r["file"]
    assert float(r["AU12"]) == pytest.approx(0.8) and float(r["AU25"]) == pytest.approx(0.5)
    assert float(r["AU45"]) == pytest.approx(1.0) and r["AU6"] == "0.0000"
    assert len(open_dataset(out, 128)) == 1
    res = _run(str(inputs), "-o", str(tmp_path / "ds2"), "--openface", str(tmp_path / "missing"))
    assert res.exit_code == 1 and res.output.startswith("error: --openface")


def test_no_face_anywhere_is_one_error_line(tmp_path):
    Image.fromarray(np.full((100, 100, 3), 30, np.uint8)).save(tmp_path / "a.png")
    res = _run(str(tmp_path / "a.png"), str(tmp_path / "nope.png"), "-o", str(tmp_path / "ds"))
    assert res.exit_code == 1 and res.output.startswith("error: no face crop")


def test_parse_every():
    assert parse_every("0.5s") == 0.5 and parse_every("200ms") == 0.2 and parse_every("2") == 2.0
    with pytest.raises(ConfigError):
        parse_every("fast")
