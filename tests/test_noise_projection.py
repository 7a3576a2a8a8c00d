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
    strict = nl.dequantize(cap.reexposed, quantization=quant, device="cpu")
    assert (quant.is_consistent(strict) | ~quant.reachable).all()
    loose = nl.dequantize(cap.reexposed, quantization=quant, device="cpu", noise=0.5)
    lo, hi = quant.bounds(noise=0.5)
    width = hi - lo
    assert np.all(loose >= (lo + PROJECTION_MARGIN * width).astype(np.float32) - 1e-7)
    assert np.all(loose <= (hi - PROJECTION_MARGIN * width).astype(np.float32) + 1e-7)
    assert not np.array_equal(loose, strict)


@pytest.mark.parametrize("noise", [-0.1, 9.0, float("nan")])
def test_bad_noise_is_refused(capture, noise):
    _, cap = capture
    with pytest.raises(ValueError, match="noise"):
        nl.dequantize(cap.reexposed, quantization=cap.quantization, device="cpu", noise=noise)


def test_cli_refuses_a_negative_noise(tmp_path):
    import tifffile

    from napari_lowlight.cli import main

    path = tmp_path / "in.tif"
    tifffile.imwrite(path, (np.random.default_rng(0).random((40, 40)) * 50).astype(np.uint8))
    assert main(["dequantize", str(path), str(tmp_path / "out.tif"), "--noise", "-1"]) != 0
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
    out = nl.dequantize(image, quantization=quant, device="cpu")
    assert (quant.is_consistent(out) | ~quant.reachable).all()


def test_bounds_refuse_a_negative_allowance(capture):
    with pytest.raises(ValueError, match="noise"):
        capture[1].quantization.bounds(noise=-1.0)
