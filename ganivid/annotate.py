"""`ganivid annotate`: aligned face crops + AU labels from images, folders and videos.

The dataset is what `ganivid train --data` reads (format a of `data.py`):
  DATASET/imgs/*.png      crops made by `align.crop_face`, one per face
  DATASET/aus.csv         file, AU1 ... AU45 in 0..1; AUs the estimator does not measure are empty
  DATASET/manifest.jsonl  one line per crop: source, frame, time, box, score, landmarks, AUs and
                          the estimator that labelled them (mesh, landmarks or openface)
  DATASET/inputs.jsonl    one line per finished input (its status): a rerun skips these
  DATASET/annotate.json   crop size, crop spec and label source; a rerun must match them
aus.csv is rewritten from the manifest (atomically) at the end, even after Ctrl-C, so the
folder is a valid dataset whenever the command stops."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ganivid.align import CROP_SPEC, alignment_from_landmarks, crop_face
from ganivid.aus import AU_NAMES, ESTIMATORS
from ganivid.errors import ConfigError, DataError, NoFaceError, VideoError
from ganivid.estimate import OpenFaceLabels, estimate_aus, read_openface, stable_landmarks, track_baseline
from ganivid.meshaus import cue_baseline, mesh_aus, read_cues
from ganivid.fileio import atomic_path

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv", ".gif"}
MIN_TRACK_FRAMES = 10  # fewer sampled frames give no trustworthy own-neutral: population baseline
DUPLICATE_DIFF = 2.0  # mean |Δ| (0..255) of 32x32 grey thumbnails under which a crop repeats the last


@dataclass(frozen=True)
class Face:
    """One face found in one image or video frame, with its crop."""

    frame: int | None  # video frame index (0-based, all decoded frames), None for images
    time: float | None
    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray  # (68, 2) float32, image pixels
    crop: np.ndarray  # (size, size, 3) uint8
    cues: np.ndarray | None = None  # (17,) mesh AU cues (meshaus.cues) when the estimator is mesh


@dataclass
class AnnotateSummary:
    """What one `annotate` run did."""

    inputs: int = 0
    skipped_done: int = 0
    crops: int = 0
    total_crops: int = 0  # in the dataset after the run
    duplicates: int = 0
    no_face: list[str] = field(default_factory=list)
    several_faces: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    unlabelled: int = 0  # faces without an OpenFace row, skipped
    notes: list[str] = field(default_factory=list)

    def report(self) -> str:
        """Human summary, a few lines."""
        lines = [f"{self.crops} new crops from {self.inputs - self.skipped_done} inputs "
                 f"({self.skipped_done} already done); dataset holds {self.total_crops}"]
        for label, items in (("no face", self.no_face), ("several faces", self.several_faces),
                             ("unreadable", self.unreadable)):
            if items:
                shown = ", ".join(Path(s).name for s in items[:5]) + (" ..." if len(items) > 5 else "")
                lines.append(f"{len(items)} inputs with {label}: {shown}")
        if self.duplicates:
            lines.append(f"{self.duplicates} near-duplicate video crops skipped")
        if self.unlabelled:
            lines.append(f"{self.unlabelled} faces without a usable OpenFace row skipped")
        return "\n".join(lines + self.notes)


def parse_every(text: str) -> float:
    """Seconds from `0.5s`, `0.5` or `500ms`; 0 keeps every frame."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s)?\s*", text)
    if not m:
        raise ConfigError(f"--every must be a duration like 0.5s or 200ms, got {text!r}")
    return float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)


def _expand(inputs: list[Path], out: Path) -> tuple[list[Path], list[str]]:
    """Media files of the inputs (folders searched recursively, sorted) and missing paths."""
    files, missing = [], []
    for p in inputs:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS and f.is_file()
                           and out.resolve() not in f.resolve().parents)
            files += found
        elif p.is_file():
            files.append(p)
        else:
            missing.append(str(p))
    seen: set[Path] = set()
    return [f for f in files if not (f.resolve() in seen or seen.add(f.resolve()))], missing


def _read_image(path: Path) -> np.ndarray | None:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except Exception:  # any decoder failure means "unreadable", reported, never a crash
        return None


