"""How visible ganivid's edits are on held-out photos, read by readers ganivid never trains on;
prints one JSON line (progress on stderr).

    python benchmarks/edit_quality.py [--model PATH | --warp] [--portraits 20] [--london 20]
        [--clip samples/hopper.mp4] [--task-file PATH] [--sheet sheet.png]

Each held-out photo gets five edits through `ganivid.still.animate_image` (`set` semantics, the
photo's own estimated AUs kept for every AU not named; PNGs in a temp dir), or with `--warp`
`ganivid.warps.warp_face` applied directly at full resolution on the photo's dlib landmarks (the
ceiling a model trained on those warps can show). Readers, on the photo and on each edit:
- MediaPipe's blendshapes (benchmarks/mediapipe_reader.py, LiteRT): the change of the request's
  score (`mp`), and of the other requests' scores (`mp_others`);
- geometry of dlib's 68 landmarks (ganivid's stable fit, in the photo's face box) and of
  MediaPipe's mesh, in the face's upright frame (x along the eye-centre line, origin at the
  eye corners' midpoint so that a blink does not move it), in the photo's inter-ocular
  distance (iod, between the eye centres): `corners` = upward movement of the mouth corners
  (dlib 48/54, mesh 61/291), `lip_gap` = change of the inner-lip gap (62/66, mesh 13/14),
  `brows` = upward movement of the brows (17-26, mesh 105/66/107/334/296/336), and
  `unrequested` = the largest mean movement of a region the request leaves alone (UNASKED);
- `sharpness` = variance of the Laplacian of the grey face region (the dlib landmark box grown
  10 %, native resolution), edit / photo; `cast` = mean change of a* and b* (CIELAB) there.
`zero_request`: the photo edited towards its own estimated AUs (FaceEditor) and written as PNG,
counted when it reads back bit-identical to the photo.
Figures are medians over faces (`_min`/`_max`: extremes over faces); `goals_met` per request
needs both the MediaPipe goal and the dlib geometry goal (GOALS). Held-out faces: portraits with
the 100 smallest sha1(file name) and dlib iod >= 40 px, largest first; London identities from
`london_holdout()` (neutral photos); first, middle and last frame of a sample clip."""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # mediapipe_reader beside this file
import mediapipe_reader as mpr  # noqa: E402

from ganivid.realpairs import london_holdout  # noqa: E402,F401  (one rule for benchmarks and training)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
REQUESTS = {  # name: (AU edits, warp moves)
    "smile": (["AU12=1", "AU6=0.6"], {"AU12": 1.0}),
    "jaw_drop": (["AU25=1", "AU26=1"], {"AU25": 1.0, "AU26": 1.0}),
    "brows_up": (["AU1=1", "AU2=1"], {"AU1": 1.0, "AU2": 1.0}),
    "frown": (["AU4=1"], {"AU4": 1.0}),
    "blink": (["AU45=1"], {"AU45": 1.0}),
}
READING = {"smile": ("mouthSmileLeft", "mouthSmileRight"), "jaw_drop": ("jawOpen",), "brows_up": ("browInnerUp",),
           "frown": ("browDownLeft", "browDownRight"), "blink": ("eyeBlinkLeft", "eyeBlinkRight")}
EXTRA = {"brows_up": ("browOuterUpLeft", "browOuterUpRight")}
GOALS = {  # name: (MediaPipe score change, geometry figure, its change in iod or None)
    "smile": (0.30, "corners", 0.08), "jaw_drop": (0.30, "lip_gap", 0.20), "brows_up": (0.20, "brows", 0.06),
    "frown": (0.20, None, None), "blink": (0.40, None, None)}
UNASKED = {"smile": ("brows", "eyes"), "jaw_drop": ("brows", "eyes"), "brows_up": ("mouth", "jaw"),
           "frown": ("mouth", "jaw"), "blink": ("brows", "mouth", "jaw")}
