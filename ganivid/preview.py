"""`ganivid preview`: see what an edit will do before rendering, and what the model is doing.

- `preview_grid`: the paper's Fig. 4, one row per AU set to increasing intensities;
- `preview_interpolate`: Fig. 1, y(alpha) = alpha y_g + (1 - alpha) y_r from the face's own AUs
  to an expression, with the attention and colour masks (Fig. 5) on request;
- `preview_sample`: Fig. 7, random plausible AU vectors;
- `preview_frames` (in `ganivid.previewframes`): chosen frames of a video edited along its curves.
Each writes one labelled sheet (PNG, or JPEG/WebP by extension) sized to fit a screen."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ganivid.aus import AU_DESCRIPTIONS, AU_NAMES, EXPRESSIONS, NUM_AUS, au_index, expression
from ganivid.errors import ConfigError
from ganivid.sheets import Sheet, compose, fit, grey, outline
from ganivid.still import StillFace, find_faces

if TYPE_CHECKING:
    from ganivid.align import Alignment

SCREEN = (1800, 1350)  # a sheet's panels fit in this many pixels (a laptop screen at 100 %)
CELL_MAX, CELL_MIN = 256, 96  # panel side limits: large enough to judge a face, small enough to fit
MAX_FRAMES = 24
PAPER_AUS = ("AU1", "AU2", "AU4", "AU12", "AU25", "AU26", "AU45")


@dataclass(frozen=True)
class PreviewResult:
    """A written preview sheet."""

    output: Path
    sheet: Sheet
    curves_plot: Path | None = None  # preview_frames: the AU curves plot beside the sheet
    frames: tuple[int, ...] = ()  # preview_frames: frame numbers shown
    decoded_frames: int = 0  # preview_frames: video frames decoded (seeking keeps this small)
    track_cache: Path | None = None  # preview_frames: animate's track table, when it was reused

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the sheet in pixels."""
        return self.sheet.image.shape[1], self.sheet.image.shape[0]


