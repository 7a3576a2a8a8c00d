"""The "Compare methods" dock widget: every enhancement method on one layer, in a grid."""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui.widgets import CheckBox
from napari.utils.notifications import show_warning

from .._lazy import is_lazy
from ..methods import DARK_METHODS, METHODS
from ..metrics import is_degenerate
from ._camera_fields import bits_field, black_level_field, camera_options
from ._layers import derived_layer_kwargs
from ._step_widget import StepWidget

if TYPE_CHECKING:
    import napari

__all__ = ["CompareWidget"]

#: Methods that work on a dark image alone, in the order they are run and shown: the
#: registry's (napari_lowlight.methods.DARK_METHODS), each with its label as tooltip.
COMPARE_METHODS = DARK_METHODS
METHOD_TOOLTIPS = {name: METHODS[name].label for name in COMPARE_METHODS}


class CompareWidget(StepWidget):
    """Runs the chosen methods on a dark image layer and shows each result side by side.

    Each result becomes a new layer named after its method, and the viewer switches
    to grid view with one tile per result, its method's name drawn in the tile's
    top-left corner (the layer's name overlay of recent napari releases, 0.9 among
    them; older releases have none and leave the tiles unlabelled).  Only the
    results are tiled: every other visible layer, the input included, is hidden
    while grid view is on and shown again when it is turned off; no layer's data is
    touched.  A result that left nearly no image
    (:func:`napari_lowlight.metrics.is_degenerate`, judged on in-memory results only)
    is named in the status line and in a warning.
    Progress advances per method; Cancel stops between methods and adds nothing.
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
        self._hidden = []  # layers this widget hid for grid view, shown again after it
        self._labelled = []  # result layers whose name overlay this widget turned on
        self._degenerate = []  # "<method>'s result is ..." of the last run
        _grid(viewer).events.enabled.connect(self._on_grid_toggled)

    def parameters(self) -> dict:
        chosen = [name for name, box in self.method_boxes.items() if box.value]
        if not chosen:
            raise ValueError("choose at least one method")
        return {"methods": chosen, **camera_options(self.bits, self.black_level)}

    def compute(self, data, channel_axis, params, report):
        methods = params["methods"]
        outputs = {}
        shared = {}  # the light of the image and LAIC's result, computed once for all methods
        report(0, len(methods))
        for done, name in enumerate(methods, start=1):
            outputs[name], _ = METHODS[name].on_dark(
                data, channel_axis=channel_axis, bits=params.get("bits"),
                black_level=params.get("black_level"), cache=shared)
            report(done, len(methods))
        return outputs

    def add_layers(self, source, outputs: dict, params: dict) -> str:
        # runs once per level for a multiscale input, on a stand-in viewer: the grid is
        # arranged in _on_result, once the real layers exist
        common = derived_layer_kwargs(source)
        for name, image in outputs.items():
            self._viewer.add_image(
                image, name=name, contrast_limits=(0.0, 1.0),
                metadata={"napari_lowlight": {"step": name, "source_layer": source.name}},
                **common,
            )
            # a lazy result is computed only where napari shows it: judging it would
            # compute all of it, so only in-memory results are checked
            reason = None if is_lazy(image) else is_degenerate(image)
            flag = None if reason is None else f"{name}'s result {reason}"
            if flag is not None and flag not in self._degenerate:  # once, not once per level
                self._degenerate.append(flag)
        return "; ".join([f"done: {len(outputs)} methods in grid view", *self._degenerate])

    def _on_result(self, source, result, params):
        before = {id(layer) for layer in self._viewer.layers}
        self._degenerate = []
        super()._on_result(source, result, params)
        results = [layer for layer in self._viewer.layers if id(layer) not in before]
        hidden = self._show_in_grid(results)
        if hidden:
            names = ", ".join(repr(layer.name) for layer in hidden)
            self.status.value += f"; hidden while grid view is on: {names}"
        # the status can be long (flags, hidden layers): wrap it, and keep all of it at hand
        self.status.native.setWordWrap(True)
        self.status.tooltip = self.status.value
        if self._degenerate:
            show_warning(f"{self.title}: " + "; ".join(self._degenerate))

    def _show_in_grid(self, results: list) -> list:
        """Label ``results`` in their tiles, hide every other visible layer, turn the grid on.

        Returns the layers hidden now.
        """
        for layer in results:
            overlay = getattr(layer, "name_overlay", None)  # recent napari: the name in the tile
            if overlay is not None:
                overlay.visible = True
                self._labelled.append(layer)
        # napari tiles every visible layer: the input would take a tile of its own
        ids = {id(layer) for layer in results}
        hidden = [layer for layer in self._viewer.layers
                  if layer.visible and id(layer) not in ids]
        for layer in hidden:
            layer.visible = False
        self._hidden.extend(hidden)
        _grid(self._viewer).enabled = True
        return hidden

    def _on_grid_toggled(self, event=None):
        enabled = _grid(self._viewer).enabled
        present = {id(layer) for layer in self._viewer.layers}
        # out of grid view the labels would pile up in one corner over a single image
        self._labelled = [layer for layer in self._labelled if id(layer) in present]
        for layer in self._labelled:
            layer.name_overlay.visible = enabled
        if not enabled:
            for layer in self._hidden:
                if id(layer) in present:
                    layer.visible = True
            self._hidden = []


def _grid(viewer):
    """The viewer's grid settings (napari >= 0.9 moved them to ``viewer.canvas``)."""
    canvas = getattr(viewer, "canvas", None)
    return canvas.grid if canvas is not None and hasattr(canvas, "grid") else viewer.grid
