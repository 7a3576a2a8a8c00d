"""One home per piece of knowledge: the methods and settings registry, and the helpers
that evaluate, demo, batch, the command line and the widgets share.

The napari tests (widget defaults, the Compare widget's boxes) run under Xvfb and are
skipped without the napari extra; the rest needs only the core.
"""

import argparse
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from napari_lowlight import degrade, laic
from napari_lowlight._validation import as_float_image, parameter_default
from napari_lowlight.baselines import BASELINES
from napari_lowlight.dequantizer import smooth_project
from napari_lowlight.intensity import to_intensity
from napari_lowlight.methods import DARK_METHODS, METHODS, SETTINGS, Method
from napari_lowlight.quantization import Quantization, implied_quantization, quantize_levels

needs_napari = pytest.mark.skipif(importlib.util.find_spec("napari") is None,
                                  reason="the napari extra is not installed")


def _scene(shape=(24, 32)):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] / max(shape)
    return 0.5 + 0.4 * np.sin(5 * xx) * np.cos(4 * yy)


# -- one registry ---------------------------------------------------------------------------

def test_evaluation_and_demo_use_the_registry_objects():
    from napari_lowlight import demo, evaluation

    assert evaluation.SETTINGS is SETTINGS and demo.SETTINGS is SETTINGS
    assert evaluation.METHODS is METHODS
    assert evaluation.REAL_METHODS is DARK_METHODS


def test_settings_are_the_papers_and_each_says_what_it_is():
    assert list(SETTINGS) == ["global", "local"]
    assert dict(SETTINGS["global"]) == dict(k=1 / 30, r=1.3, sigma=0.25, bits=8, dimming=None)
    assert dict(SETTINGS["local"]) == dict(k=1 / 5, r=1.5, sigma=0.25, bits=8,
                                           dimming="vignette")
    for setting in SETTINGS.values():
        assert setting.description.strip() and "\n" not in setting.description
        capture = degrade(_scene(), seed=0, **setting)  # usable as degrade()'s arguments
        assert capture.k == setting["k"] and capture.bits == setting["bits"]


def test_methods_say_what_they_need():
    assert list(METHODS) == ["reexposed", "smooth_project", *BASELINES, "dequantizer", "laic",
                             "laic+smooth_project", "laic+dequantizer"]
    for name, method in METHODS.items():
        assert isinstance(method, Method) and method.name == name
        assert method.label.strip() and "\n" not in method.label
    assert DARK_METHODS == [*BASELINES, "laic", "laic+smooth_project", "laic+dequantizer"]
    assert {n for n, m in METHODS.items() if m.needs == "reexposed"} == {
        "reexposed", "smooth_project", "dequantizer"}
    assert {n for n, m in METHODS.items() if m.needs_torch} == {"dequantizer",
                                                                 "laic+dequantizer"}
    with pytest.raises(ValueError, match="re-exposed image"):
        METHODS["smooth_project"].on_dark(_scene())
    with pytest.raises(ValueError, match="needs must be one of"):
        Method("x", "a method", "anything", False, lambda inputs: (None, None))


