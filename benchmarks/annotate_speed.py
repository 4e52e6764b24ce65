"""Speed of `ganivid annotate` on 512x512 portraits (detection + landmarks + estimate + crop + PNG).

Prints one JSON line: images/s with 1 and 2 worker processes in the same run, CPU seconds per
image (independent of other load on the machine) and the time per stage in one process. Portraits come from ../shared/data/portraits (the 480x600 Wikipedia ones,
centre-cropped square and resized to 512); without it, shifted copies of skimage's astronaut."""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ganivid.align import alignment_from_landmarks, crop_face
from ganivid.annotate import annotate
from ganivid.estimate import estimate_aus, stable_landmarks
from ganivid.faces import DlibDetector

N = 60
ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "portraits"


def portraits(n: int) -> list[np.ndarray]:
    out = []
    if ROOT.is_dir():
        for f in sorted(ROOT.glob("*.jpg")):
            im = Image.open(f)
            if im.width >= 400:
                a = np.asarray(im.convert("RGB"))
                s = min(a.shape[:2])
                y0 = (a.shape[0] - s) // 3  # faces sit in the upper part of the portraits
                x0 = (a.shape[1] - s) // 2
                out.append(cv2.resize(a[y0:y0 + s, x0:x0 + s], (512, 512), interpolation=cv2.INTER_AREA))
            if len(out) == n:
                return out
    from skimage import data

    base = data.astronaut()
    return [np.roll(base, (i % 7) * 3, axis=1) for i in range(n)]


def main() -> None:
    images = portraits(N)
    tmp = Path(tempfile.mkdtemp())
    try:
        (tmp / "in").mkdir()
        for i, im in enumerate(images):
            Image.fromarray(im).save(tmp / "in" / f"p{i:03d}.png")
        # The machine is shared: the load average says how much of 2 cores the run really had.
        result = {"images": len(images), "size": "512x512", "cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2)}
        t = time.perf_counter()
        DlibDetector()  # model loading, once per run (forked workers inherit it)
        result["model_load_s"] = round(time.perf_counter() - t, 2)
        for workers in (1, 2):
            out = tmp / f"ds{workers}"
            t, cpu = time.perf_counter(), time.process_time()
            s = annotate([tmp / "in"], out, size=128, workers=workers, progress=False)
            dt = time.perf_counter() - t
            result[f"images_per_s_{workers}_workers"] = round(len(images) / dt, 2)
            result["faces"] = s.total_crops
            if workers == 1:
                # CPU seconds per image do not depend on how busy the machine is: 2 idle cores
                # with 2 workers would process 2 / that images per second.
                cpu_per_image = (time.process_time() - cpu) / len(images)
                result["cpu_s_per_image"] = round(cpu_per_image, 4)
                result["projected_images_per_s_2_idle_cores"] = round(2 / cpu_per_image, 1)
        det = DlibDetector()
        stages = dict(detect=0.0, landmarks=0.0, estimate=0.0, crop=0.0)
        for im in images[:20]:
            t0 = time.perf_counter()
            boxes = det.boxes(im)
            t1 = time.perf_counter()
            if not boxes:
                continue
            lm = stable_landmarks(det, im, boxes[0][0])
            t2 = time.perf_counter()
            estimate_aus(lm)
            t3 = time.perf_counter()
            cv2.imencode(".png", crop_face(im, alignment_from_landmarks(lm), 128))
            t4 = time.perf_counter()
            for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                stages[k] += v / 20
        result["ms_per_stage_1_process"] = {k: round(v * 1000, 1) for k, v in stages.items()}
        print(json.dumps(result))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    sys.exit(main())
