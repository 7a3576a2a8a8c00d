"""The one-click Enhance widget on real-looking dim camera frames (issue 18), under Xvfb."""

import numpy as np
import pytest

pytest.importorskip("napari")

from napari_lowlight.quantization import Quantization  # noqa: E402


def _dim_stack(frames=2, bits=12, black=100, peak=235, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:48, :48]
    out = []
    for frame in range(frames):
        scene = np.exp(-((yy - 20 - 3 * frame) ** 2 + (xx - 24) ** 2) / 120.0)
        scene = scene + 0.2 * rng.random((48, 48))
        out.append(black + np.rint(peak * scene / scene.max()))
    stack = np.stack(out).astype(np.uint16)
    assert stack.max() <= 2**bits - 1
    return stack


def _wait(qtbot, widget, timeout=120000):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)


def test_enhance_widget_brightens_a_dim_12bit_frame(make_napari_viewer, qtbot, errors):
    from napari_lowlight.plugin._enhance_widget import EnhanceWidget

    viewer = make_napari_viewer()
    frame = _dim_stack(frames=1)[0]
    original = frame.copy()
    layer = viewer.add_image(frame, name="camera")
    widget = EnhanceWidget(viewer)
    assert widget.model.value == "default"  # what enhance() uses, with its refiner
    widget.preset.value = "microscope-12bit"
    assert widget.bits.value == "12" and widget.shading.value == 0.0
    widget.black_level.value = 100
    assert widget.run() is not None
    _wait(qtbot, widget)
    assert errors == []
    assert [lay.name for lay in viewer.layers] == ["camera", "restored", "gain"]
    restored = np.asarray(viewer.layers["restored"].data)
    assert np.percentile(restored, 99.5) >= 0.5  # the bright end reaches half of full scale
    assert np.mean(restored >= 0.999) <= 0.01  # at most 1 % at full scale
    quant = viewer.layers["restored"].metadata["quantization"]
    assert isinstance(quant, Quantization) and quant.bits == 12
    assert quant.is_consistent(restored).mean() == 1.0  # projected into the LAIC intervals
    info = viewer.layers["restored"].metadata["napari_lowlight"]
    assert info["black_level"] == 100 and info["intensity"]["bits"] == 12
    assert viewer.layers["gain"].visible is False
    np.testing.assert_array_equal(layer.data, original)  # input untouched
    assert widget.status.value.startswith("done: 12-bit")
    # the gain map is never offered as an input
    widget._refresh_layers()
    assert "gain" not in [lay.name for lay in widget.image.choices if lay is not None]


def test_enhance_widget_time_lapse_uses_one_gain(make_napari_viewer, qtbot, errors):
    from napari_lowlight.plugin._enhance_widget import EnhanceWidget

    viewer = make_napari_viewer()
    viewer.add_image(_dim_stack(frames=3), name="movie")
    widget = EnhanceWidget(viewer)
    widget.preset.value = "time-lapse"
    assert widget.bits.value == "auto"
    widget.run()
    _wait(qtbot, widget)
    assert errors == []
    gain = np.asarray(viewer.layers["gain"].data)
    assert gain.shape == (3, 48, 48)
    np.testing.assert_array_equal(gain[0], gain[2])  # no flicker: one gain for the series


def test_enhance_widget_guard_gives_enhance_guard(make_napari_viewer, qtbot, errors):
    import napari_lowlight as nl
    from napari_lowlight.plugin._enhance_widget import EnhanceWidget

    viewer = make_napari_viewer()
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:64, :64]
    scene = 400 + 1500 * np.exp(-((yy - 30) ** 2 + (xx - 34) ** 2) / 300.0)
    frame = np.clip(rng.poisson(scene) + 100, 0, 4095).astype(np.uint16)  # shot noise
    viewer.add_image(frame, name="camera")
    widget = EnhanceWidget(viewer)
    assert widget.guard.value == "auto"  # as in enhance(): on for 12 bits and more
    widget.preset.value = "microscope-12bit"
    widget.black_level.value = 100
    widget.device.value = "cpu"
    widget.guard.value = False
    widget.run()
    _wait(qtbot, widget)
    assert errors == []
    info = viewer.layers["restored"].metadata["napari_lowlight"]
    assert info["guard"] is False
    options = {"preset": "microscope-12bit", "black_level": 100, "device": "cpu",
               "model": info["model"], "noise": info["noise"]}
    expected = nl.enhance(frame, guard=False, **options)
    np.testing.assert_allclose(np.asarray(viewer.layers["restored"].data), expected,
                               atol=1e-6)
    # the frame's shot noise is tens of levels per pixel: at 12 bits the default ("auto")
    # guards, and that changed the result
    default = nl.enhance(frame, **options)
    np.testing.assert_allclose(default, nl.enhance(frame, guard=True, **options), atol=1e-6)
    assert not np.allclose(expected, default, atol=1e-4)


def test_enhance_widget_reports_bad_settings(make_napari_viewer, qtbot, errors):
    from napari_lowlight.plugin._enhance_widget import EnhanceWidget

    viewer = make_napari_viewer()
    viewer.add_image(_dim_stack(frames=1, peak=3000)[0], name="bright")
    widget = EnhanceWidget(viewer)
    widget.preset.value = "photograph"  # 8 bits, but the data hold 12-bit counts
    widget.run()
    _wait(qtbot, widget)
    assert len(errors) == 1 and "full scale of bits=8" in errors[0]
    assert [lay.name for lay in viewer.layers] == ["bright"]
    # the whole message, with its next step, also stays in the widget's status line
    assert widget.status.value == errors[0]
    assert "pass the camera's bit depth" in widget.status.value


