"""Quantization intervals, projection and interval consistency."""

import numpy as np
import pytest

from napari_lowlight import Quantization, degrade, quantization_step, quantize_levels
from napari_lowlight.metrics import interval_consistency


def test_quantization_step_and_rounding_rule():
    assert quantization_step(8) == pytest.approx(1 / 255)
    assert quantization_step(1) == 1.0
    q = 1 / 255
    x = np.array([-0.2, 0.0, 0.49 * q, 0.5 * q, 1.49 * q, 3.5 * q, 1.0, 1.7])
    np.testing.assert_array_equal(quantize_levels(x, 8), [0, 0, 0, 1, 1, 4, 255, 255])
    assert quantize_levels(x, 8).dtype == np.uint8 and quantize_levels(x, 12).dtype == np.uint16


@pytest.mark.parametrize(("k", "r", "bits"), [(1 / 30, 1.3, 8), (0.2, 1.5, 8), (0.05, 1.0, 12), (0.5, 0.7, 16)])
def test_bounds_are_exactly_the_consistent_set(k, r, bits):
    """Inside [lo, hi) re-quantizes to the level; just outside does not."""
    top = int(quantize_levels(k, bits))
    levels = np.arange(0, top + 1)
    quant = Quantization(levels, k=k, r=r, bits=bits)
    lo, hi = quant.bounds()
    assert np.all(0 <= lo) and np.all(lo <= hi) and np.all(hi <= 1)
    assert np.all(quant.reachable)
    width = hi - lo
    inner = width > 0
    for fraction in (0.01, 0.5, 0.99):
        y = lo + fraction * width
        assert np.all(quant.is_consistent(y)[inner])
    # just below lo (where lo > 0) and just above hi (where hi < 1) fall in other levels
    eps = 1e-6 * np.maximum(width, 1e-12)
    below = (lo > 0) & inner
    above = (hi < 1) & inner
    assert not np.any(quant.is_consistent(np.clip(lo - eps, 0, 1))[below])
    assert not np.any(quant.is_consistent(np.minimum(hi + eps, 1))[above])


def test_interval_matches_analytic_formula():
    k, r, bits = 0.1, 1.2, 8
    q = 1 / 255
    quant = Quantization(np.array([0, 5, 20]), k=k, r=r, bits=bits)
    lo, hi = quant.bounds()
    np.testing.assert_allclose(lo, [0.0, (4.5 * q / k) ** (1 / r), (19.5 * q / k) ** (1 / r)])
    np.testing.assert_allclose(hi, [(0.5 * q / k) ** (1 / r), (5.5 * q / k) ** (1 / r),
                                    min((20.5 * q / k) ** (1 / r), 1.0)])


def test_unreachable_levels_collapse_to_one():
    k, bits = 1 / 30, 8  # the brightest reachable level is Q(k) = 9
    quant = Quantization(np.array([[8, 9, 10, 12]]), k=k, r=1.3, bits=bits)
    np.testing.assert_array_equal(quant.reachable, [[True, True, False, False]])
    lo, hi = quant.bounds()
    np.testing.assert_array_equal(lo[0, 2:], 1.0)
    np.testing.assert_array_equal(hi[0, 2:], 1.0)
    # unreachable pixels are left out of the metric
    assert interval_consistency(quant.project(np.zeros((1, 4))), quant) == 1.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "setting",
    [
        dict(k=1 / 30, r=1.3, sigma=0.25, bits=8),
        dict(k=1 / 5, r=1.5, sigma=1.0, bits=8, dimming="vignette"),
        dict(k=0.02, r=1.1, sigma=0.5, bits=12, dimming="random"),
        dict(k=0.3, r=1.8, sigma=0.25, bits=16),
    ],
)
def test_projection_guarantees_consistency(rng, dtype, setting):
    J = rng.random((48, 48)).astype(dtype)
    result = degrade(J, seed=4, **setting)
    quant = result.quantization
    wild = rng.random(J.shape).astype(dtype)  # an estimate unrelated to the capture
    projected = quant.project(wild)
    assert projected.dtype == dtype
    assert interval_consistency(projected, quant) == 1.0
    assert np.all(quant.is_consistent(projected)[quant.reachable])
    # projecting twice changes nothing; the input is not modified
    np.testing.assert_array_equal(quant.project(projected), projected)
    assert not np.shares_memory(projected, wild)


