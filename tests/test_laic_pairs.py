"""Training pairs whose input is LAIC's output (issue 13, item 2)."""

import numpy as np
import pytest

pytest.importorskip("torch")

from napari_lowlight.dequantizer.pairs import PairSettings, make_batch, make_pair  # noqa: E402


def _scene(size=96):
    yy, xx = np.mgrid[0:size, 0:size] / size
    return (0.15 + 0.7 * xx * (0.5 + 0.5 * np.sin(6 * yy))).astype(np.float32)


def test_laic_pair_is_laics_output_and_its_intervals_hold_the_target():
    settings = PairSettings(crop=96, sigma_range=(0.0, 0.0), dimming_probability=0.0,
                            bits_choices=(8,), laic_probability=1.0)
    pair = make_pair(_scene(), np.random.default_rng(3), settings)
    assert float(pair["r"]) == 1.0
    gain = 1.0 / pair["k"]
    # LAIC brightens: the gain is above 1 and the input is the dark levels times it
    assert gain.min() > 1.0
    np.testing.assert_allclose(pair["input"], np.clip(gain * pair["dark"], 0, 1), atol=1e-5)
    # the step is LAIC's: q times the gain, not the capture's q / k (inner intervals: the
    # end levels' intervals are cut at 0 and 1)
    inner = (pair["lower"] > 0) & (pair["upper"] < 1)
    assert inner.mean() > 0.5
    np.testing.assert_allclose(pair["step"][inner], (pair["q"] * gain)[inner], rtol=1e-4)
    # noise-free: re-darkening the target lands in the observed level's interval
    # (level 0 is open below: the sensor clips)
    error = (pair["dark"] - pair["k"] * pair["target"]) / pair["q"]
    inside = (np.abs(error) <= 0.5 + 1e-3) | (pair["dark"] < 0.5 * pair["q"])
    assert inside.all()
    assert ((pair["target"] >= pair["lower"] - 1e-5) & (pair["target"] <= pair["upper"] + 1e-5)
            ).mean() > 0.99


def test_laic_pairs_are_reproducible_from_the_seed():
    # resumed runs and worker processes rebuild a step's batch from its seed
    settings = PairSettings(crop=64, laic_probability=1.0)
    first = make_pair(_scene(80), np.random.default_rng(7), settings)
    again = make_pair(_scene(80), np.random.default_rng(7), settings)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])


def test_share_of_laic_pairs_and_default_off():
    assert PairSettings().laic_probability == 0.0
    settings = PairSettings(crop=48, laic_probability=0.5, bits_choices=(8,))
    batch = make_batch([_scene(64)], np.random.default_rng(0), 12, settings)
    # plain pairs draw r from [1, 1.8] (r = 1 has probability 0); LAIC pairs have r = 1
    assert 2 <= int((batch["r"] == 1.0).sum()) <= 10


def test_image_smaller_than_the_crop_is_a_clear_error():
    with pytest.raises(ValueError, match="smaller than the 96-px crop"):
        make_pair(_scene(64), np.random.default_rng(0), PairSettings(crop=96))


def test_an_all_black_capture_makes_a_plain_pair():
    # k = 1/64 on a very dark crop quantizes every pixel to level 0: LAIC has no light to
    # work with (it refuses), so the pair stays the plain one instead of stopping training
    settings = PairSettings(crop=32, laic_probability=1.0, k_range=(1 / 64, 1 / 64),
                            sigma_range=(0.0, 0.0), bits_choices=(8,), dimming_probability=0)
    pair = make_pair(np.full((32, 32), 0.01, np.float32), np.random.default_rng(0), settings)
    assert not pair["dark"].any()
    np.testing.assert_allclose(pair["k"], 1 / 64)
