"""The "Compensate illumination (LAIC)" dock widget: adds "enhanced" and "gain" layers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, SpinBox

from .._lazy import is_lazy
from .._validation import parameter_default
from ..compensation import LAIC_METHODS, LAICResult, laic
from ..quantization import Quantization
from ._camera_fields import bits_field, black_level_field, camera_options, shading_field
from ._layers import derived_layer_kwargs
from ._step_widget import StepWidget

if TYPE_CHECKING:
    import napari

__all__ = ["LAICWidget"]

ENHANCED_LAYER = "enhanced"
GAIN_LAYER = "gain"


class LAICWidget(StepWidget):
    """Dock widget that runs :func:`napari_lowlight.laic` on a dark image layer.

    Adds ``"enhanced"`` (with the LAIC :class:`~napari_lowlight.Quantization`
    in ``metadata["quantization"]``, ready for the dequantizer) and ``"gain"``.
    The capture's bit depth is taken from the input layer's quantization when
    it has one (a layer made by "Simulate low light"), else from the data.
    Stacks are processed plane by plane (progress per plane, Cancel between
    planes) or with one shared gain.
    """

    title = "Compensate illumination (LAIC)"
    run_text = "Compensate"

    def __init__(self, viewer: napari.viewer.Viewer):
        def default(parameter):  # every field starts at laic()'s own default
            return parameter_default(laic, parameter)

        self.method = ComboBox(
            label="method", choices=list(LAIC_METHODS), value=default("method"),
            tooltip="exact: one LP over all pixels (small images); fast: multilevel gain; "
            "auto: exact up to 64x64 pixels",
        )
        self.contrast_weight = FloatSpinBox(
            label="contrast weight", value=default("contrast_weight"), min=0.0, max=20.0,
            step=0.1,
            tooltip="Reward for local contrast against gain variation (lambda2 times the "
            "brightest dark value); above ~2 single pixels trade gain for contrast",
        )
        self.window_radius = SpinBox(
            label="window radius (px)", value=default("window_radius"), min=1, max=15,
            tooltip="Radius of the local-mean window whose rank order is preserved",
        )
        self.max_gain = FloatSpinBox(
            label="max gain (0 = auto)", value=default("max_gain") or 0.0, min=0.0, max=1e6,
            step=1.0,
            tooltip="Largest amplification allowed anywhere; 0 lets the gain reach what takes "
            "the image's bright end to full scale (and up to 2x that in dark regions)",
        )
        self.bits = bits_field(auto="from the layer's quantization, else the smallest of "
                               "8/10/12/14/16 bits holding the maximum")
        self.black_level = black_level_field()
        self.shading = shading_field()
        self.shared_gain = CheckBox(
            label="one gain for all planes", value=default("shared_gain"),
            tooltip="For time series: the same gain on every plane (no flicker)",
        )
        self.refine_edges = CheckBox(
            label="refine along bright edges", value=default("refine_edges"),
            tooltip="Let the gain turn pixel-fine along bright objects' edges (the fast "
            "method): no dark ring around them, at several times the time")
        super().__init__(viewer, [self.bits, self.black_level, self.method,
                                  self.contrast_weight, self.window_radius, self.shading,
                                  self.max_gain, self.shared_gain, self.refine_edges])

    def parameters(self) -> dict:
        params = {
            "method": self.method.value,
            "contrast_weight": float(self.contrast_weight.value),
            "window_radius": int(self.window_radius.value),
            "max_gain": float(self.max_gain.value) or None,
            "shared_gain": bool(self.shared_gain.value),
            "shading": float(self.shading.value),
            "refine_edges": bool(self.refine_edges.value),
        }
        camera = camera_options(self.bits, self.black_level)
        if camera["black_level"] is not None:
            params["black_level"] = camera["black_level"]
        if camera["bits"] is not None:
            params["bits"] = camera["bits"]
        else:
            layer = self.image.value
            quantization = getattr(layer, "metadata", {}).get("quantization")
            if isinstance(quantization, Quantization):
                params["bits"] = quantization.bits
        return params

    def compute(self, data, channel_axis, params, report):
        report(0, 1)
        return laic(data, channel_axis=channel_axis, progress=report, **params)

    def add_layers(self, source, result: LAICResult, params: dict) -> str:
        info = {"step": "laic", "source_layer": source.name, **params,
                "method_used": result.method, "objective": result.objective,
                "rank_preserved": result.rank_preserved}
        common = derived_layer_kwargs(source)
        self._viewer.add_image(
            result.enhanced, name=ENHANCED_LAYER, contrast_limits=(0.0, 1.0),
            metadata={"quantization": result.quantization, "napari_lowlight": info}, **common,
        )
        gain_kwargs = {key: value for key, value in common.items() if key != "rgb"}
        self._viewer.add_image(
            result.gain, name=GAIN_LAYER, colormap="magma", visible=False,
            metadata={"napari_lowlight": {**info, "image": "gain"}}, **gain_kwargs,
        )
        if is_lazy(result.enhanced):
            return "done: lazy layers, each plane solved as you browse"
        return (f"done ({result.method}): gain {float(result.gain.min()):.2f}-"
                f"{float(result.gain.max()):.2f}, ranks kept {100 * result.rank_preserved:.1f} %")
