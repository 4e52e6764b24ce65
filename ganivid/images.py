"""Still images: read (EXIF orientation applied) and write (by extension, atomically) with Pillow."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ganivid.errors import ConfigError, DataError
from ganivid.fileio import atomic_path, check_output

# Output formats by extension, and the Pillow options that keep them close to lossless.
FORMATS = {".png": ("PNG", {"compress_level": 6}), ".jpg": ("JPEG", {"quality": 94, "subsampling": 0}),
           ".jpeg": ("JPEG", {"quality": 94, "subsampling": 0}), ".webp": ("WEBP", {"quality": 94, "method": 4})}
# Inputs recognised by extension before trying Pillow (video containers are never opened as images).
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"})


def is_image(path: str | Path) -> bool:
    """True if `path` is a still image: a known image extension, or a file Pillow can identify."""
    p = Path(path)
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        return True
    if not p.is_file():
        return False
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            return im.format not in (None, "MPEG")  # an .mpg opened as MPEG is a video
    except (UnidentifiedImageError, OSError, ValueError):
        return False


def read_image(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3), turned upright by its EXIF orientation.

    Raises:
        DataError: missing, empty, a directory or not a readable image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise DataError(f"no such file: {p}")
    if p.is_dir():
        raise DataError(f"{p} is a directory, not an image")
    try:
        with Image.open(p) as im:
            im = ImageOps.exif_transpose(im)  # phone photos store sideways pixels + an EXIF turn
            return np.asarray(im.convert("RGB"), np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as ex:
        raise DataError(f"cannot read {p}: not an image, or damaged ({ex})") from None


def check_image_output(path: str | Path, overwrite: bool = True, source: str | Path | None = None) -> str:
    """Validate an image output path before any work is done (not the input `source`, a folder
    that takes files); returns the Pillow format name."""
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if p.is_dir():
        raise ConfigError(f"output {p} is a directory; give a file name such as {p / 'sheet.png'}")
    if fmt is None:
        raise ConfigError(f"unsupported image extension {p.suffix or '(none)'!r} for {p}; "
                          f"use one of {', '.join(FORMATS)}")
    check_output(p, overwrite, ConfigError, None if source is None else Path(source))
    return fmt[0]


def write_image(path: str | Path, image: np.ndarray, overwrite: bool = True) -> Path:
    """Write RGB uint8 (H, W, 3) as PNG, JPEG or WebP by extension, through a temporary file
    beside it, so an interrupted write never leaves half an image."""
    from PIL import Image

    p = Path(path)
    fmt = check_image_output(p, overwrite)
    options = FORMATS[p.suffix.lower()][1]
    with atomic_path(p, overwrite, ConfigError) as tmp:
        try:
            Image.fromarray(np.ascontiguousarray(image, np.uint8)).save(tmp, format=fmt, **options)
        except OSError as ex:  # a full disk, a vanished folder
            raise ConfigError(f"cannot write {p}: {ex.strerror or ex}") from None
    return p
