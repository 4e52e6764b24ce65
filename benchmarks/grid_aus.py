"""AU25/AU26 per frame on the GRID talking-face clips: do they rise and fall with speech?

For every clip of ../shared/data/videos/grid: all 75 frames, dlib face + `stable_landmarks`,
the track's own neutral (`track_baseline`), AU25 (lips part) and AU26 (jaw drop) per frame,
and the speech envelope (RMS of the audio over each frame's 40 ms). Prints one JSON line with
per-clip statistics (Pearson r of each AU with the envelope at the best lag within ±3 frames,
mean/max, fraction of frames > 0.1) and writes benchmarks/results/grid_aus.png."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import av
import numpy as np

from ganivid.aus import au_index
from ganivid.estimate import estimate_aus, stable_landmarks, track_baseline
from ganivid.faces import DlibDetector
from ganivid.video import read_frames

ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos" / "grid"
OUT = Path(__file__).resolve().parent / "results" / "grid_aus.png"


def envelope(path: Path, times: np.ndarray, fps: float) -> np.ndarray:
    """Audio RMS over each frame's interval, (T,)."""
    with av.open(str(path)) as c:
        chunks, rate = [], None
        for frame in c.decode(audio=0):
            rate = frame.sample_rate
            chunks.append(frame.to_ndarray().astype(np.float64).reshape(-1, frame.samples).mean(0))
    audio = np.concatenate(chunks)
    out = np.zeros(len(times))
    for i, t in enumerate(times):
        a, b = int(t * rate), int((t + 1 / fps) * rate)
        seg = audio[a:b]
        out[i] = np.sqrt(np.mean(seg ** 2)) if len(seg) else 0.0
    return out


def best_r(x: np.ndarray, y: np.ndarray, max_lag: int = 3) -> tuple[float, int]:
    """Largest Pearson r of x and y shifted by -max_lag..max_lag frames, and that lag."""
    best = (-2.0, 0)
    for lag in range(-max_lag, max_lag + 1):
        a, b = (x[lag:], y[:len(y) - lag]) if lag >= 0 else (x[:lag], y[-lag:])
        if np.std(a) > 0 and np.std(b) > 0:
            best = max(best, (float(np.corrcoef(a, b)[0, 1]), lag))
    return best


def main() -> None:
    clips = sorted(ROOT.glob("*.mpg")) if ROOT.is_dir() else []
    if not clips:
        print(json.dumps({"skipped": f"no clips in {ROOT}"}))
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    det = DlibDetector()
    stats, series = {}, {}
    for clip in clips:
        lms, times = [], []
        for f in read_frames(clip):
            found = det.boxes(f.image)
            if found:
                box = max(found, key=lambda b: (b[0][2] - b[0][0]) * (b[0][3] - b[0][1]))[0]
                lms.append(stable_landmarks(det, f.image, box))
                times.append(f.time_s)
        lms, times = np.stack(lms), np.array(times)
        aus = estimate_aus(lms, track_baseline(lms))
        env = envelope(clip, times, 25.0)
        au25, au26 = aus[:, au_index("AU25")], aus[:, au_index("AU26")]
        r25, lag25 = best_r(au25, env)
        r26, lag26 = best_r(au26, env)
        stats[clip.stem] = {"frames": len(times), "r_au25_speech": round(r25, 3), "lag25": lag25,
                            "r_au26_speech": round(r26, 3), "lag26": lag26,
                            "au25_mean": round(float(au25.mean()), 3), "au25_max": round(float(au25.max()), 3),
                            "au26_mean": round(float(au26.mean()), 3), "au26_max": round(float(au26.max()), 3),
                            "au25_active": round(float((au25 > 0.1).mean()), 3),
                            "au26_active": round(float((au26 > 0.1).mean()), 3)}
        series[clip.stem] = (times, au25, au26, env / (env.max() or 1))
    fig, axes = plt.subplots(len(series), 1, figsize=(9, 1.6 * len(series)), sharex=True)
    for ax, (name, (t, a25, a26, e)) in zip(np.atleast_1d(axes), series.items()):
        ax.fill_between(t, 0, e, color="0.85", label="speech RMS (scaled)")
        ax.plot(t, a25, label="AU25 lips part")
        ax.plot(t, a26, label="AU26 jaw drop")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(name, rotation=0, ha="right", fontsize=8)
    np.atleast_1d(axes)[0].legend(loc="upper right", fontsize=7, ncol=3)
    np.atleast_1d(axes)[-1].set_xlabel("seconds")
    fig.suptitle("ganivid built-in AU25/AU26 on GRID clips (GRID corpus, Cooke et al. 2006, CC BY 4.0)", fontsize=9)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=90)
    r = {k: float(np.median([s[k] for s in stats.values()])) for k in ("r_au25_speech", "r_au26_speech")}
    print(json.dumps({"clips": len(stats), "median": r, "per_clip": stats, "plot": str(OUT.relative_to(OUT.parents[2]))}))


if __name__ == "__main__":
    sys.exit(main())
