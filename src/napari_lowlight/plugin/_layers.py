"""Between napari layers and the core's arrays."""

from __future__ import annotations

import numpy as np

__all__ = ["LayerError", "derived_layer_kwargs", "image_layer_array"]


class LayerError(ValueError):
    """A layer the step cannot work on; its message is shown to the user."""


def image_layer_array(layer) -> tuple[np.ndarray, int | None]:
    """The array of an image layer and its channel axis (-1 for RGB layers).

    The array is the layer's own data, not a copy: the core never writes to
    its inputs.  Multiscale layers are refused for now.
    """
    from napari.layers import Image

    if layer is None:
        raise LayerError("no image layer selected: open or select an image first")
    if not isinstance(layer, Image):
        raise LayerError(f"layer {layer.name!r} is a {type(layer).__name__} layer, not an image")
    if layer.multiscale:
        raise LayerError(
            f"layer {layer.name!r} is multiscale; processing multiscale layers is not supported yet"
        )
    return np.asarray(layer.data), (-1 if layer.rgb else None)


def derived_layer_kwargs(layer) -> dict:
    """Keyword arguments that place a new layer exactly over ``layer``."""
    kwargs = {
        "scale": tuple(layer.scale),
        "translate": tuple(layer.translate),
        "rgb": layer.rgb,
    }
    for name in ("axis_labels", "units"):  # present in newer napari releases
        value = getattr(layer, name, None)
        if value is not None:
            kwargs[name] = tuple(value)
    return kwargs
