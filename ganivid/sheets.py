"""Labelled contact sheets for `ganivid preview`: panels on a grid, text with Pillow, plots with matplotlib.

Panels are pasted pixel for pixel (no resampling after `fit`), so a sheet's panel regions can be
compared with the images that went in; `Sheet` records where every panel and label landed."""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in sheet pixels (x1, y1 exclusive)
Line = str | tuple[str, tuple[int, int, int]]  # text, or (text, RGB colour)

BACKGROUND = (255, 255, 255)
INK = (25, 25, 25)
MUTED = (105, 105, 105)
ACCENT = (190, 30, 30)  # changed values and overlays: the eye should go there first
MARGIN = 14
GAP = 6
LABEL_SIZE = 15
NOTE_SIZE = 12
TITLE_SIZE = 18


@functools.cache
def font(size: int, bold: bool = False, mono: bool = False):
    """DejaVu from matplotlib's data (always installed with it), as a Pillow font."""
    from matplotlib import font_manager
    from PIL import ImageFont

    family = "DejaVu Sans Mono" if mono else "DejaVu Sans"
    path = font_manager.findfont(font_manager.FontProperties(family=family, weight="bold" if bold else "normal"))
    return ImageFont.truetype(path, size)


def _line_text(line: Line) -> str:
    return line if isinstance(line, str) else line[0]


def text_size(lines: Sequence[Line], fnt) -> tuple[int, int]:
    """(width, height) in pixels of lines of text set in `fnt`."""
    if not lines:
        return 0, 0
    widths = [int(np.ceil(fnt.getlength(_line_text(s)))) for s in lines]
    return max(widths), _line_height(fnt) * len(lines)


def _line_height(fnt) -> int:
    a, d = fnt.getmetrics()
    return a + d + 2


def fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`image` scaled (up or down, aspect kept) to fit in width x height."""
    import cv2

    h, w = image.shape[:2]
    k = min(width / w, height / h)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    if size == (w, h):
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)


def grey(mask: np.ndarray) -> np.ndarray:
    """A [0, 1] mask (H, W) as an RGB uint8 grey image (white = 1)."""
    g = np.clip(np.asarray(mask, np.float32) * 255, 0, 255).round().astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def outline(image: np.ndarray, colour: tuple[int, int, int] = (175, 175, 175)) -> np.ndarray:
    """`image` with a 1-pixel frame, so a mostly white mask still shows where its panel ends."""
    out = image.copy()
    out[0], out[-1], out[:, 0], out[:, -1] = colour, colour, colour, colour
    return out


def overlay(image: np.ndarray, scale: float, corners: np.ndarray | None = None,
            landmarks: np.ndarray | None = None, label: str | None = None) -> np.ndarray:
    """Draw a face's crop outline (4 corners), landmarks and a label on `image`, whose pixels are
    `scale` times the coordinates given (draw after resizing, so lines stay thin and crisp)."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    colour = ACCENT
    if corners is not None:
        pts = np.round(np.asarray(corners) * scale * 4).astype(np.int32)  # 2 fractional bits
        cv2.polylines(out, [pts], True, colour, 2, cv2.LINE_AA, shift=2)
    if landmarks is not None:
        r = max(1, round(out.shape[1] / 400))
        for x, y in np.asarray(landmarks) * scale:
            cv2.circle(out, (round(x * 4), round(y * 4)), r * 4, (40, 220, 60), -1, cv2.LINE_AA, shift=2)
    if label and corners is not None:
        from PIL import Image, ImageDraw

        x, y = (np.asarray(corners) * scale).min(axis=0)
        fnt = font(NOTE_SIZE, bold=True)
        w, h = text_size([label], fnt)
        x = int(np.clip(x, 0, max(0, out.shape[1] - w - 4)))
        y = int(np.clip(y - h - 2, 0, max(0, out.shape[0] - h)))
        pil = Image.fromarray(out)
        d = ImageDraw.Draw(pil)
        d.rectangle((x, y, x + w + 4, y + h), fill=colour)
        d.text((x + 2, y), label, fill=(255, 255, 255), font=fnt)
        out = np.asarray(pil).copy()
    return out


@dataclass(frozen=True)
class Sheet:
    """A composed sheet and where everything landed on it."""

    image: np.ndarray  # (H, W, 3) uint8
    panels: tuple[tuple[Box | None, ...], ...]  # [row][column]; None for an empty cell
    row_labels: tuple[Box | None, ...]
    col_labels: tuple[Box | None, ...]
    notes: tuple[Box | None, ...]  # text beside each row
    title: Box | None = None
    legend: Box | None = None


