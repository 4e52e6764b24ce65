"""MediaPipe's face landmarker (478-point mesh + 52 blendshapes) run with LiteRT, as an
independent reader of facial expressions that ganivid never trains on.

    python benchmarks/mediapipe_reader.py [--task-file PATH]   # sanity readings, one JSON line

The reader itself is ganivid.mesh (the vendored .task file, Apache-2.0); this script prints
its readings of known faces: Grace Hopper, the astronaut, and the London set when present.
The reader starts from a face box (dlib's), then refines the ROI once from its own mesh."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from ganivid.mesh import (  # noqa: E402,F401  (re-exported for the benchmarks)
    BROW_TOPS, BROWS, EYE_CORNERS, EYE_LEFT, EYE_RIGHT, INNER_LIPS, JAW, LIPS, MOUTH_CORNERS, NAMES, REGIONS,
    SUBSET, TASK_NAME, MediaPipeReader, Reading, Roi, default_task_file, roi_from_points, unavailable)


def sanity(task_file: str | Path | None = None, london: Path | None = None) -> dict:
    """Smile readings of known faces: Grace Hopper (neutral), the astronaut (smiling), and the
    London set's neutral vs smiling photos when present."""
    import matplotlib.cbook as cbook
    from PIL import Image
    from skimage import data

    from ganivid.images import read_image
    from ganivid.still import find_faces

    reader = MediaPipeReader(task_file)

    def smile(img: np.ndarray) -> tuple[float, Reading]:
        r = reader.read_dlib(img, find_faces(img)[0].landmarks)
        return r.score("mouthSmileLeft", "mouthSmileRight"), r

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.asarray(Image.open(f).convert("RGB"))
    out = {}
    for name, img in (("grace_hopper", hopper), ("astronaut", data.astronaut())):
        s, r = smile(img)
        out[name] = {"smile": round(s, 3), "presence": round(r.presence, 3),
                     "jawOpen": round(r.score("jawOpen"), 3), "eyeBlink": round(r.score("eyeBlinkLeft", "eyeBlinkRight"), 3)}
    london = london or REPO.parent / "shared" / "data" / "london"
    if (london / "neutral").is_dir():
        means = {}
        for kind in ("neutral", "smiling"):
            vals = [smile(read_image(p))[0] for p in sorted((london / kind).glob("*.jpg"))]
            means[kind] = round(float(np.mean(vals)), 3)
        out["london_smile"] = means | {"faces": len(vals)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task-file", default=None, help=f"default: models/{TASK_NAME}")
    args = p.parse_args()
    why = unavailable(args.task_file)
    if why:
        print(json.dumps({"benchmark": "mediapipe_reader", "skipped": why}))
        return
    print(json.dumps({"benchmark": "mediapipe_reader", **sanity(args.task_file)}))


if __name__ == "__main__":
    main()
