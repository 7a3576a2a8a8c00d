"""The projection's noise allowance: intervals widened by the capture's noise."""

import numpy as np
import pytest

import napari_lowlight as nl
from napari_lowlight.dequantizer.inference import PROJECTION_MARGIN


@pytest.fixture(scope="module")
def capture():
    from skimage import data

    image = data.camera()[100:196, 150:246] / 255.0
    return image, nl.degrade(image, k=1 / 30, r=1.3, sigma=0.5, bits=8, seed=3)


def test_bounds_widen_by_the_allowance_in_the_dark_domain(capture):
    _, cap = capture
    quant = cap.quantization
    lo, hi = quant.bounds()
    wide_lo, wide_hi = quant.bounds(noise=0.5)
    assert np.all(wide_lo <= lo) and np.all(wide_hi >= hi)
    # in the dark domain the interval of level m is [(m - 1 - a/...)]: its width grows from
    # one step to 1 + 2 * 0.5 = 2 steps, wherever neither end is clipped at 0 or 1
    inner = (quant.levels > 1) & (wide_hi < 1)
    dark_width = quant.k * (wide_hi**quant.r - wide_lo**quant.r) / quant.q
    np.testing.assert_allclose(dark_width[inner], 2.0, rtol=1e-9)


def test_noise_allowance_keeps_more_of_the_truth(capture):
    image, cap = capture
    quant = cap.quantization
    strict = quant.project(image)  # the clean image itself, as the best possible estimate
    allowed = quant.project(image, noise=1.0)
    # noise of 0.5 steps put many clean values outside their capture's interval
    assert np.mean(strict != image) > 0.2
    assert np.abs(allowed - image).mean() < 0.25 * np.abs(strict - image).mean()
    assert (quant.is_consistent(strict) | ~quant.reachable).all()


def test_dequantize_noise_zero_is_consistent_and_positive_noise_stays_in_the_widened_bounds(
        capture):
    _, cap = capture
    quant = cap.quantization
    strict = nl.dequantize(cap.reexposed, quantization=quant, device="cpu", noise=0)
    assert (quant.is_consistent(strict) | ~quant.reachable).all()
    loose = nl.dequantize(cap.reexposed, quantization=quant, device="cpu", noise=0.5)
    lo, hi = quant.bounds(noise=0.5)
    width = hi - lo
    assert np.all(loose >= (lo + PROJECTION_MARGIN * width).astype(np.float32) - 1e-7)
    assert np.all(loose <= (hi - PROJECTION_MARGIN * width).astype(np.float32) + 1e-7)
    assert not np.array_equal(loose, strict)


@pytest.mark.parametrize("noise", [-0.1, 9.0, float("nan"), "loud", "Auto"])
def test_bad_noise_is_refused(capture, noise):
    _, cap = capture
    with pytest.raises(ValueError, match="noise"):
        nl.dequantize(cap.reexposed, quantization=cap.quantization, device="cpu", noise=noise)


