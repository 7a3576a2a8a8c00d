"""Training targets that carry a real sensor's pixel noise (issue 13: real fluorescence)."""

import numpy as np
import pytest

pytest.importorskip("torch")

from napari_lowlight.dequantizer.pairs import (  # noqa: E402
    PairSettings,
    add_reference_noise,
    make_pair,
)


def _scene(size=128):
    yy, xx = np.mgrid[0:size, 0:size] / size
    return (0.2 + 0.6 * xx * (0.5 + 0.5 * np.sin(5 * yy))).astype(np.float32)


def test_reference_noise_follows_the_poisson_gaussian_model():
    flat = np.full((400, 400), 0.4)
    noisy = add_reference_noise(flat, np.random.default_rng(0), gain_range=(4e-3, 4e-3),
                                floor_range=(0.01, 0.01))
    assert noisy.dtype == np.float64 and noisy is not flat
    np.testing.assert_array_equal(flat, 0.4)  # the input untouched
    # variance gain * x + floor**2 = 0.0016 + 0.0001: sigma 0.0412
    assert abs(noisy.std() - np.sqrt(4e-3 * 0.4 + 1e-4)) < 1e-3
    assert abs(noisy.mean() - 0.4) < 1e-3
    # brighter pixels are noisier (shot noise), and the result stays in [0, 1]
    ramp = np.repeat(np.linspace(0.05, 0.95, 2)[None], 200_000, axis=0)
    noisy = add_reference_noise(ramp, np.random.default_rng(1), gain_range=(1e-2, 1e-2),
                                floor_range=(1e-3, 1e-3))
    dark, bright = (noisy - ramp).std(axis=0)
    assert bright > 3 * dark
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0


def test_noisy_targets_stay_inside_their_capture_intervals():
    # the noise belongs to the reference, not to the capture: without capture noise the
    # noisy target still re-quantizes to the observed levels
    settings = PairSettings(crop=96, sigma_range=(0.0, 0.0), dimming_probability=0.0,
                            bits_choices=(12,), k_range=(1 / 64, 1 / 64), r_range=(1.0, 1.0),
                            reference_noise_probability=1.0,
                            reference_noise_gain_range=(1e-3, 1e-3),
                            reference_noise_floor_range=(5e-3, 5e-3))
    pair = make_pair(_scene(), np.random.default_rng(3), settings)
    clean = make_pair(_scene(), np.random.default_rng(3),
                      PairSettings(**{**settings.__dict__, "reference_noise_probability": 0.0}))
    inside = (pair["target"] >= pair["lower"] - 1e-6) & (pair["target"] <= pair["upper"] + 1e-6)
    assert inside.all()
    # the target differs from the clean crop by the noise: several capture steps here
    difference = (pair["target"] - clean["target"]) / pair["step"]
    assert 0.5 < float(difference.std()) < 5.0


def test_reference_noise_is_off_by_default_and_keeps_old_pairs():
    assert PairSettings().reference_noise_probability == 0.0
    base = PairSettings(crop=64)
    off = PairSettings(crop=64, reference_noise_probability=0.0,
                       reference_noise_gain_range=(1e-3, 2e-3))
    first = make_pair(_scene(), np.random.default_rng(5), base)
    again = make_pair(_scene(), np.random.default_rng(5), off)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    noisy = make_pair(_scene(), np.random.default_rng(5),
                      PairSettings(crop=64, reference_noise_probability=1.0))
    assert not np.array_equal(noisy["target"], first["target"])


@pytest.mark.parametrize("bad", [{"reference_noise_probability": 1.5},
                                 {"reference_noise_probability": -0.1},
                                 {"reference_noise_gain_range": (0.0, 1e-3)},
                                 {"reference_noise_floor_range": (2e-2, 1e-2)}])
def test_bad_reference_noise_settings_are_refused(bad):
    with pytest.raises(ValueError, match="reference_noise"):
        PairSettings(**bad)
