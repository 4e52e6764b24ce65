"""Faces through video on real portraits with known trajectories: ids, gaps, cuts, smoothing,
selection, the track table, and bad input."""
from dataclasses import dataclass

import av
import numpy as np
import pytest

from ganivid import testclips as tc
from ganivid.align import LEFT_EYE, RIGHT_EYE, Alignment, alignment_from_landmarks, crop_face, paste_back
from ganivid.errors import ConfigError, DataError, NoFaceError, VideoError
from ganivid.smoothing import one_euro, select, smooth, smooth_series
from ganivid.tracking import TrackConfig, analyse, cued
from ganivid.tracktable import CSV_COLUMNS, DETECTED, TrackTable


@pytest.fixture(scope="module")
def sprites(astronaut, grace_hopper):
    return tc.sprite(astronaut), tc.sprite(grace_hopper)


@pytest.fixture(scope="module")
def crossing(sprites):
    clip = tc.crossing_clip(*sprites, n_frames=30)
    return clip, analyse(clip, TrackConfig(encodings=True))


def ids_per_face(clip: tc.Clip, table: TrackTable) -> dict[str, list[int]]:
    """Track id of the row nearest each true face (within a quarter crop), in frames where at
    least half of that face can be seen."""
    out: dict[str, list[int]] = {}
    for f, faces in enumerate(clip.truth):
        for name, lm in faces.items():
            g = alignment_from_landmarks(lm)
            rows = [(np.hypot(r.alignment.cx - g.cx, r.alignment.cy - g.cy), r.track_id) for r in table.rows_for_frame(f)]
            if clip.visible[f][name] >= 0.5 and rows and min(rows)[0] < 0.25 * g.size:
                out.setdefault(name, []).append(min(rows)[1])
    return out


def test_moving_zooming_rotating_face(sprites):
    """One face over 30 frames: one row per frame, one id, mostly tracked, smoothed centre within
    5% of the eye distance of the truth and steadier than the raw one."""
    clip = tc.moving_clip(sprites[0], n_frames=30)
    raw = analyse(clip)
    assert list(raw.frame) == list(range(30)) and raw.track_ids() == [0]
    assert (raw.state == 1).sum() > 20  # tracked, not detected, in most frames
    sm = smooth(raw)
    truth = np.array([alignment_from_landmarks(t["a"]).as_array() for t in clip.truth])
    iod = np.array([np.linalg.norm(t["a"][RIGHT_EYE].mean(0) - t["a"][LEFT_EYE].mean(0)) for t in clip.truth])
    err = np.hypot(*(sm.params[:, :2] - truth[:, :2]).T) / iod
    assert np.median(err) < 0.05 and err.max() < 0.15
    assert np.abs(sm.params[:, 3] - truth[:, 3]).max() < 3  # degrees, over a -15..15 roll
    jitter = lambda p: np.abs(np.diff(p[:, :2] - truth[:, :2], 2, axis=0)).mean()
    assert jitter(sm.params) < 0.5 * jitter(raw.params)


def test_crossing_faces_keep_their_ids(crossing):
    clip, table = crossing
    ids = ids_per_face(clip, table)
    assert len(set(ids["a"])) == 1 and len(set(ids["b"])) == 1  # no switch while crossing
    assert ids["a"][0] != ids["b"][0]
    assert len(ids["b"]) == 30  # the face in front is never lost


def test_face_leaving_and_returning_gets_its_id_back(sprites):
    clip = tc.reentry_clip(sprites[1])
    table = analyse(clip)
    assert table.track_ids() == [0]
    gone = [f for f, v in enumerate(clip.visible) if not v]
    assert gone and all(not table.rows_for_frame(f) for f in gone)
    assert table.rows_for_frame(len(clip.frames) - 1)  # found again when back
    # ... by the template search near where it left, before the detector's next periodic run
    back = table.rows_for_frame(min(f for f in table.frame if f > max(gone)))
    assert [(r.track_id, r.state) for r in back] == [(0, "tracked")]


def detector_runs(clip: tc.Clip) -> list[int]:
    """Frames on which the tracker ran the (real) detector."""
    from ganivid.faces import DlibDetector

    at, pos = [], [0]

    class Counting(DlibDetector):
        def boxes(self, image):
            at.append(pos[0])
            return super().boxes(image)

    def frames():
        for pos[0], item in enumerate(clip):
            yield item

    analyse(frames(), detector=Counting())
    return at


