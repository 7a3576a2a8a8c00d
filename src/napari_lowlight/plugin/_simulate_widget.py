"""The "Simulate low light" dock widget: degrade an image layer into "dark" and "re-exposed"."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton, SpinBox
from napari.layers import Image
from napari.utils.notifications import show_error, show_info

from ..formation import DegradedImage, degrade
from ._jobs import start_job
from ._layers import LayerError, derived_layer_kwargs, image_layer_array

if TYPE_CHECKING:
    import napari

__all__ = ["SimulateLowLightWidget"]

DARK_LAYER = "dark"
REEXPOSED_LAYER = "re-exposed"


class SimulateLowLightWidget(Container):
    """Dock widget that runs :func:`napari_lowlight.degrade` on an image layer.

    Adds two new layers, ``"dark"`` (the capture, shown with contrast limits
    0..1 so it looks as dark as it is) and ``"re-exposed"``; both carry the
    :class:`~napari_lowlight.Quantization` in ``metadata["quantization"]`` and
    the parameters in ``metadata["napari_lowlight"]``.  The input layer is
    never modified.  The work runs in a thread worker; "Cancel" drops it.
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = viewer
        self.worker = None  # the running job, if any
        self.image = ComboBox(label="image", choices=self._image_layers, nullable=True)
        self.k = FloatSpinBox(
            label="light level k", value=1 / 30, min=0.001, max=1.0, step=0.001,
            tooltip="Dimming factor k in (0, 1]: 1/30 = 0.033 is the paper's global low light, "
            "1/5 its local low light",
        )
        self.r = FloatSpinBox(
            label="gamma ratio r", value=1.3, min=0.1, max=5.0, step=0.05,
            tooltip="Gamma ratio g2/g1 of the dark capture (paper: 1.3 global, 1.5 local)",
        )
        self.sigma = FloatSpinBox(
            label="noise σ (levels)", value=0.25, min=0.0, max=10.0, step=0.05,
            tooltip="Sensor noise standard deviation, in quantization steps",
        )
        self.bits = SpinBox(
            label="bits", value=8, min=1, max=16,
            tooltip="Bit depth of the capture: 8 for photos, 12 or 16 for scientific cameras",
        )
        self.dimming = ComboBox(
            label="uneven light", choices=["none", "vignette", "random"], value="none",
            tooltip="Spatial pattern multiplying k (random: seeded smooth field)",
        )
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.run_button = PushButton(text="Simulate")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        self.extend(
            [self.image, self.k, self.r, self.sigma, self.bits, self.dimming, self.seed,
             self.run_button, self.cancel_button, self.status]
        )
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(self._refresh_layers)
        self._refresh_layers()

    # -- layer choices ------------------------------------------------------------------
    def _image_layers(self, _widget=None):
        return [layer for layer in self._viewer.layers if isinstance(layer, Image)]

    def _refresh_layers(self, _event=None):
        self.image.reset_choices()
        if self.image.value is None:
            choices = self._image_layers()
            selected = self._viewer.layers.selection.active
            if isinstance(selected, Image):
                self.image.value = selected
            elif choices:
                self.image.value = choices[-1]

    # -- running ------------------------------------------------------------------------
    def parameters(self) -> dict:
        """The keyword arguments for :func:`degrade` set in the widget."""
        return {
            "k": float(self.k.value),
            "r": float(self.r.value),
            "sigma": float(self.sigma.value),
            "bits": int(self.bits.value),
            "dimming": None if self.dimming.value == "none" else self.dimming.value,
            "seed": int(self.seed.value),
        }

    def run(self, _=None):
        """Start the simulation on the selected layer; returns the worker (or None on bad input)."""
        if self.worker is not None:
            show_info("Simulate low light is already running; cancel it first")
            return None
        layer = self.image.value
        try:
            data, channel_axis = image_layer_array(layer)
        except LayerError as exc:
            show_error(f"Simulate low light: {exc}")
            return None
        params = self.parameters()
        self.status.value = f"simulating on {layer.name!r}..."
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.worker = start_job(
            degrade,
            data,
            channel_axis=channel_axis,
            description="Simulate low light",
            on_returned=lambda result: self._add_layers(layer, result, params),
            on_finished=self._finished,
            **params,
        )
        return self.worker

    def cancel(self, _=None):
        """Cancel the running job: its result is dropped, no layer is added."""
        if self.worker is not None:
            self.worker.quit()
            self.status.value = "cancelled"

    def _finished(self):
        self.worker = None
        self.run_button.enabled = True
        self.cancel_button.enabled = False
        if self.status.value.startswith("simulating"):
            self.status.value = ""

    def _add_layers(self, source, result: DegradedImage, params: dict):
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
        levels = int(np.count_nonzero(np.bincount(result.quantization.levels.ravel())))
        self.status.value = f"done: {levels} dark levels used"