def _faces(detector, image: np.ndarray, size: int, min_face: int, retry_small: bool, mesh: bool) -> list[tuple]:
    """(box, score, landmarks, crop, cues) of every face at least `min_face` px wide, largest
    first; cues (meshaus.cues) only with `mesh`, else None."""
    found = detector.boxes(image)
    if not found and retry_small and max(image.shape[:2]) <= 800:
        from ganivid.faces import DlibDetector

        found = DlibDetector(upsample=1).boxes(image)  # small portraits: faces under ~80 px
    found = sorted((f for f in found if f[0][2] - f[0][0] >= min_face), key=lambda f: f[0][0] - f[0][2])
    out = []
    for box, score in found:
        lm = stable_landmarks(detector, image, box)
        al = alignment_from_landmarks(lm)
        out.append((box, score, lm, crop_face(image, al, size), read_cues(image, lm) if mesh else None))
    return out


def _analyse_image(args: tuple[str, int, int, bool]) -> tuple[str, list[Face] | None]:
    """Worker: the faces of one image file (None: unreadable)."""
    from ganivid.faces import DlibDetector

    path, size, min_face, mesh = args
    image = _read_image(Path(path))
    if image is None:
        return path, None
    found = _faces(DlibDetector(), image, size, min_face, retry_small=True, mesh=mesh)
    return path, [Face(None, None, b, s, lm, c, q) for b, s, lm, c, q in found]


def _video_frames(path: Path, every: float) -> Iterator[tuple[int, float, np.ndarray]]:
    """(index, seconds, upright RGB image) of frames at least `every` s apart; a file that
    breaks off ends early, one that cannot be opened or yields no frame raises VideoError."""
    from ganivid.video import read_frames

    next_t, n = float("-inf"), 0
    try:
        for f in read_frames(path, upright=True):
            n += 1
            if f.time_s >= next_t - 1e-6:
                next_t = f.time_s + every
                yield f.index, f.time_s, f.image
    except VideoError:
        if n == 0:
            raise
    if n == 0:
        raise VideoError(f"{path.name} has no frames")


def _analyse_video(path: Path, every: float, size: int, min_face: int, summary: AnnotateSummary,
                   mesh: bool) -> tuple[list[Face], list[int], dict[int, np.ndarray]]:
    """Sampled faces of a video (near-duplicates dropped), their track ids (faces matched across
    frames by position) and every sampled reading of each track, duplicates included: mesh cues
    (T, 17) with `mesh`, else landmark sets (T, 68, 2)."""
    from ganivid.faces import DlibDetector

    det = DlibDetector()
    faces: list[Face] = []
    tracks: list[int] = []
    last: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # track -> (box centre, thumbnail)
    seen: dict[int, list[np.ndarray]] = {}
    for index, t, image in _video_frames(path, every):
        for box, score, lm, crop, cues in _faces(det, image, size, min_face, retry_small=False, mesh=mesh):
            centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
            width = box[2] - box[0]
            near = [k for k, (c, _) in last.items() if np.linalg.norm(c - centre) < 0.5 * width]
            track = near[0] if near else len(last)
            seen.setdefault(track, []).append(cues if mesh else lm)
            thumb = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
            if track in last and np.abs(thumb - last[track][1]).mean() < DUPLICATE_DIFF:
                summary.duplicates += 1
                last[track] = (centre, last[track][1])
                continue
            last[track] = (centre, thumb)
            faces.append(Face(index, t, box, score, lm, crop, cues))
            tracks.append(track)
    return faces, tracks, {t: np.stack(v) for t, v in seen.items()}


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


def _write_csv(out: Path, entries: list[dict]) -> None:
    """aus.csv from manifest entries, written atomically."""
    with atomic_path(out / "aus.csv") as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(["file", *AU_NAMES]) + "\n")
        for e in entries:
            cells = ["" if v is None else f"{v:.4f}" for v in e["aus"]]
            f.write(",".join([e["file"], *cells]) + "\n")


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line cut by a crash: its input is redone
    return out


