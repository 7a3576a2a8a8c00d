"""LAIC: constraints, exact against fast, behaviour on dimmed images, colour, stacks, bad input."""

import warnings

import numpy as np
import pytest

import napari_lowlight as nl
from napari_lowlight import degrade, laic
from napari_lowlight._backend import box_mean, gpu_available
from napari_lowlight.compensation import LAICSolverError, laic_objective, local_signs


def smooth_scene(rows=40, cols=48, phase=0.0):
    yy, xx = np.mgrid[0:rows, 0:cols] / 48.0
    return 0.5 + 0.4 * np.sin(5 * xx + phase) * np.cos(4 * yy - phase)


def textured_scene(rows=40, cols=48, seed=0):
    rng = np.random.default_rng(seed)
    from scipy.ndimage import gaussian_filter

    noise = gaussian_filter(rng.random((rows, cols)), 0.7)
    noise = (noise - noise.min()) / np.ptp(noise)
    return 0.15 + 0.8 * noise


def reference_local_mean(image, radius):
    """Box mean over clipped windows, by explicit loops (independent of the code under test)."""
    rows, cols = image.shape
    out = np.empty_like(image)
    for y in range(rows):
        for x in range(cols):
            window = image[max(0, y - radius): y + radius + 1, max(0, x - radius): x + radius + 1]
            out[y, x] = window.mean()
    return out


@pytest.fixture(scope="module")
def uneven_dark():
    """A textured scene lit 5x more on the right half than on the left, captured in 8 bits."""
    light = np.where(np.arange(48) < 24, 0.2, 1.0)[None, :].repeat(40, 0)
    return degrade(textured_scene(), k=0.25, r=1.0, sigma=0.0, dimming=light, seed=0).dark


def test_box_mean_matches_loops(rng):
    image = rng.random((13, 17))
    for radius in (1, 2, 4):
        np.testing.assert_allclose(box_mean(image, radius), reference_local_mean(image, radius),
                                   atol=1e-12)


@pytest.mark.parametrize("method", ["exact", "fast"])
def test_constraints_hold(uneven_dark, method):
    result = laic(uneven_dark, method=method, window_radius=2)
    assert result.method == method
    enhanced, gain = result.enhanced, result.gain
    assert enhanced.shape == uneven_dark.shape and gain.shape == uneven_dark.shape
    assert enhanced.min() >= 0.0 and enhanced.max() <= 1.0
    np.testing.assert_allclose(enhanced, np.clip(uneven_dark * gain, 0, 1))
    # never darker than the uniform correction that brings the brightest pixel to 1
    assert gain.min() >= 1 / uneven_dark.max() - 1e-9
    assert np.max(uneven_dark * gain) <= 1 + 1e-9
    # local ranks, checked with an independent local mean: s (Jt - mean Jt) >= 0
    diff = uneven_dark - reference_local_mean(uneven_dark, 2)
    signs = np.where(np.abs(diff) <= 1e-10, 0, np.sign(diff))
    kept = signs * (enhanced - reference_local_mean(enhanced, 2)) >= -1e-8
    assert np.all(kept[signs != 0])
    assert result.rank_preserved == 1.0


@pytest.mark.parametrize("weight", [0.5, 1.0, 2.0])
def test_exact_objective_is_at_most_fast_and_fast_is_close(uneven_dark, weight):
    exact = laic(uneven_dark, method="exact", contrast_weight=weight)
    fast = laic(uneven_dark, method="fast", contrast_weight=weight)
    assert exact.objective <= fast.objective + 1e-6 * abs(exact.objective)
    assert fast.objective - exact.objective <= 0.02 * abs(exact.objective)


