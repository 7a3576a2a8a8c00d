"""Integers as cameras write them: bit depth, black level, gain range (issue 18)."""

import numpy as np
import pytest

import napari_lowlight as nl
from napari_lowlight.intensity import infer_bits, to_intensity


def _dim_frame(bits=12, black=100, peak=235, shape=(64, 64), seed=0):
    """A dim camera frame: a bright blob on a dark background, counts above a black level."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    scene = np.exp(-((yy - 30) ** 2 + (xx - 34) ** 2) / 200.0) + 0.15 * rng.random(shape)
    counts = black + np.rint(peak * scene / scene.max())
    assert counts.max() <= 2**bits - 1
    return counts.astype(np.uint16)


@pytest.mark.parametrize("maximum, expected", [(200, 8), (255, 8), (256, 10), (4095, 12),
                                               (4096, 14), (60000, 16)])
def test_infer_bits_integer_rule(maximum, expected):
    image = np.zeros((4, 4), dtype=np.uint16)
    image[0, 0] = maximum
    assert infer_bits(image) == expected


def test_infer_bits_uint8_and_float_grid():
    assert infer_bits(np.array([[0, 3]], dtype=np.uint8)) == 8
    assert infer_bits(np.array([[0.0, 1 / 4095, 1.0]])) == 12
    assert infer_bits(np.array([[0.0, 0.123456789]])) == 16


def test_infer_bits_refuses_counts_above_16_bits():
    with pytest.raises(ValueError, match="exceed 16 bits"):
        infer_bits(np.array([[70000]], dtype=np.uint32))


def test_to_intensity_scales_by_bits_and_subtracts_black_level():
    frame = np.array([[100, 1100, 4095]], dtype=np.uint16)
    values, intensity = to_intensity(frame, bits=12, black_level=100)
    np.testing.assert_allclose(values, [[0.0, 1000 / 4095, 3995 / 4095]])
    assert intensity.bits == 12 and not intensity.bits_inferred
    assert intensity.black_level == 100.0
    assert frame[0, 1] == 1100  # the input is untouched


def test_to_intensity_refuses_data_above_the_declared_depth():
    with pytest.raises(ValueError, match="above the full scale of bits=8"):
        to_intensity(np.array([[300]], dtype=np.uint16), bits=8)


def test_black_level_map_and_bad_black_levels():
    frame = np.full((2, 3), 500, dtype=np.uint16)
    black = np.array([[100, 200, 600], [0, 0, 0]])
    values, intensity = to_intensity(frame, bits=12, black_level=black)
    np.testing.assert_allclose(values[0], [400 / 4095, 300 / 4095, 0.0])
    assert intensity.black_level_map
    with pytest.raises(ValueError, match="does not broadcast"):
        to_intensity(frame, bits=12, black_level=np.zeros((3, 3)))
    with pytest.raises(ValueError, match=">= 0"):
        to_intensity(frame, bits=12, black_level=-1)
    with pytest.raises(ValueError, match="below 1"):
        to_intensity(np.zeros((2, 2)), black_level=2.0)


@pytest.mark.parametrize("bits", [12, 16])
def test_dim_uint16_frame_comes_out_bright(bits):
    frame = _dim_frame(bits=bits, black=100, peak=235)
    result = nl.laic(frame, bits=bits, black_level=100)
    enhanced = np.asarray(result.enhanced)
    # the bright end reaches full scale, almost nothing clips
    assert np.percentile(enhanced, 99.5) >= 0.5
    assert np.mean(enhanced >= 1.0) <= 0.01
    assert result.intensity.bits == bits and result.intensity.black_level == 100.0
    assert result.rank_preserved == 1.0
    # the gain is not pinned at a fixed cap: it maps the brightest pixel to 1
    brightest = (frame.max() - 100) / (2**bits - 1)
    assert np.min(result.gain) == pytest.approx(1 / brightest, rel=1e-6)


def test_dim_frame_result_does_not_depend_on_the_declared_depth():
    frame = _dim_frame(bits=12)
    by12 = nl.laic(frame, bits=12, black_level=100)
    by16 = nl.laic(frame, bits=16, black_level=100)
    np.testing.assert_allclose(by12.enhanced, by16.enhanced, atol=1e-6)
    # the step in output units, q * gain, is the same too
    np.testing.assert_allclose(by12.quantization.interval_width,
                               by16.quantization.interval_width, rtol=1e-6, atol=1e-9)


def test_binding_max_gain_warns_and_empty_range_is_refused():
    frame = _dim_frame(bits=16)
    with pytest.warns(RuntimeWarning, match="max_gain=4 binds"):
        result = nl.laic(frame, bits=16, max_gain=4)
    assert np.max(result.gain) <= 4 + 1e-9
    with pytest.raises(ValueError, match="above max_gain"):
        nl.laic(frame, bits=16, min_gain=10, max_gain=5)


def test_lazy_and_in_memory_infer_the_same_depth():
    da = pytest.importorskip("dask.array")
    stack = np.stack([_dim_frame(peak=100, black=0), _dim_frame(peak=3000, black=0, seed=1)])
    eager = nl.laic(stack)
    lazy = nl.laic(da.from_array(stack, chunks=(1, 64, 64)))
    assert eager.intensity.bits == lazy.intensity.bits == 12
    np.testing.assert_allclose(np.asarray(lazy.enhanced.compute()), eager.enhanced, atol=1e-6)


@pytest.mark.parametrize("k, r", [(1 / 30, 1.3), (1 / 5, 1.5)])
def test_shading_takes_out_a_vignette(k, r):
    from skimage import data as skdata
    from skimage.transform import resize

    scene = resize(skdata.camera() / 255.0, (96, 96), anti_aliasing=True)
    capture = nl.degrade(scene, k=k, r=r, sigma=0.25, bits=8, dimming="vignette", seed=0)

    def corner_centre(image):
        corners = np.mean([image[:12, :12].mean(), image[:12, -12:].mean(),
                           image[-12:, :12].mean(), image[-12:, -12:].mean()])
        return corners / image[42:54, 42:54].mean()

    truth = corner_centre(scene**r)
    plain = corner_centre(nl.laic(capture.dark, bits=8).enhanced) / truth
    shaded = nl.laic(capture.dark, bits=8, shading=1.0)
    assert corner_centre(shaded.enhanced) / truth > plain + 0.15
    assert shaded.rank_preserved > 0.99
    with pytest.raises(ValueError, match="shading"):
        nl.laic(capture.dark, shading=1.5)


def test_float_stack_depth_is_the_same_lazy_and_in_memory():
    """The first plane on a 6-bit grid, the second on a 12-bit one (63 divides 4095): the whole
    stack is 12-bit (the old lazy path looked at the first plane only and said 6)."""
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(0)
    first = rng.integers(1, 64, (32, 32)) / 63.0
    second = rng.integers(1, 4096, (32, 32)) / 4095.0
    stack = np.stack([first, second])
    assert infer_bits(first) == 6
    assert infer_bits(stack) == infer_bits(da.from_array(stack, chunks=(1, 32, 32))) == 12
    eager = nl.laic(stack)
    lazy = nl.laic(da.from_array(stack, chunks=(1, 32, 32)))
    assert eager.intensity.bits == lazy.intensity.bits == 12
    np.testing.assert_array_equal(np.asarray(lazy.quantization.levels.compute()),
                                  eager.quantization.levels)


def test_microscope_presets_keep_intensities_proportional():
    """contrast_weight=0: the uniform gain to full scale (quantitative, no ring, no speckle)."""
    from napari_lowlight.presets import PRESETS, preset_options

    frame = _dim_frame(bits=12, black=100, peak=235)
    options = preset_options("microscope-12bit", black_level=100)
    assert options["contrast_weight"] == 0.0 and options["bits"] == 12
    result = nl.laic(frame, **options)
    signal = frame.astype(np.float64) - 100
    np.testing.assert_allclose(result.enhanced, signal / signal.max(), atol=1e-9)
    assert np.ptp(result.gain) == 0
    assert PRESETS["time-lapse"]["shared_gain"] is True
    with pytest.raises(ValueError, match="unknown preset"):
        preset_options("nope")