def test_leaving_or_hidden_faces_cost_no_extra_detector_runs(sprites):
    """A face leaving through the border, or a quarter hidden behind a followed one, goes to the
    search without a detector run (HOG finds whole faces only), and its return by the search
    restarts the periodic clock: the detector runs on the first frame and, on the reentry clip,
    at the one periodic run while the face is away (ids and returns: the tests above)."""
    assert detector_runs(tc.reentry_clip(sprites[1])) == [0, 15]
    assert detector_runs(tc.crossing_clip(*sprites, n_frames=30)) == [0]


def test_sure_faces_are_detected_less_often(sprites):
    """A confirmed face that keeps looking like its template waits sure_stretch x detect_every
    frames for the next periodic detection, and none runs while nothing else in the picture
    changed; sure_stretch=1 without skipping restores every detect_every frames."""
    clip = tc.moving_clip(sprites[0], n_frames=40)
    detected = lambda cfg: (lambda t: list(t.frame[t.state == DETECTED]))(analyse(clip, cfg))
    assert detected(TrackConfig()) == [0]
    assert detected(TrackConfig(skip_unchanged=False)) == [0, 30]
    assert detected(TrackConfig(sure_stretch=1, skip_unchanged=False)) == [0, 15, 30]
    assert detected(TrackConfig(detect_every=1))[:12] == list(range(12))  # 1 means every frame


def test_new_face_found_while_another_is_sure(sprites):
    """A face appearing beside a followed one changes the picture: the periodic run still comes."""
    a, b = sprites
    clip = tc.make_clip({"a": (a, tc.linear(0, 1.8, Alignment(90, 120, 130, 0), Alignment(110, 125, 130, 0))),
                         "b": (b, tc.linear(0.4, 1.8, Alignment(245, 120, 130, 0), Alignment(245, 120, 130, 0)))}, 46)
    table = analyse(clip)
    ids = ids_per_face(clip, table)
    assert len(set(ids["a"])) == 1 and len(ids["a"]) == 46
    assert len(set(ids["b"])) == 1 and ids["b"][0] != ids["a"][0]
    assert min(table.frame[table.track_id == ids["b"][0]]) <= 30  # within sure_stretch x detect_every


def test_cut_to_empty_frame_resets_tracks(sprites):
    clip = tc.cut_clip(sprites[0], n_frames=26, cut_at=10, back_at=16)
    table = analyse(clip)
    assert list(table.cuts) == [10, 16]
    assert all(not table.rows_for_frame(f) for f in range(10, 16))
    before, after = {r.track_id for r in table.rows_for_frame(9)}, {r.track_id for r in table.rows_for_frame(16)}
    assert len(before) == len(after) == 1 and before != after  # a new shot starts new tracks
    assert all(len(table.rows_for_frame(f)) == 1 for f in [*range(10), *range(16, 26)])
    # the cut test made ahead of the tracker (as animate's decoding thread does) changes nothing
    ahead = analyse(cued(clip))
    for k in ("frame", "track_id", "params", "state", "landmarks", "frames", "times", "cuts"):
        assert np.array_equal(getattr(ahead, k), getattr(table, k)), k


@pytest.mark.parametrize("hidden,interpolated", [(3, True), (9, False)])
def test_short_gaps_are_interpolated_long_gaps_left_alone(sprites, hidden, interpolated):
    clip = tc.moving_clip(sprites[0], n_frames=24)
    bg = tc.background(320, 240)
    gap = range(8, 8 + hidden)
    for f in gap:  # the face vanishes (same background, so not a cut)
        clip.frames[f] = bg
    table = analyse(clip, TrackConfig(max_gap=5))
    assert list(table.frames) == list(range(24))  # never drop or duplicate a frame
    rows = [table.rows_for_frame(f) for f in gap]
    if interpolated:
        assert all(len(r) == 1 and r[0].state == "interpolated" for r in rows)
        truth = alignment_from_landmarks(clip.truth[9]["a"])
        assert abs(rows[1][0].alignment.cx - truth.cx) < 0.1 * truth.size
        assert table.track_ids() == [0]
    else:
        assert not any(rows)
    assert table.rows_for_frame(23)


@pytest.mark.parametrize("first_blur,kept", [(3.5, False), (0.0, True)])
def test_weak_detection_never_confirmed_is_dropped(sprites, first_blur, kept):
    """A track started from a weak detection (score < confirm_score) that the detector never finds
    again is taken for a false positive; a strong one is kept though later frames are too blurred
    for the detector."""
    import cv2

    img, _, _ = tc.render(tc.background(320, 240), [(sprites[0], Alignment(160, 120, 150, 0))])
    blurred = cv2.GaussianBlur(img, (0, 0), 4.5)
    frames = [cv2.GaussianBlur(img, (0, 0), first_blur) if first_blur else img] + [blurred] * 31
    table = analyse((i, i / 25, f) for i, f in enumerate(frames))
    assert list(table.frames) == list(range(32))
    assert (len(table) == 32) if kept else (len(table) == 0)


