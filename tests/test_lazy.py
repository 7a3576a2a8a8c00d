"""dask arrays in, lazy dask arrays out, equal to the in-memory results (issue 8)."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import napari_lowlight as nl  # noqa: E402
from napari_lowlight.baselines import clahe, lime, octm, smooth_project, srie  # noqa: E402


@pytest.fixture
def stack(rng):
    """A small (t, y, x, c) stack with smooth structure, and an odd chunking."""
    y, x = np.mgrid[0:56, 0:70] / 70.0
    base = 0.5 + 0.4 * np.sin(6 * x + 3 * y)[..., None] * np.array([1.0, 0.8, 0.6])
    return np.clip(base[None] * np.array([1.0, 0.7])[:, None, None, None]
                   + 0.02 * rng.standard_normal((2, 56, 70, 3)), 0, 1)


def lazy(array, chunks=(1, 23, 31, 2)):
    out = da.from_array(array, chunks=chunks)
    return out


@pytest.mark.parametrize("chunks", [(1, 23, 31, 2), (2, 56, 17, 3), (1, 8, 9, 1)])
@pytest.mark.parametrize("dimming", [None, "vignette", "random"])
def test_degrade_does_not_depend_on_chunking(stack, chunks, dimming):
    kwargs = dict(k=0.2, r=1.4, sigma=0.5, bits=10, seed=5, channel_axis=-1, dimming=dimming)
    whole = nl.degrade(stack, **kwargs)
    blocks = nl.degrade(lazy(stack, chunks), **kwargs)
    assert isinstance(blocks.reexposed, da.Array) and isinstance(blocks.dark, da.Array)
    np.testing.assert_array_equal(blocks.dark.compute(), whole.dark)
    np.testing.assert_array_equal(blocks.reexposed.compute(), whole.reexposed)
    np.testing.assert_array_equal(blocks.quantization.levels.compute(), whole.quantization.levels)
    lo, hi = blocks.quantization.bounds()
    np.testing.assert_array_equal(lo.compute(), whole.quantization.bounds()[0])
    np.testing.assert_array_equal(hi.compute(), whole.quantization.bounds()[1])


def test_lazy_quantization_methods_match(stack):
    whole = nl.degrade(stack, channel_axis=-1, seed=1, dimming="vignette", k=0.3)
    blocks = nl.degrade(lazy(stack), channel_axis=-1, seed=1, dimming="vignette", k=0.3)
    guess = np.clip(stack + 0.01, 0, 1)
    qw, qb = whole.quantization, blocks.quantization
    assert qb.is_lazy and not qw.is_lazy
    np.testing.assert_array_equal(qb.project(lazy(guess)).compute(), qw.project(guess))
    np.testing.assert_array_equal(qb.is_consistent(lazy(guess)).compute(),
                                  qw.is_consistent(guess))
    np.testing.assert_array_equal(qb.reachable.compute(), qw.reachable)
    np.testing.assert_array_equal(qb.interval_width.compute(), qw.interval_width)


def test_laic_per_plane_equals_in_memory(stack):
    dark = nl.degrade(stack, k=0.15, dimming="vignette", channel_axis=-1, seed=2).dark
    whole = nl.laic(dark, channel_axis=-1)
    blocks = nl.laic(lazy(dark), channel_axis=-1)
    assert isinstance(blocks.enhanced, da.Array) and blocks.gain.shape == whole.gain.shape
    np.testing.assert_allclose(blocks.enhanced.compute(), whole.enhanced, atol=1e-5)
    np.testing.assert_allclose(blocks.gain.compute(), whole.gain, atol=1e-5)
    np.testing.assert_array_equal(blocks.quantization.levels.compute(),
                                  whole.quantization.levels)
    np.testing.assert_allclose(blocks.quantization.bounds()[1].compute(),
                               whole.quantization.bounds()[1], atol=1e-9)
    assert blocks.quantization.bits == whole.quantization.bits
    with pytest.raises(ValueError, match="shared_gain"):
        nl.laic(lazy(dark), channel_axis=-1, shared_gain=True)


def test_dequantize_and_enhance_equal_in_memory(stack):
    capture = nl.degrade(stack, k=1 / 30, channel_axis=-1, seed=3)
    whole = nl.dequantize(capture.reexposed, quantization=capture.quantization,
                          channel_axis=-1, device="cpu")
    lazy_capture = nl.degrade(lazy(stack, (1, 40, 40, 3)), k=1 / 30, channel_axis=-1, seed=3)
    blocks = nl.dequantize(lazy_capture.reexposed, quantization=lazy_capture.quantization,
                           channel_axis=-1, device="cpu")
    assert isinstance(blocks, da.Array) and blocks.dtype == np.float32
    np.testing.assert_allclose(blocks.compute(), whole, atol=1e-5)
    dark = capture.dark.astype(np.float32)
    np.testing.assert_allclose(
        nl.enhance(lazy(dark, (1, 56, 70, 3)), channel_axis=-1, device="cpu").compute(),
        nl.enhance(dark, channel_axis=-1, device="cpu"), atol=1e-5)


@pytest.mark.parametrize("method", [clahe, lime, octm, srie])
def test_baselines_run_per_plane(stack, method):
    dark = 0.3 * stack
    out = method(lazy(dark), channel_axis=-1)
    assert isinstance(out, da.Array)
    expected = np.stack([method(plane, channel_axis=-1) for plane in dark])
    np.testing.assert_allclose(out.compute(), expected, atol=1e-5)


def test_smooth_project_with_halo(stack):
    capture = nl.degrade(stack, channel_axis=-1, seed=4)
    lazy_capture = nl.degrade(lazy(stack, (1, 12, 14, 3)), channel_axis=-1, seed=4)
    np.testing.assert_allclose(
        smooth_project(lazy_capture.reexposed, lazy_capture.quantization,
                       channel_axis=-1).compute(),
        smooth_project(capture.reexposed, capture.quantization, channel_axis=-1), atol=1e-12)


def test_lazy_inputs_are_never_modified_and_bad_ones_refused(stack):
    original = stack.copy()
    source = lazy(stack)
    nl.degrade(source, channel_axis=-1, seed=0).reexposed.compute()
    nl.laic(source, channel_axis=-1).enhanced.compute()
    np.testing.assert_array_equal(stack, original)
    with pytest.raises(TypeError, match="boolean"):
        nl.degrade(da.zeros((8, 8), dtype=bool))
    with pytest.raises(ValueError, match="channel_axis"):
        nl.laic(source, channel_axis=5)
    with pytest.raises(ValueError, match="alpha"):
        lime(source, channel_axis=-1, alpha=-1)
    # value errors surface when the blocks are computed
    with pytest.raises(ValueError, match="NaN"):
        nl.degrade(da.from_array(np.full((8, 8), np.nan))).dark.compute()
