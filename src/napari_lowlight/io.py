"""Reading and writing image files for the command line (TIFF via tifffile, PNG/JPEG via imageio).

Dark captures are written so that their quantization levels survive: as
float32 TIFF (any bit depth), or as 8/16-bit PNG when the bit depth matches.
JPEG is lossy and would move pixels off their levels, so it is refused as an
output for dark captures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["TIFF_SUFFIXES", "guess_channel_axis", "read_image", "write_image"]

TIFF_SUFFIXES = (".tif", ".tiff")
IMAGEIO_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def read_image(path) -> np.ndarray:
    """Read an image file into a new array (dtype as stored).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the format is not supported or the file cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    suffix = _suffix(path)
    try:
        if suffix in TIFF_SUFFIXES:
            import tifffile

            return np.asarray(tifffile.imread(path))
        if suffix in IMAGEIO_SUFFIXES:
            import imageio.v3 as iio

            return np.asarray(iio.imread(path, plugin="pillow"))
    except Exception as exc:  # decoder errors come in many types; name the file
        raise ValueError(f"cannot read {path}: {exc}") from exc
    raise ValueError(
        f"unsupported image format {suffix!r} for {path}; use "
        f"{', '.join(TIFF_SUFFIXES + IMAGEIO_SUFFIXES)}"
    )


def guess_channel_axis(array: np.ndarray) -> int | None:
    """Channel axis of an image as read from a file: the last one when it holds 3 or 4 (RGB/A)."""
    if array.ndim >= 3 and array.shape[-1] in (3, 4):
        return -1
    return None


def write_image(path, image: np.ndarray, *, bits: int | None = None, metadata=None) -> Path:
    """Write ``image`` (float in [0, 1]) to ``path``.

    Parameters
    ----------
    path : str or Path
        ``.tif``/``.tiff``: float32, ``metadata`` stored as JSON in the
        description.  ``.png``: integers of ``bits`` bits (8 -> uint8,
        16 -> uint16, exact for images on that grid); other bit depths are refused.
        ``.jpg``: 8-bit, lossy, only when ``bits`` is None (display images).
    image : ndarray of float in [0, 1]
    bits : int or None
        Bit depth of a quantized image (a dark capture); None for a display image.
    metadata : dict, optional
        JSON-serialisable parameters to store (TIFF only).
    """
    path = Path(path)
    suffix = _suffix(path)
    image = np.asarray(image)
    if suffix in TIFF_SUFFIXES:
        import tifffile

        description = json.dumps(metadata or {})
        photometric = "rgb" if image.ndim >= 3 and image.shape[-1] == 3 else "minisblack"
        tifffile.imwrite(
            path, image.astype(np.float32), description=description, photometric=photometric
        )
        return path
    if suffix not in IMAGEIO_SUFFIXES:
        raise ValueError(
            f"unsupported output format {suffix!r} for {path}; use .tif, .tiff, .png or .jpg"
        )
    if suffix in (".jpg", ".jpeg") and bits is not None:
        raise ValueError(
            f"{path}: JPEG is lossy and would move pixels off their quantization levels; "
            "write the dark capture as .tif or .png"
        )
    if bits is None:
        bits = 8
    if bits not in (8, 16):
        raise ValueError(
            f"{path}: a {bits}-bit image cannot be stored exactly in {suffix}; use .tif "
            "(float32) or bits 8/16"
        )
    import imageio.v3 as iio

    dtype = np.uint8 if bits == 8 else np.uint16
    scale = np.iinfo(dtype).max
    iio.imwrite(path, np.rint(np.clip(image, 0, 1) * scale).astype(dtype))
    return path
