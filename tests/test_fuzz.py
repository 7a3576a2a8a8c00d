"""Property-based fuzzing of every public entry point (issue 9).

Each call gets arrays of every dtype and rank (0-size to 5-D), NaN/inf, negative and
out-of-range values, non-contiguous and read-only arrays, wrong channel axes and
absurd parameters.  It must either return a valid image (finite, in [0, 1], the
input's shape) or raise ``ValueError``/``TypeError`` with a message; the input is
never modified.  Profiles (tests/conftest.py): "ci" (default, a few dozen examples)
and "fuzz" (1,000 per entry point, ``make fuzz``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import napari_lowlight as nl  # noqa: E402
from napari_lowlight import baselines, metrics  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")

DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
          np.float16, np.float32, np.float64]
ACCEPTED = (ValueError, TypeError)


@st.composite
def images(draw, min_dims=0, max_dims=5, max_side=7, valid_bias=True, valid=None):
    """Arrays of any dtype and rank; half of them valid images (2-D+, finite, in range)."""
    if valid is None:
        valid = draw(st.booleans())
    if valid:
        dtype = np.dtype(draw(st.sampled_from([np.uint8, np.uint16, np.int16, np.float32,
                                               np.float64])))
        shape = draw(hnp.array_shapes(min_dims=max(2, min_dims), max_dims=max(2, max_dims),
                                      min_side=1, max_side=max_side))
        valid_bias = False
    else:
        dtype = np.dtype(draw(st.sampled_from(DTYPES)))
        shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0,
                                      max_side=max_side))
    if dtype.kind == "f":
        wild = draw(st.booleans()) if valid_bias else False
        elements = (st.floats(allow_nan=True, allow_infinity=True, width=dtype.itemsize * 8)
                    if wild else st.floats(0, 1, width=dtype.itemsize * 8))
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        elements = st.integers(0 if valid else int(info.min), int(info.max))
    else:
        elements = st.booleans()
    # valid images get every element drawn (hypothesis otherwise fills most with one value)
    array = draw(hnp.arrays(dtype, shape, elements=elements,
                            fill=st.nothing() if valid else None))
    layout = draw(st.sampled_from(["plain", "read-only", "strided", "transposed"]))
    if layout == "read-only":
        array.setflags(write=False)
    elif layout == "strided" and array.ndim:
        array = np.repeat(array, 2, axis=0)[::2]
    elif layout == "transposed":
        array = array.T
    return array


def channel_axes():
    return param(st.sampled_from([None, None, -1]),
                 0.2).map(lambda axis: axis if not isinstance(axis, float) else 1.5)


def wild_reals():
    return st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**6),
                     st.just(True), st.just("1"), st.none())


@st.composite
def param(draw, valid, wild_share=0.25):
    """A valid parameter, replaced by a wild one about ``wild_share`` of the time."""
    if draw(st.integers(0, 99)) >= 100 * (1 - wild_share):  # hypothesis leans to 0: valid
        return draw(wild_reals())
    return draw(valid)


def check(call, *inputs, expect_shape=None):
    """Run ``call``; accept a clear error or a valid image; inputs must be untouched."""
    copies = [np.array(x, copy=True) for x in inputs]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = call()
    except ACCEPTED as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        hypothesis.event(f"refused: {type(exc).__name__}: {str(exc)[:50]}")
        out = None
    else:
        hypothesis.event("returned")
    for original, copy in zip(inputs, copies):
        assert np.array_equal(np.asarray(original), copy,
                              equal_nan=copy.dtype.kind == "f"), "input was modified"
    if out is not None and expect_shape is not None:
        out = np.asarray(out)
        assert out.shape == expect_shape
        assert out.dtype.kind == "f"
        assert np.all(np.isfinite(out)), "non-finite output"
        assert out.size == 0 or (out.min() >= 0 and out.max() <= 1), "output out of [0, 1]"
    return out


SETTINGS = dict(suppress_health_check=list(HealthCheck), deadline=None)


@settings(**SETTINGS)
@given(image=images(), k=param(st.floats(1e-4, 1), 0.1),
       r=param(st.floats(0.2, 3), 0.1), sigma=param(st.floats(0, 2), 0.1),
       bits=param(st.integers(1, 16), 0.1),
       dimming=st.sampled_from([None, None, None, "vignette", "random", "bogus", 0.5]),
       channel_axis=channel_axes())
def test_degrade(image, k, r, sigma, bits, dimming, channel_axis):
    def call():
        result = nl.degrade(image, k=k, r=r, sigma=sigma, bits=bits, dimming=dimming, seed=0,
                            channel_axis=channel_axis)
        np.testing.assert_array_equal(result.dark.shape, image.shape)
        return result.reexposed

    check(call, image, expect_shape=image.shape)


@settings(**SETTINGS)
@given(image=images(max_side=6), method=st.sampled_from(["auto", "auto", "exact", "fast", "bogus"]),
       channel_axis=channel_axes(),
       contrast_weight=param(st.floats(0, 5), 0.1),
       window_radius=param(st.integers(1, 3), 0.1),
       max_gain=param(st.floats(1, 100), 0.1),
       bits=param(st.one_of(st.none(), st.integers(1, 16)), 0.1))
def test_laic(image, method, channel_axis, contrast_weight, window_radius, max_gain, bits):
    def call():
        result = nl.laic(image, method=method, channel_axis=channel_axis,
                         contrast_weight=contrast_weight, window_radius=window_radius,
                         max_gain=max_gain, bits=bits, time_limit=20)
        gain = np.asarray(result.gain)
        assert np.all(np.isfinite(gain)) and gain.min() > 0
        return result.enhanced

    check(call, image, expect_shape=image.shape)


@st.composite
def captures(draw):
    """A re-exposed image with its quantization (valid), or a mismatched pair."""
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=7))
    scene = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1)))
    axis = draw(st.sampled_from([None, -1, 0]))
    capture = nl.degrade(scene, k=draw(st.floats(0.01, 1)), bits=draw(st.integers(1, 16)),
                         seed=0)
    return capture, axis


@settings(**SETTINGS)
@given(pair=captures(), image=st.one_of(st.none(), images(min_dims=2, max_dims=4)),
       project=st.booleans(), tile=param(st.one_of(st.none(), st.integers(8, 64)), 0.2))
def test_dequantize(pair, image, project, tile):
    capture, axis = pair
    target = capture.reexposed if image is None else image

    def call(noise):
        return nl.dequantize(target, quantization=capture.quantization, project=project,
                             channel_axis=axis, device="cpu", tile=tile, noise=noise)

    check(lambda: call("auto"), target, expect_shape=target.shape)
    # the strict projection (noise 0) keeps every pixel in its own interval; "auto" widens
    # the intervals by the judged noise (tests/test_noise_projection.py)
    out = check(lambda: call(0.0), target, expect_shape=target.shape)
    if out is not None and project:
        assert metrics.interval_consistency(out, capture.quantization) == 1.0


@settings(**SETTINGS)
@given(image=images(max_side=6), channel_axis=channel_axes())
def test_enhance(image, channel_axis):
    check(lambda: nl.enhance(image, channel_axis=channel_axis, device="cpu"), image,
          expect_shape=image.shape)


@settings(**SETTINGS)
@given(levels=images(max_dims=4), k=param(st.floats(1e-3, 1), 0.1),
       r=param(st.floats(0.2, 3), 0.1), bits=param(st.integers(1, 16), 0.1),
       guess=images(max_dims=4), margin=param(st.floats(0, 0.49), 0.1))
def test_quantization(levels, k, r, bits, guess, margin):
    def call():
        quant = nl.Quantization(levels, k=k, r=r, bits=bits)
        lo, hi = quant.bounds()
        assert np.all((0 <= lo) & (lo <= hi) & (hi <= 1))
        return quant.project(guess, margin=margin)

    check(call, levels, guess, expect_shape=levels.shape if levels.shape == guess.shape
          else None)


@pytest.mark.parametrize("name", sorted(baselines.BASELINES))
@settings(**SETTINGS)
@given(image=images(max_side=6), channel_axis=channel_axes())
def test_baselines(name, image, channel_axis):
    method = baselines.BASELINES[name]
    check(lambda: method(image, channel_axis=channel_axis), image, expect_shape=image.shape)


@settings(**SETTINGS)
@given(pair=captures(), image=st.one_of(st.none(), images(min_dims=2, max_dims=4)),
       sigma=param(st.floats(0, 4), 0.2))
def test_smooth_project(pair, image, sigma):
    capture, axis = pair
    target = capture.reexposed if image is None else image
    check(lambda: baselines.smooth_project(target, capture.quantization, sigma=sigma,
                                           channel_axis=axis), target,
          expect_shape=target.shape)


@st.composite
def image_pairs(draw):
    reference = draw(images(max_dims=4))
    if draw(st.booleans()):
        return reference, draw(images(max_dims=4))
    image = draw(hnp.arrays(np.float64, reference.shape, elements=st.floats(0, 1)))
    return reference, image


@settings(**SETTINGS)
@given(pair=image_pairs(), channel_axis=channel_axes())
def test_metrics(pair, channel_axis):
    reference, image = pair
    def call():
        value = metrics.psnr(reference, image)
        assert np.isfinite(value) or value == np.inf
        similarity = metrics.ssim(reference, image, channel_axis=channel_axis)
        assert -1 <= similarity <= 1
        order = metrics.lightness_order_error(reference, image, channel_axis=channel_axis)
        assert order >= 0
        return None

    check(call, reference, image)


# -- the command line ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("cli-fuzz")


CLI_VALUES = st.one_of(st.sampled_from(["0", "1", "-1", "nan", "inf", "1/30", "abc", "", "1e9",
                                        "0.5", "16", "17", "vignette"]),
                       st.floats(allow_nan=True).map(repr))


@settings(**SETTINGS)
@given(image=images(min_dims=2, max_dims=4, max_side=6),
       command=st.sampled_from(["degrade", "laic"]),
       option=st.sampled_from([None, None, "--k", "--r", "--sigma", "--bits", "--dimming", "--seed",
                               "--channel-axis", "--contrast-weight", "--method",
                               "--window-radius", "--max-gain"]),
       value=CLI_VALUES, suffix=st.sampled_from([".tif", ".png", ".txt"]))
def test_cli(folder, image, command, option, value, suffix, capsys):
    import tifffile

    from napari_lowlight.cli import main

    source = folder / "input.tif"
    try:
        tifffile.imwrite(source, image)
    except Exception:  # noqa: BLE001 - dtypes TIFF cannot hold: nothing to fuzz
        assume(False)
    before = source.read_bytes()
    output = folder / f"output{suffix}"
    output.unlink(missing_ok=True)
    try:
        status = main([command, str(source), str(output)]
                      + ([option, value] if option else []))
    except SystemExit as exit_:  # argparse refusing an option: its usage message
        status = exit_.code
    captured = capsys.readouterr()
    hypothesis.event(f"status {status}")
    assert status in (0, 2), f"status {status}"
    if status == 0:
        from napari_lowlight.io import read_image

        written = read_image(output)
        assert np.all(np.isfinite(written.astype(np.float64)))
    else:
        assert captured.err.strip(), "refused without a message"
    assert source.read_bytes() == before


@settings(**SETTINGS)
@given(image=images(min_dims=2, max_dims=3, max_side=7),
       methods=st.sampled_from(["clahe,laic", "octm", "laic+dequantize", "bogus", ""]),
       max_size=st.sampled_from(["8", "0", "-5", "abc", "256"]),
       setting=st.sampled_from(["global", "local", "both", "other"]))
def test_cli_evaluate(folder, image, methods, max_size, setting, capsys):
    import tifffile

    from napari_lowlight.cli import main

    source = folder / "scene.tif"
    try:
        tifffile.imwrite(source, image)
    except Exception:  # noqa: BLE001
        assume(False)
    before = source.read_bytes()
    try:
        status = main(["evaluate", "--images", str(source), "--methods", methods, "--max-size",
                       max_size, "--setting", setting, "--out", str(folder / "evaluation")])
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    hypothesis.event(f"status {status}")
    assert status in (0, 2)
    if status == 2:
        assert captured.err.strip()
    assert source.read_bytes() == before


@pytest.fixture(scope="module")
def cluster_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@settings(**SETTINGS)
@given(image=images(min_dims=2, max_dims=4, max_side=6),
       steps=st.sampled_from([["laic"], ["dequantize"], ["laic", "dequantize"], ["bogus"], []]),
       bits=param(st.one_of(st.none(), st.integers(1, 16)), 0.2),
       workers=param(st.just(1), 0.2))
def test_run_batch(folder, cluster_client, image, steps, bits, workers):
    import shutil
    import uuid

    import tifffile
    import zarr

    from napari_lowlight.batch import run_batch

    source = folder / "stack.tif"
    try:
        tifffile.imwrite(source, image, photometric="minisblack")
    except Exception:  # noqa: BLE001
        assume(False)
    before = source.read_bytes()
    # a fresh output per example: a failed run's planes already running still finish
    out = folder / f"batch-{uuid.uuid4().hex}.zarr"
    try:
        summary = run_batch([source], out, steps=steps, bits=bits, workers=workers,
                            client=cluster_client)
    except ACCEPTED as exc:
        assert str(exc).strip()
        hypothesis.event(f"refused: {str(exc)[:50]}")
    else:
        hypothesis.event("returned")
        result = zarr.open_group(out, mode="r")["stack"][:]
        assert summary["computed"] == summary["planes"]
        assert np.all(np.isfinite(result)) and result.min() >= 0 and result.max() <= 1
    assert source.read_bytes() == before
    shutil.rmtree(out, ignore_errors=True)


def test_found_by_fuzzing():
    """Cases the full profile found, kept as plain regression tests."""
    from napari_lowlight.cli import main

    # a gray volume whose last side is 3 or 4 is not RGB(A) to CLAHE
    volume = np.zeros((1, 1, 4), dtype=np.uint8)
    assert baselines.clahe(volume).shape == (1, 1, 4)
    # an empty image file is refused with a message, not a ZeroDivisionError
    import tempfile
    from pathlib import Path

    import tifffile

    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "empty.tif"
        tifffile.imwrite(empty, np.zeros((0, 0), dtype=np.int8))
        assert main(["evaluate", "--images", str(empty), "--out", str(Path(folder) / "e")]) == 2
