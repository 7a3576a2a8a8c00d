"""Compare methods: labelled tiles, inputs out of the grid, degenerate results flagged.

The napari tests run headless under Xvfb; the ``is_degenerate`` tests need no napari.
"""

import importlib.util

import numpy as np
import pytest

from napari_lowlight.metrics import is_degenerate

needs_napari = pytest.mark.skipif(importlib.util.find_spec("napari") is None,
                                  reason="the napari extra is not installed")

# quick methods only: the network and SRIE are exercised elsewhere
QUICK = ("clahe", "octm", "laic")


def _grid(viewer):
    canvas = getattr(viewer, "canvas", None)
    return canvas.grid if canvas is not None and hasattr(canvas, "grid") else viewer.grid


def _dark():
    from napari_lowlight import degrade

    yy, xx = np.mgrid[0:40, 0:48] / 48.0
    scene = 0.5 + 0.4 * np.sin(5 * xx) * np.cos(4 * yy)
    return degrade(scene, k=0.1, r=1.0, sigma=0.3, bits=10, seed=2).dark


def _run_compare(viewer, qtbot, methods=QUICK):
    from napari_lowlight.plugin._compare_widget import CompareWidget

    widget = CompareWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.image.value = viewer.layers["dark"]
    for name, box in widget.method_boxes.items():
        box.value = name in methods
    assert widget.run() is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30000)
    return widget


@pytest.fixture
def warnings_shown():
    """Messages shown to the user as napari warning notifications."""
    from napari.utils.notifications import NotificationSeverity, notification_manager

    shown = []

    def record(notification):
        if notification.severity == NotificationSeverity.WARNING:
            shown.append(notification.message)

    notification_manager.notification_ready.connect(record)
    yield shown
    notification_manager.notification_ready.disconnect(record)


