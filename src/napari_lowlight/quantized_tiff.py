"""Results that save and reopen: a TIFF holding an image *and* its quantization.

A LAIC or dequantized result is only half a result without its quantization (the
per-pixel interval each value must stay in): a reopened LAIC output must dequantize
exactly as before it was saved.  One TIFF file holds, as separate series:

0. the image (float32, the layer's shape);
1. the quantization's levels (uint8/uint16, the image's shape);
2. ``k`` as a map (float64) when it is one (a LAIC gain gives ``k = 1 / gain``);

and, in the first page's description (JSON, tifffile's shaped metadata), the marker
``"napari_lowlight": 1``, ``r``, ``bits``, a scalar ``k`` and the step's parameters.
Plain TIFF readers still see the image as the first series.  Nothing is unpickled: the
metadata is JSON, the arrays are TIFF pages.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .quantization import Quantization

__all__ = ["is_quantized_tiff", "read_quantized_tiff", "write_quantized_tiff"]

MARKER = "napari_lowlight_quantized"
FORMAT_VERSION = 1


def _jsonable(value):
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 16 else f"<array {value.shape}>"
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def write_quantized_tiff(path, image, quantization: Quantization | None = None, *,
                         metadata: dict | None = None) -> Path:
    """Write ``image`` (and its ``quantization``) to ``path``; returns the path.

    Parameters
    ----------
    path : str or Path
        Output file (``.tif``/``.tiff``).  Overwritten if it exists (the napari writer
        is only called for a path the user chose).
    image : array_like
        Float image in [0, 1] (written as float32).  Lazy arrays are computed.
    quantization : Quantization or None
        Must have the image's shape.
    metadata : dict, optional
        JSON-able description of the step (parameters, source); stored as is.
    """
    import tifffile

    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff"):
        raise ValueError(f"{path}: results with their quantization are written as TIFF "
                         "(.tif)")
    array = np.asarray(image.compute() if hasattr(image, "compute") else image,
                       dtype=np.float32)
    description = {MARKER: FORMAT_VERSION, "napari_lowlight": _jsonable(metadata or {})}
    extra = []
    if quantization is not None:
        if tuple(quantization.shape) != array.shape:
            raise ValueError(f"quantization shape {tuple(quantization.shape)} does not match "
                             f"the image's {array.shape}")
        levels = np.asarray(quantization.levels.compute() if quantization.is_lazy
                            else quantization.levels)
        description.update(bits=quantization.bits, r=quantization.r)
        k = quantization.k
        if np.ndim(k) == 0 and not hasattr(k, "compute"):
            description["k"] = float(k)
        else:
            k = np.asarray(k.compute() if hasattr(k, "compute") else k, dtype=np.float64)
            description["k_map_shape"] = list(k.shape)
            extra.append(np.ascontiguousarray(k))
        extra.insert(0, np.ascontiguousarray(levels))
    with tifffile.TiffWriter(path) as tif:
        tif.write(array, description=json.dumps(description), metadata=None)
        for part in extra:
            tif.write(part, metadata=None)
    return path


def is_quantized_tiff(path) -> bool:
    """True when ``path`` is a TIFF written by :func:`write_quantized_tiff`."""
    import tifffile

    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff") or not path.is_file():
        return False
    try:
        with tifffile.TiffFile(path) as tif:
            text = tif.pages[0].description
        return MARKER in json.loads(text)
    except Exception:  # not a TIFF, no description, not JSON: not ours
        return False


def read_quantized_tiff(path) -> tuple[np.ndarray, Quantization | None, dict]:
    """``(image, quantization, metadata)`` of a file written by :func:`write_quantized_tiff`."""
    import tifffile

    path = Path(path)
    with tifffile.TiffFile(path) as tif:
        try:
            description = json.loads(tif.pages[0].description)
        except (ValueError, TypeError):
            description = {}
        if MARKER not in description:
            raise ValueError(f"{path} was not written by napari-lowlight (no quantization "
                             "stored); open it as a plain image")
        series = [s.asarray() for s in tif.series]
    image = series[0].astype(np.float32)
    quantization = None
    if "bits" in description:
        if len(series) < 2:
            raise ValueError(f"{path} lacks the quantization levels it declares")
        k = description.get("k")
        if k is None:
            if len(series) < 3:
                raise ValueError(f"{path} lacks the k map it declares")
            k = series[2].astype(np.float64)
        quantization = Quantization(series[1].astype(np.int64), k=k, r=description["r"],
                                    bits=description["bits"])
    return image, quantization, description.get("napari_lowlight", {})
