"""The napari glue, headless under Xvfb: manifest, sample data and the simulate widget."""

import numpy as np
import pytest

pytest.importorskip("napari")  # the core tests run without the napari extra

from napari_lowlight import Quantization  # noqa: E402
from napari_lowlight.plugin._simulate_widget import SimulateLowLightWidget  # noqa: E402


def wait_for_job(qtbot, widget, timeout=20000):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)


def test_manifest_is_discovered_and_valid():
    import npe2

    pm = npe2.PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("napari-lowlight")
    assert manifest.display_name == "Low-light restoration"  # the Plugins menu's entry
    assert [w.display_name for w in manifest.contributions.widgets] == [
        "Simulate low light", "Compensate illumination (LAIC)", "Dequantize",
        "Enhance (LAIC + dequantizer)", "Compare methods"]
    keys = {s.key for s in manifest.contributions.sample_data}
    assert keys == {"photograph", "microscopy", "dark_capture"}


def test_widget_adds_dark_and_reexposed_layers(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    image = rng.random((40, 50))
    original = image.copy()
    layer = viewer.add_image(image, name="input", scale=(2.0, 0.5), translate=(10, 20))
    widget = SimulateLowLightWidget(viewer)
    viewer.window.add_dock_widget(widget)
    assert widget.image.value is layer
    widget.inverse_k.value = 20  # k = 0.05
    widget.r.value = 1.5
    widget.sigma.value = 0.5
    widget.bits.value = 10
    widget.dimming.value = "vignette"
    widget.seed.value = 3
    assert widget.run() is not None
    wait_for_job(qtbot, widget)
    assert errors == []
    assert [lay.name for lay in viewer.layers] == ["input", "dark", "re-exposed"]
    dark, bright = viewer.layers["dark"], viewer.layers["re-exposed"]
    # same numbers as the library with the same parameters
    from napari_lowlight import degrade

    expected = degrade(original, k=0.05, r=1.5, sigma=0.5, bits=10, dimming="vignette", seed=3)
    np.testing.assert_array_equal(dark.data, expected.dark)
    np.testing.assert_array_equal(bright.data, expected.reexposed)
    for out in (dark, bright):
        quant = out.metadata["quantization"]
        assert isinstance(quant, Quantization) and quant.bits == 10 and quant.shape == (40, 50)
        info = out.metadata["napari_lowlight"]
        assert info["k"] == pytest.approx(0.05) and info["source_layer"] == "input"
        np.testing.assert_allclose(out.scale, (2.0, 0.5))
        np.testing.assert_allclose(out.translate, (10, 20))
        assert tuple(out.contrast_limits) == (0.0, 1.0)
    # the input layer is untouched: same array object, same values
    assert layer.data is image
    np.testing.assert_array_equal(layer.data, original)


def test_widget_on_rgb_and_nd_layers(make_napari_viewer, qtbot, errors, smooth_rgb):
    viewer = make_napari_viewer()
    widget = SimulateLowLightWidget(viewer)
    rgb = viewer.add_image((smooth_rgb * 255).astype(np.uint8), name="rgb", rgb=True)
    widget.image.value = rgb
    widget.run()
    wait_for_job(qtbot, widget)
    assert viewer.layers["dark"].rgb and viewer.layers["dark"].data.shape == (64, 80, 3)
    assert viewer.layers["dark"].metadata["napari_lowlight"]["channel_axis"] == 2

    stack = np.random.default_rng(1).integers(0, 4096, (3, 5, 20, 24), dtype=np.uint16)
    layer = viewer.add_image(stack, name="stack")
    widget.image.value = layer
    widget.run()
    wait_for_job(qtbot, widget)
    assert errors == []
    new = [lay for lay in viewer.layers if lay.name.startswith("dark")]
    assert new[-1].data.shape == (3, 5, 20, 24) and new[-1].ndim == 4
    assert new[-1].metadata["quantization"].shape == (3, 5, 20, 24)
    assert layer.data.dtype == np.uint16


def test_widget_without_an_image_layer_notifies(make_napari_viewer, errors):
    viewer = make_napari_viewer()
    viewer.add_labels(np.zeros((10, 10), dtype=np.uint8), name="labels")
    widget = SimulateLowLightWidget(viewer)
    assert [c for c in widget.image.choices if c is not None] == []  # labels not offered
    assert widget.run() is None
    assert len(errors) == 1 and "no image layer selected" in errors[0]
    assert [lay.name for lay in viewer.layers] == ["labels"]


def test_widget_bad_data_becomes_a_notification(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    viewer.add_image(np.full((10, 12), 3.0), name="out of range")
    widget = SimulateLowLightWidget(viewer)
    widget.run()
    wait_for_job(qtbot, widget)
    assert len(errors) == 1 and "must lie in [0, 1]" in errors[0]
    assert len(viewer.layers) == 1
    assert widget.run_button.enabled  # the widget is usable again


def test_widget_cancel_adds_nothing(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(2).random((600, 800)), name="big")
    widget = SimulateLowLightWidget(viewer)
    worker = widget.run()
    widget.cancel()
    assert worker.abort_requested
    wait_for_job(qtbot, widget)
    assert [lay.name for lay in viewer.layers] == ["big"]
    assert widget.status.value == "cancelled"


def test_widget_follows_layer_list(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = SimulateLowLightWidget(viewer)
    assert widget.image.value is None
    a = viewer.add_image(np.zeros((5, 5)), name="a")
    assert widget.image.value is a
    viewer.layers.remove(a)
    assert widget.image.value is None


@pytest.mark.parametrize(
    ("key", "names"),
    [
        ("photograph", ["coffee"]),
        ("microscopy", ["cell"]),
        ("dark_capture", ["coffee dark", "coffee re-exposed"]),
    ],
)
def test_sample_data_loads(make_napari_viewer, key, names):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-lowlight", key)
    assert [lay.name for lay in viewer.layers] == names
    if key == "dark_capture":
        dark = viewer.layers["coffee dark"]
        quant = dark.metadata["quantization"]
        assert isinstance(quant, Quantization) and quant.shape == (400, 600, 3)
        assert dark.data.max() <= 1 / 30 + 2 / 255  # a dark capture: a few levels only
        np.testing.assert_allclose(dark.data, quant.dark)


def dark_layer_data():
    from napari_lowlight import degrade

    yy, xx = np.mgrid[0:40, 0:48] / 48.0
    scene = 0.5 + 0.4 * np.sin(5 * xx) * np.cos(4 * yy)
    return degrade(scene, k=0.1, r=1.0, sigma=0.3, bits=10, dimming="vignette", seed=2)


def test_laic_widget_adds_enhanced_and_gain(make_napari_viewer, qtbot, errors):
    from napari_lowlight import laic
    from napari_lowlight.plugin._laic_widget import LAICWidget

    viewer = make_napari_viewer()
    capture = dark_layer_data()
    dark = capture.dark.copy()
    layer = viewer.add_image(dark, name="dark",
                             metadata={"quantization": capture.quantization})
    widget = LAICWidget(viewer)
    widget.method.value = "fast"
    assert widget.run() is not None
    wait_for_job(qtbot, widget)
    assert errors == []
    assert [lay.name for lay in viewer.layers] == ["dark", "enhanced", "gain"]
    enhanced, gain = viewer.layers["enhanced"], viewer.layers["gain"]
    expected = laic(capture.dark, method="fast", bits=10)
    np.testing.assert_allclose(enhanced.data, expected.enhanced)
    np.testing.assert_allclose(gain.data, expected.gain)
    quant = enhanced.metadata["quantization"]
    assert isinstance(quant, Quantization) and quant.bits == 10 and quant.r == 1.0
    assert enhanced.metadata["napari_lowlight"]["method_used"] == "fast"
    assert layer.data is dark
    np.testing.assert_array_equal(dark, capture.dark)
    assert widget.status.value.startswith("done (fast)")


def test_laic_widget_refine_edges_reaches_laic(make_napari_viewer, qtbot, errors):
    from napari_lowlight import laic
    from napari_lowlight.plugin._laic_widget import LAICWidget

    viewer = make_napari_viewer()
    capture = dark_layer_data()
    viewer.add_image(capture.dark, name="dark", metadata={"quantization": capture.quantization})
    widget = LAICWidget(viewer)
    widget.method.value = "fast"
    widget.refine_edges.value = True
    assert widget.run() is not None
    wait_for_job(qtbot, widget)
    assert errors == []
    expected = laic(capture.dark, method="fast", bits=10, refine_edges=True)
    np.testing.assert_allclose(viewer.layers["gain"].data, expected.gain)
    assert viewer.layers["enhanced"].metadata["napari_lowlight"]["refine_edges"] is True


def test_laic_widget_cancel_between_planes(make_napari_viewer, qtbot, errors):
    from napari_lowlight.plugin._laic_widget import LAICWidget

    viewer = make_napari_viewer()
    planes = np.stack([dark_layer_data().dark] * 40)
    viewer.add_image(planes, name="stack")
    widget = LAICWidget(viewer)
    widget.method.value = "exact"
    widget.run()
    qtbot.waitUntil(lambda: widget.progress.value >= 1, timeout=20000)
    widget.cancel()
    wait_for_job(qtbot, widget, timeout=30000)
    assert errors == []
    assert [lay.name for lay in viewer.layers] == ["stack"]
    assert widget.status.value == "cancelled"


def test_laic_widget_black_layer_notifies(make_napari_viewer, qtbot, errors):
    from napari_lowlight.plugin._laic_widget import LAICWidget

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((16, 16)), name="black")
    widget = LAICWidget(viewer)
    widget.run()
    wait_for_job(qtbot, widget)
    assert len(errors) == 1 and "entirely black" in errors[0]
    assert len(viewer.layers) == 1


def test_compare_widget_adds_each_method_in_grid(make_napari_viewer, qtbot, errors):
    from napari_lowlight.baselines import clahe
    from napari_lowlight.plugin._compare_widget import CompareWidget

    viewer = make_napari_viewer()
    dark = dark_layer_data().dark
    layer = viewer.add_image(dark, name="dark")
    widget = CompareWidget(viewer)
    widget.method_boxes["srie"].value = False
    widget.run()
    wait_for_job(qtbot, widget)
    assert errors == []
    assert [lay.name for lay in viewer.layers] == [
        "dark", "clahe", "lime", "octm", "laic", "laic+smooth_project", "laic+dequantizer"]
    np.testing.assert_allclose(viewer.layers["clahe"].data, clahe(dark))
    canvas = getattr(viewer, "canvas", None)
    grid = canvas.grid if canvas is not None and hasattr(canvas, "grid") else viewer.grid
    assert grid.enabled
    assert layer.data is dark


def test_compare_widget_needs_a_method(make_napari_viewer, errors):
    from napari_lowlight.plugin._compare_widget import CompareWidget

    viewer = make_napari_viewer()
    viewer.add_image(dark_layer_data().dark, name="dark")
    widget = CompareWidget(viewer)
    for box in widget.method_boxes.values():
        box.value = False
    assert widget.run() is None
    assert len(errors) == 1 and "at least one method" in errors[0]


def _strict_projection(widget):
    """Noise 0: the strict projection, every pixel in its own interval ("auto", the
    default, widens them by the judged noise: tests/test_noise_projection.py)."""
    widget.judge_noise.value = False
    widget.noise.value = 0.0


def test_dequantize_widget_adds_consistent_layer(make_napari_viewer, qtbot, errors):
    from napari_lowlight.metrics import interval_consistency
    from napari_lowlight.plugin._dequantize_widget import DequantizeWidget

    viewer = make_napari_viewer()
    capture = dark_layer_data()
    source = capture.reexposed.copy()
    layer = viewer.add_image(source, name="re-exposed",
                             metadata={"quantization": capture.quantization})
    widget = DequantizeWidget(viewer)
    widget.device.value = "cpu"
    _strict_projection(widget)
    widget.run()
    wait_for_job(qtbot, widget, timeout=60000)
    assert errors == []
    out = viewer.layers["dequantized"]
    assert out.data.shape == source.shape and out.data.dtype == np.float32
    assert out.metadata["napari_lowlight"]["noise"] == 0.0
    assert interval_consistency(out.data, capture.quantization) == 1.0
    assert out.metadata["quantization"] is capture.quantization
    assert layer.data is source
    np.testing.assert_array_equal(source, capture.reexposed)


def test_dask_layer_stays_lazy_through_the_widgets(make_napari_viewer, qtbot, errors):
    """A dask-backed stack: every step adds lazy layers equal to the in-memory result."""
    import dask.array as da

    from napari_lowlight import degrade, laic
    from napari_lowlight.plugin._dequantize_widget import DequantizeWidget
    from napari_lowlight.plugin._laic_widget import LAICWidget

    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    stack = np.clip(0.5 + 0.3 * rng.standard_normal((3, 40, 48)), 0, 1)
    viewer.add_image(da.from_array(stack, chunks=(1, 20, 48)), name="stack")
    simulate = SimulateLowLightWidget(viewer)
    simulate.inverse_k.value, simulate.seed.value = 10, 4
    simulate.run()
    wait_for_job(qtbot, simulate)
    dark = viewer.layers["dark"]
    assert isinstance(dark.data, da.Array)
    expected = degrade(stack, k=0.1, r=simulate.r.value, sigma=simulate.sigma.value, seed=4)
    np.testing.assert_array_equal(np.asarray(dark.data), expected.dark)

    compensate = LAICWidget(viewer)
    compensate.image.value = dark
    compensate.run()
    wait_for_job(qtbot, compensate)
    enhanced = viewer.layers["enhanced"]
    assert isinstance(enhanced.data, da.Array)
    np.testing.assert_allclose(np.asarray(enhanced.data), laic(expected.dark, bits=8).enhanced,
                               atol=1e-5)

    restore = DequantizeWidget(viewer)
    restore.image.value = enhanced
    restore.device.value = "cpu"
    restore.run()
    wait_for_job(qtbot, restore, timeout=60000)
    assert errors == []
    out = viewer.layers["dequantized"]
    assert isinstance(out.data, da.Array) and out.data.shape == stack.shape
    assert out.metadata["quantization"] is enhanced.metadata["quantization"]


def test_multiscale_layer_gives_multiscale_layers(make_napari_viewer, qtbot, errors):
    from napari_lowlight.metrics import interval_consistency
    from napari_lowlight.plugin._dequantize_widget import DequantizeWidget

    viewer = make_napari_viewer()
    rng = np.random.default_rng(1)
    full = np.clip(0.5 + 0.3 * rng.standard_normal((64, 80)), 0, 1)
    levels = [full, full[::2, ::2].copy()]
    source = viewer.add_image(levels, multiscale=True, name="pyramid")
    widget = SimulateLowLightWidget(viewer)
    widget.run()
    wait_for_job(qtbot, widget)
    reexposed = viewer.layers["re-exposed"]
    assert reexposed.multiscale and len(reexposed.data) == 2
    assert [tuple(level.shape) for level in reexposed.data] == [(64, 80), (32, 40)]
    quantizations = reexposed.metadata["quantization_levels"]
    assert [q.shape for q in quantizations] == [(64, 80), (32, 40)]
    restore = DequantizeWidget(viewer)
    restore.image.value = reexposed
    restore.device.value = "cpu"
    restore.judge_noise.value = False  # noise 0: the strict projection, checked below
    restore.run()
    wait_for_job(qtbot, restore, timeout=60000)
    assert errors == []
    out = viewer.layers["dequantized"]
    assert out.multiscale
    for level, quantization in zip(out.data, quantizations):
        assert interval_consistency(np.asarray(level), quantization) == 1.0
    np.testing.assert_array_equal(source.data[0], full)


def test_dequantize_widget_reads_integer_counts_by_the_bits_field(make_napari_viewer, qtbot,
                                                                  errors):
    # a 12-bit re-exposed frame stored as uint16 without metadata: its implied levels are
    # its counts of 4095 (as dequantize reads the pixels), not counts of 65535
    from napari_lowlight.plugin._dequantize_widget import DequantizeWidget

    viewer = make_napari_viewer()
    counts = (np.arange(48 * 40).reshape(48, 40) % 4096).astype(np.uint16)
    viewer.add_image(counts, name="frame")
    widget = DequantizeWidget(viewer)
    widget.device.value = "cpu"
    widget.bits.value, widget.inverse_k.value, widget.r.value = 12, 1, 1.0
    _strict_projection(widget)
    widget.run()
    wait_for_job(qtbot, widget, timeout=60000)
    assert errors == []
    out = viewer.layers["dequantized"]
    np.testing.assert_array_equal(out.metadata["quantization"].levels, counts)
    # strict projection: every pixel stays within its count's interval of 1/4095
    assert np.abs(out.data - counts / 4095).max() <= 0.5 / 4095 + 1e-6



def test_dequantize_widget_guard_gives_dequantize_guard(make_napari_viewer, qtbot, errors):
    import napari_lowlight as nl
    from napari_lowlight.plugin._dequantize_widget import DequantizeWidget

    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:64, 0:64]
    clean = 0.2 + 0.5 * np.exp(-((rows - 30) ** 2 + (cols - 34) ** 2) / 300.0)
    noisy = np.clip(clean + 0.04 * np.sqrt(clean) * rng.standard_normal(clean.shape), 0, 1)
    capture = nl.degrade(noisy, k=1 / 64, r=1.0, sigma=0.25, bits=12, seed=2)
    viewer.add_image(capture.reexposed, name="noisy",
                     metadata={"quantization": capture.quantization})
    widget = DequantizeWidget(viewer)
    widget.device.value = "cpu"
    assert widget.guard.value == "auto"  # as in dequantize: on for 12 bits and more
    # the model box starts at dequantize's default (the registry lists older models first)
    assert widget.model.value == "default" and widget.model.choices[0] == "default"
    widget.guard.value = True
    widget.run()
    wait_for_job(qtbot, widget, timeout=60000)
    assert errors == []
    out = viewer.layers["dequantized"]
    assert out.metadata["napari_lowlight"]["guard"] is True
    used = out.metadata["napari_lowlight"]  # the widget's model and noise fields
    assert used["model"] == "default"
    options = {"model": used["model"], "noise": used["noise"], "device": "cpu"}
    expected = nl.dequantize(capture.reexposed, quantization=capture.quantization,
                             guard=True, **options)
    np.testing.assert_allclose(out.data, expected, atol=1e-6)
    # 12 bits: the default ("auto") guards too; off, the result differs
    np.testing.assert_allclose(expected, nl.dequantize(
        capture.reexposed, quantization=capture.quantization, **options), atol=1e-6)
    assert not np.allclose(out.data, nl.dequantize(
        capture.reexposed, quantization=capture.quantization, guard=False, **options),
        atol=1e-4)
