"""The formation model (METHOD.md section 2) against independent computations."""

import numpy as np
import pytest

import napari_lowlight as nl
from napari_lowlight import degrade
from napari_lowlight._noise import position_normal


def seeded_noise(seed, shape):
    """The documented noise: position-keyed deviates, key drawn after the dimming's spawn."""
    rng = np.random.default_rng(seed)
    rng.spawn(1)
    return position_normal(int(rng.integers(0, 2**64, dtype=np.uint64)), shape)


def reference_dark(J, k, r, sigma, bits, seed):
    """Eq. 6 written out independently: Q(k J^r + n), clipped to [0, 1]."""
    q = 1.0 / (2**bits - 1)
    x = k * J**r
    if sigma > 0:
        x = x + sigma * q * seeded_noise(seed, J.shape)
    return np.clip(q * np.floor(x / q + 0.5), 0.0, 1.0)


@pytest.mark.parametrize("bits", [1, 4, 8, 12, 16])
@pytest.mark.parametrize(("k", "r", "sigma"), [(1 / 30, 1.3, 0.25), (1 / 5, 1.5, 0.0), (0.5, 0.8, 1.0)])
def test_dark_and_reexposed_follow_eq6_eq7(rng, bits, k, r, sigma):
    J = rng.random((40, 50))
    result = degrade(J, k=k, r=r, sigma=sigma, bits=bits, seed=7)
    q = 1.0 / (2**bits - 1)
    np.testing.assert_allclose(result.dark, reference_dark(J, k, r, sigma, bits, 7), atol=1e-12)
    # on the grid of multiples of q, inside [0, 1]
    levels = result.dark / q
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-9)
    assert result.dark.min() >= 0.0 and result.dark.max() <= 1.0
    # Eq. 7, clipped to [0, 1]
    np.testing.assert_allclose(
        result.reexposed, np.minimum((result.dark / k) ** (1 / r), 1.0), rtol=1e-12
    )
    assert result.q == pytest.approx(q)
    assert result.quantization.bits == bits and result.quantization.r == r
    np.testing.assert_array_equal(result.quantization.levels, np.round(levels))


@pytest.mark.parametrize(("sigma", "bits"), [(0.0, 8), (0.25, 8), (1.0, 8), (0.25, 12), (0.6, 16)])
def test_error_spread_is_noise_plus_uniform_quantization(sigma, bits):
    """std(dark - k J^r) = sqrt(sigma^2 + 1/12) q away from the clipped ends."""
    k, r = 0.5, 1.0
    q = 1.0 / (2**bits - 1)
    J = np.linspace(0.1, 0.9, 400 * 500).reshape(400, 500)  # dense ramp: uniform phase
    result = degrade(J, k=k, r=r, sigma=sigma, bits=bits, seed=3)
    error = result.dark - k * J**r
    expected = np.sqrt(sigma**2 + 1 / 12) * q
    assert np.std(error) == pytest.approx(expected, rel=0.02)
    assert abs(np.mean(error)) < 0.02 * q
    if sigma == 0:
        assert np.max(np.abs(error)) <= q / 2 + 1e-12


def test_noise_is_seeded():
    J = np.full((30, 30), 0.5)
    a = degrade(J, sigma=1.0, seed=11)
    b = degrade(J, sigma=1.0, seed=11)
    c = degrade(J, sigma=1.0, seed=12)
    np.testing.assert_array_equal(a.dark, b.dark)
    assert not np.array_equal(a.dark, c.dark)
    # a Generator is accepted too and gives the same stream as its seed
    d = degrade(J, sigma=1.0, seed=np.random.default_rng(11))
    np.testing.assert_array_equal(a.dark, d.dark)
    degrade(J, seed=None)  # fresh entropy works