def test_one_euro_follows_real_timestamps():
    """Variable frame rate: a steady motion sampled at irregular times stays a steady motion."""
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.02, 0.06, 60))
    x = np.column_stack([100 + 200 * t, 50 + 0 * t, 150 + 0 * t, 0 * t])
    noisy = x + np.column_stack([rng.normal(0, 1.0, (60, 2)), np.zeros((60, 2))])
    out = smooth_series(noisy, t)
    assert np.abs(out[:, :2] - x[:, :2]).mean() < 0.6 * np.abs(noisy[:, :2] - x[:, :2]).mean()
    assert np.abs(smooth_series(x, t) - x).max() < 0.5  # no lag on a steady motion
    # Driven by time, not frame count: the same path at half the sampling rate comes out the same.
    assert np.allclose(one_euro(x[::2], t[::2])[-1], one_euro(x, t)[-1], atol=5.0)


def test_select_faces(crossing):
    clip, table = crossing
    assert len(select(table, "all")) == len(table)
    largest = select(table, "largest")
    assert len(largest.track_ids()) == 1  # one face per shot, never alternating
    b_id = ids_per_face(clip, table)["b"][0]
    assert largest.track_ids() == [b_id]  # b is the bigger face and always visible
    assert select(table, str(b_id)).track_ids() == [b_id]
    with pytest.raises(ConfigError, match="no face track 99"):
        select(table, 99)
    with pytest.raises(ConfigError):
        select(table, "biggest")


def test_select_by_reference_image(crossing, astronaut, grace_hopper):
    clip, table = crossing
    ids = ids_per_face(clip, table)
    assert select(table, "reference", reference=astronaut).track_ids() == [ids["a"][0]]
    assert select(table, "reference", reference=grace_hopper).track_ids() == [ids["b"][0]]
    with pytest.raises(NoFaceError):
        select(table, "reference", reference=tc.background(200, 200))
    without = analyse(tc.moving_clip(tc.sprite(astronaut), n_frames=3), TrackConfig(encodings=True))
    with pytest.raises(NoFaceError, match="matches"):
        select(without, "reference", reference=grace_hopper)


def test_table_save_load_and_csv(crossing, tmp_path):
    _, table = crossing
    path = tmp_path / "tracks.npz"
    table.save(path)
    back = TrackTable.load(path)
    for k in ("frame", "time_s", "track_id", "params", "state", "landmarks", "frames", "times", "cuts"):
        assert np.array_equal(getattr(back, k), getattr(table, k)), k
    assert back.image_size == (240, 320) and set(back.encodings) == set(table.encodings)
    assert [r.track_id for r in back.rows_for_frame(0)] == [r.track_id for r in table.rows_for_frame(0)]
    csv = tmp_path / "stats.csv"
    table.to_csv(csv, au_columns={"AU12": np.arange(len(table)) / len(table)})
    lines = csv.read_text().splitlines()
    assert lines[0] == ",".join([*CSV_COLUMNS, "AU12"]) and len(lines) == len(table) + 1
    first = lines[1].split(",")
    assert first[0] == "0" and first[7] in ("detected", "tracked", "interpolated")
    table.to_csv(csv, au_columns=np.zeros((len(table), 17)))
    assert csv.read_text().splitlines()[0].endswith(",AU26,AU45")
    with pytest.raises(DataError):
        table.to_csv(tmp_path / "missing" / "stats.csv")
    (tmp_path / "bad.npz").write_bytes(b"not a table")
    with pytest.raises(DataError):
        TrackTable.load(tmp_path / "bad.npz")
    assert not list(tmp_path.glob(".*tmp"))  # no half-written files left behind


@dataclass
class Frame:
    index: int
    image: np.ndarray
    time_s: float | None = None
    pts: int = 0  # time-base units, as video.Frame has: never taken for seconds


def test_frame_objects_and_bad_frame_streams(sprites):
    clip = tc.moving_clip(sprites[0], n_frames=4)
    table = analyse(Frame(i, img, t, pts=1000 * i) for i, t, img in clip)
    assert len(table) == 4 and np.allclose(table.times, clip.times)
    with pytest.raises(VideoError, match="timestamp"):
        analyse([Frame(0, clip.frames[0])])
    with pytest.raises(VideoError, match="increase"):
        analyse([(1, 0.0, clip.frames[0]), (1, 0.04, clip.frames[1])])


