"""The one-click "Enhance" dock widget: LAIC then the dequantizer on one layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox

from .._lazy import is_lazy
from .._validation import parameter_default
from ..dequantizer import dequantize
from ..pipeline import laic_then_dequantize
from ..presets import PRESETS, preset_options
from ._camera_fields import (
    bits_field,
    black_level_field,
    camera_options,
    guard_field,
    noise_fields,
    noise_option,
    shading_field,
)
from ._dequantize_widget import model_names
from ._layers import derived_layer_kwargs
from ._step_widget import StepWidget

if TYPE_CHECKING:
    import napari

__all__ = ["EnhanceWidget"]

OUTPUT_LAYER = "restored"
GAIN_LAYER = "gain"


class EnhanceWidget(StepWidget):
    """Runs :func:`napari_lowlight.laic` then :func:`napari_lowlight.dequantize` on a dark layer.

    Adds ``"restored"`` (``metadata["quantization"]`` = the LAIC intervals, so it can be
    saved and dequantized again identically) and a hidden ``"gain"``.  A preset
    (photograph, 12-bit or 16-bit microscope, time-lapse) fills bit depth, shading and
    gain sharing; the black level is the camera's offset in counts.
    """

    title = "Enhance (LAIC + dequantizer)"
    run_text = "Enhance"

    def __init__(self, viewer: napari.viewer.Viewer):
        self.preset = ComboBox(
            label="preset", choices=list(PRESETS), value="photograph",
            tooltip="photograph: 8-bit, vignette taken out; microscope 12/16-bit: the "
            "camera's depth, no shading estimate; time-lapse: one gain for all frames",
        )
        self.bits = bits_field()  # bits and shading: the preset's, set below
        self.black_level = black_level_field()
        self.shading = shading_field()
        self.model = ComboBox(label="model", choices=model_names(),
                              tooltip="The dequantizer's weights")
        self.device = ComboBox(label="device", choices=["auto", "cpu", "cuda"],
                               value=parameter_default(dequantize, "device"),
                               tooltip="auto uses a CUDA GPU when there is one")
        self.guard = guard_field()
        self.judge_noise, self.noise = noise_fields()
        super().__init__(viewer, [self.preset, self.bits, self.black_level, self.shading,
                                  self.model, self.device, self.guard, self.judge_noise,
                                  self.noise])
        self.preset.changed.connect(self._apply_preset)
        self._apply_preset()

    def _apply_preset(self, _=None):
        options = PRESETS[self.preset.value]
        self.bits.value = "auto" if options.get("bits") is None else str(options["bits"])
        self.shading.value = float(options.get("shading", 0.0))

    def parameters(self) -> dict:
        device = self.device.value
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ValueError("no CUDA device here: choose auto or cpu")
        camera = camera_options(self.bits, self.black_level)
        options = preset_options(self.preset.value, shading=float(self.shading.value))
        options["bits"] = camera["bits"]
        if camera["black_level"] is not None:
            options["black_level"] = camera["black_level"]
        return {"preset": self.preset.value, "laic": options, "model": self.model.value,
                "device": device, "noise": noise_option(self.judge_noise, self.noise),
                "guard": self.guard.value}

    def compute(self, data, channel_axis, params, report):
        options = dict(params["laic"])
        if is_lazy(data):
            options.pop("shared_gain", None)  # one gain over a lazy series is refused
        report(0, 2)
        # LAIC's planes as the first half of the progress, the network's as the second
        return laic_then_dequantize(data, channel_axis=channel_axis, laic_options=options,
                                    progress=report, model=params["model"],
                                    device=params["device"], noise=params["noise"],
                                    guard=params["guard"])

    def add_layers(self, source, result, params: dict) -> str:
        compensated, restored = result
        intensity = compensated.intensity.as_dict() if compensated.intensity else {}
        info = {"step": "enhance", "source_layer": source.name, "preset": params["preset"],
                **params["laic"], "model": params["model"], "noise": params["noise"],
                "guard": params["guard"],
                "intensity": intensity,
                "method_used": compensated.method, "rank_preserved": compensated.rank_preserved}
        common = derived_layer_kwargs(source)
        self._viewer.add_image(
            restored, name=OUTPUT_LAYER, contrast_limits=(0.0, 1.0),
            metadata={"quantization": compensated.quantization, "napari_lowlight": info},
            **common)
        gain_kwargs = {key: value for key, value in common.items() if key != "rgb"}
        self._viewer.add_image(compensated.gain, name=GAIN_LAYER, colormap="magma",
                               visible=False,
                               metadata={"napari_lowlight": {**info, "image": "gain"}},
                               **gain_kwargs)
        if is_lazy(restored):
            return f"done: lazy layers ({intensity.get('bits', '?')}-bit), computed as you browse"
        gain = np.asarray(compensated.gain)
        return (f"done: {intensity.get('bits')}-bit"
                f"{' (inferred)' if intensity.get('bits_inferred') else ''}, gain "
                f"{float(gain.min()):.1f}-{float(gain.max()):.1f}, bright end "
                f"{float(np.percentile(restored, 99.5)):.2f}")
