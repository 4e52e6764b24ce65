"""Quality of a trained generator on held-out face crops; prints one JSON line.

    python benchmarks/model_quality.py [--model models/ganivid.safetensors] [--data DATASET] [--count 100]

DATASET is a `ganivid annotate` folder of crops the model never saw (default: the held-out
portraits prepared as in models/MODELS.md). Measured:
- identity: PSNR of G(x | y_r) against x (y_r = the crop's own labels) and mean attention;
- AU response: for AU12, AU25, AU26, AU1, AU4, AU45 set to 0, .33, .66, 1 (others kept at y_r),
  the estimator's reading of the edited crop (`--estimator mesh`, the default: MediaPipe's
  blendshapes and mesh, ganivid/meshaus.py; or `landmarks`: dlib's geometry; dlib landmarks
  fitted on the crop upscaled 4x, in the face box found once on the input crop): mean reading
  per level;
  Spearman's rho of request vs change of reading (reading minus that face's reading at its own
  AUs, so faces' different resting readings do not swamp it) over all faces and levels
  (`spearman`); the mean of each face's own rho over the 4 levels (`spearman_per_face`, a face
  whose reading never moves counts 0) and the share of faces whose reading rises;
- locality: mean |change| of every other supported AU's reading against the identity output,
  over all levels (`others`), and of the AUs of the other face regions only (`other_regions`:
  brows vs eyes vs mouth; AU1/AU2 and AU25/AU26 share muscles, so they move together).
Skips (prints {"skipped": ...}) when the data is absent."""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.stats import spearmanr

from ganivid.aus import AU_NAMES, au_index
from ganivid.data import open_dataset
from ganivid.engine import Engine
from ganivid import estimate, meshaus
from ganivid.estimate import estimate_aus, stable_landmarks
from ganivid.faces import DlibDetector

