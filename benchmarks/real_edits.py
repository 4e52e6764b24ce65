"""Edits against real expressions (issue #24, "What it must show" 2-4): one JSON line on stdout
(progress on stderr), appended to benchmarks/results/real_edits.jsonl, and a figure.

    python benchmarks/real_edits.py [--model PATH] [--london 20] [--portraits 20]
        [--figure benchmarks/results/real_edits.png] [--results benchmarks/results/real_edits.jsonl]

Edits are made as benchmarks/edit_quality.py makes them (`ganivid.still.animate_image`, its
REQUESTS, PNGs in a temp dir) on its held-out faces: the London identities of `london_holdout`
and the portraits of `portraits_holdout` with dlib iod >= 40 px. Every image is read by
MediaPipe's mesh and blendshapes (ganivid.mesh), started from the input photo's dlib landmarks.
- smile, London only (neutral photo + smile request vs the same person's real smiling photo):
  `progress` = <edit - neutral, smile - neutral> / |smile - neutral|^2 of the 52 blendshape
  scores (goal: median >= 0.5); `ssim_better` = share of identities whose mouth box is closer to
  the real smile in the edit than in the neutral photo (grey SSIM; every photo warped by a
  similarity fitted on its own mesh's eye corners and nose ridge into the neutral photo's pixels,
  scale ~1, so native resolution; the box spans both photos' lip points plus 0.15 iod; goal
  >= 0.8); `teeth`: where the real smile shows teeth (`shows_teeth`), mean luma inside the
  edit's inner-lip contour / the real smile's (goal >= 0.6; an edit whose mouth did not open
  counts 0).
- jaw_drop (AU25 = AU26 = 1) on the held-out faces whose mouth is closed (mesh lip gap < 0.03
  iod): mean luma inside the edited inner-lip contour / mean luma of the edited lips (goal < 0.6,
  median; a mouth that did not open counts 1: stretched lips, no cavity).
- cast: edit_quality's figure (mean change of CIELAB a*, b* over the dlib landmark box grown
  10 %) for every request at intensity 1 on every held-out face; goal: max |.| <= 2.
Luma is BT.601 (cv2 RGB2GRAY); areas are in iod^2 (iod: dlib eye-centre distance of the photo).
Figure: input | edited (smile) | real smile at native resolution for a few held-out identities
(Face Research Lab London Set, DeBruine & Jones 2017, CC BY 4.0)."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # edit_quality and mediapipe_reader beside this file
import edit_quality as eq  # noqa: E402

REPO = eq.REPO
LONDON = eq.DATA / "london"
ATTRIBUTION = "Face Research Lab London Set, DeBruine & Jones 2017, CC BY 4.0"
# Mesh contours in polygon order (upper lip left to right, then the lower lip back).
INNER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
OUTER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
STABLE = (33, 133, 362, 263, 168, 6, 197, 195, 5, 4)  # eye corners and nose ridge: a smile moves neither
# Closed lips still enclose a sliver: ~0.01 iod^2 on the London set's closed smiles, 0.03-0.2 open.
OPEN_AREA = 0.03
# Teeth are the brightest thing in a mouth: the interior's 90th-percentile luma >= 1.2x the lips'
# mean (checked by eye on 16 London smiles: parted dark mouths and shiny closed lips read < 1.2).
TEETH_P90 = 1.2
CLOSED_GAP = 0.03  # mesh inner-lip gap (13-14) in iod below which a jaw-drop input counts as closed
GOALS = {"progress": 0.5, "ssim_better": 0.8, "teeth_ratio": 0.6, "cavity_ratio": 0.6, "cast": 2.0}


class MouthLuma(NamedTuple):
    """Luma of one mouth: inside the inner-lip contour (mean, 90th percentile), of the lips
    (between the contours, mean), and the interior's area in iod^2."""

    interior: float
    interior_p90: float
    lips: float
    area: float