def test_cli_refuses_a_negative_noise(tmp_path):
    import tifffile

    from napari_lowlight.cli import main

    path = tmp_path / "in.tif"
    tifffile.imwrite(path, (np.random.default_rng(0).random((40, 40)) * 50).astype(np.uint8))
    with pytest.raises(SystemExit) as refused:  # argparse: usage and the reason, exit 2
        main(["dequantize", str(path), str(tmp_path / "out.tif"), "--noise", "-1"])
    assert refused.value.code == 2
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_strict_projection_is_consistent_at_every_bit_depth(bits):
    # a 16-bit interval times the margin is below a float32 ulp near 1: the float32 result
    # must still re-quantize to its level (review finding, session 20)
    rng = np.random.default_rng(bits)
    top = 2**bits - 1
    levels = rng.integers(top // 2, top + 1, size=(96, 96))
    quant = nl.Quantization(levels, k=1.0, r=1.0, bits=bits)
    lo, hi = quant.bounds()
    image = (lo + rng.random(lo.shape) * (hi - lo)).astype(np.float32)
    out = nl.dequantize(image, quantization=quant, device="cpu", noise=0)
    assert (quant.is_consistent(out) | ~quant.reachable).all()


def test_bounds_refuse_a_negative_allowance(capture):
    with pytest.raises(ValueError, match="noise"):
        capture[1].quantization.bounds(noise=-1.0)


# -- noise judged from the output ("auto", the default) ----------------------------------

@pytest.mark.parametrize("bits, k", [(8, 1 / 30), (12, 1 / 64)])
@pytest.mark.parametrize("sigma", [0.25, 0.5, 1.0])
def test_noise_of_the_clean_image_is_the_capture_noise(bits, k, sigma):
    from skimage import data

    image = data.camera() / 255.0
    cap = nl.degrade(image, k=k, r=1.3, sigma=sigma, bits=bits, seed=1)
    assert cap.quantization.noise_of(image) == pytest.approx(sigma, abs=0.05)


def test_noise_of_a_noise_free_capture_is_small_and_of_the_centres_zero(capture):
    from skimage import data

    image = data.camera() / 255.0
    cap = nl.degrade(image, k=1 / 64, r=1.0, sigma=0.0, bits=12, seed=1)
    assert cap.quantization.noise_of(image) < 0.05
    # the interval centres deviate by no more than rounding does: no noise to see
    assert cap.quantization.noise_of(cap.reexposed) == 0.0


def test_noise_of_needs_enough_pixels_between_the_end_levels():
    quant = nl.Quantization(np.zeros((20, 20), dtype=np.uint8), k=0.5, r=1.0, bits=8)
    assert quant.noise_of(np.full((20, 20), 0.3)) == 0.0


def test_auto_noise_is_the_noise_of_the_raw_output(capture):
    _, cap = capture  # sigma = 0.5 steps
    quant = cap.quantization
    raw = nl.dequantize(cap.reexposed, quantization=quant, device="cpu", project=False)
    judged = quant.noise_of(raw)  # the image is smaller than the judged window
    assert 0.25 < judged < 0.9
    auto = nl.dequantize(cap.reexposed, quantization=quant, device="cpu")
    given = nl.dequantize(cap.reexposed, quantization=quant, device="cpu", noise=judged)
    np.testing.assert_array_equal(auto, given)
    assert not np.array_equal(auto, nl.dequantize(cap.reexposed, quantization=quant,
                                                  device="cpu", noise=0))


def test_auto_noise_never_allows_less_than_the_floor():
    from napari_lowlight.dequantizer.inference import AUTO_NOISE_FLOOR, judge_noise

    image = np.tile(np.linspace(0.05, 0.95, 96), (96, 1))
    cap = nl.degrade(image, k=1 / 20, sigma=0.0, bits=8)  # noise-free: judged about 0
    quant = cap.quantization
    raw = nl.dequantize(cap.reexposed, quantization=quant, device="cpu", project=False)
    assert quant.noise_of(raw) < AUTO_NOISE_FLOOR
    assert judge_noise(raw, quant) == AUTO_NOISE_FLOOR
    assert judge_noise(raw, quant, floor=0) == quant.noise_of(raw)
    auto = nl.dequantize(cap.reexposed, quantization=quant, device="cpu")
    floor = nl.dequantize(cap.reexposed, quantization=quant, device="cpu",
                          noise=AUTO_NOISE_FLOOR)
    np.testing.assert_array_equal(auto, floor)
    # the widened intervals still hold every pixel within the floor of its level
    low, high = quant.bounds(noise=AUTO_NOISE_FLOOR)
    assert ((auto >= low - 1e-6) & (auto <= high + 1e-6)).all()


def test_auto_noise_beats_the_strict_projection_on_a_noisy_capture():
    from skimage import data

    image = data.camera()[64:320, 64:320] / 255.0
    cap = nl.degrade(image, k=1 / 30, r=1.3, sigma=0.5, bits=8, seed=5)
    strict = nl.dequantize(cap.reexposed, quantization=cap.quantization, device="cpu", noise=0)
    auto = nl.dequantize(cap.reexposed, quantization=cap.quantization, device="cpu")
    assert nl.metrics.psnr(image, auto) > nl.metrics.psnr(image, strict) + 0.5


def test_auto_noise_judges_the_same_window_for_a_dask_input(monkeypatch):
    import dask.array as da
    from skimage import data

    from napari_lowlight.dequantizer import inference

    # a small window so that the judged pixels are a part of the image, as on a big one
    monkeypatch.setattr(inference, "NOISE_WINDOW", 64)
    image = data.camera()[:192, :224] / 255.0
    cap = nl.degrade(image, k=1 / 30, r=1.3, sigma=0.5, bits=8, seed=2)
    quant = cap.quantization
    eager = nl.dequantize(cap.reexposed, quantization=quant, device="cpu")
    lazy_quant = nl.Quantization(da.from_array(quant.levels, chunks=96), k=quant.k, r=quant.r,
                                 bits=quant.bits)
    lazy = nl.dequantize(da.from_array(cap.reexposed, chunks=96), quantization=lazy_quant,
                         device="cpu")
    np.testing.assert_allclose(np.asarray(lazy), eager, atol=1e-5)
    raw = nl.dequantize(cap.reexposed, quantization=quant, device="cpu", project=False)
    window = (slice(64, 128), slice(80, 144))  # the central 64 x 64
    judged = nl.Quantization(quant.levels[window], k=quant.k, r=quant.r,
                             bits=quant.bits).noise_of(raw[window])
    given = nl.dequantize(cap.reexposed, quantization=quant, device="cpu",
                          noise=max(judged, inference.AUTO_NOISE_FLOOR))
    np.testing.assert_array_equal(eager, given)


def test_cli_takes_auto_and_refuses_words(tmp_path):
    import tifffile

    from napari_lowlight.cli import main

    path = tmp_path / "in.tif"
    tifffile.imwrite(path, (np.random.default_rng(0).random((40, 40)) * 50).astype(np.uint8))
    assert main(["dequantize", str(path), str(tmp_path / "out.tif"), "--noise", "auto",
                 "--device", "cpu"]) == 0
    assert (tmp_path / "out.tif").exists()
    with pytest.raises(SystemExit) as refused:
        main(["dequantize", str(path), str(tmp_path / "bad.tif"), "--noise", "loud"])
    assert refused.value.code == 2
    assert not (tmp_path / "bad.tif").exists()


@pytest.mark.parametrize("shape, channel_axis", [((2, 3, 20, 24), None), ((20, 24, 3), -1),
                                                 ((3, 20, 24), 0), ((4, 20, 3, 24), 2)])
@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_projection_plane_by_plane_is_the_whole_images(shape, channel_axis, noise):
    # dequantize projects plane by plane (one plane's float64 bounds in memory at a time):
    # the result must be quantization.project's, to the bit, for every layout, a k map too
    from napari_lowlight.dequantizer.inference import (
        PROJECTION_MARGIN, plane_windows, project_planes)

    rng = np.random.default_rng(7)
    image = rng.random(shape)
    capture = nl.degrade(image, k=1 / 20, r=1.3, sigma=0.25, bits=8, seed=1,
                         channel_axis=channel_axis)
    # the capture's own quantization, and the same levels under a k map (uneven light)
    k_map = rng.uniform(1 / 30, 1 / 10, shape)
    for quant in (capture.quantization,
                  nl.Quantization(capture.quantization.levels, k=k_map, r=1.3, bits=8)):
        estimate = (capture.reexposed + rng.normal(0, 0.02, shape)).astype(np.float32)
        expected = quant.project(estimate, margin=PROJECTION_MARGIN, noise=noise)
        result = project_planes(quant, estimate, noise=noise, channel_axis=channel_axis)
        assert result.dtype == np.float32
        np.testing.assert_array_equal(result, expected)
    # the windows visit the planes channels first, then the leading axes in order, each a
    # 2-D view of the plane
    moved = image if channel_axis is None else np.moveaxis(image, channel_axis, 0)
    planes = moved.reshape((-1,) + moved.shape[-2:])
    windows = list(plane_windows(shape, channel_axis))
    assert len(windows) == len(planes)
    for window, plane in zip(windows, planes):
        np.testing.assert_array_equal(image[window], plane)
