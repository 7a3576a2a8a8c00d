"""Dimming maps and quality metrics."""

import numpy as np
import pytest

from napari_lowlight import dimming, metrics


def test_vignette_shape_range_and_symmetry():
    v = dimming.vignette((51, 71), darkest=0.3)
    assert v.shape == (51, 71)
    assert v.max() == pytest.approx(1.0) and v[25, 35] == pytest.approx(1.0)
    assert v.min() == pytest.approx(0.3) and v[0, 0] == pytest.approx(0.3)
    np.testing.assert_allclose(v, v[::-1, ::-1])
    # light falls off monotonically along a ray from the centre
    assert np.all(np.diff(v[25, 35:]) < 0)


def test_random_field_is_seeded_smooth_and_in_range():
    a = dimming.smooth_random_field((120, 200), darkest=0.4, seed=3)
    b = dimming.smooth_random_field((120, 200), darkest=0.4, seed=3)
    c = dimming.smooth_random_field((120, 200), darkest=0.4, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.min() == pytest.approx(0.4) and a.max() == pytest.approx(1.0)
    # smooth: neighbouring pixels differ by a small fraction of the range
    assert np.abs(np.diff(a, axis=1)).max() < 0.05
    assert np.abs(np.diff(a, axis=0)).max() < 0.05


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: dimming.vignette((10, 10), darkest=0.0), ValueError),
        (lambda: dimming.vignette((10,)), ValueError),
        (lambda: dimming.vignette((0, 5)), ValueError),
        (lambda: dimming.smooth_random_field((10, 10), correlation_length=2.0), ValueError),
        (lambda: dimming.make_dimming("flash", (10, 10)), ValueError),
        (lambda: dimming.make_dimming(3, (10, 10)), TypeError),
    ],
)
def test_bad_dimming_arguments(call, error):
    with pytest.raises(error):
        call()


def test_psnr_and_ssim(rng):
    a = rng.random((32, 32))
    b = np.clip(a + 0.01, 0, 1)
    assert metrics.psnr(a, a) == np.inf
    assert 35 < metrics.psnr(a, b) < 45
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    rgb = rng.random((32, 32, 3))
    assert metrics.ssim(rgb, rgb, channel_axis=-1) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(a, rgb)