def polygon_mask(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Boolean mask of a polygon (N, 2) in pixel-index coordinates, 1/16 px vertices."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(points, np.float64) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return mask.astype(bool)


def mouth_luma(image: np.ndarray, mesh: np.ndarray, iod: float) -> MouthLuma:
    """Luma figures of the mouth of `mesh` (478, 2+) on an RGB image."""
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float64)
    inner = polygon_mask(grey.shape, mesh[list(INNER_LIP), :2])
    lips = polygon_mask(grey.shape, mesh[list(OUTER_LIP), :2]) & ~inner
    v = grey[inner] if inner.any() else np.zeros(1)
    return MouthLuma(float(v.mean()), float(np.percentile(v, 90)), float(grey[lips].mean()) if lips.any() else np.nan,
                     float(inner.sum()) / iod ** 2)


def shows_teeth(m: MouthLuma) -> bool:
    """Whether a mouth is open and shows teeth (OPEN_AREA, TEETH_P90)."""
    return m.area >= OPEN_AREA and m.interior_p90 >= TEETH_P90 * m.lips


def teeth_ratio(edit: MouthLuma, real: MouthLuma) -> float:
    """Edit's interior luma / the real smile's; 0 when the edit's mouth did not open."""
    return edit.interior / real.interior if edit.area >= OPEN_AREA else 0.0


def cavity_ratio(m: MouthLuma) -> float:
    """Interior luma / lips' luma of a mouth asked to open; 1 when it did not open."""
    return m.interior / m.lips if m.area >= OPEN_AREA else 1.0


def progress(edit: np.ndarray, neutral: np.ndarray, real: np.ndarray) -> float:
    """How far `edit` moved from `neutral` towards `real` (1 = all the way), by projection."""
    d = np.asarray(real, np.float64) - neutral
    return float(np.dot(np.asarray(edit, np.float64) - neutral, d) / max(np.dot(d, d), 1e-12))


def to_frame(image: np.ndarray, mesh: np.ndarray, ref_mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`image` and its mesh (478, 2) moved into the pixels of the face of `ref_mesh` by a
    similarity fitted on the STABLE points."""
    src, dst = mesh[list(STABLE), :2].astype(np.float32), ref_mesh[list(STABLE), :2].astype(np.float32)
    m = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)[0]
    out = cv2.warpAffine(image, m, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    return out, mesh[:, :2] @ m[:, :2].T + m[:, 2]


def mouth_ssim(neutral, edit, real, iod: float) -> tuple[float, float]:
    """(SSIM(edit, real), SSIM(neutral, real)) of grey mouth boxes; each argument is
    (image, mesh), and all are moved into the neutral photo's pixels."""
    from skimage.metrics import structural_similarity

    ref = neutral[1]
    moved = [to_frame(img, mesh, ref) for img, mesh in (neutral, edit, real)]
    lips = np.vstack([moved[0][1][list(eq.mpr.LIPS)], moved[2][1][list(eq.mpr.LIPS)]])
    pad = 0.15 * iod
    x0, y0 = np.maximum(np.floor(lips.min(0) - pad).astype(int), 0)
    x1, y1 = np.ceil(lips.max(0) + pad).astype(int)
    grey = [cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[y0:y1, x0:x1] for img, _ in moved]
    ssim = lambda a, b: float(structural_similarity(a, b, data_range=255))  # noqa: E731
    return ssim(grey[1], grey[2]), ssim(grey[0], grey[2])


def native_crop(image: np.ndarray, landmarks: np.ndarray, side: int) -> np.ndarray:
    """A side x side square of `image` around its face's landmark box centre, no resampling."""
    half = side // 2
    c = np.round((landmarks.min(0) + landmarks.max(0)) / 2).astype(int) + half
    pad = cv2.copyMakeBorder(image, half, half, half, half, cv2.BORDER_REPLICATE)
    return pad[c[1] - half:c[1] - half + side, c[0] - half:c[0] - half + side]


def figure(path: Path, rows: list[list[np.ndarray]], names: list[str]) -> None:
    """Rows of equal-size native-resolution tiles under a title and column names, as one PNG."""
    from PIL import Image

    side = rows[0][0].shape[0]
    width = side * len(names)
    head = np.full((50, width, 3), 255, np.uint8)
    cv2.putText(head, ATTRIBUTION, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for k, n in enumerate(names):
        cv2.putText(head, n, (k * side + 6, 42), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.vstack([head] + [np.hstack(r) for r in rows])).save(path)


def r3(v) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), 3)