def test_registry_imports_neither_torch_nor_napari():
    code = ("import sys, napari_lowlight.methods, napari_lowlight.evaluation\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'napari', 'magicgui', 'qtpy'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_cli_evaluate_lists_and_runs_the_registry(tmp_path, capsys, monkeypatch):
    import imageio.v3 as iio

    from napari_lowlight import evaluation
    from napari_lowlight.cli import _build_parser, main

    assert main(["evaluate", "--list-methods"]) == 0
    assert capsys.readouterr().out.split() == list(METHODS)
    commands = next(action for action in _build_parser()._actions
                    if isinstance(action, argparse._SubParsersAction))
    setting = next(a for a in commands.choices["evaluate"]._actions if a.dest == "setting")
    assert list(setting.choices) == [*SETTINGS, "both"]

    seen = {}

    def record(images, *, settings, methods, out_dir, seed=0, progress=None):
        seen.update(settings=settings, methods=methods)
        return []

    monkeypatch.setattr(evaluation, "evaluate", record)
    (tmp_path / "images").mkdir()
    iio.imwrite(tmp_path / "images" / "scene.png", (_scene() * 255).astype(np.uint8))
    assert main(["evaluate", "--images", str(tmp_path / "images"), "--out",
                 str(tmp_path / "out")]) == 0
    assert seen == {"settings": tuple(SETTINGS), "methods": list(METHODS)}


# -- the methods run as their definition says, LAIC once per image ---------------------------

def test_capture_methods_match_their_definition():
    capture = degrade(_scene(), seed=1, **SETTINGS["global"])
    output, quantization = METHODS["reexposed"](capture)
    assert output is capture.reexposed and quantization is capture.quantization
    output, quantization = METHODS["smooth_project"](capture)
    np.testing.assert_array_equal(output, smooth_project(capture.reexposed,
                                                         capture.quantization))
    output, quantization = METHODS["clahe"](capture)
    np.testing.assert_array_equal(output, BASELINES["clahe"](capture.dark))
    assert quantization is None


def test_dark_methods_share_one_laic_run_and_match_the_chain(monkeypatch):
    from napari_lowlight import compensation

    dark = degrade(_scene(), seed=2, k=0.1, r=1.0, bits=10).dark
    calls = []

    def counting(image, **options):
        calls.append(options)
        return laic(image, **options)

    monkeypatch.setattr(compensation, "laic", counting)
    shared = {}
    enhanced, quantization = METHODS["laic"].on_dark(dark, bits=10, cache=shared)
    smoothed, same = METHODS["laic+smooth_project"].on_dark(dark, bits=10, cache=shared)
    assert len(calls) == 1 and calls[0]["bits"] == 10
    assert same is quantization
    np.testing.assert_array_equal(smoothed, smooth_project(enhanced, quantization))
    light = to_intensity(dark, bits=10)[0]
    np.testing.assert_array_equal(METHODS["octm"].on_dark(dark, bits=10, cache=shared)[0],
                                  BASELINES["octm"](light))


def test_laic_then_dequantize_is_the_one_chain(monkeypatch):
    from napari_lowlight import dequantizer, pipeline

    dark = degrade(_scene(), seed=3, k=0.1, r=1.0, bits=8).dark
    seen, progress = [], []

    def fake_network(image, *, quantization, channel_axis=None, progress=None, **options):
        seen.append((image, quantization, options))
        if progress is not None:
            progress(1, 1)
        return image

    monkeypatch.setattr(dequantizer, "dequantize", fake_network)
    compensated, restored = pipeline.laic_then_dequantize(
        dark, progress=lambda done, total: progress.append((done, total)), device="cpu")
    image, quantization, options = seen[0]
    assert image is compensated.enhanced and quantization is compensated.quantization
    assert options == {"device": "cpu"} and restored is compensated.enhanced
    assert progress[-1] == (2, 2)  # LAIC's half, then the network's
    assert pipeline.enhance(dark, device="cpu") is not None and len(seen) == 2

    _, classic = pipeline.laic_then_dequantize(dark, dequantizer="smooth_project",
                                               compensated=compensated)
    np.testing.assert_array_equal(classic, smooth_project(compensated.enhanced,
                                                          compensated.quantization))
    with pytest.raises(ValueError, match="unknown dequantizer"):
        pipeline.laic_then_dequantize(dark, dequantizer="magic")
    with pytest.raises(TypeError, match="smooth_project takes none"):
        pipeline.laic_then_dequantize(dark, dequantizer="smooth_project", device="cpu")


# -- the quantization of an image without metadata ------------------------------------------

@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float64", "float32"])
def test_implied_quantization_as_the_dequantize_widget_built_it(dtype, rng):
    """The widget's former rule: levels Q(k * y**r) of the image read by its dtype."""
    if dtype.startswith("uint"):
        image = rng.integers(0, np.iinfo(dtype).max + 1, size=(20, 30)).astype(dtype)
    else:
        image = rng.random((20, 30)).astype(dtype)
    k, r, bits = 1 / 30, 1.3, 8
    before = Quantization(quantize_levels(k * as_float_image(image) ** r, bits), k=k, r=r,
                          bits=bits)
    now = implied_quantization(image, k=k, r=r, bits=bits)
    np.testing.assert_array_equal(now.levels, before.levels)
    for edge_now, edge_before in zip(now.bounds(), before.bounds()):
        np.testing.assert_array_equal(edge_now, edge_before)


@pytest.mark.parametrize("dtype, bits", [("uint8", None), ("uint16", 12), ("uint16", None),
                                         ("float64", None)])
def test_implied_quantization_as_batch_built_it(dtype, bits, rng):
    """batch's former rule for a plane without LAIC: its own levels, k = r = 1."""
    if dtype.startswith("uint"):
        top = 2**bits - 1 if bits else np.iinfo(dtype).max
        plane = rng.integers(0, top + 1, size=(20, 30)).astype(dtype)
    else:
        plane = rng.random((20, 30))  # off any grid: read as 16-bit
    floats, intensity = to_intensity(plane, bits=bits)
    depth = intensity.bits
    before = Quantization(np.rint(floats * (2**depth - 1)).astype(np.int64), k=1.0, r=1.0,
                          bits=depth)
    now = implied_quantization(floats, bits=depth)
    np.testing.assert_array_equal(now.levels, before.levels)
    assert (now.k, now.r, now.bits) == (before.k, before.r, before.bits)
    for edge_now, edge_before in zip(now.bounds(), before.bounds()):
        np.testing.assert_array_equal(edge_now, edge_before)


def test_implied_quantization_of_a_dask_array_is_lazy_and_the_same(rng):
    da = pytest.importorskip("dask.array")
    image = rng.random((2, 20, 30))
    lazy = implied_quantization(da.from_array(image, chunks=(1, 10, 30)), k=0.2, r=1.5, bits=10)
    assert hasattr(lazy.levels, "compute")
    np.testing.assert_array_equal(
        lazy.levels.compute(), implied_quantization(image, k=0.2, r=1.5, bits=10).levels)


# -- image folders ---------------------------------------------------------------------------

def test_image_folders_are_listed_one_way(tmp_path):
    from napari_lowlight.batch import IMAGE_SUFFIXES as batch_suffixes
    from napari_lowlight.io import IMAGE_SUFFIXES, drop_alpha, list_image_files

    assert batch_suffixes is IMAGE_SUFFIXES
    for name in ("b.PNG", "a.tif", "c.jpeg", "notes.txt", "sub/d.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "folder.png").mkdir()  # a folder is never an image, whatever its name
    assert [p.name for p in list_image_files(tmp_path)] == ["a.tif", "b.PNG", "c.jpeg"]
    assert [p.relative_to(tmp_path).as_posix() for p in list_image_files(
        tmp_path, recursive=True)] == ["a.tif", "b.PNG", "c.jpeg", "sub/d.png"]
    rgba = np.zeros((4, 5, 4), np.uint8)
    assert drop_alpha(rgba).shape == (4, 5, 3)
    for other in (np.zeros((4, 5, 3)), np.zeros((4, 5)), np.zeros((4, 5, 6, 4))):
        assert drop_alpha(other) is other


# -- defaults stated once, in the core's signatures ------------------------------------------

def test_parameter_default_reads_the_signature():
    assert parameter_default(degrade, "k") == 1 / 30
    with pytest.raises(ValueError, match="no default"):
        parameter_default(degrade, "image")


@needs_napari
def test_widget_defaults_are_the_core_defaults(make_napari_viewer):
    from napari_lowlight.dequantizer import dequantize
    from napari_lowlight.plugin._dequantize_widget import DequantizeWidget
    from napari_lowlight.plugin._enhance_widget import EnhanceWidget
    from napari_lowlight.plugin._laic_widget import LAICWidget
    from napari_lowlight.plugin._simulate_widget import SimulateLowLightWidget

    viewer = make_napari_viewer()
    simulate = SimulateLowLightWidget(viewer)
    params = simulate.parameters()
    for name in ("k", "r", "sigma", "bits", "dimming"):
        assert params[name] == parameter_default(degrade, name), name
    compensate = LAICWidget(viewer)
    params = compensate.parameters()
    for name in ("method", "contrast_weight", "window_radius", "max_gain", "shared_gain",
                 "shading", "refine_edges"):
        assert params[name] == parameter_default(laic, name), name
    restore = DequantizeWidget(viewer)
    params = restore.parameters()
    for name in ("device", "tile", "project", "noise", "refine"):
        assert params[name] == parameter_default(dequantize, name), name
    assert (params["k"], params["r"], params["bits"]) == tuple(
        parameter_default(degrade, name) for name in ("k", "r", "bits"))
    assert EnhanceWidget(viewer).device.value == parameter_default(dequantize, "device")


@needs_napari
def test_compare_widget_offers_the_registry(make_napari_viewer):
    from napari_lowlight.plugin._compare_widget import COMPARE_METHODS, CompareWidget

    assert COMPARE_METHODS is DARK_METHODS
    widget = CompareWidget(make_napari_viewer())
    assert list(widget.method_boxes) == DARK_METHODS
    for name, box in widget.method_boxes.items():
        assert box.tooltip == METHODS[name].label