def test_frames_decoded_by_pyav(sprites, tmp_path):
    """Compressed, decoded frames with timestamps from the container track like rendered ones."""
    clip = tc.moving_clip(sprites[0], n_frames=12)
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for img in clip.frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    with av.open(str(path)) as src:
        frames = [(i, float(f.time), f.to_ndarray(format="rgb24")) for i, f in enumerate(src.decode(video=0))]
    table = analyse(frames)
    assert len(frames) == 12 and list(table.frame) == list(range(12))
    truth = alignment_from_landmarks(clip.truth[6]["a"])
    assert abs(table.rows_for_frame(6)[0].alignment.cx - truth.cx) < 0.05 * truth.size


# Bad input: each case runs without exceptions and leaves frames without a usable face unedited.

def test_frames_without_faces():
    bg = tc.background(320, 240)
    table = analyse((i, i / 25, bg) for i in range(5))
    assert len(table) == 0 and list(table.frames) == list(range(5))
    assert len(smooth(table)) == 0 and len(select(table, "largest")) == 0


def test_tiny_faces(sprites):
    clip = tc.make_clip({"a": (sprites[0], lambda t: Alignment(160, 120, 30, 0))}, 4)
    table = analyse(clip)
    assert list(table.frames) == list(range(4)) and len(table) <= 4


def test_face_cut_by_the_frame_border(sprites):
    """Half the face outside the frame: tracked or skipped, never an error; its crop pastes back."""
    clip = tc.make_clip({"a": (sprites[0], tc.linear(0, 0.4, Alignment(80, 120, 150, 0), Alignment(-20, 120, 150, 0)))}, 11)
    table = smooth(analyse(clip))
    assert list(table.frames) == list(range(11)) and table.rows_for_frame(0)
    for i in range(len(table)):
        r = table.row(i)
        frame = clip.frames[r.frame]
        crop = crop_face(frame, r.alignment, 64)
        assert np.array_equal(paste_back(frame, crop, crop, r.alignment), frame)


@pytest.mark.parametrize("shape", ["2d", "1channel"])
def test_grayscale_frames(sprites, shape):
    clip = tc.moving_clip(sprites[0], n_frames=5)
    grey = [img.mean(axis=2).astype(np.uint8) for img in clip.frames]
    grey = grey if shape == "2d" else [g[..., None] for g in grey]
    table = analyse(zip(range(5), clip.times, grey))
    assert len(table) == 5
    truth = alignment_from_landmarks(clip.truth[4]["a"])
    assert abs(table.params[4, 0] - truth.cx) < 0.05 * truth.size


def test_4k_frames(sprites):
    clip = tc.make_clip({"a": (sprites[0], tc.linear(0, 0.04, Alignment(1500, 1000, 1000, 0), Alignment(1530, 1000, 1000, 5)))},
                        2, size=(3840, 2160))
    table = analyse(clip)
    assert len(table) == 2 and table.image_size == (2160, 3840)
    truth = alignment_from_landmarks(clip.truth[1]["a"])
    assert abs(table.params[1, 0] - truth.cx) < 0.05 * truth.size


def test_invalid_options():
    with pytest.raises(ConfigError, match="detect_every"):
        TrackConfig(detect_every=0)
    with pytest.raises(ConfigError, match="sure_stretch"):
        TrackConfig(sure_stretch=0)
    with pytest.raises(ConfigError):
        smooth(TrackTable.from_rows([]), min_cutoff=0)


def test_mesh_cues_are_read_per_track_and_interpolated_between_reads(sprites, crossing, tmp_path):
    from ganivid.aus import au_index
    from ganivid.meshaus import SUPPORTED

    clip, table = crossing
    assert table.cues.shape == (len(table), 17) and np.isfinite(table.cues[:, SUPPORTED]).all()
    ids = ids_per_face(clip, table)
    smile = {name: np.median(table.cues[np.isin(table.track_id, v), au_index("AU12")]) for name, v in ids.items()}
    assert smile["a"] > 0.5 > 0.1 > smile["b"]  # mouthSmile: the astronaut smiles, Grace Hopper does not
    table.save(tmp_path / "t.npz")
    assert np.array_equal(TrackTable.load(tmp_path / "t.npz").cues, table.cues, equal_nan=True)
    one = tc.moving_clip(sprites[0], n_frames=12)
    every = analyse(one, TrackConfig(mesh_rate=1000.0))
    sparse = analyse(one, TrackConfig(mesh_rate=1 / (5 * (one.times[1] - one.times[0]))))  # every 5th frame
    assert np.allclose(sparse.cues[[0, 5, 10]], every.cues[[0, 5, 10]], equal_nan=True)
    u = np.linspace(0, 1, 6)[:, None]
    assert np.allclose(sparse.cues[0:6], (1 - u) * every.cues[0] + u * every.cues[5], atol=1e-4, equal_nan=True)
    assert analyse(one, TrackConfig(mesh=False)).cues is None
