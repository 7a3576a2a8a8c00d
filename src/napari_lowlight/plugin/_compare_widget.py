"""The "Compare methods" dock widget: every enhancement method on one layer, in a grid."""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox

from ..baselines import BASELINES, smooth_project
from .._lazy import is_lazy
from ..compensation import laic
from ..intensity import to_intensity
from ._camera_fields import bits_field, black_level_field, camera_options
from ._layers import derived_layer_kwargs
from ._step_widget import StepWidget

if TYPE_CHECKING:
    import napari

__all__ = ["CompareWidget"]

#: Methods that work on a dark image alone, in the order they are run and shown.
COMPARE_METHODS = [*BASELINES, "laic", "laic+smooth_project", "laic+dequantizer"]
METHOD_TOOLTIPS = {
    "clahe": "Contrast-limited adaptive histogram equalization (baseline)",
    "lime": "LIME: illumination map estimation (baseline)",
    "octm": "OCTM: optimal contrast-tone mapping (baseline)",
    "srie": "SRIE: simultaneous reflectance and illumination estimation (baseline)",
    "laic": "LAIC: locally adaptive illumination compensation",
    "laic+smooth_project": "LAIC, then the classic dequantizer (smooth, then project)",
    "laic+dequantizer": "LAIC, then the shipped dequantizer network (the full pipeline)",
}


class CompareWidget(StepWidget):
    """Runs the chosen methods on a dark image layer and shows each result side by side.

    Each result becomes a new layer named after its method; the viewer switches
    to grid view.  Progress advances per method; Cancel stops between methods
    and adds nothing.
    """

    title = "Compare methods"
    run_text = "Compare"

    def __init__(self, viewer: napari.viewer.Viewer):
        self.method_boxes = {
            name: CheckBox(text=name, value=True, tooltip=METHOD_TOOLTIPS.get(name, name))
            for name in COMPARE_METHODS
        }
        self.bits = bits_field()
        self.black_level = black_level_field()
        super().__init__(viewer, [self.bits, self.black_level,
                                  *self.method_boxes.values()])

    def parameters(self) -> dict:
        chosen = [name for name, box in self.method_boxes.items() if box.value]
        if not chosen:
            raise ValueError("choose at least one method")
        return {"methods": chosen, **camera_options(self.bits, self.black_level)}

    def compute(self, data, channel_axis, params, report):
        methods = params["methods"]
        outputs = {}
        laic_result = None
        report(0, len(methods))
        camera = {"bits": params.get("bits"), "black_level": params.get("black_level")}
        # the baselines see light in [0, 1] by the same rule as LAIC (in memory: lazy data
        # keep their own per-block reading)
        light = data if is_lazy(data) else to_intensity(data, **camera)[0]
        for done, name in enumerate(methods, start=1):
            if name in BASELINES:
                outputs[name] = BASELINES[name](light, channel_axis=channel_axis)
            else:
                if laic_result is None:
                    laic_result = laic(data, channel_axis=channel_axis, **camera)
                if name == "laic":
                    outputs[name] = laic_result.enhanced
                elif name == "laic+smooth_project":
                    outputs[name] = smooth_project(laic_result.enhanced, laic_result.quantization,
                                                   channel_axis=channel_axis)
                else:
                    from ..pipeline import dequantize

                    outputs[name] = dequantize(laic_result.enhanced,
                                               quantization=laic_result.quantization,
                                               channel_axis=channel_axis)
            report(done, len(methods))
        return outputs

    def add_layers(self, source, outputs: dict, params: dict) -> str:
        common = derived_layer_kwargs(source)
        for name, image in outputs.items():
            self._viewer.add_image(
                image, name=name, contrast_limits=(0.0, 1.0),
                metadata={"napari_lowlight": {"step": name, "source_layer": source.name}},
                **common,
            )
        canvas = getattr(self._viewer, "canvas", None)  # napari >= 0.9 moved grid there
        grid = canvas.grid if canvas is not None and hasattr(canvas, "grid") else self._viewer.grid
        grid.enabled = True
        return f"done: {len(outputs)} methods in grid view"