def compose(panels: Sequence[Sequence[np.ndarray | None]], row_labels: Sequence[str] | None = None,
            col_labels: Sequence[str] | None = None, *, title: str | None = None,
            notes: Sequence[Sequence[Line]] | None = None, legend: Sequence[Line] | None = None,
            captions: Sequence[Sequence[str | None]] | None = None) -> Sheet:
    """Lay RGB panels out on a labelled grid: a column's cells are as wide as its widest panel,
    a row's as tall as its tallest panel or its labels; panels are centred in their cells.

    Args:
        panels: rows of RGB uint8 images (None leaves a cell empty).
        row_labels, col_labels: text left of each row / above each column ("\\n" breaks lines).
        title: a bold line above everything.
        notes: lines of monospaced text right of each row (a line may carry its own colour).
        legend: lines of small text under the grid.
        captions: rows of short texts set under each panel.
    """
    from PIL import Image, ImageDraw

    rows, cols = len(panels), max((len(r) for r in panels), default=0)
    lf, nf, tf = font(LABEL_SIZE, bold=True), font(NOTE_SIZE, mono=True), font(TITLE_SIZE, bold=True)
    rl = [s.split("\n") for s in (row_labels or [""] * rows)]
    cl = [s.split("\n") for s in (col_labels or [""] * cols)]
    nl = [list(n) for n in (notes or [[]] * rows)]
    cap = [[(r[c] if captions and i < len(captions) and c < len(r := captions[i]) else None) or "" for c in range(cols)]
           for i in range(rows)]
    cap_h = [max([text_size([t], nf)[1] for t in cap[i] if t] + [0]) for i in range(rows)]
    col_w = [max([p.shape[1] for r in panels if c < len(r) and (p := r[c]) is not None] + [text_size(cl[c], lf)[0], 1])
             for c in range(cols)]
    col_w = [max([col_w[c]] + [text_size([cap[i][c]], nf)[0] for i in range(rows)]) for c in range(cols)]
    row_h = [max([p.shape[0] + cap_h[i] for p in r if p is not None]
                 + [text_size(rl[i], lf)[1], text_size(nl[i], nf)[1], 1]) for i, r in enumerate(panels)]
    label_w = max([text_size(s, lf)[0] for s in rl] + [0])
    note_w = max([text_size(n, nf)[0] for n in nl] + [0])
    head_h = max([text_size(s, lf)[1] for s in cl] + [0])
    title_h = text_size([title], tf)[1] + GAP if title else 0
    leg = list(legend or [])
    leg_h = text_size(leg, nf)[1] + GAP if leg else 0

    x_grid = MARGIN + (label_w + GAP if label_w else 0)
    y_grid = MARGIN + title_h + (head_h + GAP if head_h else 0)
    xs = [x_grid + sum(col_w[:c]) + GAP * c for c in range(cols)]
    ys = [y_grid + sum(row_h[:r]) + GAP * r for r in range(rows)]
    grid_right = xs[-1] + col_w[-1] if cols else x_grid
    grid_bottom = ys[-1] + row_h[-1] if rows else y_grid
    width = max(grid_right + (GAP + note_w if note_w else 0), MARGIN + text_size([title], tf)[0] if title else 0,
                MARGIN + text_size(leg, nf)[0]) + MARGIN
    height = grid_bottom + (GAP + leg_h if leg else 0) + MARGIN

    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
    boxes: list[list[Box | None]] = []
    for r, row in enumerate(panels):
        boxes.append([])
        for c in range(cols):
            p = row[c] if c < len(row) else None
            if p is None:
                boxes[-1].append(None)
                continue
            h, w = p.shape[:2]
            x0, y0 = xs[c] + (col_w[c] - w) // 2, ys[r] + (row_h[r] - cap_h[r] - h) // 2
            canvas[y0:y0 + h, x0:x0 + w] = p if p.ndim == 3 else p[..., None]
            boxes[-1].append((x0, y0, x0 + w, y0 + h))

    pil = Image.fromarray(canvas)
    draw = ImageDraw.Draw(pil)

    def put(lines: Sequence[Line], x: int, y: int, fnt, colour=INK, align: str = "left", width: int = 0) -> Box | None:
        if not any(_line_text(s) for s in lines):
            return None
        w, h = text_size(lines, fnt)
        lh = _line_height(fnt)
        for k, s in enumerate(lines):
            text, col = (s, colour) if isinstance(s, str) else s
            dx = {"left": 0, "right": width - fnt.getlength(text), "center": (width - fnt.getlength(text)) / 2}[align]
            draw.text((x + dx, y + k * lh), text, fill=col, font=fnt)
        x0 = x + (width - w if align == "right" else (width - w) // 2 if align == "center" else 0)
        return (int(x0), y, int(x0) + w, y + h)

    t_box = put([title], MARGIN, MARGIN, tf) if title else None
    c_boxes = tuple(put(cl[c], xs[c], MARGIN + title_h + head_h - text_size(cl[c], lf)[1], lf, align="center",
                        width=col_w[c]) for c in range(cols))
    r_boxes = tuple(put(rl[r], MARGIN, ys[r] + (row_h[r] - text_size(rl[r], lf)[1]) // 2, lf, align="right",
                        width=label_w) for r in range(rows))
    n_boxes = tuple(put(nl[r], grid_right + GAP, ys[r] + (row_h[r] - text_size(nl[r], nf)[1]) // 2, nf)
                    for r in range(rows))
    for r in range(rows):
        for c in range(cols):
            if cap[r][c] and boxes[r][c] is not None:
                put([cap[r][c]], xs[c], boxes[r][c][3] + 1, nf, align="center", width=col_w[c])
    l_box = put(leg, MARGIN, grid_bottom + GAP, nf, MUTED) if leg else None
    return Sheet(np.asarray(pil).copy(), tuple(tuple(b) for b in boxes), r_boxes, c_boxes, n_boxes, t_box, l_box)


def figure_image(fig) -> np.ndarray:
    """Render a matplotlib Figure (Agg, no pyplot state) to RGB uint8."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