def test_integer_inputs_are_scaled_by_their_effective_depth(rng):
    # one rule (intensity.infer_bits): the smallest of 8/10/12/14/16 bits holding the maximum
    J8 = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    J16 = rng.integers(0, 65536, (20, 30), dtype=np.uint16)
    J12 = rng.integers(0, 4096, (20, 30), dtype=np.uint16)  # a 12-bit camera's frame
    J12[0, 0] = 4095
    Ji16 = rng.integers(0, 32768, (20, 30), dtype=np.int16)
    Ji16[0, 0] = 32767
    for J, scale in ((J8, 255.0), (J16, 65535.0), (J12, 4095.0), (Ji16, 65535.0)):
        from_int = degrade(J, sigma=0.5, seed=1, bits=12)
        from_float = degrade(J / scale, sigma=0.5, seed=1, bits=12)
        np.testing.assert_array_equal(from_int.dark, from_float.dark)
        assert from_int.dark.dtype == np.float64


def test_float32_in_float32_out(rng):
    J = rng.random((16, 16)).astype(np.float32)
    result = degrade(J, seed=0)
    assert result.dark.dtype == np.float32 and result.reexposed.dtype == np.float32
    assert degrade(J.astype(np.float16), seed=0).dark.dtype == np.float32


def test_rgb_channel_axis_positions_agree(smooth_rgb):
    last = degrade(smooth_rgb, sigma=0.0, dimming="vignette", channel_axis=-1)
    first = degrade(np.moveaxis(smooth_rgb, -1, 0), sigma=0.0, dimming="vignette", channel_axis=0)
    np.testing.assert_array_equal(np.moveaxis(first.dark, 0, -1), last.dark)
    assert last.channel_axis == 2 and first.channel_axis == 0
    # one dimming map for all channels
    assert last.dimming.shape == (64, 80, 1)


def test_nd_stack_shares_the_dimming_map_across_planes(rng):
    plane = rng.random((24, 32))
    stack = np.broadcast_to(plane, (3, 4, 24, 32)).copy()  # (t, z, y, x)
    result = degrade(stack, sigma=0.0, k=0.2, dimming="vignette")
    assert result.dark.shape == stack.shape
    for t in range(3):
        for z in range(4):
            np.testing.assert_array_equal(result.dark[t, z], result.dark[0, 0])
    single = degrade(plane, sigma=0.0, k=0.2, dimming="vignette")
    np.testing.assert_array_equal(result.dark[1, 2], single.dark)


def test_dimming_map_multiplies_k(rng):
    J = rng.random((20, 25))
    dim = nl.dimming.vignette((20, 25), darkest=0.25)
    result = degrade(J, k=0.4, r=1.2, sigma=0.3, bits=10, dimming=dim, seed=5)
    np.testing.assert_allclose(
        result.dark, reference_dark(J, 0.4 * dim, 1.2, 0.3, 10, 5), atol=1e-12
    )
    np.testing.assert_allclose(result.quantization.k, 0.4 * dim)
    np.testing.assert_allclose(
        result.reexposed, np.minimum((result.dark / (0.4 * dim)) ** (1 / 1.2), 1.0), rtol=1e-12
    )
    # a map broadcasting along rows is accepted
    row = degrade(J, k=0.4, dimming=np.linspace(0.5, 1.0, 25), seed=5)
    assert row.quantization.k.shape == (1, 25)


def test_random_dimming_is_seeded_and_keeps_the_noise_stream(rng):
    J = rng.random((40, 60))
    a = degrade(J, k=0.5, sigma=0.5, dimming="random", seed=9)
    b = degrade(J, k=0.5, sigma=0.5, dimming="random", seed=9)
    c = degrade(J, k=0.5, sigma=0.5, dimming="random", seed=10)
    np.testing.assert_array_equal(a.dimming, b.dimming)
    assert not np.allclose(a.dimming, c.dimming)
    assert a.dimming.min() == pytest.approx(0.2) and a.dimming.max() == pytest.approx(1.0)
    # the noise does not depend on the dimming chosen
    np.testing.assert_allclose(
        a.dark, reference_dark(J, 0.5 * a.dimming, 1.3, 0.5, 8, 9), atol=1e-12
    )


