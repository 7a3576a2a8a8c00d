"""Reading and writing image files (TIFF through tifffile, PNG/JPEG/BMP through Pillow).

Reading follows the file's own metadata, never the array's shape:

- **TIFF** (tifffile's series and page tags): grayscale (``minisblack``;
  ``miniswhite`` is inverted so that larger means brighter), RGB and palette images
  (the colour map is expanded to RGB: 8-bit when every entry is a multiple of 257,
  else 16-bit); contiguous and planar (``planarconfig=separate``) samples; a gray or
  RGB image with one *unassociated* alpha sample gets its alpha kept aside; a
  grayscale page with several *unspecified* extra samples is a multichannel image
  whose channels become planes (leading axes).  A file with several series is
  refused by the one-image commands unless a series is chosen (``series=``);
  ``batch`` processes every series.  Pyramid levels (reduced-resolution copies of
  series 0) and thumbnails (reduced-resolution pages) are ignored.  Premultiplied
  alpha, CMYK, CIELab and other interpretations are refused with a message.
- **PNG/JPEG/BMP** (Pillow's mode): ``L``, ``LA``, ``RGB``, ``RGBA``, palette images
  (expanded to RGB, to RGBA when the palette has transparency), 16-bit grayscale.
  Pillow reads 16-bit colour and 16-bit gray+alpha PNGs with 8 bits per channel, so
  those are refused (save them as TIFF).  Animated files are refused.

The light (what the algorithms see) and the alpha channel are returned apart: alpha is
never compensated, degraded or dequantized, and :func:`write_image` re-attaches it.

Before any pixel is decoded, the declared size is compared with the memory available
(:func:`check_memory`): a 30000 x 30000 TIFF of a few kilobytes is refused at once with
its size instead of failing after minutes with a ``MemoryError``.

Dark captures are written so that their quantization levels survive: as float32 TIFF
(any bit depth), or as 8/16-bit PNG when the bit depth matches.  JPEG is lossy and
would move pixels off their levels, so it is refused as an output for dark captures.
Every write goes to a temporary file in the same folder that then replaces the target,
so an interrupted write leaves no half file and a hard link to the output is never
written through.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["TIFF_SUFFIXES", "IMAGEIO_SUFFIXES", "IMAGE_SUFFIXES", "WORKING_COPIES",
           "ImageData", "ImageInfo", "ImageTooLargeError", "TiffLayout", "alpha_as_float",
           "available_memory", "check_memory", "check_writable", "drop_alpha",
           "guess_channel_axis", "list_image_files", "load_image", "probe_image", "read_image",
           "tiff_layouts", "write_image"]

TIFF_SUFFIXES = (".tif", ".tiff")
IMAGEIO_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
#: What a folder of images is listed by (:func:`list_image_files`): the formats photographs
#: and microscope frames come in.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
PILLOW_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}
#: Processing an image takes about this many float64 copies of it (measured: LAIC and
#: degrade peak at 6-7 copies); used by :func:`check_memory` for whole-image commands.
WORKING_COPIES = 8


class ImageTooLargeError(ValueError):
    """An image whose declared size does not fit in the memory available."""


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def _format_bytes(count: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"  # pragma: no cover


def available_memory() -> int:
    """Bytes of memory available to this process now (psutil, else ``os.sysconf``)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil missing or unsupported platform
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return 1 << 62  # unknown: do not refuse


def check_memory(shape, *, what: str, bytes_per_value: int = 8,
                 copies: float = WORKING_COPIES) -> None:
    """Refuse, before allocating, an array of ``shape`` that would not fit in memory.

    ``copies`` arrays of ``shape`` with ``bytes_per_value`` bytes per value must fit in
    :func:`available_memory`; :class:`ImageTooLargeError` names the size otherwise.
    """
    values = int(np.prod([int(s) for s in shape], dtype=object)) if len(shape) else 1
    need = values * int(bytes_per_value) * float(copies)
    have = available_memory()
    if need > have:
        dims = " x ".join(str(int(s)) for s in shape)
        raise ImageTooLargeError(
            f"{what}: a {dims} image ({values:,} values) needs about {_format_bytes(need)} of "
            f"memory to process, only {_format_bytes(have)} are available; crop or tile it, or "
            "process it plane by plane with `napari-lowlight batch`")


