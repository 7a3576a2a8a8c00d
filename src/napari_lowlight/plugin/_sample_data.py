"""Sample data for File > Open Sample: bundled files, nothing is downloaded."""

from __future__ import annotations

from .. import data

__all__ = ["dark_capture", "microscopy", "photograph"]


def photograph():
    """The bundled photograph (coffee, RGB, 8-bit)."""
    return [(data.coffee(), {"name": "coffee", "rgb": True}, "image")]


def microscopy():
    """The bundled microscopy image (cell, gray, 8-bit)."""
    return [(data.cell(), {"name": "cell", "colormap": "gray"}, "image")]


def dark_capture():
    """A dark capture of the photograph (k=1/30, r=1.3, sigma=0.25 q, seed 0) and its re-exposure.

    Both layers carry the :class:`~napari_lowlight.Quantization` in
    ``metadata["quantization"]``, like the output of "Simulate low light".
    """
    result = data.dark_coffee(seed=0)
    info = {"step": "degrade", "source_layer": "coffee", "k": result.k, "r": result.r,
            "sigma": result.sigma, "bits": result.bits, "dimming": None, "seed": 0,
            "channel_axis": result.channel_axis}
    common = {"rgb": True, "contrast_limits": (0.0, 1.0)}
    return [
        (result.dark, {"name": "coffee dark", **common,
                       "metadata": {"quantization": result.quantization, "napari_lowlight": info}},
         "image"),
        (result.reexposed, {"name": "coffee re-exposed", **common,
                            "metadata": {"quantization": result.quantization,
                                         "napari_lowlight": info}},
         "image"),
    ]
