"""npe2 reader and writer: results keep their quantization through a save and reopen.

The writer stores an image layer and its ``metadata["quantization"]`` in one TIFF
(:mod:`napari_lowlight.quantized_tiff`); the reader claims only such files (other TIFFs
are left to napari's own readers) and restores the layer with its quantization, so a
reopened LAIC result dequantizes exactly as before it was saved.
"""

from __future__ import annotations

from pathlib import Path

from ..quantization import Quantization
from ..quantized_tiff import is_quantized_tiff, read_quantized_tiff, write_quantized_tiff

__all__ = ["get_reader", "write_image_layer"]


def write_image_layer(path: str, data, meta: dict) -> list[str]:
    """npe2 single-layer writer: the image, its quantization and the step's parameters."""
    metadata = dict(meta.get("metadata") or {})
    quantization = metadata.pop("quantization", None)
    if not isinstance(quantization, Quantization):
        quantization = None
    info = metadata.get("napari_lowlight", {})
    if meta.get("multiscale"):
        data = data[0]  # the full-resolution level
    written = write_quantized_tiff(path, data, quantization,
                                   metadata={**info, "layer_name": meta.get("name"),
                                             "rgb": bool(meta.get("rgb", False))})
    return [str(written)]


def get_reader(path):
    """npe2 reader: a callable for our TIFFs, None for any other file."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    if not is_quantized_tiff(path):
        return None
    return _read


def _read(path):
    if isinstance(path, list):
        path = path[0]
    image, quantization, info = read_quantized_tiff(path)
    metadata = {"napari_lowlight": info}
    if quantization is not None:
        metadata["quantization"] = quantization
    kwargs = {"name": info.get("layer_name") or Path(path).stem, "metadata": metadata,
              "contrast_limits": (0.0, 1.0), "rgb": bool(info.get("rgb", False))}
    return [(image, kwargs, "image")]
