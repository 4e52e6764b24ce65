"""Measure the population neutral of estimate.py's features on ../shared/data/portraits.

Prints one JSON line: per-AU median, 25th and 95th percentile of the signed features over 300
portraits (every 7th file, dlib HOG upsample 1, largest face, `stable_landmarks`); the constants in
ganivid/estimate.py::POPULATION_BASELINE come from here."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ganivid.aus import AU_NAMES
from ganivid.estimate import SUPPORTED, features, stable_landmarks
from ganivid.faces import DlibDetector

ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "portraits"


def main() -> None:
    if not ROOT.is_dir():
        print(json.dumps({"skipped": f"{ROOT} not found"}))
        return
    files = sorted(ROOT.glob("*.jpg"))[::7][:300]
    det = DlibDetector(upsample=1)
    feats = []
    for f in files:
        img = np.asarray(Image.open(f).convert("RGB"))
        found = det.boxes(img)
        if found:
            box = max(found, key=lambda b: (b[0][2] - b[0][0]) * (b[0][3] - b[0][1]))[0]
            feats.append(features(stable_landmarks(det, img, box)))
    fa = np.array(feats)
    out = {"faces": len(feats), "images": len(files)}
    for q in (5, 25, 50, 75, 95):
        out[f"p{q}"] = {n: round(float(v), 4) for n, v in zip(np.array(AU_NAMES)[SUPPORTED], np.percentile(fa[:, SUPPORTED], q, axis=0))}
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