# -- what a file holds --------------------------------------------------------------------
@dataclass(frozen=True)
class ImageInfo:
    """What an image file holds, from its header (nothing decoded).

    ``shape`` and ``dtype`` are those of the light as :func:`load_image` returns it
    (alpha removed, palette expanded, planar samples last); ``alpha`` says whether an
    alpha channel comes with it.
    """

    path: str
    format: str  # "tiff", "png", "jpeg", "bmp"
    shape: tuple
    dtype: str
    colour: bool
    alpha: bool
    series: int | None = None
    interpretation: str = ""  # as the file declares it: "minisblack", "rgb", "L", "RGBA" ...

    @property
    def channel_axis(self) -> int | None:
        return -1 if self.colour else None

    @property
    def nbytes(self) -> int:
        count = int(np.prod(self.shape, dtype=object)) * np.dtype(self.dtype).itemsize
        return count * (1 + 1 / (3 if self.colour else 1)) if self.alpha else count


@dataclass
class ImageData:
    """An image file's light (``image``), its alpha channel (or None) and its :class:`ImageInfo`."""

    image: np.ndarray
    alpha: np.ndarray | None
    info: ImageInfo

    @property
    def colour(self) -> bool:
        return self.info.colour

    @property
    def channel_axis(self) -> int | None:
        return self.info.channel_axis


# -- TIFF ---------------------------------------------------------------------------------
_PHOTOMETRIC_NAMES = {0: "miniswhite", 1: "minisblack", 2: "rgb", 3: "palette",
                      4: "mask", 5: "separated (CMYK)", 6: "ycbcr", 8: "cielab", 9: "icclab",
                      10: "itulab", 32803: "cfa", 32844: "logl", 32845: "logluv",
                      34892: "linearraw"}