def test_objective_matches_independent_computation(uneven_dark):
    result = laic(uneven_dark, method="exact")
    lam = 1.0 / uneven_dark.max()  # contrast_weight 1 on the uniformly brightened image
    gain, enhanced = result.gain, uneven_dark * result.gain
    tv = np.abs(np.diff(gain, axis=0)).sum() + np.abs(np.diff(gain, axis=1)).sum()
    diff = uneven_dark - reference_local_mean(uneven_dark, 2)
    signs = np.where(np.abs(diff) <= 1e-10, 0, np.sign(diff))
    contrast = np.sum(signs * (enhanced - reference_local_mean(enhanced, 2)))
    assert result.objective == pytest.approx(tv - lam * contrast, rel=1e-9)
    # and the exact gain beats the uniform gain, which is feasible
    uniform = np.full_like(gain, 1 / uneven_dark.max())
    assert result.objective <= laic_objective(uniform, uneven_dark, radius=2, weight=lam) + 1e-9


def test_uniformly_dimmed_image_gets_an_almost_constant_gain():
    dark = degrade(smooth_scene(), k=0.1, r=1.0, sigma=0.0).dark
    for method in ("exact", "fast"):
        gain = laic(dark, method=method).gain
        assert gain.std() / gain.mean() < 0.03, method
        assert gain.min() == pytest.approx(1 / dark.max())


def test_dark_regions_gain_more_than_bright_ones(uneven_dark):
    for method in ("exact", "fast"):
        gain = laic(uneven_dark, method=method).gain
        assert gain[:, :20].mean() > 1.05 * gain[:, -20:].mean(), method


def test_auto_picks_exact_for_small_and_fast_for_large(uneven_dark):
    assert laic(uneven_dark).method == "exact"
    big = degrade(textured_scene(66, 66), k=0.2, sigma=0.0).dark
    assert laic(big).method == "fast"


def test_colour_uses_value_channel_and_one_gain(smooth_rgb):
    dark = degrade(smooth_rgb, k=0.1, r=1.0, sigma=0.0, dimming="vignette", channel_axis=-1).dark
    result = laic(dark, channel_axis=-1, method="fast")
    assert result.gain.shape == dark.shape[:2]
    np.testing.assert_allclose(result.enhanced, dark * result.gain[..., None], atol=1e-12)
    assert result.enhanced.max() <= 1.0
    gray_of_value = laic(dark.max(axis=-1), method="fast")
    np.testing.assert_allclose(result.gain, gray_of_value.gain)
    first = laic(np.moveaxis(dark, -1, 0), channel_axis=0, method="fast")
    np.testing.assert_allclose(first.gain, result.gain)


def test_stack_per_plane_and_shared_gain():
    planes = [degrade(smooth_scene(phase=p), k=0.1 + 0.05 * i, sigma=0.0).dark
              for i, p in enumerate((0.0, 0.7, 1.4))]
    stack = np.stack(planes)
    per_plane = laic(stack, method="fast")
    for i, plane in enumerate(planes):
        np.testing.assert_allclose(per_plane.gain[i], laic(plane, method="fast").gain)
    shared = laic(stack, method="fast", shared_gain=True)
    assert shared.gain.shape == stack.shape
    for i in range(1, 3):
        np.testing.assert_array_equal(shared.gain[i], shared.gain[0])
    assert np.max(stack * shared.gain) <= 1 + 1e-9
    # a 4-D (t, z, y, x) stack keeps its shape
    four = laic(stack[None].repeat(2, 0), method="fast")
    assert four.enhanced.shape == (2, 3, 40, 48)


def test_quantization_describes_enhanced_pixels():
    capture = degrade(smooth_scene(), k=0.1, r=1.0, sigma=0.5, seed=1)
    result = laic(capture.dark, method="fast")
    quant = result.quantization
    assert quant.bits == 8 and quant.r == 1.0
    np.testing.assert_array_equal(quant.levels, capture.quantization.levels)
    lo, hi = quant.bounds()
    inner = (quant.levels > 0) & (hi < 1)
    np.testing.assert_allclose((hi - lo)[inner], (result.gain / 255)[inner], rtol=1e-9)
    assert nl.metrics.interval_consistency(result.enhanced, quant) == 1.0
    # bits are read from integer dtypes and from the grid of float images
    assert laic((capture.dark * 255).astype(np.uint8), method="fast").quantization.bits == 8
    twelve = degrade(smooth_scene(), k=0.1, bits=12, sigma=0.0).dark
    assert laic(twelve, method="fast").quantization.bits == 12


