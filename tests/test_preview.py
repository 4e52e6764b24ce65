"""`ganivid preview`: sheet sizes and layout (labels beside, above and under the right panels),
seeking that decodes only a few frames of a longer clip, animate's cached track table reused,
and user errors, with a tiny real generator and clips made here."""
from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ganivid.align import Alignment
from ganivid.analysis import cache_key, cache_path
from ganivid.animate import default_output
from ganivid.aus import AU_NAMES, au_index
from ganivid.cli import app
from ganivid.preview import face_region, preview_grid, preview_interpolate, preview_sample, random_aus
from ganivid.previewframes import preview_frames
from ganivid.sheets import BACKGROUND, fit
from ganivid.testclips import background, render, sprite
from ganivid.tracking import TrackConfig
from ganivid.tracktable import TrackRow, TrackTable
from ganivid.video import probe, read_frames_at

N_FRAMES, FPS, GOP = 120, 10, 12


def ink(img: np.ndarray, box) -> float:
    """Fraction of dark (text) pixels in a box of a sheet."""
    x0, y0, x1, y1 = box
    return float((img[y0:y1, x0:x1].max(axis=2) < 140).mean())


def region(img: np.ndarray, box) -> np.ndarray:
    x0, y0, x1, y1 = box
    return img[y0:y1, x0:x1]


def check_layout(sheet, rows: int, cols: int) -> None:
    """Panels on a grid (same columns line up), labels left of rows and above columns with text in
    them, nothing overlapping, and the gaps between panels left blank."""
    img = sheet.image
    assert len(sheet.panels) == rows and all(len(r) == cols for r in sheet.panels)
    for r, row in enumerate(sheet.panels):
        for c, box in enumerate(row):
            if box is None:
                continue
            x0, y0, x1, y1 = box
            assert 0 <= x0 < x1 <= img.shape[1] and 0 <= y0 < y1 <= img.shape[0]
            if sheet.row_labels[r] is not None:
                assert sheet.row_labels[r][2] <= x0  # row label left of every panel of its row
            if sheet.col_labels[c] is not None:
                assert sheet.col_labels[c][3] <= y0  # column label above every panel of its column
            if c + 1 < cols and row[c + 1] is not None:
                gap = img[y0:y1, x1:row[c + 1][0]]
                assert gap.size == 0 or (gap == BACKGROUND).all()
    for box in (*sheet.row_labels, *sheet.col_labels):
        if box is not None:
            assert ink(img, box) > 0.03


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("preview")


@pytest.fixture(scope="module")
def clip(work, astronaut) -> Path:
    """12 s at 10 fps, 320x240, a keyframe every 12 frames: the astronaut drifting and tilting."""
    s = sprite(astronaut)
    bg = background(320, 240)
    path = work / "clip.mp4"
    out = av.open(str(path), "w")
    v = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "20", "g": str(GOP),
                                                     "keyint_min": str(GOP), "sc_threshold": "0"})
    v.width, v.height, v.pix_fmt = 320, 240, "yuv420p"
    for i in range(N_FRAMES):
        t = i / FPS
        img, _, _ = render(bg, [(s, Alignment(160 + 20 * np.sin(t), 120, 170, 5 * np.sin(0.7 * t)))])
        f = av.VideoFrame.from_ndarray(img, format="rgb24")
        f.pts = i
        out.mux(v.encode(f))
    out.mux(v.encode())
    out.close()
    return path


@pytest.fixture(scope="module")
def curve(work) -> Path:
    path = work / "smile.json"
    path.write_text('{"curves": [{"au": "AU12", "keys": [[0, 0], [6, 1], [12, 0]]}]}')
    return path


def test_grid_is_one_row_per_au_and_one_column_per_level(work, photo, model, astronaut):
    r = preview_grid(photo, work / "grid.png", aus=["AU12", "AU25", "AU45"], levels=[0, 0.5, 1], model=model)
    with Image.open(r.output) as im:
        assert im.size == r.size
        saved = np.asarray(im.convert("RGB"))
    assert np.array_equal(saved, r.sheet.image)
    check_layout(r.sheet, 3, 4)
    assert 600 < r.size[0] <= 1800 and 400 < r.size[1] <= 1400  # fits a screen
    img = r.sheet.image
    face = face_region_of(astronaut)
    cell = r.sheet.panels[0][0][2] - r.sheet.panels[0][0][0]
    expected_input = fit(region(astronaut, face), cell, cell)
    for row in r.sheet.panels:  # the "input" column is the photo around the face, every row
        assert np.array_equal(region(img, row[0]), expected_input)
        for box in row[1:]:  # edited panels: same place and size, different face
            assert region(img, box).shape == expected_input.shape
            assert not np.array_equal(region(img, box), expected_input)
    for note in r.sheet.notes:  # the face's own value beside each row
        assert note is not None and ink(img, note) > 0.02 and note[0] >= r.sheet.panels[0][-1][2]
    assert ink(img, r.sheet.title) > 0.03 and ink(img, r.sheet.legend) > 0.01


