"""Every dock widget under the things users do (issue 9): no image, wrong layer kinds, bad
data, cancel in the middle, the source layer removed while its job runs, several jobs at
once.  The viewer must stay usable, errors must become notifications (never tracebacks),
no partial layer may appear and the input must stay untouched."""

import numpy as np
import pytest

pytest.importorskip("napari")

from napari_lowlight.plugin._compare_widget import CompareWidget  # noqa: E402
from napari_lowlight.plugin._dequantize_widget import DequantizeWidget  # noqa: E402
from napari_lowlight.plugin._laic_widget import LAICWidget  # noqa: E402
from napari_lowlight.plugin._simulate_widget import SimulateLowLightWidget  # noqa: E402

WIDGETS = [SimulateLowLightWidget, LAICWidget, DequantizeWidget, CompareWidget]
OUTPUTS = {SimulateLowLightWidget: {"dark", "re-exposed"}, LAICWidget: {"enhanced", "gain"},
           DequantizeWidget: {"dequantized"},
           CompareWidget: {"clahe", "lime", "octm", "srie", "laic"}}


@pytest.fixture
def notes():
    """Notifications shown to the user, by severity name."""
    from napari.utils.notifications import NotificationSeverity, notification_manager

    shown = {"error": [], "info": []}

    def record(notification):
        key = "error" if notification.severity >= NotificationSeverity.ERROR else "info"
        shown[key].append(notification.message)

    notification_manager.notification_ready.connect(record)
    yield shown
    notification_manager.notification_ready.disconnect(record)


def make(widget_class, viewer):
    widget = widget_class(viewer)
    if widget_class is DequantizeWidget:
        widget.device.value = "cpu"
    if widget_class is CompareWidget:  # the network is tested elsewhere; keep this quick
        for name, box in widget.method_boxes.items():
            box.value = name in OUTPUTS[CompareWidget]
    return widget


def dark_stack(planes=1, size=40):
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:size, 0:size] / size
    plane = 0.15 + 0.1 * np.sin(6 * xx) * np.cos(5 * yy)
    stack = np.clip(plane + 0.01 * rng.standard_normal((planes, size, size)), 0.01, 1)
    return stack[0] if planes == 1 else stack


def wait(qtbot, widget, timeout=60000):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)


def new_layers(viewer, before):
    return {layer.name for layer in viewer.layers} - before


@pytest.mark.parametrize("widget_class", WIDGETS)
def test_no_image_layer_only_labels_and_points(make_napari_viewer, notes, widget_class):
    viewer = make_napari_viewer()
    viewer.add_labels(np.zeros((10, 10), dtype=np.uint8), name="labels")
    viewer.add_points(np.array([[1.0, 2.0]]), name="points")
    widget = make(widget_class, viewer)
    assert [c for c in widget.image.choices if c is not None] == []
    assert widget.run() is None
    assert len(notes["error"]) == 1 and "no image layer selected" in notes["error"][0]
    assert [layer.name for layer in viewer.layers] == ["labels", "points"]


def test_layer_kinds_refused_by_name():
    from napari.layers import Labels, Points

    from napari_lowlight.plugin._layers import LayerError, image_layer_array

    for layer in (Labels(np.zeros((4, 4), dtype=np.uint8), name="cells"),
                  Points(np.zeros((1, 2)), name="spots")):
        with pytest.raises(LayerError, match=f"{layer.name!r} is a {type(layer).__name__}"):
            image_layer_array(layer)


@pytest.mark.parametrize("widget_class", WIDGETS)
def test_bad_data_is_a_notification_and_the_widget_stays_usable(make_napari_viewer, qtbot,
                                                                  notes, widget_class):
    viewer = make_napari_viewer()
    viewer.add_image(np.full((12, 12), np.nan), name="broken")
    widget = make(widget_class, viewer)
    with qtbot.capture_exceptions() as raised:
        widget.run()
        wait(qtbot, widget)
    assert raised == []  # nothing reached the console as a traceback
    assert len(notes["error"]) == 1 and "NaN" in notes["error"][0]
    assert [layer.name for layer in viewer.layers] == ["broken"]
    assert widget.run_button.enabled and not widget.cancel_button.enabled


@pytest.mark.parametrize("widget_class", [LAICWidget, DequantizeWidget, CompareWidget])
def test_cancel_in_the_middle_adds_no_partial_layer(make_napari_viewer, qtbot, notes,
                                                     widget_class):
    viewer = make_napari_viewer()
    data = dark_stack(planes=1 if widget_class is CompareWidget else 30)
    original = data.copy()
    viewer.add_image(data, name="input")
    widget = make(widget_class, viewer)
    if widget_class is LAICWidget:
        widget.method.value = "exact"  # slow enough per plane to cancel in the middle
    widget.run()
    qtbot.waitUntil(lambda: widget.progress.value >= 1, timeout=60000)
    widget.cancel()
    wait(qtbot, widget)
    assert notes["error"] == []
    assert [layer.name for layer in viewer.layers] == ["input"]
    assert widget.status.value == "cancelled"
    np.testing.assert_array_equal(data, original)
    # the viewer and the widget are usable: the same step now runs to the end
    widget.run()
    wait(qtbot, widget)
    assert new_layers(viewer, {"input"}) == OUTPUTS[widget_class]


@pytest.mark.parametrize("widget_class", WIDGETS)
def test_source_layer_removed_while_its_job_runs(make_napari_viewer, qtbot, notes,
                                                 widget_class):
    viewer = make_napari_viewer()
    data = dark_stack(planes=4)
    layer = viewer.add_image(data, name="input", scale=(1, 2, 2))
    widget = make(widget_class, viewer)
    with qtbot.capture_exceptions() as raised:
        widget.run()
        viewer.layers.remove(layer)
        wait(qtbot, widget)
    assert raised == [] and notes["error"] == []
    # the finished work is not lost: its layers are added where the input was
    assert new_layers(viewer, set()) == OUTPUTS[widget_class]
    assert all(tuple(out.scale) == (1, 2, 2) for out in viewer.layers)
    assert widget.image.value is not layer
    assert widget.run_button.enabled


def test_every_widget_at_once_and_one_widget_twice(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer()
    data = dark_stack(planes=3)
    original = data.copy()
    viewer.add_image(data, name="input")
    widgets = [make(widget_class, viewer) for widget_class in WIDGETS]
    for widget in widgets:
        widget.image.value = viewer.layers["input"]
    workers = [widget.run() for widget in widgets]
    assert all(worker is not None for worker in workers)
    assert widgets[0].run() is None  # already running: told, not started twice
    assert any("already running" in message for message in notes["info"])
    for widget in widgets:
        wait(qtbot, widget)
    assert notes["error"] == []
    expected = set().union(*OUTPUTS.values())
    assert new_layers(viewer, {"input"}) == expected
    np.testing.assert_array_equal(data, original)
