"""The texture guard: back toward Jt where the scene scatters by a step from pixel to pixel."""

import numpy as np
import pytest

import napari_lowlight as nl
from napari_lowlight.dequantizer.guard import (
    GUARD_AUTO_BITS,
    GUARD_DEFAULTS,
    guard_applies,
    guard_weight,
    median3,
    pixel_texture,
    texture_guard,
)
from napari_lowlight.metrics import interval_consistency, psnr


def _noisy_nuclei(seed=0, size=96):
    """A fluorescence-like frame whose own shot noise is several 12-bit steps at k = 1/64."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size]
    clean = 0.2 + 0.5 * np.exp(-((rows - 40) ** 2 + (cols - 55) ** 2) / (2 * 15.0**2))
    return np.clip(clean + 0.04 * np.sqrt(clean) * rng.standard_normal(clean.shape), 0, 1)


def test_texture_counts_pixel_scatter_not_edges():
    step = 1 / 64
    rows, cols = np.mgrid[0:64, 0:64]
    # a sharp edge of 20 steps and a smooth ramp: almost no texture
    edged = np.where(cols < 32, 0.2, 0.2 + 20 * step) + 0.002 * rows
    levels = np.round(edged / step) * step
    assert pixel_texture(levels, step)[8:-8, 8:-8].max() < 0.1
    # white scatter of 2 steps: texture of a step or more
    rng = np.random.default_rng(1)
    noisy = np.round((0.4 + 2 * step * rng.standard_normal((64, 64))) / step) * step
    assert 1.0 < pixel_texture(noisy, step)[8:-8, 8:-8].mean() < 2.5
    # steps of 0 (unreachable levels) do not divide by zero
    assert np.isfinite(pixel_texture(noisy, np.where(cols < 4, 0.0, step))).all()


def test_guard_weight_ramp_and_checks():
    weights = guard_weight(np.array([0.0, 0.4, 0.65, 0.9, 5.0]), low=0.4, high=0.9,
                           strength=0.9)
    np.testing.assert_allclose(weights, [0.0, 0.0, 0.45, 0.9, 0.9])
    with pytest.raises(ValueError, match="low < high"):
        guard_weight(np.zeros(3), low=1.0, high=0.5)
    with pytest.raises(ValueError, match="strength"):
        guard_weight(np.zeros(3), strength=1.5)


def test_guard_is_a_convex_blend_and_leaves_smooth_scenes_alone():
    rng = np.random.default_rng(2)
    jt = np.round(rng.uniform(0.2, 0.6, (48, 48)) * 64) / 64  # scattered levels
    restored = np.clip(jt + rng.uniform(-0.5, 0.5, jt.shape) / 64, 0, 1)
    guarded = texture_guard(jt, restored, 1 / 64)
    low = np.minimum(jt, restored) - 1e-7
    high = np.maximum(jt, restored) + 1e-7
    assert guarded.dtype == np.float32 and ((guarded >= low) & (guarded <= high)).all()
    # strongly scattered: mostly Jt
    assert np.abs(guarded - jt).mean() < 0.3 * np.abs(restored - jt).mean()
    # a smooth scene: untouched
    rows = np.mgrid[0:48, 0:48][0]
    smooth = np.round((0.3 + 0.002 * rows) * 64) / 64
    moved = smooth + 0.2 / 64
    np.testing.assert_allclose(texture_guard(smooth, moved, 1 / 64), moved, atol=1e-7)

    # a texture measured once (a calibration's many settings on one capture) gives the same
    # blend; one of another plane's shape is refused
    texture = pixel_texture(jt, 1 / 64)
    for settings in ({}, {"low": 0.2, "high": 0.5, "strength": 0.6}):
        np.testing.assert_array_equal(
            texture_guard(jt, restored, 1 / 64, texture=texture, **settings),
            texture_guard(jt, restored, 1 / 64, **settings))
    with pytest.raises(ValueError, match="texture has shape"):
        texture_guard(jt, restored, 1 / 64, texture=texture[1:])


def test_dequantize_guards_a_noisy_fluorescence_frame():
    clean = _noisy_nuclei()
    cap = nl.degrade(clean, k=1 / 64, r=1.0, sigma=0.25, bits=12, seed=3)
    quant = cap.quantization
    guarded = nl.dequantize(cap.reexposed, quantization=quant, guard=True)
    unguarded = nl.dequantize(cap.reexposed, quantization=quant, guard=False)
    assert guarded.dtype == np.float32
    # the guard lifts the result toward Jt where the scene is noise
    assert psnr(clean, guarded) > psnr(clean, unguarded) + 0.2
    assert psnr(clean, guarded) >= psnr(clean, cap.reexposed) - 0.05
    # still inside the (noise-widened) intervals: consistent with a 0.25-step allowance
    # at least as often as the unguarded result
    assert interval_consistency(guarded, quant, noise=0.25) >= \
        interval_consistency(unguarded, quant, noise=0.25) - 1e-9
    # strict projection: every reachable pixel still re-quantizes to its level
    strict = nl.dequantize(cap.reexposed, quantization=quant, noise=0, guard=True)
    assert (quant.is_consistent(strict) | ~quant.reachable).all()


def test_guard_options():
    clean = _noisy_nuclei(size=64)
    cap = nl.degrade(clean, k=1 / 64, r=1.0, sigma=0.25, bits=12, seed=3)
    quant = cap.quantization
    with pytest.raises(ValueError, match="projection"):
        nl.dequantize(cap.reexposed, quantization=quant, project=False, guard=True)
    with pytest.raises(ValueError, match="guard must be"):
        nl.dequantize(cap.reexposed, quantization=quant, guard="yes")
    # "auto" (the default) guards 12-bit captures, and nothing unprojected
    np.testing.assert_array_equal(nl.dequantize(cap.reexposed, quantization=quant),
                                  nl.dequantize(cap.reexposed, quantization=quant, guard=True))
    np.testing.assert_array_equal(
        nl.dequantize(cap.reexposed, quantization=quant, project=False),
        nl.dequantize(cap.reexposed, quantization=quant, project=False, guard=False))
    assert set(GUARD_DEFAULTS) == {"low", "high", "strength", "sigma"}


def test_dask_input_gives_the_guarded_in_memory_result():
    da = pytest.importorskip("dask.array")
    clean = np.stack([_noisy_nuclei(0, 128), _noisy_nuclei(1, 128)])
    cap = nl.degrade(clean, k=1 / 64, r=1.0, sigma=0.25, bits=12, seed=4)
    quant = cap.quantization
    eager = nl.dequantize(cap.reexposed, quantization=quant, noise=0.25, model="residual-v1",
                          guard=True)
    lazy = nl.dequantize(
        da.from_array(cap.reexposed, chunks=(1, 64, 64)),
        quantization=nl.Quantization(da.from_array(quant.levels, chunks=(1, 64, 64)),
                                     k=quant.k, r=quant.r, bits=quant.bits),
        noise=0.25, model="residual-v1", guard=True)
    np.testing.assert_allclose(np.asarray(lazy), eager, atol=1e-5)
    # the guard changed something here, so the halo mattered
    assert not np.allclose(eager, nl.dequantize(cap.reexposed, quantization=quant, noise=0.25,
                                                model="residual-v1", guard=False), atol=1e-4)


def test_enhance_passes_the_guard_on():
    clean = _noisy_nuclei(size=64)
    dark = np.round(clean / 64 * 4095).astype(np.uint16)  # a dim 12-bit frame
    guarded = nl.enhance(dark, bits=12, guard=True)
    plain = nl.enhance(dark, bits=12, guard=False)
    compensated = nl.laic(dark, bits=12)
    expected = nl.dequantize(compensated.enhanced, quantization=compensated.quantization,
                             guard=True)
    np.testing.assert_allclose(guarded, expected, atol=1e-6)
    assert not np.allclose(guarded, plain, atol=1e-4)


def test_auto_guards_captures_of_twelve_bits_and_more_only():
    assert GUARD_AUTO_BITS == 12
    assert [guard_applies("auto", bits) for bits in (8, 10, 12, 14, 16)] == \
        [False, False, True, True, True]
    assert not guard_applies("auto", 16, project=False)  # nothing to blend inside
    assert not guard_applies("auto", None)  # no quantization known
    assert guard_applies(True, 8) and not guard_applies(False, 16)
    assert not guard_applies(None, 16)
    with pytest.raises(ValueError, match="projection"):
        guard_applies(True, 8, project=False)
    # an 8-bit capture of the same noisy frame: "auto" leaves it unguarded
    cap = nl.degrade(_noisy_nuclei(size=64), k=1 / 4, r=1.0, sigma=0.25, bits=8, seed=3)
    quant = cap.quantization
    auto = nl.dequantize(cap.reexposed, quantization=quant)
    np.testing.assert_array_equal(auto, nl.dequantize(cap.reexposed, quantization=quant,
                                                      guard=False))
    assert not np.allclose(auto, nl.dequantize(cap.reexposed, quantization=quant, guard=True),
                           atol=1e-4)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (2, 2), (5, 3), (64, 48)])
def test_median3_is_scipys_3x3_median_with_repeated_edges(shape):
    from scipy.ndimage import median_filter

    rng = np.random.default_rng(sum(shape))
    plane = rng.random(shape).astype(np.float32) * 50
    plane[::2] = np.round(plane[::2])  # ties, as quantized levels have
    np.testing.assert_array_equal(median3(plane), median_filter(plane, size=3,
                                                                mode="nearest"))
    original = plane.copy()
    median3(plane)
    np.testing.assert_array_equal(plane, original)  # the input is not touched


def test_texture_of_a_saturated_region_is_its_edge_not_the_cut_interval():
    # a 12-bit capture at k = 1/64 whose right half lies at the top of the range, where the
    # capture's noise flips pixels between the last full level and the one at 1.0, which
    # keeps only half a step of interval: dividing values by each pixel's own width read
    # that as dozens of steps of texture (calla.png's petals, session 28)
    scene = np.full((64, 64), 0.9)
    scene[:, 32:] = 0.995
    cap = nl.degrade(scene, k=1 / 64, r=1.0, sigma=0.25, bits=12, seed=0)
    quant = cap.quantization
    width = quant.interval_width
    assert (width[:, 34:] < 0.75 * width[:, :30].min()).mean() > 0.3  # cut intervals
    texture = pixel_texture(cap.reexposed, width)
    # the capture's own noise flipping pixels between two levels: under half a step
    assert texture.max() < 0.6 and texture[:, 34:].mean() < 0.35
    # so the guard leaves a restoration of the smooth frame nearly alone
    restored = np.clip(cap.reexposed - 0.2 * width, 0, 1)
    moved = np.abs(texture_guard(cap.reexposed, restored, width) - restored)
    assert moved.mean() < 0.05 * np.abs(restored - cap.reexposed).mean()