@dataclass(frozen=True)
class TiffLayout:
    """How one TIFF series' stored samples become light and alpha.

    ``axes``/``shape``: the series as stored (tifffile's axes letters, ``S`` the
    samples); ``light_shape``/``light_dtype``: the light after interpretation
    (leading axes, then rows, columns and, for colour, 3).
    """

    path: str
    series: int
    axes: str
    shape: tuple
    dtype: str
    photometric: str
    bits_per_sample: int
    colour: bool
    alpha_sample: int | None  # index along S of the alpha sample
    channel_samples: bool  # several unspecified gray samples: each one a plane
    light_shape: tuple
    light_dtype: str
    colormap: np.ndarray | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def leading_axes(self) -> str:
        """The stored axes that are planes, in the order of ``light_shape``'s leading axes."""
        axes = "".join(a for a in self.axes if a not in "SYX")
        return axes + ("S" if self.channel_samples else "")

    def info(self) -> ImageInfo:
        return ImageInfo(self.path, "tiff", self.light_shape, self.light_dtype, self.colour,
                         self.alpha_sample is not None, self.series, self.photometric)

    def raw_index(self, leading: tuple) -> tuple:
        """The index into the stored series of the plane at ``leading`` (light's leading index)."""
        # by position, not by letter: tifffile repeats letters ("QQYX" for unlabelled axes);
        # leading_axes lists the non-sample axes in stored order, then S
        others = iter(leading[:len(leading) - (1 if self.channel_samples else 0)])
        index = []
        for a in self.axes:
            if a in "YX" or (a == "S" and not self.channel_samples):
                index.append(slice(None))
            elif a == "S":
                index.append(leading[-1])
            else:
                index.append(next(others))
        return tuple(index)

    def plane_axes(self) -> str:
        return "".join(a for a in self.axes if a in "YX" or (a == "S" and not self.channel_samples))

    def interpret(self, raw: np.ndarray, axes: str | None = None):
        """(light, alpha) of a stored block whose axes are ``axes`` (default: the whole series)."""
        axes = self.axes if axes is None else axes
        raw = np.asarray(raw)
        alpha = None
        if "S" in axes:
            raw = np.moveaxis(raw, axes.index("S"), -1)
            if self.channel_samples:
                light = np.moveaxis(raw, -1, -3)
            elif self.colour and self.photometric != "palette":
                light = raw[..., :3]
                if self.alpha_sample is not None:
                    alpha = raw[..., self.alpha_sample]
            else:
                light = raw[..., 0]
                if self.alpha_sample is not None:
                    alpha = raw[..., self.alpha_sample]
        else:
            light = raw
        if self.photometric == "palette":
            lut = np.asarray(self.colormap).T  # (entries, 3)
            if self.light_dtype == "uint8":
                lut = (lut // 257).astype(np.uint8)
            light = np.take(lut, light.astype(np.intp), axis=0, mode="clip")
        elif self.photometric == "miniswhite":
            light = _invert(light, self.bits_per_sample)
        return np.ascontiguousarray(light), None if alpha is None else np.ascontiguousarray(alpha)


def _invert(values: np.ndarray, bits: int) -> np.ndarray:
    if values.dtype == bool:
        return ~values
    if values.dtype.kind == "u":
        top = min((1 << bits) - 1, np.iinfo(values.dtype).max)
        return (values.dtype.type(top) - np.minimum(values, top)).astype(values.dtype)
    if values.dtype.kind == "f":
        return (1.0 - values).astype(values.dtype)
    raise ValueError(f"a miniswhite image of {values.dtype} values cannot be inverted")


def _tiff_layout(path: Path, series, index: int) -> TiffLayout:
    """The layout of one series of a TIFF file, from its keyframe's tags (ValueError: refused)."""
    where = f"{path}" + (f" (series {index})" if index else "")
    page = series.keyframe
    axes, shape = str(series.axes), tuple(int(s) for s in series.shape)
    dtype = np.dtype(series.dtype)
    photometric_code = int(page.photometric)
    photometric = _PHOTOMETRIC_NAMES.get(photometric_code, f"code {photometric_code}")
    samples = _tiff_samples(where, page, axes, shape)
    extras = tuple(int(e) for e in (page.extrasamples or ()))
    bits = int(page.bitspersample)
    photometric, colour, channel_samples, alpha_sample, light_dtype, colormap = (
        _tiff_samples_meaning(where, page, photometric, samples, extras, dtype))
    if photometric == "miniswhite" and dtype.kind not in "buf":
        raise ValueError(f"{where}: a miniswhite image of {dtype} values is not supported")
    leading = [shape[i] for i, a in enumerate(axes) if a not in "SYX"]
    if channel_samples:
        leading.append(samples)
    rows, cols = shape[axes.index("Y")], shape[axes.index("X")]
    light_shape = (*leading, rows, cols) + ((3,) if colour else ())
    return TiffLayout(str(path), index, axes, shape, str(dtype), photometric, bits, colour,
                      alpha_sample, channel_samples, light_shape, str(light_dtype), colormap)


def _tiff_samples(where: str, page, axes: str, shape: tuple) -> int:
    """The samples per pixel of a series; refuses axes that do not end with rows, columns."""
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"{where}: axes {axes!r} have no rows and columns (Y, X)")
    samples = shape[axes.index("S")] if "S" in axes else 1
    if samples != int(page.samplesperpixel):  # tags and series disagree: any reading a guess
        raise ValueError(f"{where}: {page.samplesperpixel} samples per pixel, but the series "
                         f"holds {samples}; cannot interpret it")
    plane_axes = "".join(a for a in axes if a != "S")
    if plane_axes[-2:] != "YX":
        raise ValueError(f"{where}: axes {axes!r} do not end with rows and columns")
    return samples


