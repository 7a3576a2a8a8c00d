"""The "Simulate low light" dock widget: degrade an image layer into "dark" and "re-exposed"."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, FloatSpinBox, SpinBox

from .._lazy import is_lazy
from .._validation import parameter_default
from ..formation import DegradedImage, degrade
from ._layers import derived_layer_kwargs
from ._step_widget import StepWidget

if TYPE_CHECKING:
    import napari

__all__ = ["SimulateLowLightWidget"]

DARK_LAYER = "dark"
REEXPOSED_LAYER = "re-exposed"


class SimulateLowLightWidget(StepWidget):
    """Dock widget that runs :func:`napari_lowlight.degrade` on an image layer.

    Adds two new layers, ``"dark"`` (the capture, shown with contrast limits
    0..1 so it looks as dark as it is) and ``"re-exposed"``; both carry the
    :class:`~napari_lowlight.Quantization` in ``metadata["quantization"]`` and
    the parameters in ``metadata["napari_lowlight"]``.  The input layer is
    never modified.  The work runs in a thread worker; "Cancel" drops it.
    """

    title = "Simulate low light"
    run_text = "Simulate"

    def __init__(self, viewer: napari.viewer.Viewer):
        def default(parameter):  # every field starts at degrade()'s own default
            return parameter_default(degrade, parameter)

        self.inverse_k = FloatSpinBox(
            label="light level 1/k", value=1.0 / default("k"), min=1.0, max=10000.0, step=1.0,
            tooltip="The capture gets 1/k of the normal light (k = 1 / this value, in (0, 1]): "
            "30 is the paper's global low light, 5 its local low light. Entered as 1/k so "
            "that 1/30 is exact, not 0.033",
        )
        self.r = FloatSpinBox(
            label="gamma ratio r", value=default("r"), min=0.1, max=5.0, step=0.05,
            tooltip="Gamma ratio g2/g1 of the dark capture (paper: 1.3 global, 1.5 local)",
        )
        self.sigma = FloatSpinBox(
            label="noise σ (levels)", value=default("sigma"), min=0.0, max=10.0, step=0.05,
            tooltip="Sensor noise standard deviation, in quantization steps",
        )
        self.bits = SpinBox(
            label="bits", value=default("bits"), min=1, max=16,
            tooltip="Bit depth of the capture: 8 for photos, 12 or 16 for scientific cameras",
        )
        self.dimming = ComboBox(
            label="uneven light", choices=["none", "vignette", "random"],
            value=default("dimming") or "none",
            tooltip="Spatial pattern multiplying k (random: seeded smooth field)",
        )
        # seed 0, not degrade()'s None (fresh noise each call): a widget run is repeatable
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1,
                            tooltip="Random seed of the noise (and of the random uneven light): "
                            "the same seed gives the same capture")
        super().__init__(viewer, [self.inverse_k, self.r, self.sigma, self.bits, self.dimming,
                                  self.seed])

    def parameters(self) -> dict:
        """The keyword arguments for :func:`degrade` set in the widget."""
        return {
            "k": 1.0 / float(self.inverse_k.value),
            "r": float(self.r.value),
            "sigma": float(self.sigma.value),
            "bits": int(self.bits.value),
            "dimming": None if self.dimming.value == "none" else self.dimming.value,
            "seed": int(self.seed.value),
        }

    def compute(self, data, channel_axis, params, report):
        report(0, 1)
        result = degrade(data, channel_axis=channel_axis, **params)
        report(1, 1)
        return result

    def add_layers(self, source, result: DegradedImage, params: dict) -> str:
        info = {"step": "degrade", "source_layer": source.name, **params,
                "channel_axis": result.channel_axis}
        common = derived_layer_kwargs(source)
        metadata = {"quantization": result.quantization, "napari_lowlight": info}
        self._viewer.add_image(
            result.dark, name=DARK_LAYER, contrast_limits=(0.0, 1.0),
            metadata=dict(metadata), **common,
        )
        self._viewer.add_image(
            result.reexposed, name=REEXPOSED_LAYER, contrast_limits=(0.0, 1.0),
            metadata=dict(metadata), **common,
        )
        if is_lazy(result.dark):
            return "done: lazy layers, computed plane by plane as you browse"
        levels = int(np.count_nonzero(np.bincount(result.quantization.levels.ravel())))
        return f"done: {levels} dark levels used"
