"""Between napari layers and the core's arrays."""

from __future__ import annotations

import numpy as np

from .._lazy import is_lazy

__all__ = ["LayerError", "LayerRecorder", "MultiscaleInput", "MultiscaleResult",
           "derived_layer_kwargs", "image_layer_array", "layer_quantization"]


class LayerError(ValueError):
    """A layer the step cannot work on; its message is shown to the user."""


def _as_step_input(array):
    """NumPy and dask arrays as they are; other array-likes (zarr, ...) wrapped lazily."""
    if isinstance(array, np.ndarray) or is_lazy(array):
        return array
    import dask.array as da

    return da.from_array(array, chunks="auto")


def image_layer_array(layer):
    """The array of an image layer and its channel axis (-1 for RGB layers).

    The array is the layer's own data, not a copy: the core never writes to its
    inputs.  Dask-backed layers stay lazy, other array-likes (zarr) are wrapped in
    dask, and a multiscale layer gives the list of its levels, each processed lazily.
    """
    from napari.layers import Image

    if layer is None:
        raise LayerError("no image layer selected: open or select an image first")
    if not isinstance(layer, Image):
        raise LayerError(f"layer {layer.name!r} is a {type(layer).__name__} layer, not an image")
    channel_axis = -1 if layer.rgb else None
    if layer.multiscale:
        return MultiscaleInput(_as_step_input(level) for level in layer.data), channel_axis
    return _as_step_input(layer.data), channel_axis


class MultiscaleInput(list):
    """The levels of a multiscale layer, highest resolution first."""


class MultiscaleResult(list):
    """One result per level of a multiscale input."""


class LayerRecorder:
    """Stands in for the viewer while a step's ``add_layers`` runs once per level.

    Each ``add_image`` call is recorded by layer name; :meth:`add_to` then adds one
    multiscale layer per name, with the levels' data in order and the first level's
    options.  Metadata "quantization" of every level is kept in "quantization_levels"
    so later steps find the one matching the level they process.
    """

    def __init__(self, viewer):
        self._viewer = viewer
        self.layers: dict[str, tuple[list, dict]] = {}

    def __getattr__(self, name):
        return getattr(self._viewer, name)

    def add_image(self, data, **kwargs):
        name = kwargs["name"]
        if name not in self.layers:
            self.layers[name] = ([], kwargs)
        self.layers[name][0].append(data)
        quantization = kwargs.get("metadata", {}).get("quantization")
        if quantization is not None:
            first = self.layers[name][1]["metadata"]
            first.setdefault("quantization_levels", []).append(quantization)

    def add_to(self, viewer) -> None:
        for datas, kwargs in self.layers.values():
            viewer.add_image(datas, multiscale=True, **kwargs)


def layer_quantization(layer, shape):
    """The Quantization stored with ``layer`` that matches an array of ``shape``, if any."""
    from ..quantization import Quantization

    metadata = getattr(layer, "metadata", None) or {}
    candidates = [metadata.get("quantization"), *metadata.get("quantization_levels", [])]
    for candidate in candidates:
        if isinstance(candidate, Quantization) and tuple(candidate.shape) == tuple(shape):
            return candidate
    return None


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