def _tiff_samples_meaning(where: str, page, photometric: str, samples: int, extras: tuple,
                          dtype: np.dtype) -> tuple:
    """What the samples are, by the photometric tag: (photometric, colour, channel samples,
    alpha sample, light dtype, colour map); refuses what it cannot interpret."""
    colour = channel_samples = False
    alpha_sample = None
    light_dtype = dtype
    colormap = None
    if photometric in ("minisblack", "miniswhite"):
        if samples > 1 and extras and all(e == 0 for e in extras):
            channel_samples = True  # a multichannel image: every channel a plane
        else:
            alpha_sample = _tiff_alpha(where, photometric, samples, extras, 1)
    elif photometric == "rgb" or (photometric == "ycbcr" and int(page.compression) in (6, 7)):
        photometric = "rgb"  # JPEG-compressed YCbCr: tifffile decodes it to RGB
        if samples < 3:
            raise ValueError(f"{where}: an RGB image with {samples} samples per pixel")
        colour = True
        alpha_sample = _tiff_alpha(where, photometric, samples, extras, 3)
    elif photometric == "palette":
        if samples != 1:
            raise ValueError(f"{where}: a palette image with {samples} samples per pixel")
        colormap = np.asarray(page.colormap)
        if colormap is None or colormap.ndim != 2 or colormap.shape[0] != 3:
            raise ValueError(f"{where}: a palette image without a usable colour map")
        colour = True
        # a map of 8-bit values stored as 16-bit (multiples of 257) gives 8-bit light
        light_dtype = np.dtype(np.uint8 if not np.any(colormap % 257) else np.uint16)
    else:
        raise ValueError(f"{where}: photometric interpretation {photometric!r} is not "
                         "supported (grayscale, RGB and palette are); convert it to RGB or "
                         "grayscale first")
    return photometric, colour, channel_samples, alpha_sample, light_dtype, colormap


def _tiff_alpha(where: str, photometric: str, samples: int, extras: tuple,
                base: int) -> int | None:
    """The index of the alpha sample after ``base`` colour samples; None without one."""
    count = samples - base
    if count == 0:
        return None
    if count == 1 and extras[:1] == (2,):  # ExtraSamples 2: unassociated alpha
        return base
    if 1 in extras:  # ExtraSamples 1: premultiplied alpha, which would need dividing out
        raise ValueError(f"{where}: premultiplied (associated) alpha is not supported; "
                         "save it with unassociated alpha")
    raise ValueError(f"{where}: {photometric} with {count} extra sample(s) of unspecified "
                     "meaning; save the channels as a grayscale stack or drop the extras")


class _Refused(Exception):
    pass


def tiff_layouts(path) -> list[TiffLayout]:
    """The layout of every series of a TIFF file (header only); refuses what it cannot read."""
    import tifffile

    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            layouts = []
            full = [s for s in tif.series if not getattr(s.keyframe, "is_reduced", False)]
            for index, series in enumerate(tif.series):
                if full and getattr(series.keyframe, "is_reduced", False):
                    continue  # a thumbnail (a reduced-resolution copy), not an image of its own
                try:
                    layouts.append(_tiff_layout(path, series, index))
                except ValueError as exc:
                    raise _Refused(str(exc)) from None
    except _Refused as exc:
        raise ValueError(str(exc)) from None
    except Exception as exc:  # tifffile raises many types for damaged files
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if not layouts:
        raise ValueError(f"{path} holds no image")
    return layouts


def _choose_series(path: Path, layouts: list[TiffLayout], series) -> TiffLayout:
    if series is None:
        if len(layouts) > 1:
            shapes = "; ".join(f"{lay.series}: {lay.light_shape} {lay.light_dtype}"
                               for lay in layouts)
            raise ValueError(f"{path} holds {len(layouts)} image series ({shapes}); this "
                             "reads one image: choose one (read_image(path, series=N)) or use "
                             "`napari-lowlight batch`, which processes every series")
        return layouts[0]
    for layout in layouts:
        if layout.series == int(series):
            return layout
    raise ValueError(f"{path} has no series {series} (it holds "
                     f"{', '.join(str(lay.series) for lay in layouts)})")


# -- Pillow -------------------------------------------------------------------------------
_PILLOW_LOCK = threading.Lock()
# mode -> (convert to, colour, alpha, light dtype)
_PILLOW_MODES = {
    "1": ("L", False, False, "uint8"), "L": (None, False, False, "uint8"),
    "LA": (None, False, True, "uint8"), "La": ("LA", False, True, "uint8"),
    "RGB": (None, True, False, "uint8"), "RGBA": (None, True, True, "uint8"),
    "RGBa": ("RGBA", True, True, "uint8"), "RGBX": ("RGB", True, False, "uint8"),
    "CMYK": ("RGB", True, False, "uint8"), "YCbCr": ("RGB", True, False, "uint8"),
    "LAB": ("RGB", True, False, "uint8"), "HSV": ("RGB", True, False, "uint8"),
    "P": ("RGB", True, False, "uint8"), "PA": ("RGBA", True, True, "uint8"),
    "I;16": (None, False, False, "uint16"), "I;16L": (None, False, False, "uint16"),
    "I;16B": (None, False, False, "uint16"), "I;16N": (None, False, False, "uint16"),
    "I": (None, False, False, "int32"), "F": (None, False, False, "float32"),
}


