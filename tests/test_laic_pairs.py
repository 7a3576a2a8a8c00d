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


def _dihedral_images(image):
    return [np.rot90(image, turns)[:, ::-1] if flip else np.rot90(image, turns)
            for flip in (False, True) for turns in range(4)]


def test_a_reused_laic_pair_fills_its_places_with_distinct_rotations_and_flips():
    settings = PairSettings(crop=48, laic_probability=1.0, laic_reuse=4, bits_choices=(8,),
                            sigma_range=(0.0, 0.0))
    batch = make_batch([_scene(64)], np.random.default_rng(5), 6, settings)
    assert batch["input"].shape == (6, 1, 48, 48)
    # LAIC ran twice: places 0-3 are one capture, 4-5 the start of the next
    for first, count in ((0, 4), (4, 2)):
        views = _dihedral_images(batch["input"][first, 0])
        found = []
        for place in range(first, first + count):
            matches = [index for index, view in enumerate(views)
                       if np.array_equal(view, batch["input"][place, 0])]
            assert matches, f"place {place} is not a rotation/flip of place {first}"
            found.append(matches[0])
            # every map of a pair moves with it: intervals and target stay consistent
            lower, upper, target = (batch[key][place, 0] for key in ("lower", "upper",
                                                                     "target"))
            assert ((target >= lower - 1e-5) & (target <= upper + 1e-5)).mean() > 0.99
            np.testing.assert_array_equal(batch["step"][place, 0],
                                          _dihedral_images(batch["step"][first, 0])[found[-1]])
        assert len(set(found)) == count  # no view twice
    assert not np.array_equal(batch["input"][0, 0], batch["input"][4, 0])


def test_reuse_keeps_the_laic_share_and_reuse_1_the_old_sequence(monkeypatch):
    from napari_lowlight.dequantizer import pairs as pairs_module

    calls = []

    def cheap_laic_pair(crop, capture, rng):
        # the LAIC solve stubbed out (a second each): only how many places they fill counts
        calls.append(1)
        flat = crop.astype(np.float32)
        return {"input": flat, "step": np.full_like(flat, 0.1), "target": flat,
                "dark": capture.dark.astype(np.float32), "k": np.ones_like(flat),
                "r": np.float32(1.0), "noise": np.zeros_like(flat),
                "q": np.float32(capture.q), "lower": flat, "upper": flat}

    monkeypatch.setattr(pairs_module, "_laic_pair", cheap_laic_pair)
    image = [_scene(64)]
    for reuse, p in ((1, 0.2), (2, 0.2), (4, 0.3)):
        settings = PairSettings(crop=32, laic_probability=p, laic_reuse=reuse,
                                bits_choices=(8,))
        calls.clear()
        batch = make_batch(image, np.random.default_rng(1), 2000, settings)
        # plain pairs draw r from [1, 1.8] (r = 1 has probability 0); LAIC pairs have r = 1
        share = float(np.mean(batch["r"] == 1.0))
        assert abs(share - p) < 0.04, (reuse, share)
        # LAIC ran about once per `reuse` LAIC places
        assert abs(len(calls) * reuse / (share * 2000) - 1) < 0.15, (reuse, len(calls))
    # reuse 1 draws what the code before laic_reuse drew: the same pairs from a seed
    settings = PairSettings(crop=32, laic_probability=0.5, bits_choices=(8,))
    batch = make_batch(image, np.random.default_rng(2), 8, settings)
    rng = np.random.default_rng(2)
    for place in range(8):
        pair = make_pair(image[int(rng.integers(0, 1))], rng, settings)
        np.testing.assert_array_equal(batch["input"][place, 0], pair["input"])


def test_laic_reuse_is_checked():
    with pytest.raises(ValueError, match="laic_reuse"):
        PairSettings(laic_reuse=0)
    with pytest.raises(ValueError, match="laic_reuse"):
        PairSettings(laic_reuse=9)