def _prepare(out: Path, settings: dict) -> tuple[set[str], list[dict]]:
    """Make or check the dataset folder; returns done sources and the manifest of done inputs."""
    try:
        (out / "imgs").mkdir(parents=True, exist_ok=True)
    except OSError as ex:
        raise DataError(f"cannot create {out}: {ex.strerror}") from None
    meta = out / "annotate.json"
    if meta.is_file():
        old = json.loads(meta.read_text(encoding="utf-8"))
        if old.get("labels") == "builtin":  # folders made before the mesh estimator
            old["labels"] = "landmarks"
        if old != settings:
            diff = ", ".join(f"{k} {old.get(k)} (now {v})" for k, v in settings.items() if old.get(k) != v)
            raise ConfigError(f"{out} was made with {diff}: rerun with the same options or use a new folder")
    else:
        meta.write_text(json.dumps(settings), encoding="utf-8")
    done = {e["source"] for e in _read_jsonl(out / "inputs.jsonl") if "source" in e}
    entries = _read_jsonl(out / "manifest.jsonl")
    keep = [e for e in entries if e.get("source") in done]
    if len(keep) != len(entries):  # crops of an input interrupted half-way: redo it cleanly
        for e in entries:
            if e.get("source") not in done:
                (out / e["file"]).unlink(missing_ok=True)
        with atomic_path(out / "manifest.jsonl") as tmp:
            tmp.write_text("".join(json.dumps(e) + "\n" for e in keep), encoding="utf-8")
    return done, keep


def _labels(faces: list[Face], tracks: list[int] | None, track_seen: dict[int, np.ndarray] | None, source: Path,
            openface: OpenFaceLabels | None) -> list[list[float | None] | None]:
    """AUs (17 values, None where unsupported) per face; None for a face without OpenFace row.
    Faces with mesh cues are read by meshaus, the others from their landmarks (estimate.py);
    `track_seen`: every sampled reading of each video track, for its own neutral."""
    if openface is not None:
        return [openface.match(source, f.frame, f.landmarks) for f in faces]
    if not faces:
        return []
    mesh = faces[0].cues is not None
    read, estimate, baseline = ((np.stack([f.cues for f in faces]), mesh_aus, cue_baseline) if mesh else
                                (np.stack([f.landmarks for f in faces]), estimate_aus, track_baseline))
    aus = np.full((len(faces), len(AU_NAMES)), np.nan, np.float32)
    if tracks is None:
        aus[:] = estimate(read)
    else:
        tr = np.array(tracks)
        for t in set(tracks):
            idx = np.flatnonzero(tr == t)
            every = track_seen[t] if track_seen and t in track_seen else read[idx]
            base = baseline(every) if len(every) >= MIN_TRACK_FRAMES else None
            aus[idx] = estimate(read[idx], base)
    return [[None if np.isnan(v) else float(v) for v in row] for row in aus]


def annotate(inputs: list[str | Path], out: str | Path, *, size: int = 128, every: float = 0.5,
             openface: str | Path | None = None, min_face: int = 40, workers: int | None = None,
             progress: bool = True, estimator: str = "mesh") -> AnnotateSummary:
    """Crop and label every face of images, folders and videos into the dataset folder `out`.

    Args:
        inputs: image files, video files or folders (searched recursively).
        out: dataset folder; created, or continued (inputs already done are skipped).
        size: crop side in pixels.
        every: seconds between sampled video frames (0: every frame).
        openface: OpenFace CSV or folder of CSVs; their AUs (0..5, divided by 5) label the crops
            instead of the built-in estimator.
        estimator: the built-in estimator: mesh (MediaPipe's blendshapes, meshaus.py) or
            landmarks (dlib's 68 points, estimate.py); the manifest names it per crop.
        min_face: faces whose detector box is narrower (pixels) are ignored.
        workers: processes for image files [default: up to 2].
    Raises:
        ConfigError: bad options, or `out` made with other options.
        NoFaceError: the dataset holds no crop at the end.
    """
    fresh = not Path(out).exists()
    try:
        return _annotate(inputs, Path(out), size, every, openface, min_face, workers, progress, estimator)
    except BaseException:  # a folder this run made, holding no crop, is of no use: not left behind
        if fresh and not any(Path(out).glob("imgs/*.png")):
            shutil.rmtree(out, ignore_errors=True)
        raise