@contextlib.contextmanager
def _pillow_open(path: Path):
    """``Image.open`` without Pillow's decompression-bomb limit: sizes are checked here
    against the memory available instead (a 100-megapixel scan is legitimate)."""
    from PIL import Image

    with _PILLOW_LOCK:
        limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = limit
    try:
        yield image
    finally:
        image.close()


def _png_header(path: Path):
    """(bit depth, colour type) from a PNG's IHDR, or None."""
    with open(path, "rb") as handle:
        head = handle.read(29)
    if len(head) < 29 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _pillow_info(path: Path, image) -> tuple[ImageInfo, str | None]:
    mode = image.mode
    if image.format == "PNG":
        header = _png_header(path)
        if header and header[0] == 16 and header[1] in (2, 4, 6):
            kind = {2: "RGB", 4: "gray+alpha", 6: "RGBA"}[header[1]]
            raise ValueError(f"{path} is a 16-bit {kind} PNG, which Pillow reads with only 8 "
                             "bits per channel; save it as TIFF (.tif) to keep every level")
    frames = int(getattr(image, "n_frames", 1) or 1)
    if frames > 1 and image.format != "MPO":  # MPO: the primary image, then previews
        raise ValueError(f"{path} holds {frames} frames (an animation or multi-page file); "
                         "save the frames as separate images or as a multi-page TIFF")
    if mode not in _PILLOW_MODES:
        raise ValueError(f"{path}: Pillow image mode {mode!r} is not supported")
    convert, colour, alpha, dtype = _PILLOW_MODES[mode]
    if mode == "P" and "transparency" in image.info:
        convert, alpha = "RGBA", True
    cols, rows = image.size
    shape = (rows, cols, 3) if colour else (rows, cols)
    fmt = (image.format or _suffix(path).lstrip(".")).lower()
    return ImageInfo(str(path), fmt, shape, dtype, colour, alpha, None, mode), convert


def _check_suffix(path: Path) -> str:
    suffix = _suffix(path)
    if suffix not in TIFF_SUFFIXES + IMAGEIO_SUFFIXES:
        raise ValueError(f"unsupported image format {suffix!r} for {path}; use "
                         f"{', '.join(TIFF_SUFFIXES + IMAGEIO_SUFFIXES)}")
    return suffix


# -- reading ------------------------------------------------------------------------------
def probe_image(path, *, series: int | None = None) -> ImageInfo:
    """What ``path`` holds (shape, dtype, colour, alpha) from its header, nothing decoded.

    Raises the same errors as :func:`load_image` for unsupported or ambiguous files.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    suffix = _check_suffix(path)
    if suffix in TIFF_SUFFIXES:
        return _choose_series(path, tiff_layouts(path), series).info()
    try:
        with _pillow_open(path) as image:
            return _pillow_info(path, image)[0]
    except ValueError:
        raise
    except Exception as exc:  # Pillow's UnidentifiedImageError and friends
        raise ValueError(f"cannot read {path}: {exc}") from exc


def load_image(path, *, series: int | None = None) -> ImageData:
    """Read an image file: its light, its alpha channel (or None) and what it holds.

    The declared size is checked against the memory available before anything is
    decoded (:class:`ImageTooLargeError`).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the format is not supported, the file cannot be decoded, it holds several
        series and ``series`` is None, or it is too large.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    suffix = _check_suffix(path)
    if suffix in TIFF_SUFFIXES:
        import tifffile

        layout = _choose_series(path, tiff_layouts(path), series)
        info = layout.info()
        stored = int(np.prod(layout.shape, dtype=object)) * np.dtype(layout.dtype).itemsize
        check_memory((stored + info.nbytes,), what=str(path), bytes_per_value=1, copies=1)
        try:
            with tifffile.TiffFile(path) as tif:
                raw = tif.series[layout.series].asarray()
        except Exception as exc:  # decoder errors come in many types; name the file
            raise ValueError(f"cannot read {path}: {exc}") from exc
        raw = raw.reshape(layout.shape)
        light, alpha = layout.interpret(raw)
        return ImageData(light, alpha, info)
    try:
        with _pillow_open(path) as image:
            info, convert = _pillow_info(path, image)
            check_memory((info.nbytes * 2,), what=str(path), bytes_per_value=1, copies=1)
            if convert is not None:
                image = image.convert(convert)
            array = np.asarray(image)
    except ValueError:
        raise
    except Exception as exc:  # decoder errors come in many types; name the file
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if info.dtype == "uint16":
        array = array.astype(np.uint16)  # big-endian I;16B to native
    elif info.dtype == "int32" and array.size and array.min() >= 0 and array.max() <= 65535:
        array = array.astype(np.uint16)
        info = ImageInfo(info.path, info.format, info.shape, "uint16", info.colour, info.alpha,
                         None, info.interpretation)
    alpha = None
    if info.alpha:
        array, alpha = array[..., :-1], np.ascontiguousarray(array[..., -1])
        if not info.colour:
            array = array[..., 0]
    return ImageData(np.ascontiguousarray(array), alpha, info)