def cell_size(rows: int, cols: int, extra_w: int = 300, extra_h: int = 120) -> int:
    """Panel side so that rows x cols panels plus labels fit `SCREEN`."""
    side = min((SCREEN[0] - extra_w) // max(cols, 1), (SCREEN[1] - extra_h) // max(rows, 1), CELL_MAX)
    return max(CELL_MIN, int(side))


def load_subject(path: str | Path, at: str | float | None = None) -> tuple[np.ndarray, str]:
    """An image file, or the frame of a video shown at `at` (seconds, timecode or '#frame'):
    (RGB image, a description for titles)."""
    from ganivid.curves import parse_time
    from ganivid.images import is_image, read_image

    p = Path(path)
    if is_image(p):
        if at is not None:
            raise ConfigError(f"--at picks a video frame, but {p.name} is an image")
        return read_image(p), p.name
    from ganivid.video import read_frames_at

    k = parse_time(at if at is not None else 0, "--at")
    f = read_frames_at(p, indices=[k.frame] if k.frame is not None else None,
                       times=[k.seconds] if k.frame is None else None, upright=True)[0]
    return f.image, f"{p.name} frame #{f.index} ({f.time_s:.2f} s)"


def face_region(a: Alignment, shape: tuple[int, ...], margin: float = 1.3) -> tuple[int, int, int, int]:
    """Axis-aligned square (x0, y0, x1, y1) around a face's crop, clipped to the image."""
    half = margin * a.size / 2
    h, w = shape[:2]
    x0, y0 = max(0, int(a.cx - half)), max(0, int(a.cy - half))
    return x0, y0, min(w, int(np.ceil(a.cx + half))), min(h, int(np.ceil(a.cy + half)))


class Views:
    """Panels of one face edited many ways: the pasted-back photo around the face, or crops."""

    def __init__(self, engine, image: np.ndarray, face: StillFace, cell: int, crops: bool = False,
                 full: bool = False):
        from ganivid.align import crop_face

        if crops and full:
            raise ConfigError("--crops and --full exclude each other")
        self.engine, self.face, self.cell, self.crops = engine, face, cell, crops
        self.box = (0, 0, image.shape[1], image.shape[0]) if full else face_region(face.alignment, image.shape)
        x0, y0, x1, y1 = self.box
        self.region = image[y0:y1, x0:x1]
        # Paste into the region only: the same pixels as pasting into the photo, a fraction of the work.
        self.local = replace(face.alignment, cx=face.alignment.cx - x0, cy=face.alignment.cy - y0)
        self.crop = crop_face(image, face.alignment, engine.image_size)

    def source(self) -> np.ndarray:
        """The face's own AUs (17,), 0 where the estimator has no answer."""
        return np.nan_to_num(self.face.aus, nan=0.0).astype(np.float32)

    def input(self) -> np.ndarray:
        """The unedited panel."""
        return fit(self.crop if self.crops else self.region, self.cell, self.cell)

    def edit(self, targets: np.ndarray):
        """Edits for targets (K, 17): the engine's `Edit`s, batched and deduplicated by it."""
        from ganivid.align import crop_landmarks

        targets = np.asarray(targets, np.float32)
        marks = crop_landmarks(self.face.landmarks, self.face.alignment, self.engine.image_size)
        return self.engine.edit([self.crop] * len(targets), targets, np.repeat(self.source()[None], len(targets), 0),
                                np.repeat(marks[None], len(targets), 0))

    def panel(self, edit) -> np.ndarray:
        """The panel of one edit (pasted back, or the generator's crop)."""
        from ganivid.align import paste_back

        img = edit.image if self.crops else paste_back(self.region, self.crop, edit.image, self.local, flow=edit.flow,
                                                        warped_crop=edit.warped)
        return fit(img, self.cell, self.cell)

    def masks(self, edit) -> tuple[np.ndarray, np.ndarray]:
        """Attention (white = kept from the input) and colour-mask panels, in crop space."""
        return outline(fit(grey(edit.attention), self.cell, self.cell)), fit(edit.color, self.cell, self.cell)


def _setup(image_path, at, model, device, crops, full, rows: int, cols: int, faces: str = "largest"):
    if crops and full:
        raise ConfigError("--crops and --full exclude each other")
    image, what = load_subject(image_path, at)
    face = find_faces(image, faces)[0]
    from ganivid.engine import load_engine

    engine = load_engine(model, device)
    return Views(engine, image, face, cell_size(rows, cols), crops, full), what


def _panels_text(crops: bool, full: bool) -> str:
    if crops:
        return "Panels: the generator's aligned crops."
    return f"Panels: the {'whole photo' if full else 'photo around the face'} with the edit pasted back at full resolution."


def _model_name(model) -> str:
    return Path(model).name if isinstance(model, (str, Path)) else "shipped model" if model is None else "model"


def _au_values(aus: np.ndarray, names: Sequence[str]) -> str:
    return "  ".join(f"{n} {'n/a' if np.isnan(aus[au_index(n)]) else f'{aus[au_index(n)]:.2f}'}" for n in names)


def parse_levels(text: str) -> list[float]:
    """`0,0.33,0.66,1` -> intensities (ConfigError on anything else)."""
    try:
        return _levels([float(v) for v in text.split(",") if v.strip()])
    except ValueError:
        raise ConfigError(f"--levels {text!r}: give intensities in [0, 1] separated by commas, e.g. 0,0.5,1") from None


def _levels(levels: Sequence[float]) -> list[float]:
    out = [float(v) for v in levels]
    if not out or any(not 0 <= v <= 1 for v in out):
        raise ConfigError(f"--levels must be intensities in [0, 1], got {','.join(map(str, levels)) or 'none'}")
    return out


def preview_grid(image: str | Path, output: str | Path, *, aus: Sequence[str] = PAPER_AUS,
                 levels: Sequence[float] = (0.0, 0.33, 0.66, 1.0), at: str | float | None = None,
                 crops: bool = False, full: bool = False, model: str | Path | None = None, device: str = "auto",
                 faces: str = "largest") -> PreviewResult:
    """The paper's Fig. 4: one row per AU, set to each level while the other AUs keep the face's own.

    Args:
        image: a photo, or a video with `at` choosing the frame.
        output: the sheet (.png, .jpg or .webp).
        aus: AU names, one row each; levels: intensities in [0, 1], one column each.
        crops: show the generator's aligned crops; full: the whole photo (default: around the face).
        model, device: the generator; faces: which face (largest, or a number, 0 = largest).
    """
    from ganivid.images import check_image_output, write_image

    check_image_output(output, source=image)  # a sheet never replaces its own photo
    idx = [au_index(a) for a in aus]
    if not idx:
        raise ConfigError("--aus: give at least one AU, e.g. AU12,AU25")
    lv = _levels(levels)
    views, what = _setup(image, at, model, device, crops, full, len(idx), len(lv) + 1, faces)
    src = views.source()
    targets = np.repeat(src[None], len(idx) * len(lv), 0)
    for r, i in enumerate(idx):
        for c, v in enumerate(lv):
            targets[r * len(lv) + c, i] = v
    edits = views.edit(targets)
    inp = views.input()
    rows = [[inp] + [views.panel(edits[r * len(lv) + c]) for c in range(len(lv))] for r in range(len(idx))]
    names = [AU_NAMES[i] for i in idx]
    sheet = compose(
        rows, [f"{n}\n{AU_DESCRIPTIONS[n]}" for n in names], ["input"] + [f"{v:g}" for v in lv],
        title=f"Single-AU edits of {what} ({_model_name(model)})",
        notes=[[f"own {_au_values(views.face.aus, [n]).split()[-1]}"] for n in names],
        legend=["Each row sets one AU to the intensity above its column; every other AU keeps the face's own "
                "(estimated from landmarks, 'own' beside the row).",
                _panels_text(crops, full)])
    write_image(output, sheet.image)
    return PreviewResult(Path(output), sheet)


def preview_interpolate(image: str | Path, output: str | Path, *, expression: str | None = "smile",
                        au: Sequence[str] = (), steps: int = 6, masks: bool = False, at: str | float | None = None,
                        crops: bool = False, full: bool = False, model: str | Path | None = None,
                        device: str = "auto", faces: str = "largest") -> PreviewResult:
    """The paper's Fig. 1: y(alpha) = alpha y_g + (1 - alpha) y_r for alpha from 0 to 1, y_r the
    face's own AUs and y_g the target of `expression` and/or `au` edits; `masks` adds the
    attention and colour rows (Fig. 5)."""
    from ganivid.curves import build_program
    from ganivid.images import check_image_output, write_image

    check_image_output(output, source=image)  # a sheet never replaces its own photo
    if not 2 <= steps <= 16:
        raise ConfigError(f"--steps must be between 2 and 16, got {steps}")
    program = build_program(None, au, [expression] if expression else [])
    if program.is_empty:
        raise ConfigError("give --expression NAME or --au NAME=VALUE to interpolate towards")
    views, what = _setup(image, at, model, device, crops or masks, full and not masks, 3 if masks else 1, steps + 1,
                         faces)
    src = views.source()
    goal = program.evaluate(np.zeros(1), src[None])[0]
    alphas = np.linspace(0, 1, steps)
    edits = views.edit(alphas[:, None] * goal[None] + (1 - alphas[:, None]) * src[None])
    rows = [[views.input()] + [views.panel(e) for e in edits]]
    labels = ["edited"]
    if masks:
        pairs = [views.masks(e) for e in edits]
        rows += [[None] + [a for a, _ in pairs], [None] + [c for _, c in pairs]]
        labels += ["attention", "colour"]
    changed = [AU_NAMES[i] for i in np.argsort(-np.abs(goal - src)) if abs(goal[i] - src[i]) > 0.01][:6]
    goal_text = ", ".join(f"{n} {src[au_index(n)]:.2f}→{goal[au_index(n)]:.2f}" for n in changed) or "no change"
    sheet = compose(rows, labels, ["input"] + [f"α = {a:.2f}" for a in alphas],
                    title=f"Interpolation of {what} towards {', '.join(c.target for c in program.curves)} "
                          f"({_model_name(model)})",
                    legend=[f"y(α) = α·y_g + (1 − α)·y_r: y_r the face's own AUs, y_g the target ({goal_text}).",
                            *(["attention: white = kept from the input, black = taken from the colour mask."]
                              if masks else []), _panels_text(crops or masks, full and not masks)])
    write_image(output, sheet.image)
    return PreviewResult(Path(output), sheet)


def random_aus(count: int, seed: int = 0) -> np.ndarray:
    """`count` plausible AU vectors (count, 17): one or two named expressions at random strengths,
    sometimes an extra AU, with anatomical exclusions (lip corners up xor down, wide eyes xor blink;
    a dropped jaw parts the lips)."""
    rng = np.random.default_rng(seed)
    names = [n for n in EXPRESSIONS if n != "neutral"]
    out = np.zeros((count, NUM_AUS), np.float32)
    for k in range(count):
        for name in rng.choice(names, int(rng.integers(1, 3)), replace=False):
            out[k] = np.maximum(out[k], expression(str(name), float(rng.uniform(0.4, 1.0))))
        if rng.random() < 0.5:
            i = int(rng.integers(NUM_AUS))
            out[k, i] = max(out[k, i], rng.uniform(0.2, 0.7))
        for a, b in (("AU12", "AU15"), ("AU5", "AU45")):
            i, j = au_index(a), au_index(b)
            out[k, i if out[k, i] < out[k, j] else j] = 0.0
        out[k, au_index("AU25")] = max(out[k, au_index("AU25")], out[k, au_index("AU26")])
    return np.clip(out, 0, 1)


def _caption(aus: np.ndarray, top: int = 3) -> str:
    idx = [i for i in np.argsort(-aus)[:top] if aus[i] > 0.05]
    return " ".join(f"{AU_NAMES[i]} {aus[i]:.1f}" for i in idx) or "neutral"


def preview_sample(image: str | Path, output: str | Path, *, count: int = 16, seed: int = 0,
                   at: str | float | None = None, crops: bool = False, full: bool = False,
                   model: str | Path | None = None, device: str = "auto", faces: str = "largest") -> PreviewResult:
    """The paper's Fig. 7: the face under `count` random plausible AU vectors (`random_aus`),
    each panel captioned with its strongest AUs."""
    from ganivid.images import check_image_output, write_image

    check_image_output(output, source=image)  # a sheet never replaces its own photo
    if not 1 <= count <= 64:
        raise ConfigError(f"--count must be between 1 and 64, got {count}")
    cols = int(np.ceil(np.sqrt(count + 1)))
    n_rows = int(np.ceil((count + 1) / cols))
    views, what = _setup(image, at, model, device, crops, full, n_rows, cols, faces)
    targets = random_aus(count, seed)
    panels = [views.input()] + [views.panel(e) for e in views.edit(targets)]
    caps = ["input"] + [_caption(t) for t in targets]
    grid = [panels[r * cols:(r + 1) * cols] for r in range(n_rows)]
    sheet = compose(grid, title=f"Random AU targets on {what} (seed {seed}, {_model_name(model)})",
                    captions=[caps[r * cols:(r + 1) * cols] for r in range(n_rows)],
                    legend=["Each panel: a random plausible AU vector (its strongest AUs below it); "
                            "the same seed gives the same vectors.", _panels_text(crops, full)])
    write_image(output, sheet.image)
    return PreviewResult(Path(output), sheet)
