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
            if im.mode.startswith("I"):  # 16-bit grey: Pillow's convert("RGB") clips it to white
                grey = np.round(np.clip(np.asarray(im, np.float64), 0, 65535) / 257).astype(np.uint8)
                return np.repeat(grey[..., None], 3, axis=2)
            return np.asarray(im.convert("RGB"), np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as ex:
        raise DataError(f"cannot read {p}: not an image, or damaged ({ex})") from None


def warn_lost(path: str | Path, output: str | Path) -> None:
    """Warn about what of the photo at `path` its animation `output` does not keep: the frames of an
    animated image after its first, the alpha channel, bits beyond 8 per channel."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            frames, mode, info = getattr(im, "n_frames", 1), im.mode, im.info
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return  # read_image says what is wrong with it
    name = Path(path).name
    if frames > 1:
        warnings.warn(f"{name} is animated ({frames} frames): its first frame is used as the photo", stacklevel=2)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in info:
        warnings.warn(f"{name} has an alpha channel: {Path(output).name} is opaque (transparent pixels "
                      "show their stored colour)", stacklevel=2)
    with open(path, "rb") as f:  # Pillow reads 16-bit RGB PNGs as 8-bit RGB, with no trace of it
        head = f.read(25)
    if mode.startswith("I") or (head[:8] == b"\x89PNG\r\n\x1a\n" and head[24:25] == b"\x10"):
        warnings.warn(f"{name} has more than 8 bits per channel: {Path(output).name} has 8", stacklevel=2)


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