TESTED = ("AU12", "AU25", "AU26", "AU1", "AU4", "AU45")
LEVELS = (0.0, 0.33, 0.66, 1.0)
REGIONS = {"brows": ("AU1", "AU2", "AU4"), "eyes": ("AU5", "AU7", "AU45"),
           "mouth": ("AU10", "AU12", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26")}
UPSCALE = 4  # dlib's 68-point model is trained on faces ~100-200 px wide; crops are 64-128 px


def region_of(name: str) -> str:
    return next(r for r, names in REGIONS.items() if name in names)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


class Reader:
    """The estimator's AU reading (17,) of edited crops of one face, in a box found once."""

    def __init__(self, detector: DlibDetector, reference: np.ndarray, estimator: str = "mesh"):
        self.detector, self.estimator = detector, estimator
        big = self._big(reference)
        found = detector.boxes(big)
        self.box = max(found, key=lambda b: (b[0][2] - b[0][0]) * (b[0][3] - b[0][1]))[0] if found else None

    @staticmethod
    def _big(crop: np.ndarray) -> np.ndarray:
        return cv2.resize(crop, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)

    def landmarks(self, crop: np.ndarray) -> np.ndarray:
        """The face's 68 landmarks (68, 2) in crop pixels."""
        return stable_landmarks(self.detector, self._big(crop), self.box, n=9) / UPSCALE

    def read(self, crop: np.ndarray) -> np.ndarray:
        lm = self.landmarks(crop) * UPSCALE
        if self.estimator == "mesh":
            return meshaus.mesh_aus(meshaus.read_cues(self._big(crop), lm))
        return estimate_aus(lm)


def evaluate(model: str, data: str, count: int, seed: int = 0, estimator: str = "mesh") -> dict:
    """The metrics above as a dict (one JSON line)."""
    t0 = time.time()
    engine = Engine.from_checkpoint(model, device="cpu")
    ds = open_dataset(data, engine.image_size)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(ds), size=min(count, len(ds)), replace=False))
    crops = np.stack([ds.image(int(i)) for i in pick])
    own = np.nan_to_num(ds.aus[pick], nan=0.0)
    detector = DlibDetector()
    readers = [Reader(detector, c, estimator) for c in crops]  # the box of the input face
    if engine.prior:  # a landmark flow prior needs the crops' landmarks: faces without a box are left out
        keep = [k for k, r in enumerate(readers) if r.box is not None]
        crops, own, readers = crops[keep], own[keep], [readers[k] for k in keep]
    marks = np.stack([r.landmarks(c) for r, c in zip(readers, crops)]) if engine.prior else None
    ident = engine.edit(list(crops), own, own, marks)
    psnrs = [psnr(e.image, c) for e, c in zip(ident, crops)]
    attention = float(np.mean([e.attention.mean() for e in ident]))
    ok = [k for k, r in enumerate(readers) if r.box is not None]
    base = {k: readers[k].read(ident[k].image) for k in ok}
    supported = [n for n, s in zip(AU_NAMES, (meshaus if estimator == "mesh" else estimate).SUPPORTED) if s]
    result = {}
    for name in TESTED:
        j = au_index(name)
        targets = np.repeat(own[ok][:, None], len(LEVELS), 1)  # (F, L, 17)
        targets[:, :, j] = LEVELS
        edits = engine.edit([crops[k] for k in ok for _ in LEVELS], targets.reshape(-1, 17),
                            np.repeat(own[ok], len(LEVELS), 0), None if marks is None else np.repeat(marks[ok], len(LEVELS), 0))
        reads = np.stack([readers[k].read(edits[a * len(LEVELS) + b].image)
                          for a, k in enumerate(ok) for b in range(len(LEVELS))]).reshape(len(ok), len(LEVELS), -1)
        ref = np.stack([base[k] for k in ok])[:, None]  # (F, 1, 17)
        request = np.broadcast_to(np.array(LEVELS), (len(ok), len(LEVELS)))
        change = reads[:, :, j] - ref[:, :, j]  # each face's reading minus its identity output's
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant readings: rho is undefined (None below)
            rho = spearmanr(request.ravel(), change.ravel()).statistic
            per_face = [spearmanr(LEVELS, c).statistic for c in change]
        # A face whose reading never moves has no rho: it counts as 0 (no response).
        per_face_mean = float(np.mean([0.0 if np.isnan(r) else r for r in per_face]))
        others = [au_index(n) for n in supported if n != name]
        far = [au_index(n) for n in supported if region_of(n) != region_of(name)]
        moved = np.abs(reads - ref)
        result[name] = {
            "spearman": None if np.isnan(rho) else round(float(rho), 3),  # None: constant readings
            "spearman_per_face": round(per_face_mean, 3),
            "rising_faces": round(float(np.mean([r > 0 for r in per_face])), 3),
            "reading": [round(float(v), 3) for v in reads[:, :, j].mean(0)],
            "others": round(float(np.nanmean(moved[:, :, others])), 3),
            "other_regions": round(float(np.nanmean(moved[:, :, far])), 3),
        }
    info = engine.generator
    return {
        "benchmark": "model_quality", "model": str(model), "data": str(data), "faces": len(pick),
        "faces_read": len(ok), "psnr_id": round(float(np.mean(psnrs)), 2),
        "psnr_id_min": round(float(np.min(psnrs)), 2), "attention_id": round(attention, 4),
        "input_reading_vs_identity": round(float(np.nanmean(np.abs(
            np.stack([readers[k].read(crops[k]) for k in ok]) - np.stack([base[k] for k in ok])))), 3),
        "aus": result,
        # An AU whose reading never changes has no rho (None) and counts as no response.
        "spearman_min": min([v["spearman"] for v in result.values() if v["spearman"] is not None], default=None),
        "no_response": [n for n, v in result.items() if v["spearman"] is None],
        "locality_others": round(float(np.mean([v["others"] for v in result.values()])), 3),
        "locality_other_regions": round(float(np.mean([v["other_regions"] for v in result.values()])), 3),
        "params": sum(p.numel() for p in info.parameters()), "seconds": round(time.time() - t0, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="models/ganivid.safetensors")
    p.add_argument("--data", default="../data/portraits96/heldout", help="held-out crops (annotate folder)")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--label", default=None, help="added to the JSON line (e.g. run and step)")
    p.add_argument("--estimator", default="mesh", choices=("mesh", "landmarks"), help="who reads the edits' AUs")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if not Path(args.data).is_dir() or not Path(args.model).is_file():
        print(json.dumps({"benchmark": "model_quality", "skipped": "model or data absent",
                          "model": args.model, "data": args.data}))
        return
    out = evaluate(args.model, args.data, args.count, estimator=args.estimator)
    if args.label:
        out = {"label": args.label, **out}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
