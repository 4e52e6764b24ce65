"""Real paired training data: one person shown with two expressions, both faces framed alike.

- London set (../shared/data/london; DeBruine & Jones 2017, CC BY 4.0): each training identity's
  neutral and smiling photos, neutral -> smile and smile -> neutral. The identities of
  `london_holdout` (the benchmarks' held-out faces) are never used.
- GRID clips (../shared/data/videos/grid; Cooke et al. 2006, CC BY 4.0): frames of one speaker
  with the mouth open (the widest inner-lip gaps) and the closed frame nearest in time, both ways.

Crops: `align.crop_face` at the reference's alignment (the neutral photo, the closed frame), as
training data is cropped; the other photo at that alignment carried over by a similarity fitted
on the eye corners and nose (`registered`), since London heads move between the two photos by a
median 0.09 crop sides (9 px of 96), which a shared crop would leave in the pair. Outside the
face the target is the input moved by the flow (see `real_pair`).

A pair has `pairs.make_flow_pairs`' fields: x, y, x_t, y_t, flow (backward, pixels:
x_t(p) ~ x(p + flow(p))), gap (0..1, where the flow does not explain x_t) and the request
change = y_t - y; the dataset also carries both faces' 68 landmarks in crop pixels
(`landmarks`, `target_landmarks`). Unlike a warp pair's, the flow is a prior, not the truth: the
piecewise-affine map between the two photos' landmarks on warps' mesh, which knows nothing of
teeth or cheeks. AU labels come from one function, passed in as `labeller` (default
`landmark_labels`), so a better estimator replaces it in one place. With the population
baseline (portraits, about half of them smiling) the London smiles barely read as AU12: over
the 71 training identities the median AU12 change is 0.0 (mean AU12 +0.16, AU15 -0.46, AU25
+0.28; the neutral faces read AU15 ~0.46). `mesh_labels` (meshaus, MediaPipe) reads a median
AU12 change of +0.63, `reference_labels` (the person's own neutral photo as the baseline) +0.43."""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial import Delaunay

from ganivid.align import Alignment, alignment_from_landmarks, crop_face, crop_landmarks, warp_by_flow
from ganivid.aus import AU_NAMES, NUM_AUS
from ganivid.data import ArrayDataset
from ganivid.estimate import estimate_aus, features, stable_landmarks
from ganivid.warps import _backward_map, _frame, _identity

# AU labels (17,) in 0..1 of a shot, given its couple's reference shot (the neutral photo, the closed frame).
Labeller = Callable[["Shot", "Shot"], np.ndarray]
LIP_GAP = AU_NAMES.index("AU25")  # estimate.features' inner-lip gap, in eye-distance units d
CLOSED_GAP = 0.03  # below it a GRID mouth is closed (dlib's gap on closed lips: 0-0.03 d)
OPEN_GAP = 0.10  # above it a GRID mouth is open (the clips' 90th percentiles: 0.11-0.26 d)
STILL = [27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45]  # nose and eye corners
MAX_RESIDUAL = 0.04  # RMS misfit (d) of the registering similarity above which a couple is not one pose
# Colour difference (0..255, max over channels, after a 1 px blur) that counts fully as unexplained;
# below NOISE it is photo noise and small misfits of the landmark flow.
GAP_FULL, GAP_NOISE = 40.0, 8.0


@dataclass(frozen=True)
class Shot:
    """One photo or frame of a person: RGB uint8 (H, W, 3), its face's 68 landmarks (68, 2) in
    image pixels, and a name for reports (`london/001/smiling`, `grid/bbaf2n/31`)."""

    image: np.ndarray
    landmarks: np.ndarray
    name: str


def london_holdout(ids: Iterable[str], count: int = 20) -> list[str]:
    """The held-out London identities, the rule of benchmarks/edit_quality.py: the `count` ids
    (file stems such as "001") with the smallest sha1(id)."""
    return sorted(ids, key=lambda i: hashlib.sha1(i.encode()).hexdigest())[:count]


def landmark_labels(shot: Shot, reference: Shot) -> np.ndarray:
    """AU labels (17,) in 0..1 of a shot: ganivid's landmark estimator with the population
    baseline (`reference` unused), unsupported AUs 0."""
    return np.nan_to_num(estimate_aus(shot.landmarks), nan=0.0)


def mesh_labels(shot: Shot, reference: Shot) -> np.ndarray:
    """AU labels (17,) in 0..1 of a shot: meshaus' MediaPipe estimator with the population's rest
    cues (`reference` unused), unsupported AUs 0."""
    from ganivid.meshaus import mesh_aus, read_cues

    return np.nan_to_num(mesh_aus(read_cues(shot.image, shot.landmarks)), nan=0.0)