def med(values) -> float | None:
    return r3(np.median(values)) if len(values) else None


def evaluate(args) -> dict:
    from ganivid.engine import load_engine
    from ganivid.images import read_image
    from ganivid.mesh import MediaPipeReader
    from ganivid.still import animate_image, find_faces

    t0 = time.time()
    reader = MediaPipeReader(args.task_file)
    engine = load_engine(args.model, "cpu")
    chosen = argparse.Namespace(portraits=args.portraits, london=args.london, clip="")
    faces = [f for f in eq.held_out_faces(chosen, None)
             if f[0] != "london" or (LONDON / "smiling" / f"{f[1]}.jpg").is_file()]
    london = [f[1] for f in faces if f[0] == "london"]
    on_figure = {london[k] for k in np.linspace(0, len(london) - 1, min(args.figure_rows, len(london))).round().astype(int)}
    smiles, jaws, casts, tiles = [], [], {q: [] for q in eq.REQUESTS}, []
    side = 0
    with tempfile.TemporaryDirectory(prefix="real_edits_") as tmp:
        for n, (subset, tag, path) in enumerate(faces):
            photo = read_image(path)
            face = find_faces(photo)[0]
            iod = eq.upright(face.landmarks, eq.DLIB)[1]
            mp_in = reader.read_dlib(photo, face.landmarks)
            edits = {}
            for q, (aus, _) in eq.REQUESTS.items():
                out = Path(tmp) / f"{subset}_{tag}_{q}.png"
                animate_image(path, out, au=aus, model=engine, overwrite=True)
                edits[q] = read_image(out)
                region = eq.face_region(face.landmarks, photo.shape)
                cast = (eq.lab(edits[q], region) - eq.lab(photo, region)).reshape(-1, 3).mean(0)[1:]
                casts[q].append(float(np.abs(cast).max()))
            gap = float(np.linalg.norm(mp_in.mesh[13, :2] - mp_in.mesh[14, :2])) / iod
            if gap < CLOSED_GAP:
                jaw = mouth_luma(edits["jaw_drop"], reader.read_dlib(edits["jaw_drop"], face.landmarks).mesh, iod)
                jaws.append({"set": subset, "ratio": cavity_ratio(jaw), "opened": jaw.area >= OPEN_AREA})
            line = f"[{n + 1}/{len(faces)}] {subset} {tag}: gap {gap:.3f}"
            if subset == "london":
                real = read_image(LONDON / "smiling" / f"{tag}.jpg")
                real_face = find_faces(real)[0]
                mp_real = reader.read_dlib(real, real_face.landmarks)
                mp_edit = reader.read_dlib(edits["smile"], face.landmarks)
                real_iod = eq.upright(real_face.landmarks, eq.DLIB)[1]
                m_real, m_edit = mouth_luma(real, mp_real.mesh, real_iod), mouth_luma(edits["smile"], mp_edit.mesh, iod)
                s_edit, s_in = mouth_ssim((photo, mp_in.mesh), (edits["smile"], mp_edit.mesh), (real, mp_real.mesh), iod)
                row = {"progress": progress(mp_edit.scores, mp_in.scores, mp_real.scores),
                       "progress_smile": progress([mp_edit.score(*eq.READING["smile"])], [mp_in.score(*eq.READING["smile"])],
                                                  [mp_real.score(*eq.READING["smile"])]),
                       "ssim_edit": s_edit, "ssim_neutral": s_in, "teeth": shows_teeth(m_real),
                       "teeth_ratio": teeth_ratio(m_edit, m_real), "edit_opened": m_edit.area >= OPEN_AREA}
                smiles.append(row)
                line += f", progress {row['progress']:+.2f}, ssim {s_edit:.3f} vs {s_in:.3f}, teeth {row['teeth']}"
                if tag in on_figure:
                    side = side or int(round(1.4 * max(np.ptp(face.landmarks, 0)))) // 2 * 2
                    tiles.append((photo, face.landmarks, edits["smile"], real, real_face.landmarks))
            print(line, file=sys.stderr)
    if args.figure and tiles:
        figure(Path(args.figure), [[native_crop(p, lm, side), native_crop(e, lm, side), native_crop(s, lm_s, side)]
                                   for p, lm, e, s, lm_s in tiles], ["input (neutral)", "edited: smile", "real smile"])
    teeth = [x for x in smiles if x["teeth"]]
    smile = {"identities": len(smiles), "au": eq.REQUESTS["smile"][0],
             "progress": med([x["progress"] for x in smiles]),
             "progress_smile_score": med([x["progress_smile"] for x in smiles]),
             "ssim_better": r3(np.mean([x["ssim_edit"] > x["ssim_neutral"] for x in smiles])) if smiles else None,
             "ssim_edit": med([x["ssim_edit"] for x in smiles]), "ssim_neutral": med([x["ssim_neutral"] for x in smiles]),
             "teeth": {"identities": len(teeth), "ratio": med([x["teeth_ratio"] for x in teeth]),
                       "ratio_min": r3(min((x["teeth_ratio"] for x in teeth), default=None)),
                       "met": sum(x["teeth_ratio"] >= GOALS["teeth_ratio"] for x in teeth),
                       "edit_opened": sum(x["edit_opened"] for x in teeth)}}
    jaw = {"faces": len(jaws), "sets": {s: sum(j["set"] == s for j in jaws) for s in ("london", "portraits")},
           "au": eq.REQUESTS["jaw_drop"][0], "ratio": med([j["ratio"] for j in jaws]),
           "ratio_worst": r3(max((j["ratio"] for j in jaws), default=None)), "opened": sum(j["opened"] for j in jaws)}
    cast = {q: r3(max(v)) for q, v in casts.items() if v}
    met = {"progress": smile["progress"] is not None and smile["progress"] >= GOALS["progress"],
           "ssim_better": smile["ssim_better"] is not None and smile["ssim_better"] >= GOALS["ssim_better"],
           "teeth": smile["teeth"]["ratio"] is not None and smile["teeth"]["ratio"] >= GOALS["teeth_ratio"],
           "cavity": jaw["ratio"] is not None and jaw["ratio"] < GOALS["cavity_ratio"],
           "cast": bool(cast) and max(cast.values()) <= GOALS["cast"]}
    return {"benchmark": "real_edits", "model": str(args.model or "models/ganivid.safetensors"),
            "faces": len(faces), "sets": {s: sum(f[0] == s for f in faces) for s in ("london", "portraits")},
            "smile": smile, "jaw_drop": jaw, "cast_max": cast, "goals": GOALS, "goals_met": met,
            "seconds": round(time.time() - t0, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="generator checkpoint (default: the shipped model)")
    p.add_argument("--london", type=int, default=20, help="held-out London identities")
    p.add_argument("--portraits", type=int, default=20, help="held-out portraits with iod >= 40 px (jaw drop, cast)")
    p.add_argument("--figure", default=str(REPO / "benchmarks" / "results" / "real_edits.png"), help="'' for none")
    p.add_argument("--figure-rows", type=int, default=4)
    p.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "real_edits.jsonl"),
                   help="append the JSON line here ('' for nowhere)")
    p.add_argument("--task-file", default=None, help="MediaPipe .task (default: the vendored one)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--label", default=None, help="added to the JSON line")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    why = eq.mpr.unavailable(args.task_file)
    if why or not (LONDON / "neutral").is_dir():
        out = {"benchmark": "real_edits", "skipped": why or f"{LONDON} is absent"}
    else:
        out = evaluate(args)
        out = ({"label": args.label} if args.label else {}) | out
    print(json.dumps(out))
    if args.results and "skipped" not in out:
        with open(args.results, "a") as f:
            f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