def test_noise_free_truth_is_consistent_and_noisy_truth_is_not(rng):
    J = rng.random((64, 64))
    clean = degrade(J, sigma=0.0, seed=0)
    assert interval_consistency(J, clean.quantization) == 1.0
    assert interval_consistency(clean.reexposed, clean.quantization) == 1.0
    noisy = degrade(J, sigma=1.0, seed=0)
    assert interval_consistency(J, noisy.quantization) < 0.8


def test_laic_style_quantization_gain_map():
    """LAIC output: r = 1, k = 1/gain; the interval width is q * gain."""
    gain = np.linspace(2.0, 10.0, 12).reshape(3, 4)
    levels = np.full((3, 4), 3)
    quant = Quantization(levels, k=1.0 / gain, r=1.0, bits=8)
    np.testing.assert_allclose(quant.interval_width, gain / 255, rtol=1e-12)
    np.testing.assert_allclose(quant.reexposed(), 3 * gain / 255, rtol=1e-12)


def test_from_dark_round_trip_and_off_grid():
    result = degrade(np.full((5, 5), 0.7), seed=1, bits=10)
    again = Quantization.from_dark(result.dark, k=result.k, r=result.r, bits=10)
    np.testing.assert_array_equal(again.levels, result.quantization.levels)
    with pytest.raises(ValueError, match="not on the 10-bit grid"):
        Quantization.from_dark(result.dark + 0.3 / 1023, k=result.k, r=result.r, bits=10)


def test_levels_are_read_only_copies():
    levels = np.array([[1, 2], [3, 4]])
    quant = Quantization(levels, k=0.5, r=1.0, bits=8)
    levels[0, 0] = 9
    assert quant.levels[0, 0] == 1
    with pytest.raises(ValueError):
        quant.levels[0, 0] = 5


@pytest.mark.parametrize(
    ("args", "error", "words"),
    [
        (dict(levels=np.array([1.0, 2.0]), k=0.5, r=1, bits=8), TypeError, "integer array"),
        (dict(levels=np.array([1, 300]), k=0.5, r=1, bits=8), ValueError, "0..255"),
        (dict(levels=np.array([1, 2]), k=0.0, r=1, bits=8), ValueError, "k must be > 0"),
        (dict(levels=np.array([1, 2]), k=np.ones(3), r=1, bits=8), ValueError, "does not broadcast"),
        (dict(levels=np.array([1, 2]), k=np.array([0.5, -1]), r=1, bits=8), ValueError, "> 0"),
        (dict(levels=np.array([1, 2]), k=0.5, r=0, bits=8), ValueError, "r must be > 0"),
        (dict(levels=np.array([1, 2]), k=0.5, r=1, bits=20), ValueError, "bits"),
    ],
)
def test_bad_quantization_arguments(args, error, words):
    levels = args.pop("levels")
    with pytest.raises(error, match=None) as info:
        Quantization(levels, **args)
    assert words in str(info.value)