def reference_labels(shot: Shot, reference: Shot) -> np.ndarray:
    """AU labels (17,) in 0..1 of a shot with the reference's features as the person's neutral
    baseline (the reference itself reads 0), unsupported AUs 0."""
    return np.nan_to_num(estimate_aus(shot.landmarks, features(reference.landmarks)), nan=0.0)


def largest_face(detector, image: np.ndarray) -> np.ndarray | None:
    """Stable 68 landmarks (68, 2) of the largest face of `image`, or None when none is found."""
    boxes = detector.boxes(image)
    if not boxes:
        return None
    box = max(boxes, key=lambda b: (b[0][2] - b[0][0]) * (b[0][3] - b[0][1]))[0]
    return stable_landmarks(detector, image, box)


def _anchors(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """warps' extra mesh points of a face (68, 2): brow anchors 0.55 d above the brows (10, 2)
    and the ring 1.5x the face outline (27, 2)."""
    origin, rot, d = _frame(lm)
    up = (lm - origin) @ rot / d
    brows = up[17:27] + (0, -0.55)
    centre = np.vstack([up, brows]).mean(0)
    ring = centre + 1.5 * (np.vstack([up[0:17], brows]) - centre)
    return origin + d * brows @ rot.T, origin + d * ring @ rot.T


def landmark_flow(size: int, src: np.ndarray, dst: np.ndarray, mesh: np.ndarray | None = None) -> np.ndarray:
    """Backward flow (size, size, 2) float32 in pixels of a crop, moving the face of landmarks
    `src` (68, 2) to `dst` (68, 2), piecewise affine on warps' mesh of the face `mesh` (default
    `src`): its Delaunay triangles, its forehead anchors and ring, which stay put, so nothing
    outside the ring moves. Both pairs of a couple share one mesh: triangulated on each side's
    own landmarks, the maps would differ by pixels wherever a diagonal flips."""
    ref = np.asarray(src if mesh is None else mesh, np.float64).copy()
    # Closed lips give coincident inner-lip points: part them by a pixel so that the mesh has a
    # (thin) triangle to open up, as warps does.
    for a, b in ((61, 67), (62, 66), (63, 65)):
        ref[b, 1] = max(ref[b, 1], ref[a, 1] + 1.0)
    fixed = np.vstack(_anchors(ref))  # forehead and ring stay: raised brows compress the forehead
    tris = Delaunay(np.vstack([ref, fixed]), qhull_options="QJ").simplices
    s, d = np.vstack([src, fixed]), np.vstack([dst, fixed])
    return (_backward_map((size, size), s, d, tris) - _identity((size, size))).astype(np.float32)


def face_mask(size: int, *faces: np.ndarray) -> np.ndarray:
    """Weight (size, size) float32 0..1: the hull of the faces' landmarks (68, 2) and brow anchors,
    grown 5 % about its centre and feathered over ~0.05 d."""
    pts = np.vstack([np.vstack([f, _anchors(np.asarray(f, np.float64))[0]]) for f in faces])
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)
    hull = hull.mean(0) + 1.05 * (hull - hull.mean(0))
    mask = np.zeros((size, size), np.float32)
    cv2.fillConvexPoly(mask, np.round(hull * 16).astype(np.int32), 1.0, cv2.LINE_AA, 4)
    d = _frame(np.asarray(faces[0], np.float64))[2]
    return cv2.GaussianBlur(mask, (0, 0), max(0.5, 0.05 * d))


