"""The "Dequantize" dock widget: the trained network on a re-exposed or LAIC-enhanced layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, SpinBox

from .._lazy import is_lazy
from .._validation import parameter_default
from ..dequantizer import dequantize
from ..formation import degrade
from ..intensity import to_intensity
from ..quantization import Quantization, implied_quantization
from ._camera_fields import guard_field, noise_fields, noise_option
from ._layers import derived_layer_kwargs, layer_quantization
from ._step_widget import StepWidget

if TYPE_CHECKING:
    import napari

__all__ = ["DequantizeWidget", "model_names"]

OUTPUT_LAYER = "dequantized"


def model_names() -> list[str]:
    """The names a widget's "model" box offers: the shipped models, then the user's.

    Returns
    -------
    list of str
        ``"default"`` first (a combo box starts at its first choice, and ``dequantize``'s
        default is the model the box should start at), then the others in
        :func:`napari_lowlight.dequantizer.weights.available_models`' order; just
        ``["default"]`` when none is found, so that the box is never empty.
    """
    # imported here, not at the top: the weights module pulls in torch, and importing this
    # module (napari does, to list the plugin's widgets) must stay light
    from ..dequantizer.inference import DEFAULT_MODEL
    from ..dequantizer.weights import available_models

    names = list(available_models())
    return [DEFAULT_MODEL] + [name for name in names if name != DEFAULT_MODEL]


class DequantizeWidget(StepWidget):
    """Runs :func:`napari_lowlight.dequantize` on an image layer, adding ``"dequantized"``.

    The quantization comes from the layer's ``metadata["quantization"]`` (written by
    "Simulate low light" and "Compensate illumination"); for other layers it is
    rebuilt from the light level, gamma ratio and bits set here.  Planes (channels,
    z, t) are restored one by one with progress; Cancel stops between planes.
    """

    title = "Dequantize"
    run_text = "Dequantize"

    def __init__(self, viewer: napari.viewer.Viewer):
        self.model = ComboBox(label="model", choices=model_names(),
                              tooltip="The dequantizer's weights")
        self.device = ComboBox(label="device", choices=["auto", "cpu", "cuda"],
                               value=parameter_default(dequantize, "device"),
                               tooltip="auto uses a CUDA GPU when there is one")
        self.tile = SpinBox(label="tile (px, 0 = auto)",
                            value=parameter_default(dequantize, "tile") or 0, min=0, max=8192,
                            step=64,
                            tooltip="0 picks the model's best: whole planes up to 4 MP "
                            "for the U-Net default on the CPU, 256 px for residual-v1; "
                            "tiles do not change the result")
        self.project = CheckBox(text="stay inside the quantization intervals",
                                value=parameter_default(dequantize, "project"),
                                tooltip="Clip the network's output into each pixel's "
                                "interval, so that it re-quantizes to the observed levels")
        self.refine = CheckBox(text="refine (the model's learned finish)", value=True,
                               tooltip="Blend the projected output per pixel with light "
                               "smoothings of it and the input, as the model's refiner "
                               "learned (the default model ships one; stays inside the "
                               "intervals; needs the option above)")
        self.guard = guard_field("; needs the intervals option above")
        self.judge_noise, self.noise = noise_fields()
        # without metadata the capture is taken to be degrade()'s default (the paper's
        # global low light) until the user says otherwise
        self.inverse_k = FloatSpinBox(
            label="1/k (no metadata)", value=1.0 / parameter_default(degrade, "k"), min=1.0,
            max=10000.0, step=1.0,
            tooltip="The capture's light level as 1/k (30 = the paper's global low light); "
            "used only when the layer has no quantization (then hidden)")
        self.r = FloatSpinBox(label="r (no metadata)", value=parameter_default(degrade, "r"),
                              min=0.1, max=5.0, step=0.05,
                              tooltip="Gamma ratio of the capture; used only when the layer "
                              "has no quantization")
        self.bits = SpinBox(label="bits (no metadata)", value=parameter_default(degrade, "bits"),
                            min=1, max=16,
                            tooltip="Bit depth of the capture; used only when the layer has "
                            "no quantization")
        super().__init__(viewer, [self.model, self.device, self.tile, self.project,
                                  self.refine, self.guard, self.judge_noise, self.noise,
                                  self.inverse_k, self.r, self.bits])
        self.image.changed.connect(self._show_needed_fields)
        self._show_needed_fields()

    def _show_needed_fields(self, _=None):
        """Hide 1/k, r and bits when the layer's metadata already holds its quantization."""
        layer = self.image.value
        known = isinstance(getattr(layer, "metadata", {}).get("quantization"), Quantization)
        for field in (self.inverse_k, self.r, self.bits):
            field.visible = not known

    def parameters(self) -> dict:
        device = self.device.value
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ValueError("no CUDA device here: choose auto or cpu")
        return {"model": self.model.value, "device": device,
                "tile": int(self.tile.value) or None, "project": bool(self.project.value),
                "refine": "auto" if self.refine.value else False,
                # the guard blends inside the intervals: without them it has nothing to keep
                "guard": self.guard.value if self.project.value else False,
                "noise": noise_option(self.judge_noise, self.noise),
                "k": 1.0 / float(self.inverse_k.value), "r": float(self.r.value),
                "bits": int(self.bits.value)}

    def compute(self, data, channel_axis, params, report):
        quantization = layer_quantization(self.image.value, data.shape)
        if quantization is None:
            quantization = implied_quantization(
                _as_light(data, params["bits"]), k=params["k"], r=params["r"],
                bits=params["bits"])
        report(0, 1)
        from .. import dequantizer  # the function as it is when the job runs (not at import)

        restored = dequantizer.dequantize(data, quantization=quantization, model=params["model"],
                                          device=params["device"], tile=params["tile"],
                                          project=params["project"], channel_axis=channel_axis,
                                          progress=report, noise=params["noise"],
                                          refine=params["refine"], guard=params["guard"])
        return restored, quantization

    def add_layers(self, source, result, params: dict) -> str:
        restored, quantization = result
        self._viewer.add_image(
            restored, name=OUTPUT_LAYER, contrast_limits=(0.0, 1.0),
            metadata={"quantization": quantization,
                      "napari_lowlight": {"step": "dequantize", "source_layer": source.name,
                                          **params}},
            **derived_layer_kwargs(source),
        )
        if is_lazy(restored) or source.multiscale:
            return "done: lazy layer, restored tile by tile as you browse"
        change = float(np.abs(restored - np.asarray(source.data, dtype=np.float32)).mean())
        return f"done: mean change {change:.4f}"


def _as_light(data, bits: int):
    """Integer layer data read as ``dequantize`` reads it (counts of ``bits`` bits, the one
    rule of :func:`~napari_lowlight.intensity.to_intensity`), so the implied levels and the
    network's input agree; floats as they are."""
    if np.dtype(data.dtype).kind not in "iu":
        return data
    if is_lazy(data):
        return data.map_blocks(lambda block: to_intensity(block, bits=bits)[0],
                               dtype=np.float64)
    return to_intensity(data, bits=bits)[0]