def test_saved_result_reopens_with_its_quantization(tmp_path):
    """Core round trip: a LAIC result written and read back dequantizes identically."""
    import napari_lowlight as nl
    from napari_lowlight.quantized_tiff import (
        is_quantized_tiff,
        read_quantized_tiff,
        write_quantized_tiff,
    )

    frame = _dim_stack(frames=1)[0]
    result = nl.laic(frame, bits=12, black_level=100)
    path = write_quantized_tiff(tmp_path / "enhanced.tif", result.enhanced, result.quantization,
                                metadata={"step": "laic", "black_level": 100})
    assert is_quantized_tiff(path)
    image, quantization, info = read_quantized_tiff(path)
    np.testing.assert_array_equal(quantization.levels, result.quantization.levels)
    np.testing.assert_allclose(quantization.k, result.quantization.k)
    assert (quantization.bits, quantization.r) == (12, 1.0) and info["black_level"] == 100
    before = nl.dequantize(result.enhanced, quantization=result.quantization)
    after = nl.dequantize(image, quantization=quantization)
    np.testing.assert_array_equal(before, after)
    # a plain TIFF is not claimed
    import tifffile

    tifffile.imwrite(tmp_path / "plain.tif", frame)
    assert not is_quantized_tiff(tmp_path / "plain.tif")
    with pytest.raises(ValueError, match="not written by napari-lowlight"):
        read_quantized_tiff(tmp_path / "plain.tif")


def test_napari_writer_and_reader_round_trip(make_napari_viewer, tmp_path):
    import napari_lowlight as nl

    viewer = make_napari_viewer()
    capture = nl.degrade(np.linspace(0, 1, 32 * 40).reshape(32, 40), k=1 / 30, seed=0)
    viewer.add_image(capture.reexposed, name="re-exposed",
                     metadata={"quantization": capture.quantization,
                               "napari_lowlight": {"step": "degrade", "k": 1 / 30}})
    path = str(tmp_path / "saved.tif")
    written = viewer.layers.save(path, selected=False, plugin="napari-lowlight")
    assert written == [path]
    viewer.layers.clear()
    viewer.open(path, plugin="napari-lowlight")
    layer = viewer.layers[0]
    quantization = layer.metadata["quantization"]
    np.testing.assert_array_equal(quantization.levels, capture.quantization.levels)
    assert quantization.k == pytest.approx(1 / 30) and quantization.r == pytest.approx(1.3)
    assert layer.metadata["napari_lowlight"]["step"] == "degrade"
    assert layer.name == "re-exposed"


def test_compare_and_dequantize_widgets_read_camera_data(make_napari_viewer, qtbot, errors):
    """Compare has bits/black level; Dequantize takes 1/k and hides what metadata answers."""
    import napari_lowlight as nl
    from napari_lowlight.plugin._compare_widget import CompareWidget
    from napari_lowlight.plugin._dequantize_widget import DequantizeWidget

    viewer = make_napari_viewer()
    frame = _dim_stack(frames=1)[0]
    viewer.add_image(frame, name="camera")
    compare = CompareWidget(viewer)
    for name, box in compare.method_boxes.items():
        box.value = name in ("clahe", "laic")
    compare.bits.value, compare.black_level.value = "12", 100
    compare.run()
    _wait(qtbot, compare)
    assert errors == []
    expected = nl.laic(frame, bits=12, black_level=100).enhanced
    np.testing.assert_allclose(viewer.layers["laic"].data, expected, atol=1e-6)

    capture = nl.degrade(np.linspace(0, 1, 32 * 32).reshape(32, 32), k=1 / 30, seed=0)
    viewer.add_image(capture.reexposed, name="re-exposed",
                     metadata={"quantization": capture.quantization})
    viewer.add_image(capture.reexposed, name="plain")
    widget = DequantizeWidget(viewer)
    widget.image.value = viewer.layers["re-exposed"]
    # isHidden: hidden explicitly (`visible` is also False while the dock is not shown)
    assert widget.inverse_k.native.isHidden() and widget.bits.native.isHidden()
    widget.image.value = viewer.layers["plain"]
    assert not widget.inverse_k.native.isHidden() and widget.inverse_k.value == 30
    assert widget.parameters()["k"] == 1 / 30  # exactly, not 0.033


def test_enhance_widget_noise_allowance_reaches_the_dequantizer(make_napari_viewer, qtbot,
                                                                 errors, monkeypatch):
    from napari_lowlight import dequantizer
    from napari_lowlight.plugin._enhance_widget import EnhanceWidget

    seen = []
    real = dequantizer.dequantize

    def recording(*args, **kwargs):
        seen.append(kwargs.get("noise"))
        return real(*args, **kwargs)

    monkeypatch.setattr(dequantizer, "dequantize", recording)
    viewer = make_napari_viewer()
    viewer.add_image(_dim_stack(frames=1)[0], name="camera")
    widget = EnhanceWidget(viewer)
    widget.preset.value = "microscope-12bit"
    widget.black_level.value = 100
    assert widget.judge_noise.value and not widget.noise.visible  # judged by default
    widget.judge_noise.value = False
    widget.noise.value = 1.0
    assert widget.run() is not None
    _wait(qtbot, widget)
    assert errors == []
    restored = np.asarray(viewer.layers["restored"].data)
    quant = viewer.layers["restored"].metadata["quantization"]
    assert viewer.layers["restored"].metadata["napari_lowlight"]["noise"] == 1.0
    lo, hi = quant.bounds(noise=1.0)
    assert np.all((restored >= lo - 1e-6) & (restored <= hi + 1e-6))  # the widened intervals
    assert seen == [1.0]