DLIB = {"left_eye": range(36, 42), "right_eye": range(42, 48), "corners_eye": (36, 39, 42, 45),
        "mouth_corners": (48, 54), "lips": (62, 66), "brows": range(17, 27),
        "regions": {"jaw": range(0, 17), "brows": range(17, 27), "eyes": range(36, 48), "mouth": range(48, 68)}}
MESH = {"left_eye": mpr.EYE_LEFT, "right_eye": mpr.EYE_RIGHT, "corners_eye": mpr.EYE_CORNERS,
        "mouth_corners": mpr.MOUTH_CORNERS, "lips": mpr.INNER_LIPS, "brows": mpr.BROW_TOPS, "regions": mpr.REGIONS}


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def portraits_holdout(folder: Path = DATA / "portraits", count: int = 100) -> list[Path]:
    """The held-out portraits: the `count` files with the smallest sha1(file name)."""
    return sorted(folder.glob("*.jpg"), key=lambda p: sha1(p.name))[:count]




def upright(points: np.ndarray, idx: dict, unit: float | None = None) -> tuple[np.ndarray, float]:
    """Points (N, 2) in the face's upright frame in units of `unit` (default: this face's iod), and the iod."""
    p = np.asarray(points, np.float64)[:, :2]
    left, right = p[list(idx["left_eye"])].mean(0), p[list(idx["right_eye"])].mean(0)
    d = right - left
    iod = float(np.hypot(*d))
    c, s = d / iod
    rot = np.array([[c, -s], [s, c]])
    return (p - p[list(idx["corners_eye"])].mean(0)) @ rot / (unit or iod), iod


def geometry(before: np.ndarray, after: np.ndarray, idx: dict, request: str) -> dict:
    """Movements of `after` against `before` (landmarks of one reader) in the photo's iod."""
    a, iod = upright(before, idx)
    b, _ = upright(after, idx, iod)
    up = a[:, 1] - b[:, 1]  # y grows downwards
    gap = lambda q: float(np.linalg.norm(q[idx["lips"][1]] - q[idx["lips"][0]]))  # noqa: E731
    moved = np.linalg.norm(b - a, axis=1)
    regions = {r: float(moved[list(i)].mean()) for r, i in idx["regions"].items()}
    return {"corners": float(up[list(idx["mouth_corners"])].mean()), "lip_gap": gap(b) - gap(a),
            "brows": float(up[list(idx["brows"])].mean()), "unrequested": max(regions[r] for r in UNASKED[request])}


def face_region(landmarks: np.ndarray, shape: tuple[int, ...], grow: float = 0.10) -> tuple[slice, slice]:
    """The landmark box grown by `grow` of its size (half on each side), clipped to the image."""
    lo, hi = landmarks.min(0), landmarks.max(0)
    pad = (hi - lo) * grow / 2
    x0, y0 = np.maximum(np.floor(lo - pad).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(hi + pad).astype(int) + 1, (shape[1], shape[0]))
    return slice(y0, y1), slice(x0, x1)


def sharpness(image: np.ndarray, region) -> float:
    grey = cv2.cvtColor(np.ascontiguousarray(image[region]), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def lab(image: np.ndarray, region) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(image[region]).astype(np.float32) / 255, cv2.COLOR_RGB2LAB)