def read_image(path, *, series: int | None = None) -> np.ndarray:
    """Read an image file's light into a new array (dtype as stored; alpha left out).

    See :func:`load_image` for the alpha channel and the file's description.
    """
    return load_image(path, series=series).image


def list_image_files(folder, *, recursive: bool = False) -> list[Path]:
    """The image files of ``folder``, sorted: files whose suffix (any case) is in
    :data:`IMAGE_SUFFIXES`.

    Parameters
    ----------
    folder : path
        An existing folder.
    recursive : bool
        Also list the files of its subfolders, at any depth.

    Returns
    -------
    list of Path
        Sorted by path; folders are never listed, whatever their name.
    """
    folder = Path(folder)
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(path for path in candidates
                  if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())


def drop_alpha(array: np.ndarray) -> np.ndarray:
    """``array`` without its fourth channel when it is a ``(rows, cols, 4)`` RGBA image.

    :func:`load_image` already sets a file's alpha apart by its metadata; this is for
    arrays that come without any (scikit-image's samples) and for the callers that want
    three channels whatever the file said.  Alpha carries no light.
    """
    if array.ndim == 3 and array.shape[-1] == 4:
        return array[..., :3]
    return array


def guess_channel_axis(array: np.ndarray) -> int | None:
    """Channel axis of an array without file metadata: the last one when it holds 3 or 4."""
    if array.ndim >= 3 and array.shape[-1] in (3, 4):
        return -1
    return None


# -- writing ------------------------------------------------------------------------------
def _is_colour(shape) -> bool:
    return len(shape) >= 3 and shape[-1] == 3


def check_writable(path, *, shape=None, bits: int | None = None, alpha: bool = False) -> None:
    """Refuse, before any work, an output ``path`` whose format cannot hold the image.

    ``shape``: the light to be written (None: only the format is checked); ``bits``: the
    bit depth of a quantized image (None for a display image); ``alpha``: an alpha channel
    comes with it.  The rules are those :func:`write_image` applies.
    """
    path = Path(path)
    suffix = _suffix(path)
    if suffix in TIFF_SUFFIXES:
        return
    if suffix not in IMAGEIO_SUFFIXES:
        raise ValueError(
            f"unsupported output format {suffix!r} for {path}; use .tif, .tiff, .png or .jpg")
    name = suffix.lstrip(".").upper()
    if suffix in (".jpg", ".jpeg") and bits is not None:
        raise ValueError(
            f"{path}: JPEG is lossy and would move pixels off their quantization levels; "
            "write the dark capture as .tif or .png")
    valid_bits = isinstance(bits, (int, np.integer)) and not isinstance(bits, bool) \
        and 1 <= bits <= 16
    if valid_bits and bits not in (8, 16):
        raise ValueError(
            f"{path}: a {bits}-bit image cannot be stored exactly in {suffix}; use .tif "
            "(float32) or bits 8/16")
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        colour = _is_colour(shape)
        if len(shape) != (3 if colour else 2):
            raise ValueError(f"{path}: an image of shape {shape} cannot be stored in one "
                             f"{name} file (one gray or RGB image); use .tif")
        if valid_bits and bits == 16 and (colour or alpha or suffix != ".png"):
            kind = "colour" if colour else "gray+alpha" if alpha else "gray"
            raise ValueError(f"{path}: a 16-bit {kind} image cannot be written to {name} "
                             "(Pillow writes 8 bits per colour channel); use .tif")
    if alpha and suffix != ".png":
        raise ValueError(f"{path}: {name} cannot hold the alpha channel of the input; "
                         "use .png or .tif")