def test_input_untouched_and_outputs_new(uneven_dark):
    image = uneven_dark.copy()
    image.setflags(write=False)
    result = laic(image, method="fast")
    np.testing.assert_array_equal(image, uneven_dark)
    assert not np.shares_memory(result.enhanced, image)
    assert laic(image.astype(np.float32), method="fast").enhanced.dtype == np.float32


def test_time_limit_raises_or_falls_back():
    dark = degrade(textured_scene(60, 60), k=0.2, sigma=0.5, seed=0).dark
    with pytest.raises(LAICSolverError, match="without an optimum"):
        laic(dark, method="exact", time_limit=1e-4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = laic(dark[:50, :50], method="auto", time_limit=1e-4)
    assert result.method == "fast"
    assert any("fast method" in str(w.message) for w in caught)
    # the warning points at the line that called laic, not inside the package
    assert [w.filename for w in caught if "fast method" in str(w.message)] == [__file__]


def test_local_signs_ties_are_zero():
    flat = np.full((8, 8), 30 / 255)
    assert np.all(local_signs(flat, 2) == 0)
    # a flat image has no rank to keep: the gain is the uniform one
    result = laic(flat, method="exact")
    np.testing.assert_allclose(result.enhanced, 1.0)
    # max_gain caps the uniform gain too: a very dark image stays below full range
    capped = laic(np.full((8, 8), 3 / 255), method="exact", max_gain=10.0)
    np.testing.assert_allclose(capped.gain, 10.0)
    np.testing.assert_allclose(capped.enhanced, 30 / 255)


@pytest.mark.parametrize(
    ("image", "kwargs", "error", "words"),
    [
        (np.full((8, 8), np.nan), {}, ValueError, "NaN"),
        (np.zeros((0, 8)), {}, ValueError, "empty"),
        (np.zeros((8, 8)), {}, ValueError, "entirely black"),
        (np.full((8, 8, 3), 0.1), {"channel_axis": 3}, ValueError, "does not fit"),
        (np.full(8, 0.1), {}, ValueError, "spatial dimensions"),
        (np.full((8, 8), 0.1), {"method": "magic"}, ValueError, "method must be one of"),
        (np.full((8, 8), 0.1), {"contrast_weight": -1}, ValueError, "contrast_weight"),
        (np.full((8, 8), 0.1), {"window_radius": 0}, ValueError, "window_radius"),
        (np.full((8, 8), 0.1), {"window_radius": 2.5}, TypeError, "window_radius"),
        (np.full((8, 8), 0.1), {"min_gain": 20.0}, ValueError, "min_gain"),
        (np.full((8, 8), 0.1), {"max_gain": 0.5}, ValueError, "max_gain"),
        (np.full((8, 8), 0.01), {"max_gain": 2.0, "min_gain": 5.0}, ValueError, "above max_gain"),
        (np.full((8, 8), 2.0), {}, ValueError, "[0, 1]"),
        ("dark.png", {}, TypeError, "array"),
    ],
)
def test_bad_input(image, kwargs, error, words):
    with pytest.raises(error) as info:
        laic(image, **kwargs)
    assert words in str(info.value)


needs_gpu = pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA device")


@needs_gpu
@pytest.mark.gpu
def test_cupy_local_means_match_numpy(rng):
    import cupy

    image = rng.random((3, 64, 80))
    for radius in (1, 2, 5):
        on_gpu = box_mean(cupy.asarray(image), radius)
        assert isinstance(on_gpu, cupy.ndarray)
        np.testing.assert_allclose(on_gpu.get(), box_mean(image, radius), atol=1e-6)


@needs_gpu
@pytest.mark.gpu
def test_cupy_in_cupy_out(uneven_dark):
    import cupy

    on_gpu = laic(cupy.asarray(uneven_dark), method="fast")
    on_cpu = laic(uneven_dark, method="fast")
    assert isinstance(on_gpu.enhanced, cupy.ndarray) and isinstance(on_gpu.gain, cupy.ndarray)
    np.testing.assert_allclose(on_gpu.enhanced.get(), on_cpu.enhanced, atol=1e-6)
    assert on_gpu.objective == pytest.approx(on_cpu.objective, rel=1e-6)


# -- no dark ring around bright objects (issue 18) -------------------------------------

def _ring_and_background_gain(gain, clean, band=4):
    """Median gain in a ``band``-px ring around the bright object, and beyond 3 bands."""
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    bright = ndi.binary_opening(clean > threshold_otsu(clean))
    ring = ndi.binary_dilation(bright, iterations=band) & ~bright
    rest = ~ndi.binary_dilation(bright, iterations=3 * band)
    return float(np.median(gain[ring])), float(np.median(gain[rest]))


def test_fast_gain_follows_a_bright_objects_edge_without_a_ring():
    from napari_lowlight.data import cell

    clean = cell().astype(np.float64) / 255.0
    dark = degrade(clean, k=1 / 30, r=1.3, seed=0).dark
    # 0.36 MP: the fast method, refining along the gain's largest steps
    result = laic(dark, bits=8, refine_edges=True)
    assert result.method == "fast" and result.rank_preserved == pytest.approx(1.0, abs=2e-3)
    ring, rest = _ring_and_background_gain(result.gain, clean)
    # the lifted background's gain reaches the object's edge (it stopped ~18 px short,
    # ring gain 0.54 of the background's, when refinement stopped at 21-px blocks)
    assert ring >= 0.95 * rest
    coarse = laic(dark, bits=8)  # stops at the first level (21-px blocks): the ring is there
    ring_coarse, rest_coarse = _ring_and_background_gain(coarse.gain, clean)
    assert ring_coarse < 0.7 * rest_coarse


def test_over_budget_refinement_splits_the_largest_steps_first():
    from napari_lowlight.data import cell

    dark = degrade(cell().astype(np.float64) / 255.0, k=1 / 30, r=1.3, seed=0).dark
    result = laic(dark, bits=8, max_regions=2000, refine_edges=True)
    levels = result.info[0]["levels"]
    # more than one level although splitting every marked block would exceed the budget
    assert len(levels) >= 3
    assert all(level["regions"] <= 2000 for level in levels if "regions" in level)
    blocks = [level["block"] for level in levels]
    assert blocks == sorted(blocks, reverse=True) and blocks[-1] < blocks[0]
    # without refine_edges the refinement stops where the budget would be exceeded
    assert len(laic(dark, bits=8, max_regions=2000).info[0]["levels"]) == 1


def test_refine_edges_must_be_a_bool():
    with pytest.raises(TypeError, match="refine_edges"):
        laic(np.full((8, 8), 0.2), refine_edges="yes")


def test_binding_max_gain_warning_points_at_the_caller():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        laic(np.full((8, 8), 3 / 255), method="exact", max_gain=10.0)
    assert [(w.category, w.filename) for w in caught] == [(RuntimeWarning, __file__)]


def test_lp_window_sums_agree_with_box_sum_to_rounding():
    """The LP sums windows at chosen pixels by a summed-area table, ``box_sum`` filters the
    whole plane: the same sums to rounding (about 1e-13), not bit for bit, which is why the LP
    keeps its own (``box_sum`` there moves the fast method's gains in their last bits)."""
    from napari_lowlight._backend import box_sum
    from napari_lowlight.compensation._lp import _window_sum

    plane = textured_scene(37, 45, seed=3) / 20
    ys, xs = np.nonzero(np.ones(plane.shape, bool))
    for radius in (1, 2, 5, 15):
        np.testing.assert_allclose(_window_sum(plane, ys, xs, radius),
                                   box_sum(plane, radius)[ys, xs], rtol=1e-12, atol=1e-14)
