"""Real pairs (ganivid/realpairs.py) on self-made couples: Grace Hopper and known warps of her."""

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from ganivid import realpairs as rp
from ganivid.align import alignment_from_landmarks, crop_face, crop_landmarks, warp_by_flow
from ganivid.aus import AU_NAMES
from ganivid.batches import make_batch
from ganivid.faces import DlibDetector
from ganivid.mesh import unavailable
from ganivid.warps import warp, warp_face

AU12 = AU_NAMES.index("AU12")


@pytest.fixture(scope="module")
def hopper(grace_hopper):
    """Grace Hopper (neutral) and her landmarks (68, 2)."""
    return grace_hopper, rp.largest_face(DlibDetector(), grace_hopper)


@pytest.fixture(scope="module")
def smiling(hopper):
    """Grace Hopper smiling by warps' AU12 move, with the moved landmarks."""
    image, lm = hopper
    return warp_face(image, lm, {"AU12": 1.0})


def test_landmark_flow_is_warps_flow(hopper):
    image, lm = hopper
    al = alignment_from_landmarks(lm)
    crop, points = crop_face(image, al, 96), crop_landmarks(lm, al, 96)
    for moves in ({"AU12": 1.0}, {"AU1": 1.0, "AU2": 1.0}, {"AU25": 1.0, "AU26": 1.0}):
        w = warp(crop, points, moves)
        flow = rp.landmark_flow(96, points, w.landmarks)
        assert np.abs(flow - w.flow).mean() < 0.02, moves  # the same mesh, so the same map
        back = rp.landmark_flow(96, w.landmarks, points, mesh=points)
        assert np.abs(back - w.back).mean() < 0.05, moves


def test_registration_undoes_a_head_move(hopper):
    image, lm = hopper
    move = cv2.getRotationMatrix2D((300.0, 260.0), 5.0, 1.08) + np.array([[0, 0, 12.0], [0, 0, -7.0]])
    moved = cv2.warpAffine(image, move, image.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    moved_lm = lm @ move[:, :2].T + move[:, 2]
    al, residual = rp.registered(lm, moved_lm)
    assert residual < 1e-6 and rp.same_pose(lm, moved_lm)
    a, b = crop_face(image, alignment_from_landmarks(lm), 96), crop_face(moved, al, 96)
    assert np.abs(a.astype(float) - b).mean() < 3  # the same face in the same place
    turned = moved_lm.copy()
    turned[[42, 45, 31, 32, 33], 0] -= 0.15 * np.ptp(lm[:, 0])  # a yaw no similarity explains
    assert not rp.same_pose(lm, turned)


def test_pairs_run_both_ways(hopper, smiling):
    (image, lm), (smile, smile_lm) = hopper, smiling
    ds = rp.make_real_pairs([(rp.Shot(image, lm, "neutral"), rp.Shot(smile, smile_lm, "smile"))])
    assert len(ds) == 2 and ds.names == ["neutral -> smile", "smile -> neutral"]
    assert ds.changes[0, AU12] > 0.3 and np.allclose(ds.changes[1], -ds.changes[0])
    assert np.array_equal(ds.targets[1][0], ds.aus[1]) and ds.landmarks.shape == ds.target_landmarks.shape == (2, 68, 2)
    for i in range(2):
        x, t, flow = ds.images[i].astype(float), ds.targets[0][i].astype(float), ds.flows[i].astype(np.float32)
        assert np.abs(warp_by_flow(ds.images[i], flow) - t).mean() < 0.3 * np.abs(x - t).mean()
        assert ds.gaps[i].astype(np.float32).mean() < 0.01  # a warp pair: the flow explains it
    batch = make_batch(ds, np.array([0, 1]), np.array([False, True]))
    assert batch["flow_t"].shape == (2, 2, 96, 96) and batch["c"][0, AU12] > 0.3


def test_labels_from_the_persons_own_neutral(hopper, smiling):
    (image, lm), (smile, smile_lm) = hopper, smiling
    couple = [(rp.Shot(image, lm, "neutral"), rp.Shot(smile, smile_lm, "smile"))]
    ds = rp.make_real_pairs(couple, 32, labeller=rp.reference_labels)
    assert not ds.aus[0].any() and ds.changes[0, AU12] > 0.5  # the neutral photo reads 0


@pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))
def test_mesh_labels_see_the_smile(hopper, smiling):
    (image, lm), (smile, smile_lm) = hopper, smiling
    neutral = rp.Shot(image, lm, "neutral")
    change = rp.mesh_labels(rp.Shot(smile, smile_lm, "smile"), neutral) - rp.mesh_labels(neutral, neutral)
    assert change[AU12] > 0.2


def test_cache_round_trip(hopper, smiling, tmp_path):
    (image, lm), (smile, smile_lm) = hopper, smiling
    ds = rp.make_real_pairs([(rp.Shot(image, lm, "a"), rp.Shot(smile, smile_lm, "b"))], 64)
    back = rp.read_cache(rp.write_cache(ds, tmp_path / "real.npz"))
    assert back.names == ds.names and np.array_equal(back.images, ds.images) and np.array_equal(back.flows, ds.flows)
    assert np.array_equal(back.changes, ds.changes) and np.array_equal(back.target_landmarks, ds.target_landmarks)
    assert not (tmp_path / "real.tmp.npz").exists()


def test_london_layout_keeps_the_holdout_out(hopper, smiling, tmp_path):
    ids = ["001", "002", "003"]
    held = rp.london_holdout(ids, 1)[0]
    blank = next(i for i in ids if i != held)
    for kind in ("neutral", "smiling"):
        (tmp_path / kind).mkdir()
        for i in ids:
            photo = hopper[0] if kind == "neutral" else smiling[0]
            Image.fromarray(np.full_like(photo, 128) if (i, kind) == (blank, "smiling") else photo).save(
                tmp_path / kind / f"{i}.jpg", quality=95)
    skipped = []
    couples = rp.london_couples(tmp_path, holdout=1, skipped=skipped)
    kept = next(i for i in ids if i not in (held, blank))
    assert [c[1].name for c in couples] == [f"london/{kept}/smiling"]
    assert skipped == [f"london/{blank}: no face"]


def test_grid_clip_pairs_closed_with_open(hopper, tmp_path):
    image, lm = hopper
    small, small_lm = cv2.resize(image, (256, 300), interpolation=cv2.INTER_AREA), lm * (256 / 512, 300 / 600)
    opening = [0, 0, 0, 0, 0.6, 1.0, 1.0, 0.7, 0, 0, 0, 0]
    path = tmp_path / "talk.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": "12"})
        stream.width, stream.height, stream.pix_fmt = 256, 300, "yuv420p"
        for s in opening:
            frame = warp_face(small, small_lm, {"AU25": s, "AU26": s})[0] if s else small
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    couples = rp.grid_couples(path, per_clip=2, spacing=2)
    assert len(couples) == 2
    for closed, open_ in couples:
        c, o = int(closed.name.rsplit("/", 1)[1]), int(open_.name.rsplit("/", 1)[1])
        assert opening[c] == 0 and opening[o] >= 0.6 and closed.name.startswith("grid/talk/")
    ds = rp.make_real_pairs(couples)
    assert (ds.changes[0::2, AU_NAMES.index("AU25")] > 0.3).all()
