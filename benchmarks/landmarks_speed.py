"""dlib's 68-point fit: `dlib.shape_predictor` against ganivid's own run of the same model
(`ganivid.landmarks`), on the very fits the tracker makes; prints one JSON line.

The fits: every call the tracker makes to `DlibDetector.landmarks` while it analyses
animate_speed.py's generated 10 s 640x360 clip (one per frame: upright grey patches, and the
detections' full frames), recorded once. Both predictors then fit all of them in alternating
rounds (`--rounds`, default 7) in this one process; medians of ms per fit and of the per-round
ratio. Every landmark of every fit is compared (`mismatches` must be 0). Also the one-time
costs of a fresh process: importing numba plus loading the compiled functions, parsing the .dat
file, loading its cached arrays, against dlib's loading of the .dat file.

    python benchmarks/landmarks_speed.py [--rounds 7] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

FRESH = """
import time, numpy as np
t = time.perf_counter()
from ganivid.landmarks import shape_predictor_68
sp = shape_predictor_68()
sp(np.zeros((64, 64), np.uint8), (8, 8, 56, 56))
print(time.perf_counter() - t)
"""


def recorded_fits(clip: Path) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """(grey image, box) of every landmark fit the tracker makes on `clip`."""
    from ganivid.faces import DlibDetector, _to_rgb
    from ganivid.tracking import TrackConfig, analyse
    from ganivid.video import read_frames

    fits = []

    class Recording(DlibDetector):
        def landmarks(self, image, box):
            fits.append((_to_rgb(image).copy(), tuple(int(round(v)) for v in box)))
            return super().landmarks(image, box)

    analyse(read_frames(clip, grey=True), TrackConfig(), Recording())
    return fits


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args()
    import dlib

    from animate_speed import make_clip
    from ganivid.faces import models_dir
    from ganivid.landmarks import ShapePredictor, shape_predictor_68

    work = args.workdir or Path(tempfile.mkdtemp(prefix="ganivid-landmarks-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = work / "clip10.mp4"
    if not clip.exists():
        make_clip(clip, 10.0)
    path = os.path.join(models_dir(), "shape_predictor_68_face_landmarks.dat")
    t = time.perf_counter()
    theirs = dlib.shape_predictor(path)
    dlib_load = time.perf_counter() - t
    t = time.perf_counter()
    ShapePredictor.read(path)
    parse = time.perf_counter() - t
    fresh = [float(subprocess.run([sys.executable, "-c", FRESH], check=True, capture_output=True, text=True,
                                  cwd=ROOT).stdout) for _ in range(3)]
    ours = shape_predictor_68()
    fits = recorded_fits(clip)
    rects = [dlib.rectangle(*box) for _, box in fits]

    def run_dlib() -> list[np.ndarray]:
        return [np.array([(p.x, p.y) for p in theirs(img, r).parts()], np.float32) for (img, _), r in zip(fits, rects)]

    def run_ours() -> list[np.ndarray]:
        return [ours(img, box) for img, box in fits]

    mismatches = sum(not np.array_equal(a, b) for a, b in zip(run_dlib(), run_ours()))
    rounds = []
    for k in range(args.rounds):
        times = {}
        for name, fn in (("dlib", run_dlib), ("ganivid", run_ours))[:: 1 if k % 2 == 0 else -1]:
            t = time.perf_counter()
            fn()
            times[name] = 1000 * (time.perf_counter() - t) / len(fits)
        rounds.append(times)
    med = lambda key: round(statistics.median(r[key] for r in rounds), 3)  # noqa: E731
    print(json.dumps({
        "benchmark": "landmarks_speed", "fits": len(fits), "mismatches": mismatches,
        "ms_per_fit": {"dlib": med("dlib"), "ganivid": med("ganivid")},
        "dlib_over_ganivid": round(statistics.median(r["dlib"] / r["ganivid"] for r in rounds), 2),
        "rounds": [{k: round(v, 3) for k, v in r.items()} for r in rounds],
        "setup_s": {"dlib_load": round(dlib_load, 3), "ganivid_parse": round(parse, 3),
                    "ganivid_fresh_process_median": round(statistics.median(fresh), 3),
                    "ganivid_fresh_process_runs": [round(x, 3) for x in fresh]},
        "fresh_process_note": "import numba and the compiled functions, the cached arrays, one fit",
    }))


if __name__ == "__main__":
    main()