def held_out_faces(args, detector) -> list[tuple[str, str, Path | np.ndarray]]:
    """(set, tag, photo path or RGB frame) of the held-out faces that exist here."""
    from ganivid.errors import NoFaceError
    from ganivid.images import read_image
    from ganivid.still import find_faces

    out = []
    if args.portraits > 0 and (DATA / "portraits").is_dir():
        sized = []
        for p in portraits_holdout():
            try:
                lm = find_faces(read_image(p))[0].landmarks
            except NoFaceError:
                continue
            iod = float(np.linalg.norm(lm[42:48].mean(0) - lm[36:42].mean(0)))
            if iod >= 40:
                sized.append((-iod, p))
        out += [("portraits", p.stem, p) for _, p in sorted(sized)[:args.portraits]]
    if args.london > 0 and (DATA / "london" / "neutral").is_dir():
        ids = london_holdout([p.stem for p in (DATA / "london" / "neutral").glob("*.jpg")])[:args.london]
        out += [("london", i, DATA / "london" / "neutral" / f"{i}.jpg") for i in sorted(ids)]
    if args.clip and Path(args.clip).is_file():
        import av

        with av.open(str(args.clip)) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        for k in sorted({0, len(frames) // 2, len(frames) - 1}):
            out.append(("clip", f"{Path(args.clip).stem}_{k}", frames[k]))
    return out


def measure(photo: np.ndarray, edit: np.ndarray, face, mp_in, reader, detector, request: str) -> dict:
    """Every figure of one edit of one face."""
    from ganivid.estimate import stable_landmarks

    lm_out = stable_landmarks(detector, edit, face.box)
    mp_out = reader.read_dlib(edit, face.landmarks)
    region = face_region(face.landmarks, photo.shape)
    cast = (lab(edit, region) - lab(photo, region)).reshape(-1, 3).mean(0)
    row = {"mp": mp_out.score(*READING[request]) - mp_in.score(*READING[request]),
           "mp_others": {r: mp_out.score(*n) - mp_in.score(*n) for r, n in READING.items() if r != request},
           "dlib": geometry(face.landmarks, lm_out, DLIB, request),
           "mesh": geometry(mp_in.mesh, mp_out.mesh, MESH, request),
           "sharpness": sharpness(edit, region) / max(sharpness(photo, region), 1e-9),
           "cast_a": float(cast[1]), "cast_b": float(cast[2])}
    if request in EXTRA:
        row["mp_extra"] = mp_out.score(*EXTRA[request]) - mp_in.score(*EXTRA[request])
    return row


def zero_request(photo: np.ndarray, face, engine, path: Path) -> tuple[bool, int, float]:
    """Edit towards the face's own estimated AUs, write PNG: (bit-identical?, max |difference|,
    mean |difference| over the face region)."""
    from ganivid.images import read_image, write_image
    from ganivid.still import FaceEditor

    if engine is None:  # the warp with no move is the photo by construction
        from ganivid.warps import warp_face

        out = warp_face(photo, face.landmarks, {})[0]
    else:
        editor = FaceEditor(engine, photo, [face])
        own = np.clip(np.nan_to_num(face.aus, nan=0.0), 0, 1)[None]  # as curves.evaluate fills AUs not named
        out = editor.paste([editor.edits([own])[0][0]])
    back = read_image(write_image(path, out))
    diff = np.abs(back.astype(int) - photo.astype(int))
    return bool(np.array_equal(back, photo)), int(diff.max()), float(diff[face_region(face.landmarks, photo.shape)].mean())


def r(v, nd: int = 3):
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


def summarise(rows: list[dict], request: str, mode: str) -> dict:
    """Medians (and extremes) over faces of one request's figures, with goals and per-set medians."""
    med = lambda key, rs=rows: r(np.median([key(x) for x in rs])) if rs else None  # noqa: E731
    geo = {reader: {k: med(lambda x, k=k: x[reader][k]) for k in ("corners", "lip_gap", "brows", "unrequested")}
           for reader in ("dlib", "mesh")}
    out = {"faces": len(rows), "au": REQUESTS[request][0] if mode == "model" else REQUESTS[request][1],
           "reading": "/".join(READING[request]), "mp": med(lambda x: x["mp"])}
    if request in EXTRA:
        out["mp_extra"] = {"reading": "/".join(EXTRA[request]), "change": med(lambda x: x["mp_extra"])}
    out["mp_others"] = {o: med(lambda x, o=o: x["mp_others"][o]) for o in READING if o != request}
    out |= geo
    out["unrequested_max"] = {rd: r(max(x[rd]["unrequested"] for x in rows)) for rd in ("dlib", "mesh")}
    out["sharpness"] = med(lambda x: x["sharpness"])
    out["sharpness_min"] = r(min(x["sharpness"] for x in rows))
    out["cast"] = {"a": med(lambda x: x["cast_a"]), "b": med(lambda x: x["cast_b"])}
    out["cast_max"] = r(max(max(abs(x["cast_a"]), abs(x["cast_b"])) for x in rows))
    goal_mp, figure, goal_geo = GOALS[request]
    out["goals"] = {"mp": goal_mp, **({figure: goal_geo} if figure else {})}
    out["goals_met"] = {"mp": bool(out["mp"] >= goal_mp)}
    if figure:
        out["goals_met"] |= {rd: bool(geo[rd][figure] >= goal_geo) for rd in ("dlib", "mesh")}
    main_geo = lambda x: x["dlib"][figure] if figure else None  # noqa: E731
    out["per_set"] = {
        s: {"faces": len(rs), "mp": med(lambda x: x["mp"], rs),
            **({f"dlib_{figure}": med(main_geo, rs), f"mesh_{figure}": med(lambda x: x["mesh"][figure], rs)}
               if figure else {}),
            "unrequested_dlib": med(lambda x: x["dlib"]["unrequested"], rs), "sharpness": med(lambda x: x["sharpness"], rs),
            "cast_max": r(max(max(abs(x["cast_a"]), abs(x["cast_b"])) for x in rs))}
        for s in dict.fromkeys(x["set"] for x in rows) for rs in [[x for x in rows if x["set"] == s]]}
    return out


def contact_sheet(path: Path, tiles: list[list[np.ndarray]], names: list[str], side: int = 144) -> None:
    """Rows of face crops (photo, then each edit) with column names, as one PNG."""
    from PIL import Image

    rows = [np.hstack([cv2.resize(t, (side, side), interpolation=cv2.INTER_AREA) for t in row]) for row in tiles]
    head = np.full((22, side * len(names), 3), 255, np.uint8)
    for k, n in enumerate(names):
        cv2.putText(head, n, (k * side + 4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    Image.fromarray(np.vstack([head] + rows)).save(path)


def square_crop(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A square around the face (landmark box grown 40 %), for the sheet."""
    c = (landmarks.min(0) + landmarks.max(0)) / 2
    half = int(0.7 * max(landmarks.max(0) - landmarks.min(0)))
    pad = cv2.copyMakeBorder(image, half, half, half, half, cv2.BORDER_REPLICATE)
    x, y = int(round(c[0])) + half, int(round(c[1])) + half
    return pad[y - half:y + half, x - half:x + half]


def evaluate(args) -> dict:
    from ganivid.engine import load_engine
    from ganivid.faces import DlibDetector
    from ganivid.images import read_image, write_image
    from ganivid.still import animate_image, find_faces
    from ganivid.warps import MOVES, warp_face

    t0 = time.time()
    reader = mpr.MediaPipeReader(args.task_file)
    detector = DlibDetector()
    engine = None if args.warp else load_engine(args.model, "cpu")
    mode = "warp" if args.warp else "model"
    faces = held_out_faces(args, detector)
    rows = {q: [] for q in REQUESTS}
    on_sheet = set(np.linspace(0, len(faces) - 1, min(args.sheet_rows, len(faces))).round().astype(int).tolist())
    zero, skipped_moves, tiles = [], {}, []
    with tempfile.TemporaryDirectory(prefix="edit_quality_") as tmp:
        tmp = Path(tmp)
        for n, (subset, tag, src) in enumerate(faces):
            if isinstance(src, Path):
                path, photo = src, read_image(src)
            else:  # a clip frame: animate_image reads files
                path, photo = tmp / f"{tag}.png", src
                write_image(path, photo)
            face = find_faces(photo)[0]
            mp_in = reader.read_dlib(photo, face.landmarks)
            row_tiles = [square_crop(photo, face.landmarks)]
            for q, (aus, moves) in REQUESTS.items():
                out_path = tmp / f"{subset}_{tag}_{q}.png"
                if args.warp:
                    known = {m: v for m, v in moves.items() if m in MOVES}
                    if not known:
                        skipped_moves[q] = sorted(moves)
                        continue
                    write_image(out_path, warp_face(photo, face.landmarks, known)[0])
                else:
                    animate_image(path, out_path, au=aus, model=engine, overwrite=True)
                edit = read_image(out_path)
                rows[q].append({"set": subset, **measure(photo, edit, face, mp_in, reader, detector, q)})
                row_tiles.append(square_crop(edit, face.landmarks))
            zero.append(zero_request(photo, face, engine, tmp / f"{subset}_{tag}_zero.png"))
            if n in on_sheet:
                tiles.append(row_tiles)
            print(f"[{n + 1}/{len(faces)}] {subset} {tag}: smile {rows['smile'][-1]['mp']:+.2f}" if rows["smile"]
                  else f"[{n + 1}/{len(faces)}] {subset} {tag}", file=sys.stderr)
    if args.sheet and tiles:
        names = ["photo"] + [q for q in REQUESTS if q not in skipped_moves]
        contact_sheet(Path(args.sheet), [t for t in tiles if len(t) == len(names)], names)
    per = {q: summarise(rs, q, mode) for q, rs in rows.items() if rs}
    every = [x for rs in rows.values() for x in rs]
    counts = {s: sum(1 for f in faces if f[0] == s) for s in ("portraits", "london", "clip")}
    return {
        "benchmark": "edit_quality", "mode": mode,
        "model": None if args.warp else str(args.model or "models/ganivid.safetensors"),
        "faces": len(faces), "sets": counts, "requests": per,
        "goals_met": {q: all(v["goals_met"].get(k, True) for k in ("mp", "dlib")) for q, v in per.items()},
        "sharpness_min": r(min((x["sharpness"] for x in every), default=None)),
        "cast_max": r(max((max(abs(x["cast_a"]), abs(x["cast_b"])) for x in every), default=None)),
        "unrequested_max": {rd: r(max((x[rd]["unrequested"] for x in every), default=None)) for rd in ("dlib", "mesh")},
        "zero_request": {"faces": len(zero), "bit_identical": sum(z[0] for z in zero),
                         "max_abs_diff": max((z[1] for z in zero), default=None),
                         "face_mean_abs_diff": r(np.median([z[2] for z in zero])) if zero else None},
        **({"skipped_moves": skipped_moves} if skipped_moves else {}),
        "task_file": str(args.task_file or mpr.default_task_file()), "seconds": round(time.time() - t0, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="generator checkpoint (default: the shipped model)")
    p.add_argument("--warp", action="store_true", help="apply warps.warp_face instead of the generator (the ceiling)")
    p.add_argument("--portraits", type=int, default=20, help="held-out portraits with iod >= 40 px, largest first")
    p.add_argument("--london", type=int, default=20, help="held-out London identities (neutral photos)")
    p.add_argument("--clip", default=str(REPO / "samples" / "hopper.mp4"), help="3 frames of this clip ('' for none)")
    p.add_argument("--task-file", default=None, help=f"MediaPipe .task (default {mpr.default_task_file()})")
    p.add_argument("--sheet", default=None, help="write a contact sheet PNG of a few photos and their edits")
    p.add_argument("--sheet-rows", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--label", default=None, help="added to the JSON line")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    why = mpr.unavailable(args.task_file)
    if why:
        print(json.dumps({"benchmark": "edit_quality", "skipped": why}))
        return
    out = evaluate(args)
    if not out["faces"]:
        out = {"benchmark": "edit_quality", "skipped": "no held-out faces found (data absent?)"}
    print(json.dumps({"label": args.label, **out} if args.label else out))


if __name__ == "__main__":
    main()