@needs_napari
def test_every_result_is_labelled_in_its_own_tile(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    dark = _dark()
    viewer.add_image(dark, name="dark")
    _run_compare(viewer, qtbot)
    assert errors == []
    results = [viewer.layers[name] for name in QUICK]
    if not hasattr(results[0], "name_overlay"):
        pytest.skip("this napari release has no layer name overlay")
    grid = _grid(viewer)
    assert grid.enabled
    positions = [grid.position(viewer.layers.index(layer), viewer.layers) for layer in results]
    assert len(set(positions)) == len(results)  # one tile each
    canvas = viewer.window._qt_viewer.canvas
    qtbot.waitUntil(lambda: all(layer.name_overlay in canvas._layer_overlay_to_visual.get(
        layer, {}) for layer in results), timeout=5000)
    for layer, (row, col), method in zip(results, positions, QUICK):
        assert layer.visible and layer.name_overlay.visible
        # the drawn label: the method's name, inside that layer's tile
        visual = canvas._layer_overlay_to_visual[layer][layer.name_overlay]
        assert visual.node.text == method
        assert visual.node.parent is canvas.grid[row, col]
        assert visual.node.visible


@needs_napari
def test_inputs_are_kept_out_of_the_grid_and_restored(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    dark = _dark()
    original = dark.copy()
    source = viewer.add_image(dark, name="dark")
    other = viewer.add_image(np.zeros((40, 48)), name="reference")
    already_hidden = viewer.add_image(np.ones((40, 48)), name="hidden before", visible=False)
    widget = _run_compare(viewer, qtbot)
    assert errors == []
    grid = _grid(viewer)
    results = [viewer.layers[name] for name in QUICK]
    # only the results are tiled: the other layers are hidden, so napari gives them no tile
    assert not source.visible and not other.visible
    for layer in (source, other, already_hidden):
        assert grid.position(viewer.layers.index(layer), viewer.layers) == (-1, -1)
    occupied = {pos for pos, indices in grid.iter_viewboxes(viewer.layers) if indices}
    assert len(occupied) == len(results)
    assert "'dark'" in widget.status.value and "'reference'" in widget.status.value
    assert "'hidden before'" not in widget.status.value
    # turning grid view off shows them again (not the one the user had hidden), labels off
    grid.enabled = False
    assert source.visible and other.visible and not already_hidden.visible
    if hasattr(results[0], "name_overlay"):
        assert not any(layer.name_overlay.visible for layer in results)
        grid.enabled = True
        assert all(layer.name_overlay.visible for layer in results)
    # the user's data is untouched
    assert source.data is dark
    np.testing.assert_array_equal(dark, original)


@needs_napari
def test_a_degenerate_result_is_flagged(make_napari_viewer, qtbot, errors, warnings_shown,
                                        monkeypatch):
    from napari_lowlight.baselines import BASELINES

    monkeypatch.setitem(BASELINES, "octm",
                        lambda image, channel_axis=None: np.full(np.shape(image), 0.5))
    viewer = make_napari_viewer()
    viewer.add_image(_dark(), name="dark")
    widget = _run_compare(viewer, qtbot)
    assert errors == []
    status = widget.status.value
    assert status.startswith(f"done: {len(QUICK)} methods in grid view")
    assert "octm's result is constant (0.5)" in status
    assert "clahe's result" not in status and "laic's result" not in status
    assert len(warnings_shown) == 1 and "octm's result is constant" in warnings_shown[0]


@needs_napari
def test_no_flag_when_every_result_is_fine(make_napari_viewer, qtbot, errors, warnings_shown):
    viewer = make_napari_viewer()
    viewer.add_image(_dark(), name="dark")
    widget = _run_compare(viewer, qtbot, methods=("clahe", "laic"))
    assert errors == []
    assert "result" not in widget.status.value
    assert warnings_shown == []


# -- is_degenerate (core, no napari) ------------------------------------------------------

def test_is_degenerate_passes_ordinary_images(rng, smooth_rgb):
    assert is_degenerate(rng.random((64, 80))) is None
    assert is_degenerate(smooth_rgb) is None
    assert is_degenerate(rng.integers(0, 256, (30, 30), dtype=np.uint8)) is None
    # a mostly black image with real content is not degenerate
    sparse = np.zeros((100, 100))
    sparse[:, :20] = rng.random((100, 20))
    assert is_degenerate(sparse) is None


def test_is_degenerate_names_the_reason(rng):
    assert is_degenerate(np.full((10, 10), 0.25)) == "is constant (0.25)"
    assert is_degenerate(np.full((10, 10), np.nan)) == "has no finite values"
    mostly_nan = np.full((10, 10), np.nan)
    mostly_nan[0, :5] = 0.5
    assert is_degenerate(mostly_nan).startswith("is nearly all NaN or infinite (95%")
    black = rng.random((10, 10))
    black[:, :9] = 0.0
    assert is_degenerate(black) == "is nearly all black (90% of values at 0)"
    white = rng.random((10, 10))
    white[:, :9] = 1.0
    assert is_degenerate(white) == "is nearly all white (90% of values at 1)"
    both = rng.random((10, 10))
    both[:, :5], both[:, 5:9] = 0.0, 1.0
    assert is_degenerate(both) == "is nearly all clipped (90% of values at 0 or 1)"
    flat = np.full((100, 100), 0.6)
    flat[:5] = rng.random((5, 100))  # a few details on one grey
    assert is_degenerate(flat).startswith("is nearly flat (95% of values within 1/255 of 0.6")
    assert is_degenerate(np.full((3, 3), 7, dtype=np.uint8)) == "is constant (0.0275)"


def test_is_degenerate_on_large_images_and_bad_arguments(rng):
    assert is_degenerate(rng.random((1500, 1000))) is None  # judged on a subsample
    assert is_degenerate(np.zeros((1500, 1000))) == "is constant (0)"
    with pytest.raises(ValueError, match="empty"):
        is_degenerate(np.zeros((0, 3)))
    with pytest.raises(TypeError):
        is_degenerate("image")
    with pytest.raises(ValueError, match="fraction"):
        is_degenerate(np.zeros((3, 3)), fraction=0.0)
    with pytest.raises(ValueError, match="tolerance"):
        is_degenerate(np.zeros((3, 3)), tolerance=0.0)


def test_octm_on_the_dark_cell_sample_is_flagged():
    """The reported case: OCTM merges the few levels of the dark cell capture into one grey."""
    from napari_lowlight import data, degrade
    from napari_lowlight.baselines import clahe, octm

    dark = degrade(data.cell(), k=1 / 30, r=1.3, sigma=0.25, bits=8, seed=0).dark
    result = octm(dark)
    # levels 1-9 (96% of the pixels) land on 171-174 of 255; level 0 (the halo) stays black
    assert np.unique(np.rint(dark * 255)).size == 10
    assert np.all((result == 0) | ((result >= 171 / 255 - 1e-9) & (result <= 174 / 255 + 1e-9)))
    assert is_degenerate(result).startswith("is nearly flat (94% of values within 1/255")
    assert is_degenerate(clahe(dark)) is None