def unexplained(x: np.ndarray, flow: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Gap (S, S) float32 0..1: how much of x_t the flowed x does not explain, noise removed."""
    miss = np.abs(warp_by_flow(x, flow).astype(np.float32) - t.astype(np.float32)).max(-1)
    return np.clip((cv2.GaussianBlur(miss, (0, 0), 1.0) - GAP_NOISE) / (GAP_FULL - GAP_NOISE), 0, 1)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, scale, shift) taking points src (N, 2) to dst (N, 2)."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    n = float((s ** 2).sum())
    a, b = float((s * d).sum()) / n, float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / n
    rot = np.array([[a, -b], [b, a]])
    return np.hstack([rot, (md - rot @ ms)[:, None]])


def registered(ref: np.ndarray, other: np.ndarray) -> tuple[Alignment, float]:
    """The alignment that crops face `other` (68, 2) as the reference's alignment crops face
    `ref`, by a similarity fitted on STILL (eye corners, nose), and the fit's RMS residual in
    eye-corner distances d of `ref` (what the similarity cannot explain: a turned head)."""
    m = similarity(np.asarray(ref, np.float64)[STILL], np.asarray(other, np.float64)[STILL])
    al = alignment_from_landmarks(ref)
    cx, cy = m[:, :2] @ (al.cx, al.cy) + m[:, 2]
    scale, turn = float(np.hypot(m[0, 0], m[1, 0])), float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))
    miss = np.asarray(ref, np.float64)[STILL] @ m[:, :2].T + m[:, 2] - np.asarray(other, np.float64)[STILL]
    d = float(np.linalg.norm(np.asarray(ref, np.float64)[[42, 45]].mean(0) - np.asarray(ref, np.float64)[[36, 39]].mean(0)))
    return Alignment(float(cx), float(cy), al.size * scale, al.angle + turn), float(np.sqrt((miss ** 2).sum(1).mean()) / d)


def real_pair(x: Shot, al_x: Alignment, t: Shot, al_t: Alignment, size: int,
              mesh_on_target: bool = False) -> tuple[np.ndarray, ...]:
    """The images of one pair from shot `x` cropped at `al_x` to shot `t` cropped at `al_t`:
    (x, x_t, flow, gap, landmarks of x, landmarks of x_t (68, 2) in crop pixels); the flow's
    mesh is the target's face when `mesh_on_target`."""
    cx, ct = crop_face(x.image, al_x, size), crop_face(t.image, al_t, size)
    lx, lt = crop_landmarks(x.landmarks, al_x, size), crop_landmarks(t.landmarks, al_t, size)
    flow = landmark_flow(size, lx, lt, lt if mesh_on_target else lx)
    # Outside the face the target is the input moved by the flow: there hair, shoulders and the
    # background shift with the registration, and no request should repaint them.
    inside = face_mask(size, lx, lt)[..., None]
    ct = np.round(ct * inside + warp_by_flow(cx, flow) * (1 - inside)).astype(np.uint8)
    return cx, ct, flow, unexplained(cx, flow, ct), lx, lt


def same_pose(ref: np.ndarray, other: np.ndarray) -> bool:
    """Whether two faces (68, 2) show one pose up to a similarity (MAX_RESIDUAL)."""
    return registered(ref, other)[1] <= MAX_RESIDUAL


def make_real_pairs(couples: Sequence[tuple[Shot, Shot]], size: int = 96, *, labeller: Labeller = landmark_labels,
                    source: str = "real pairs") -> ArrayDataset:
    """Both pairs (reference -> other, other -> reference) of each couple, cropped at the
    reference's alignment and its registration, the flows on the reference's mesh; `size` is
    the model's image_size. Items are
    named `a -> b`; `landmarks` and `target_landmarks` (N, 68, 2) ride along as attributes."""
    if not couples:
        raise ValueError("no couples to pair")
    n = 2 * len(couples)
    xs, ts = np.empty((n, size, size, 3), np.uint8), np.empty((n, size, size, 3), np.uint8)
    ys, yts, changes = (np.empty((n, NUM_AUS), np.float32) for _ in range(3))
    flows, gaps = np.empty((n, size, size, 2), np.float16), np.empty((n, size, size), np.float16)
    lms, lts = np.empty((n, 68, 2), np.float32), np.empty((n, 68, 2), np.float32)
    names = []
    for k, (ref, other) in enumerate(couples):
        al_ref, al_other = alignment_from_landmarks(ref.landmarks), registered(ref.landmarks, other.landmarks)[0]
        y_ref, y_other = (labeller(s, ref).astype(np.float32) for s in (ref, other))
        for j, (a, al_a, y, b, al_b, y_t) in enumerate(((ref, al_ref, y_ref, other, al_other, y_other),
                                                         (other, al_other, y_other, ref, al_ref, y_ref))):
            i = 2 * k + j
            xs[i], ts[i], flows[i], gaps[i], lms[i], lts[i] = real_pair(a, al_a, b, al_b, size, mesh_on_target=j == 1)
            ys[i], yts[i], changes[i] = y, y_t, y_t - y
            names.append(f"{a.name} -> {b.name}")
    ds = ArrayDataset(xs, ys, target_images=ts, target_aus=yts, source=source, flows=flows, gaps=gaps,
                      changes=changes)
    ds.names, ds.landmarks, ds.target_landmarks = names, lms, lts
    return ds


def london_couples(root: Path, detector=None, holdout: int = 20, skipped: list[str] | None = None) -> list[tuple[Shot, Shot]]:
    """(neutral, smiling) shots of the London training identities under `root` (neutral/ID.jpg,
    smiling/ID.jpg); identities without a face in both or in another pose go to `skipped`."""
    from ganivid.faces import DlibDetector
    from ganivid.images import read_image

    det = detector or DlibDetector()
    ids = sorted(p.stem for p in (root / "neutral").glob("*.jpg") if (root / "smiling" / p.name).is_file())
    held = set(london_holdout(ids, holdout))
    out = []
    for i in (i for i in ids if i not in held):
        shots = []
        for kind in ("neutral", "smiling"):
            image = read_image(root / kind / f"{i}.jpg")
            lm = largest_face(det, image)
            shots.append(None if lm is None else Shot(image, lm, f"london/{i}/{kind}"))
        if None in shots or not same_pose(shots[0].landmarks, shots[1].landmarks):
            if skipped is not None:
                skipped.append(f"london/{i}: " + ("no face" if None in shots else "another pose"))
            continue
        out.append((shots[0], shots[1]))
    return out


def grid_couples(clip: Path, detector=None, per_clip: int = 8, spacing: int = 3,
                 skipped: list[str] | None = None) -> list[tuple[Shot, Shot]]:
    """(closed, open) frames of one GRID clip: up to `per_clip` open frames (gap >= OPEN_GAP,
    widest first, at least `spacing` frames apart), each with the closed frame (gap < CLOSED_GAP)
    nearest in time and in the same pose; frames without a face are left out."""
    import av

    from ganivid.faces import DlibDetector

    det = detector or DlibDetector()
    with av.open(str(clip)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    lms = [largest_face(det, f) for f in frames]
    found = [k for k, lm in enumerate(lms) if lm is not None]
    if len(found) < len(frames) and skipped is not None:
        skipped.append(f"grid/{clip.stem}: {len(frames) - len(found)} frames without a face")
    gap = {k: float(features(lms[k])[LIP_GAP]) for k in found}
    closed = [k for k in found if gap[k] < CLOSED_GAP]
    out: list[tuple[Shot, Shot]] = []
    taken: list[int] = []
    for k in sorted((k for k in found if gap[k] >= OPEN_GAP), key=lambda k: -gap[k]):
        if len(out) == per_clip:
            break
        if any(abs(k - j) < spacing for j in taken):
            continue
        near = [j for j in sorted(closed, key=lambda j: abs(j - k)) if same_pose(lms[j], lms[k])]
        if not near:
            continue
        taken.append(k)
        j = near[0]
        out.append((Shot(frames[j], lms[j], f"grid/{clip.stem}/{j}"), Shot(frames[k], lms[k], f"grid/{clip.stem}/{k}")))
    return out


@dataclass(frozen=True)
class RealPairs:
    """What `real_pairs` made: the dataset, its counts by source, what it skipped, and seconds."""

    data: ArrayDataset
    counts: dict[str, int]
    skipped: list[str]
    seconds: float


def real_pairs(data_root: Path, size: int = 96, *, labeller: Labeller = landmark_labels, per_clip: int = 8,
               holdout: int = 20) -> RealPairs:
    """Every real pair under `data_root` (the shared data folder): London training identities
    and GRID clips, whichever are present.

    Raises:
        DataError: neither source gave a pair.
    """
    from ganivid.errors import DataError
    from ganivid.faces import DlibDetector

    t0 = time.perf_counter()
    det, skipped = DlibDetector(), []
    london = data_root / "london"
    couples = {"london": london_couples(london, det, holdout, skipped) if (london / "neutral").is_dir() else [],
               "grid": [c for clip in sorted((data_root / "videos" / "grid").glob("*.mpg"))
                        for c in grid_couples(clip, det, per_clip, skipped=skipped)]}
    every = couples["london"] + couples["grid"]
    if not every:
        raise DataError(f"no real pairs under {data_root}: need london/neutral + london/smiling or videos/grid/*.mpg")
    ds = make_real_pairs(every, size, labeller=labeller, source=f"real pairs of {data_root}")
    return RealPairs(ds, {k: 2 * len(v) for k, v in couples.items()}, skipped, time.perf_counter() - t0)


def write_cache(ds: ArrayDataset, path: Path) -> Path:
    """Save pairs as training/ship.py caches them (x, y, x_t, y_t, flows, gaps, changes), with
    the item names and landmarks, through a temporary file."""
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, x=ds.images, y=ds.aus, x_t=ds.targets[0], y_t=ds.targets[1], flows=ds.flows, gaps=ds.gaps,
             changes=ds.changes, names=np.array(ds.names), landmarks=ds.landmarks, target_landmarks=ds.target_landmarks)
    tmp.replace(path)
    return path


def read_cache(path: Path) -> ArrayDataset:
    """Pairs saved by `write_cache` (or training/ship.py) as an ArrayDataset."""
    z = np.load(path)
    known = {k: z[k] for k in ("flows", "gaps", "changes") if k in z}
    ds = ArrayDataset(z["x"], z["y"], target_images=z["x_t"], target_aus=z["y_t"], source=str(path), **known)
    if "names" in z:
        ds.names = z["names"].tolist()
    for k in ("landmarks", "target_landmarks"):
        if k in z:
            setattr(ds, k, z[k])
    return ds