def face_region_of(image: np.ndarray):
    from ganivid.still import find_faces

    return face_region(find_faces(image)[0].alignment, image.shape)


def test_grid_crops_are_square_model_crops(work, photo, model):
    r = preview_grid(photo, work / "crops.jpg", aus=["AU1"], levels=[1], crops=True, model=model)
    with Image.open(r.output) as im:
        assert im.format == "JPEG" and im.size == r.size
    a, b = r.sheet.panels[0]
    assert a[2] - a[0] == a[3] - a[1] == b[2] - b[0] == b[3] - b[1] == 256  # upscaled to the largest cell


def test_grid_full_shows_the_whole_photo(work, photo, model, astronaut):
    r = preview_grid(photo, work / "full.png", aus=["AU12"], levels=[1], full=True, model=model)
    a, b = r.sheet.panels[0]
    assert np.array_equal(region(r.sheet.image, a), fit(astronaut, a[2] - a[0], a[3] - a[1]))
    outside = np.ones(astronaut.shape[:2], bool)
    x0, y0, x1, y1 = face_region_of(astronaut)
    outside[max(0, y0 - 40):y1 + 40, max(0, x0 - 40):x1 + 40] = False  # the edit stays near the face
    scaled = cv2.resize(outside.astype(np.uint8), (b[2] - b[0], b[3] - b[1]), interpolation=cv2.INTER_NEAREST) > 0
    assert np.abs(region(r.sheet.image, b).astype(int) - region(r.sheet.image, a))[scaled].max() <= 1


def test_interpolate_with_masks_has_attention_and_colour_rows(work, photo, model):
    r = preview_interpolate(photo, work / "interp.png", expression="surprise", steps=4, masks=True, model=model)
    check_layout(r.sheet, 3, 5)
    img = r.sheet.image
    assert r.sheet.panels[1][0] is None and r.sheet.panels[2][0] is None  # no input masks
    for box in r.sheet.panels[1][1:]:  # attention is grey
        att = region(img, box).astype(int)
        assert np.array_equal(att[..., 0], att[..., 1]) and np.array_equal(att[..., 1], att[..., 2])
    for box in r.sheet.panels[2][1:]:  # the colour mask is not
        assert np.abs(np.diff(region(img, box).astype(int), axis=2)).mean() > 1
    empty = img[r.sheet.panels[1][1][1]:r.sheet.panels[1][1][3], r.sheet.panels[0][0][0]:r.sheet.panels[0][0][2]]
    assert (empty == BACKGROUND).all()  # left of the mask rows, under the input: blank


def test_sample_panels_have_captions(work, photo, model):
    r = preview_sample(photo, work / "sample.png", count=5, seed=3, model=model)
    check_layout(r.sheet, 2, 3)
    img = r.sheet.image
    boxes = [b for row in r.sheet.panels for b in row if b is not None]
    assert len(boxes) == 6
    for x0, y0, x1, y1 in boxes:  # a caption right under each panel
        assert ink(img, (x0, y1 + 1, x1, y1 + 16)) > 0.01
    assert np.array_equal(random_aus(5, 3), random_aus(5, 3))
    assert not np.array_equal(random_aus(5, 3), random_aus(5, 4))


def test_random_aus_are_plausible():
    y = random_aus(200, 0)
    assert y.shape == (200, len(AU_NAMES)) and y.min() >= 0 and y.max() <= 1
    i12, i15, i25, i26 = (au_index(a) for a in ("AU12", "AU15", "AU25", "AU26"))
    assert not np.any((y[:, i12] > 0) & (y[:, i15] > 0))  # lip corners go up or down, not both
    assert np.all(y[:, i25] >= y[:, i26])  # a dropped jaw parts the lips
    assert (y > 0.05).sum(axis=1).min() >= 1