def _annotate(inputs: list[str | Path], out: Path, size: int, every: float, openface: str | Path | None,
              min_face: int, workers: int | None, progress: bool, estimator: str) -> AnnotateSummary:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if size < 16 or min_face < 1 or every < 0:
        raise ConfigError("--size must be >= 16, --min-face >= 1 and --every >= 0")
    if estimator not in ESTIMATORS:
        raise ConfigError(f"--estimator must be {' or '.join(ESTIMATORS)}, got {estimator!r}")
    out = Path(out)
    labels = read_openface(Path(openface)) if openface is not None else None
    made_by = estimator if labels is None else "openface"
    mesh = made_by == "mesh"
    settings = {"size": size, "crop_spec": CROP_SPEC, "labels": made_by}
    done, entries = _prepare(out, settings)
    files, missing = _expand([Path(p) for p in inputs], out)
    summary = AnnotateSummary(inputs=len(files) + len(missing), unreadable=list(missing))
    if labels is not None:
        summary.notes += labels.problems
    todo = [f for f in files if str(f.resolve()) not in done]
    summary.skipped_done = len(files) - len(todo)
    images = [f for f in todo if f.suffix.lower() in IMAGE_EXTS]
    videos = [f for f in todo if f.suffix.lower() not in IMAGE_EXTS]
    workers = max(1, min(workers or min(2, os.cpu_count() or 1), len(images) or 1))

    def finish(source: Path, faces: list[Face] | None, tracks: list[int] | None, status: str | None = None,
               track_lms: dict[int, np.ndarray] | None = None) -> None:
        key = str(source.resolve())
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", source.stem)[:40] + "-" + hashlib.sha1(key.encode()).hexdigest()[:6]
        new = []
        for k, (face, aus) in enumerate(zip(faces or [], _labels(faces or [], tracks, track_lms, source, labels))):
            if aus is None:
                summary.unlabelled += 1
                continue
            # Images: face k (largest first); videos: frame and track, both stable across reruns.
            name = f"imgs/{stem}-{k}.png" if tracks is None else f"imgs/{stem}-f{face.frame:06d}-t{tracks[k]}.png"
            _write_png(out / name, face.crop)
            new.append({"file": name, "source": key, "frame": face.frame, "time": face.time,
                        "box": [round(v, 1) for v in face.box], "score": round(face.score, 3),
                        "landmarks": np.round(face.landmarks, 2).tolist(), "aus": aus, "labels": made_by})
        if status is None:
            status = "no_face" if not faces else "ok"
        if status == "no_face":
            summary.no_face.append(str(source))
        elif status == "unreadable":
            summary.unreadable.append(str(source))
        elif faces and len(faces if tracks is None else set(tracks)) > 1:
            summary.several_faces.append(str(source))
        with open(out / "manifest.jsonl", "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(e) + "\n" for e in new))
        with open(out / "inputs.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"source": key, "status": status, "crops": len(new)}) + "\n")
        entries.extend(new)
        summary.crops += len(new)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, disable=not progress, transient=True) as bar:
            task = bar.add_task("annotate", total=len(todo))
            jobs = [(str(p), size, min_face, mesh) for p in images]
            if todo:
                from ganivid.faces import DlibDetector

                DlibDetector()  # load the models (~4 s) once: forked workers inherit them
            if workers > 1:
                pool = ProcessPoolExecutor(workers)
                results = pool.map(_analyse_image, jobs, chunksize=4)
            else:
                pool, results = None, map(_analyse_image, jobs)
            try:
                for path, faces in results:
                    finish(Path(path), faces, None, "unreadable" if faces is None else None)
                    bar.update(task, advance=1, description=Path(path).name[:30])
            finally:
                if pool is not None:
                    pool.shutdown(cancel_futures=True)
            for path in videos:
                bar.update(task, description=path.name[:30])
                try:
                    faces, tracks, track_lms = _analyse_video(path, every, size, min_face, summary, mesh)
                except VideoError as ex:
                    summary.notes.append(f"{path.name}: {str(ex).splitlines()[0] if str(ex) else type(ex).__name__}")
                    finish(path, None, None, "unreadable")
                else:
                    finish(path, faces, tracks, track_lms=track_lms)
                bar.update(task, advance=1)
    finally:
        _write_csv(out, entries)
    summary.total_crops = len(entries)
    if not entries:
        raise NoFaceError(f"no face crop was written to {out}: " + "; ".join(summary.report().splitlines()))
    return summary