def alpha_as_float(alpha: np.ndarray) -> np.ndarray:
    """Alpha in [0, 1] (integers scaled by their dtype's maximum)."""
    alpha = np.asarray(alpha)
    if alpha.dtype == bool:
        return alpha.astype(np.float64)
    if alpha.dtype.kind in "ui":
        return np.clip(alpha.astype(np.float64) / np.iinfo(alpha.dtype).max, 0, 1)
    return np.clip(np.nan_to_num(alpha.astype(np.float64)), 0, 1)


@contextlib.contextmanager
def _atomic(path: Path):
    """A temporary path in ``path``'s folder that replaces ``path`` when the block succeeds."""
    target = path.resolve() if path.is_symlink() else path
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                         dir=target.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_image(path, image: np.ndarray, *, bits: int | None = None, metadata=None,
                alpha: np.ndarray | None = None) -> Path:
    """Write ``image`` (float in [0, 1]) to ``path``.

    Parameters
    ----------
    path : str or Path
        ``.tif``/``.tiff``: float32, ``metadata`` stored as JSON in the
        description.  ``.png``: integers of ``bits`` bits (8 -> uint8,
        16 -> uint16 for gray images, exact for images on that grid); other bit
        depths are refused.  ``.jpg``/``.bmp``: 8-bit; JPEG only when ``bits`` is
        None (display images).
    image : ndarray of float in [0, 1]
    bits : int or None
        Bit depth of a quantized image (a dark capture); None for a display image.
    metadata : dict, optional
        JSON-serialisable parameters to store (TIFF only).
    alpha : ndarray, optional
        The input's alpha channel (shape of ``image`` without its colour axis; integers
        scaled by their dtype's maximum), re-attached as it was: an unassociated alpha
        sample in TIFF, LA/RGBA in PNG.
    """
    path = Path(path)
    suffix = _suffix(path)
    image = np.asarray(image)
    colour = _is_colour(image.shape)
    if alpha is not None:
        alpha = np.asarray(alpha)
        expected = image.shape[:-1] if colour else image.shape
        if alpha.shape != expected:
            raise ValueError(f"{path}: alpha of shape {alpha.shape} does not fit an image of "
                             f"shape {image.shape}")
    check_writable(path, shape=image.shape if suffix not in TIFF_SUFFIXES else None,
                   bits=bits, alpha=alpha is not None)
    if suffix in TIFF_SUFFIXES:
        import tifffile

        description = json.dumps(metadata or {})
        data = image.astype(np.float32)
        options = {"photometric": "rgb" if colour else "minisblack"}
        if alpha is not None:
            data = np.concatenate([data if colour else data[..., None],
                                   alpha_as_float(alpha).astype(np.float32)[..., None]],
                                  axis=-1)
            options.update(planarconfig="contig", extrasamples=["unassalpha"])
        with _atomic(path) as temporary:
            tifffile.imwrite(temporary, data, description=description, **options)
        return path
    from PIL import Image

    if bits is None:
        bits = 8
    dtype = np.uint8 if bits == 8 else np.uint16
    scale = np.iinfo(dtype).max
    levels = np.rint(np.clip(image, 0, 1) * scale).astype(dtype)
    if alpha is not None:
        alpha_levels = np.rint(alpha_as_float(alpha) * scale).astype(dtype)
        levels = np.concatenate([levels if colour else levels[..., None],
                                 alpha_levels[..., None]], axis=-1)
    with _atomic(path) as temporary:
        Image.fromarray(levels).save(temporary, format=PILLOW_FORMATS[suffix])
    return path