def test_frames_seeks_and_decodes_few_frames(work, clip, curve, model):
    assert probe(clip).frame_count == N_FRAMES
    r = preview_frames(clip, work / "frames.png", curve, at="1s,#66,10.5s", model=model)
    assert r.frames == (10, 66, 105)
    assert 3 <= r.decoded_frames <= 3 * GOP + 1 < N_FRAMES  # seeking, not decoding the clip
    check_layout(r.sheet, 3, 5)
    assert r.track_cache is None
    img = r.sheet.image
    for row, note in zip(r.sheet.panels, r.sheet.notes):
        assert all(b is not None for b in row)
        assert note is not None and note[0] >= row[-1][2]  # AU values right of the row
        red = region(img, note)
        assert ((red[..., 0] > 150) & (red[..., 1] < 90)).any()  # the changed AU12 is in red
    with Image.open(r.curves_plot) as im:
        assert r.curves_plot.name == "frames_curves.png" and im.size[0] >= 800 and im.size[1] >= 200


def test_frames_reuses_animates_track_table(work, clip, curve, model, astronaut):
    """A track table where animate caches it (track 7, standing still 60 px left of the real face,
    which moves) must be what the sheet shows."""
    info = probe(clip)
    key = cache_key(info, TrackConfig(detect_every=12), "largest")
    cache = cache_path(default_output(info.path), key)
    al = Alignment(100, 120, 170, 0)
    _, (lm,), _ = render(background(320, 240), [(sprite(astronaut), al)])
    rows = [TrackRow(i, i / FPS, 7, al, "detected", lm) for i in range(N_FRAMES)]
    TrackTable.from_rows(rows, frames=np.arange(N_FRAMES), times=np.arange(N_FRAMES) / FPS,
                         image_size=(240, 320)).save(cache)
    try:
        r = preview_frames(clip, work / "cached.png", curve, at="#30,#90", model=model)
    finally:
        cache.unlink()
    assert r.track_cache == cache and r.frames == (30, 90)
    assert r.decoded_frames <= 2 * GOP + 1
    check_layout(r.sheet, 2, 5)
    (frame,) = read_frames_at(clip, indices=[30], upright=True)
    box = r.sheet.panels[0][1]
    expected = fit(region(frame.image, face_region(al, frame.image.shape)), box[2] - box[0], box[3] - box[1])
    assert np.array_equal(region(r.sheet.image, box), expected)


def test_cli_preview_commands_and_errors(work, photo, clip, curve, model):
    runner = CliRunner()
    out = work / "cli_grid.png"
    r = runner.invoke(app, ["preview", "grid", str(photo), "--aus", "AU12,AU45", "--levels", "0,1", "-o", str(out),
                            "--model", str(model)])
    assert r.exit_code == 0, r.output
    assert out.is_file() and "wrote" in r.output
    r = runner.invoke(app, ["preview", "frames", str(clip), "--au", "AU12=1", "--every", "4s", "-o",
                            str(work / "cli_frames.png"), "--model", str(model)])
    assert r.exit_code == 0, r.output
    assert (work / "cli_frames_curves.png").is_file()
    blank = work / "blank.png"
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(blank)
    bad = [
        (["preview", "grid", str(work / "missing.jpg")], "no such file"),
        (["preview", "grid", str(photo), "--levels", "0,2"], "--levels"),
        (["preview", "grid", str(photo), "--aus", "AU99"], "unknown AU"),
        (["preview", "grid", str(photo), "-o", str(work / "sheet.bmp")], "unsupported image extension"),
        (["preview", "grid", str(blank)], "no face"),
        (["preview", "grid", str(photo), "--at", "2s"], "--at"),
        (["preview", "interpolate", str(photo), "--steps", "1"], "--steps"),
        (["preview", "sample", str(photo), "--count", "0"], "--count"),
        (["preview", "frames", str(clip), "--au", "AU12=1", "--at", "1", "--every", "2s"], "not both"),
        (["preview", "frames", str(clip)], "nothing to preview"),
        (["preview", "frames", str(clip), "--au", "AU12=1", "--at", "#5000"], "out of range"),
        (["preview", "frames", str(work / "nope.mp4"), "--au", "AU12=1"], "no such file"),
    ]
    for args, message in bad:
        r = runner.invoke(app, [*args, "--model", str(model)])
        assert r.exit_code == 1, (args, r.output)
        assert r.output.startswith("error:") and message in r.output and "Traceback" not in r.output, (args, r.output)
    assert not (work / "sheet.bmp").exists() and not (work / "blank.grid.png").exists()