def test_input_untouched_and_outputs_are_new_arrays(smooth_rgb):
    image = smooth_rgb.copy()
    image.setflags(write=False)  # read-only input must work
    result = degrade(image, channel_axis=-1, seed=0)
    np.testing.assert_array_equal(image, smooth_rgb)
    for out in (result.dark, result.reexposed):
        assert not np.shares_memory(out, image)
    # k = 1, r = 1, lots of bits, no noise: output equals input but is a new array
    same = degrade(image, k=1.0, r=1.0, sigma=0.0, bits=16, channel_axis=-1)
    np.testing.assert_allclose(same.reexposed, image, atol=1 / 65535)
    assert not np.shares_memory(same.reexposed, image)


def test_dimming_map_input_untouched():
    dim = np.full((10, 10), 0.5)
    degrade(np.full((10, 10), 0.5), dimming=dim, seed=0)
    np.testing.assert_array_equal(dim, 0.5)


GOOD = np.full((8, 8), 0.5)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"image": np.full((8, 8), np.nan)}, ValueError, "NaN"),
        ({"image": np.array([[0.5, np.inf]])}, ValueError, "infinite"),
        ({"image": np.zeros((0, 5))}, ValueError, "empty"),
        ({"image": np.full((8, 8), 1.5)}, ValueError, "[0, 1]"),
        ({"image": np.full((8, 8), -0.1)}, ValueError, "[0, 1]"),
        ({"image": np.full((8, 8), -3, dtype=np.int16)}, ValueError, "negative"),
        ({"image": np.ones((8, 8), dtype=bool)}, TypeError, "boolean"),
        ({"image": np.ones((8, 8), dtype=complex)}, TypeError, "complex"),
        ({"image": "picture.png"}, TypeError, "array"),
        ({"image": np.full(8, 0.5)}, ValueError, "spatial dimensions"),
        ({"k": 0.0}, ValueError, "k must be > 0"),
        ({"k": 1.5}, ValueError, "k must be <= 1"),
        ({"k": -0.1}, ValueError, "k must be > 0"),
        ({"k": float("nan")}, ValueError, "k must be finite"),
        ({"k": "1/30"}, TypeError, "k must be a real number"),
        ({"r": 0.0}, ValueError, "r must be > 0"),
        ({"r": -1.3}, ValueError, "r must be > 0"),
        ({"bits": 0}, ValueError, "bits must be in 1..16"),
        ({"bits": 17}, ValueError, "bits must be in 1..16"),
        ({"bits": 8.0}, TypeError, "bits must be an integer"),
        ({"bits": True}, TypeError, "bits must be an integer"),
        ({"sigma": -0.25}, ValueError, "sigma must be >= 0"),
        ({"channel_axis": 2}, ValueError, "channel_axis=2 does not fit"),
        ({"channel_axis": -3}, ValueError, "channel_axis=-3 does not fit"),
        ({"channel_axis": 1.0}, TypeError, "channel_axis must be an integer"),
        ({"image": np.full((8, 3), 0.5), "channel_axis": -1}, ValueError, "spatial dimensions"),
        ({"dimming": "spotlight"}, ValueError, "unknown dimming"),
        ({"dimming": np.full((4, 4), 0.5)}, ValueError, "does not broadcast"),
        ({"dimming": np.full((8, 8), -0.5)}, ValueError, "> 0"),
        ({"dimming": np.full((8, 8), 40.0)}, ValueError, "k * dimming must be <= 1"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(kwargs, error, words):
    args = {"image": GOOD, **kwargs}
    image = args.pop("image")
    with pytest.raises(error) as info:
        degrade(image, **args)
    assert words in str(info.value)


def test_position_keyed_noise_is_standard_normal_and_block_independent():
    from scipy import stats

    z = position_normal(123, (300, 400))
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert stats.kstest(z.ravel()[::7], "norm").pvalue > 1e-3
    # neighbours (both directions) are uncorrelated
    assert abs(np.corrcoef(z[:, 1:].ravel(), z[:, :-1].ravel())[0, 1]) < 0.01
    assert abs(np.corrcoef(z[1:].ravel(), z[:-1].ravel())[0, 1]) < 0.01
    # any block equals the same region of the whole; other keys differ
    where = (slice(17, 120), slice(250, 399))
    np.testing.assert_array_equal(position_normal(123, (300, 400), where), z[where])
    assert np.abs(position_normal(124, (300, 400)) - z).mean() > 1.0