def test_image_checks():
    quant = Quantization(np.zeros((2, 2), dtype=int), k=0.5, r=1.0, bits=8)
    with pytest.raises(ValueError, match="does not match"):
        quant.project(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        interval_consistency(np.full((2, 2), np.nan), quant)
    with pytest.raises(TypeError, match="Quantization"):
        interval_consistency(np.zeros((2, 2)), "not a quantization")
    with pytest.raises(ValueError, match="margin"):
        quant.project(np.zeros((2, 2)), margin=0.7)


def test_consistency_within_the_noise_allowance():
    """With sensor noise the clean image leaves the exact intervals at many pixels, but its
    re-darkened value is never farther than |noise| + 1/2 step from the level, so intervals
    widened by 3 sigma hold it wherever |noise| <= 3 sigma (99.7 % of pixels)."""
    rng = np.random.default_rng(3)
    J = np.clip(0.5 + 0.3 * np.sin(np.linspace(0, 20, 128))[None, :]
                + 0.05 * rng.standard_normal((96, 128)), 0, 1)
    capture = degrade(J, k=1 / 8, r=1.2, sigma=0.25, bits=8, seed=1)
    quant = capture.quantization
    exact = interval_consistency(J, quant)
    assert exact == interval_consistency(J, quant, noise=0.0)
    assert exact < 0.9  # the noise moved many levels
    widened = [interval_consistency(J, quant, noise=n) for n in (0.25, 0.5, 0.75)]
    assert exact < widened[0] < widened[1] < widened[2]
    assert widened[2] >= 0.99
    # the widened test is the bounds' test; the ends take everything beyond them
    lower, upper = quant.bounds(noise=0.5)
    inside = quant.is_consistent(J, noise=0.5)
    middle = (quant.levels > 0) & (quant.levels < quant.max_level)
    np.testing.assert_array_equal(inside[middle],
                                  ((J >= lower) & (J <= upper))[middle])
    assert quant.is_consistent(np.full(J.shape, -1.0), noise=0.5)[quant.levels == 0].all()
    with pytest.raises(ValueError, match="noise"):
        interval_consistency(J, quant, noise=-0.1)
    with pytest.raises(ValueError, match="shape"):
        quant.is_consistent(J[:10], noise=0.5)


def test_lazy_consistency_within_the_noise_allowance_matches_in_memory():
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(4)
    J = np.clip(0.4 + 0.1 * rng.standard_normal((64, 80)), 0, 1)
    capture = degrade(J, k=1 / 16, sigma=0.5, bits=8, seed=2)
    lazy = degrade(da.from_array(J, chunks=(32, 40)), k=1 / 16, sigma=0.5, bits=8, seed=2)
    expected = capture.quantization.is_consistent(J, noise=0.5)
    result = lazy.quantization.is_consistent(da.from_array(J, chunks=(32, 40)), noise=0.5)
    np.testing.assert_array_equal(np.asarray(result), expected)


@pytest.mark.parametrize("bits, k, r", [(8, 1 / 30, 1.3), (12, 1 / 64, 1.0), (16, 0.5, 1.8),
                                         (10, 0.2, 0.7), (3, 0.9, 1.1)])
@pytest.mark.parametrize("noise", [0.0, 0.25, 1.5])
def test_bounds_looked_up_per_level_equal_the_per_pixel_arithmetic(bits, k, r, noise):
    # a scalar k: bounds() computes each level's ends once and looks the pixels' up; the
    # result must be the per-pixel computation (what a k map gets), to the bit, unreachable
    # levels (above the level of y = 1) and the top level included
    rng = np.random.default_rng(bits)
    levels = rng.integers(0, 2**bits, size=(37, 41))
    levels[0, :3] = (0, 2**bits - 1, 2**bits - 2)
    quant = Quantization(levels, k=k, r=r, bits=bits)
    lo, hi = quant.bounds(noise=noise)
    lo_pixel, hi_pixel = quant._interval_ends(quant.levels, quant.k, noise, quant.reachable)
    assert lo.shape == hi.shape == levels.shape and lo.dtype == np.float64
    np.testing.assert_array_equal(lo, lo_pixel)
    np.testing.assert_array_equal(hi, hi_pixel)
    assert np.all(hi[~quant.reachable] == 1.0) and np.all(lo[~quant.reachable] == 1.0)
