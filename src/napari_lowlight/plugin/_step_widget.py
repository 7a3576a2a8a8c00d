"""The common shape of the plugin's dock widgets: a layer picker, parameters, Run/Cancel.

A subclass lists its parameter widgets, says how to call the core on the
layer's array (``compute``) and how to turn the result into new layers
(``add_layers``).  This class runs the call in a napari thread worker, shows
progress, cancels, and turns every error into a notification.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, Label, ProgressBar, PushButton
from napari.layers import Image
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal

from ._jobs import JobCancelled, start_job
from ._layers import (
    LayerError,
    LayerRecorder,
    MultiscaleInput,
    MultiscaleResult,
    image_layer_array,
)

if TYPE_CHECKING:
    import napari

__all__ = ["StepWidget"]


class _ProgressRelay(QObject):
    """Carries progress from the worker thread to the GUI thread (a queued Qt signal)."""

    progressed = Signal(int, int)


class StepWidget(Container):
    """Base of the dock widgets that run one core step on an image layer."""

    #: Shown on the Run button, in the activity dock and in messages.
    title = "step"
    run_text = "Run"

    def __init__(self, viewer: napari.viewer.Viewer, parameters: list):
        super().__init__(labels=True)
        self._viewer = viewer
        self.worker = None  # the running job, if any
        self.image = ComboBox(label="image", choices=self._image_layers, nullable=True,
                              tooltip="The image layer to process; new layers are added "
                              "over it with the same scale and translation")
        self.run_button = PushButton(text=self.run_text)
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", value=0, min=0, max=1, visible=False)
        self.status = Label(value="")
        self.extend([self.image, *parameters, self.run_button, self.cancel_button,
                     self.progress, self.status])
        self._relay = _ProgressRelay()
        self._relay.progressed.connect(self._show_progress)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(self._refresh_layers)
        self._refresh_layers()

    # -- to be provided by subclasses -----------------------------------------------------
    def parameters(self) -> dict:
        """Keyword arguments for the core function, read from the widgets."""
        raise NotImplementedError

    def compute(self, data, channel_axis, params: dict, report):
        """Run the core step (in the worker thread); ``report(done, total)`` may cancel."""
        raise NotImplementedError

    def add_layers(self, source, result, params: dict) -> str:
        """Add the result's layers (GUI thread); return a short status line."""
        raise NotImplementedError

    # -- layer choices ------------------------------------------------------------------
    def _image_layers(self, _widget=None):
        # a gain map (LAIC's, Enhance's) is not an image of light: never offered as input
        return [layer for layer in self._viewer.layers if isinstance(layer, Image)
                and layer.metadata.get("napari_lowlight", {}).get("image") != "gain"]

    def _refresh_layers(self, _event=None):
        self.image.reset_choices()
        if self.image.value is None:
            choices = self._image_layers()
            selected = self._viewer.layers.selection.active
            if selected in choices:
                self.image.value = selected
            elif choices:
                self.image.value = choices[-1]

    # -- running ------------------------------------------------------------------------
    def run(self, _=None):
        """Start the step on the selected layer; returns the worker (None on bad input)."""
        if self.worker is not None:
            show_info(f"{self.title} is already running; cancel it first")
            return None
        layer = self.image.value
        try:
            data, channel_axis = image_layer_array(layer)
            params = self.parameters()
        except (LayerError, ValueError, TypeError) as exc:
            self._show_error(f"{self.title}: {exc}")
            return None
        self.status.value = f"running on {layer.name!r}..."
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.progress.value = 0
        self.progress.visible = True
        self.worker = start_job(
            self._compute_in_thread,
            data,
            channel_axis,
            params,
            description=self.title,
            on_returned=lambda result: self._on_result(layer, result, params),
            on_finished=self._finished,
            on_error=lambda message: self._show_error(message, notify=False),
        )
        return self.worker

    def _compute_in_thread(self, data, channel_axis, params):
        def report(done: int, total: int):
            self._relay.progressed.emit(int(done), int(total))
            # Cancel between units of work (planes): the core stops here.
            if self.worker is not None and self.worker.abort_requested:
                raise JobCancelled()

        if isinstance(data, MultiscaleInput):
            # every level lazily, so the result layer is multiscale too
            return MultiscaleResult(self.compute(level, channel_axis, params, report)
                                    for level in data)
        return self.compute(data, channel_axis, params, report)

    def _show_progress(self, done: int, total: int):
        self.progress.max = max(total, 1)
        self.progress.value = min(done, total)

    def _on_result(self, source, result, params):
        if not isinstance(result, MultiscaleResult):
            self.status.value = self.add_layers(source, result, params)
            return
        viewer, recorder = self._viewer, LayerRecorder(self._viewer)
        self._viewer = recorder
        try:
            messages = [self.add_layers(source, level, params) for level in result]
        finally:
            self._viewer = viewer
        recorder.add_to(viewer)
        self.status.value = f"{messages[0]} ({len(result)} levels)"

    def _show_error(self, message: str, notify: bool = True):
        """The whole message in the status line (wrapped; napari's toast cuts long messages),
        and in a notification unless the job runner already showed one."""
        if notify:
            show_error(message)
        self.status.value = message
        self.status.native.setWordWrap(True)
        self.status.tooltip = message

    def cancel(self, _=None):
        """Cancel the running job: its result is dropped, no layer is added."""
        if self.worker is not None:
            self.worker.quit()
            self.status.value = "cancelled"

    def _finished(self):
        self.worker = None
        self.run_button.enabled = True
        self.cancel_button.enabled = False
        self.progress.visible = False
        if self.status.value.startswith("running"):
            self.status.value = ""
