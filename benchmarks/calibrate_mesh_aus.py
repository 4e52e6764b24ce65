"""Calibration data of the mesh AU estimator (ganivid/meshaus.py); prints one JSON line.

    python benchmarks/calibrate_mesh_aus.py [--faces 60]

- `warp`: training faces (London neutral photos of training identities and portraits, never the
  held-out ones) moved by `warps.warp_face` at intensities 0, 0.25 .. 1 of each AU: per AU and
  per candidate cue (a blendshape mean or a mesh distance), Spearman of the reading against the
  intensity (median over faces) and the reading's rise from 0 to 1 (median): the span.
- `rest`: percentiles of every cue over portraits (the population's resting face).
- `london`: every cue on the London training identities, neutral and smiling (medians)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edit_quality import DATA, london_holdout, portraits_holdout  # noqa: E402

from ganivid.align import alignment_from_landmarks  # noqa: E402
from ganivid.images import read_image  # noqa: E402
from ganivid.mesh import shared_reader  # noqa: E402
from ganivid.meshaus import CUES, cue_values  # noqa: E402
from ganivid.still import find_faces  # noqa: E402
from ganivid.warps import MOVES, warp_face  # noqa: E402

LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)


def faces(count: int) -> list[Path]:
    ids = sorted(p.stem for p in (DATA / "london" / "neutral").glob("*.jpg"))
    held = set(london_holdout(ids))
    london = [DATA / "london" / "neutral" / f"{i}.jpg" for i in ids if i not in held]
    held_p = set(portraits_holdout())
    portraits = [p for p in sorted((DATA / "portraits").glob("*.jpg")) if p not in held_p]
    return london[: count // 2] + portraits[:: max(1, len(portraits) // (count - count // 2))][: count - count // 2]


def read(image: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    r = shared_reader().read_aligned(image, alignment_from_landmarks(landmarks))
    return cue_values(r.scores, r.mesh, landmarks)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--faces", type=int, default=60)
    args = p.parse_args()
    rho = {au: {c: [] for c in CUES[au]} for au in MOVES}
    rise = {au: {c: [] for c in CUES[au]} for au in MOVES}
    used = 0
    for path in faces(args.faces):
        img = read_image(path)
        try:
            lm = find_faces(img)[0].landmarks
        except Exception:
            continue
        used += 1
        for au in MOVES:
            if au not in CUES:
                continue
            vals = []
            for level in LEVELS:
                moved, mlm = warp_face(img, lm, {au: level}) if level else (img, lm)
                vals.append(read(moved, mlm))
            for c in CUES[au]:
                v = np.array([x[c] for x in vals])
                if np.ptp(v) > 0:
                    rho[au][c].append(spearmanr(LEVELS, v).statistic)
                rise[au][c].append(v[-1] - v[0])
        print(f"{used} {path.name}", file=sys.stderr, flush=True)
    out = {"benchmark": "calibrate_mesh_aus", "faces": used, "warp": {
        au: {c: {"spearman": round(float(np.median(rho[au][c])), 3) if rho[au][c] else None,
                 "rise": round(float(np.median(rise[au][c])), 4)} for c in CUES[au]}
        for au in MOVES if au in CUES}}
    rest = []
    for path in sorted((DATA / "portraits").glob("*.jpg"))[::7]:
        img = read_image(path)
        try:
            rest.append(read(img, find_faces(img)[0].landmarks))
        except Exception:
            continue
    names = sorted(rest[0])
    out["rest"] = {c: [round(float(np.percentile([r[c] for r in rest], q)), 4) for q in (10, 25, 50, 75, 90)]
                   for c in names} | {"faces": len(rest)}
    ids = sorted(p.stem for p in (DATA / "london" / "neutral").glob("*.jpg"))
    held = set(london_holdout(ids))
    lon = {"neutral": [], "smiling": []}
    for i in ids:
        if i in held:
            continue
        for kind in lon:
            img = read_image(DATA / "london" / kind / f"{i}.jpg")
            try:
                lon[kind].append(read(img, find_faces(img)[0].landmarks))
            except Exception:
                pass
    out["london"] = {k: {c: round(float(np.median([r[c] for r in v])), 4) for c in names} for k, v in lon.items()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
