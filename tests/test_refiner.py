"""The refiner: a learned convex blend inside the intervals, shipped with the default."""

import json

import numpy as np
import pytest
import torch

import napari_lowlight as nl
from napari_lowlight.dequantizer.refiner import (
    SMOOTHING_SIGMAS,
    Refiner,
    load_refiner,
    refiner_candidates,
    refiner_for,
    refiner_training_data,
    save_refiner,
    train_refiner,
)
from napari_lowlight.dequantizer.weights import (
    WeightsError,
    available_models,
    load_generator,
    sha256_of,
)
from napari_lowlight.metrics import psnr


@pytest.fixture(scope="module")
def smooth_capture():
    """A smooth fluorescence-like field captured at 12 bits, k = 1/64, with noise: where
    the network alone leaves dither that the refiner's smoothed candidates remove."""
    rows, cols = np.mgrid[0:96, 0:128]
    image = 0.15 + 0.7 * np.exp(-((rows - 40) ** 2 + (cols - 70) ** 2) / (2 * 30.0**2))
    image += 0.1 * np.exp(-((rows - 80) ** 2 + (cols - 20) ** 2) / (2 * 12.0**2))
    return np.clip(image, 0, 1), nl.degrade(image, k=1 / 64, r=1.0, sigma=0.25, bits=12,
                                            seed=5)


def test_the_default_ships_a_checked_refiner():
    entry = available_models()["default"]
    assert entry["refiner"]["sha256"] == sha256_of(
        f"{entry['folder']}/{entry['refiner']['file']}")
    refiner = refiner_for("default")
    assert isinstance(refiner, Refiner) and refiner.sigmas == SMOOTHING_SIGMAS
    # the earlier models, and anything not a registered name, have none
    assert refiner_for("unet-v2") is None
    assert refiner_for(load_generator("default")) is None


def test_candidates_stay_in_the_projection(smooth_capture):
    _, cap = smooth_capture
    quant = cap.quantization
    lower, upper = quant.bounds(noise=0.25)
    network = quant.project(cap.reexposed + 0.01, margin=0.001, noise=0.25)
    stack = refiner_candidates(cap.reexposed, network,
                               lambda image: np.clip(image, lower, upper))
    assert stack.shape == (2 + len(SMOOTHING_SIGMAS),) + cap.reexposed.shape
    np.testing.assert_array_equal(stack[0], cap.reexposed.astype(np.float32))
    np.testing.assert_array_equal(stack[1], network.astype(np.float32))
    assert (stack[2:] >= lower.astype(np.float32) - 1e-7).all()
    assert (stack[2:] <= upper.astype(np.float32) + 1e-7).all()


def test_output_is_a_convex_blend_of_the_candidates():
    refiner = Refiner(width=8)
    with torch.no_grad():
        for parameter in refiner.parameters():
            parameter.normal_(0, 1)  # any weights at all: the softmax keeps it convex
    candidates = torch.rand(2, 2 + len(SMOOTHING_SIGMAS), 24, 24)
    refined = refiner(candidates, torch.full((2, 1, 24, 24), 1 / 64))
    assert (refined >= candidates.min(dim=1, keepdim=True).values - 1e-6).all()
    assert (refined <= candidates.max(dim=1, keepdim=True).values + 1e-6).all()
    assert not torch.allclose(refined, candidates[:, 1:2])


def test_refined_default_is_consistent_and_better_on_smooth_content(smooth_capture):
    image, cap = smooth_capture
    quant = cap.quantization
    plain = nl.dequantize(cap.reexposed, quantization=quant, noise=0, refine=False)
    refined = nl.dequantize(cap.reexposed, quantization=quant, noise=0)
    assert refined.dtype == np.float32 and refined.shape == image.shape
    # strict projection: every reachable pixel still re-quantizes to its level
    assert (quant.is_consistent(refined) | ~quant.reachable).all()
    # measured: +1.4 dB here (docs/results.md: +0.6 dB mean at 12 bit on 32 images)
    assert psnr(image, refined) > psnr(image, plain) + 0.5
    auto = nl.dequantize(cap.reexposed, quantization=quant)  # noise judged, refined
    assert psnr(image, auto) > psnr(image, nl.dequantize(
        cap.reexposed, quantization=quant, refine=False)) + 0.5


def test_refine_options(smooth_capture):
    _, cap = smooth_capture
    quant = cap.quantization
    raw = nl.dequantize(cap.reexposed, quantization=quant, project=False)
    np.testing.assert_array_equal(  # "auto" without the projection: the raw output
        raw, nl.dequantize(cap.reexposed, quantization=quant, project=False, refine=False))
    with pytest.raises(ValueError, match="projection"):
        nl.dequantize(cap.reexposed, quantization=quant, project=False, refine=True)
    with pytest.raises(ValueError, match="has no refiner"):
        nl.dequantize(cap.reexposed, quantization=quant, model="unet-v2", refine=True)
    with pytest.raises(ValueError, match="refine must be"):
        nl.dequantize(cap.reexposed, quantization=quant, refine="yes")
    # a model without one: "auto" is the plain projected output
    np.testing.assert_array_equal(
        nl.dequantize(cap.reexposed, quantization=quant, model="unet-v2"),
        nl.dequantize(cap.reexposed, quantization=quant, model="unet-v2", refine=False))
    # a Refiner object can be passed to any model
    explicit = nl.dequantize(cap.reexposed, quantization=quant, model=load_generator("default"),
                             refine=refiner_for("default"))
    np.testing.assert_allclose(
        explicit, nl.dequantize(cap.reexposed, quantization=quant), atol=1e-6)


def test_dask_input_gives_the_refined_in_memory_result(smooth_capture):
    da = pytest.importorskip("dask.array")
    _, cap = smooth_capture
    quant = cap.quantization
    stack = np.stack([cap.reexposed, cap.reexposed[::-1]])
    levels = np.stack([quant.levels, quant.levels[::-1]])
    stack_quant = nl.Quantization(levels, k=quant.k, r=quant.r, bits=quant.bits)
    eager = nl.dequantize(stack, quantization=stack_quant, noise=0.25)
    lazy = nl.dequantize(da.from_array(stack, chunks=(1, 96, 128)),
                         quantization=nl.Quantization(da.from_array(levels, chunks=(1, 96, 128)),
                                                      k=quant.k, r=quant.r, bits=quant.bits),
                         noise=0.25)
    np.testing.assert_allclose(np.asarray(lazy), eager, atol=1e-5)


def test_refiner_files_are_checked(tmp_path):
    refiner = Refiner(width=4)
    path = tmp_path / "r.safetensors"
    sha = save_refiner(refiner, path, extra={"note": "test"})
    loaded = load_refiner(path, sha256=sha)
    for name, tensor in refiner.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor)
    with pytest.raises(WeightsError, match="sha256"):
        load_refiner(path, sha256="0" * 64)
    # smoothings of Jt as extra candidates travel with the file
    classic_too = Refiner(width=4, input_sigmas=(1.5,))
    save_refiner(classic_too, tmp_path / "c.safetensors")
    again = load_refiner(tmp_path / "c.safetensors")
    assert again.input_sigmas == (1.5,) and again.sigmas == SMOOTHING_SIGMAS
    assert again.body[0].in_channels == 2 + len(SMOOTHING_SIGMAS) + 1
    with pytest.raises(WeightsError, match="missing"):
        load_refiner(tmp_path / "none.safetensors")
    broken = Refiner(width=4)
    with torch.no_grad():
        broken.body[0].weight[0, 0, 0, 0] = float("nan")
    save_refiner(broken, tmp_path / "nan.safetensors")
    with pytest.raises(WeightsError, match="non-finite"):
        load_refiner(tmp_path / "nan.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="not a refiner"):
        load_refiner(tmp_path / "junk.safetensors")
    # a generator's file is not a refiner's
    entry = available_models()["unet-v2"]
    with pytest.raises(WeightsError, match="not a refiner"):
        load_refiner(f"{entry['folder']}/{entry['file']}")


def test_training_learns_to_smooth_dither():
    """On smooth crops with noisy captures the trained refiner beats the network alone."""
    from napari_lowlight.dequantizer.pairs import PairSettings

    rows, cols = np.mgrid[0:48, 0:48]
    images = [np.clip(0.5 + 0.4 * np.sin(rows / (6.0 + i)) * np.cos(cols / (9.0 - i)), 0, 1)
              for i in range(4)]
    settings = PairSettings(crop=32, k_range=(1 / 64, 1 / 32), sigma_range=(0.3, 0.6),
                            bits_choices=(12,), dimming_probability=0.0)
    generator = load_generator("default")
    candidates, steps, targets = refiner_training_data(generator, images, settings, pairs=24,
                                                       seed=1)
    assert candidates.shape == (24, 2 + len(SMOOTHING_SIGMAS), 32, 32)
    gains = []
    refiner = train_refiner(candidates, steps, targets, iterations=120, batch=8, crop=24,
                            progress=lambda it, gain: gains.append(gain))
    with torch.no_grad():
        refined = refiner(torch.from_numpy(candidates), torch.from_numpy(steps)).numpy()
    error = np.mean((refined - targets) ** 2)
    network_error = np.mean((candidates[:, 1:2] - targets) ** 2)
    assert error < network_error
    assert json.dumps(gains)  # reported as plain floats


def test_local_texture_matches_scipy_and_sees_pixel_noise():
    from scipy.ndimage import gaussian_filter

    from napari_lowlight.dequantizer.refiner import TEXTURE_DETAIL_SIGMA, local_texture

    rng = np.random.default_rng(0)
    values = np.clip(0.3 + 0.05 * rng.standard_normal((40, 56)), 0, 1)
    step = np.full(values.shape, 1 / 64)
    detail = (values - gaussian_filter(values, TEXTURE_DETAIL_SIGMA, mode="nearest")) / step
    expected = np.sqrt(gaussian_filter(detail**2, 4.0, mode="nearest"))
    got = local_texture(torch.from_numpy(values)[None, None], torch.from_numpy(step)[None, None],
                        4.0)[0, 0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    # a smooth ramp has almost none; white noise of 3 steps reads about 3 * 0.93
    ramp = np.linspace(0.2, 0.6, 64)[None].repeat(64, 0)
    smooth = local_texture(torch.from_numpy(ramp)[None, None],
                           torch.full((1, 1, 64, 64), 1 / 64, dtype=torch.float64), 4.0)
    assert float(smooth[..., 24:-24, 24:-24].max()) < 0.01  # away from the edges
    noisy = ramp + 3 / 64 * rng.standard_normal(ramp.shape)
    texture = local_texture(torch.from_numpy(noisy)[None, None],
                            torch.full((1, 1, 64, 64), 1 / 64, dtype=torch.float64), 4.0)
    assert 2.4 < float(texture[..., 12:-12, 12:-12].mean()) < 3.2
    # a saturated region, whose levels keep part of a step of interval or none: its edge
    # is counted in whole steps, not in the cut widths (nor in the 1e-6 floor of none)
    scene = np.full((64, 64), 0.9)
    scene[:, 32:] = 0.995
    cap = nl.degrade(scene, k=1 / 64, r=1.0, sigma=0.25, bits=12, seed=0)
    width = cap.quantization.interval_width
    assert (width[:, 34:] < 0.75 / 64).mean() > 0.3
    saturated = local_texture(torch.from_numpy(cap.reexposed)[None, None],
                              torch.from_numpy(width)[None, None].clamp(min=1e-6), 4.0)
    # (the 6-step edge itself reads as detail, as any edge does: away from it, noise only)
    assert float(saturated[..., 44:].max()) < 0.8
    # deep inside an unreachable (zero-width) region the edge is counted in the widest step
    # within the detail's reach, not in a tiny floor (it read millions of steps before
    # session 29)
    values = np.where(np.arange(64)[None] < 40, 0.97, 1.0).repeat(32, 0)
    widths = np.where(np.arange(64)[None] < 40, 1 / 64, 0.0).repeat(32, 0)
    inside = local_texture(torch.from_numpy(values)[None, None],
                           torch.from_numpy(widths)[None, None], 4.0)
    assert torch.isfinite(inside).all() and float(inside[..., 42:].max()) < 2.0


def _wavy_capture(rows, cols, seed):
    """A 12-bit capture of a wavy scene at k = 1/64, and the network's projected output."""
    rng = np.random.default_rng(seed)
    image = np.clip(0.4 + 0.2 * np.sin(np.mgrid[0:rows, 0:cols][1] / 7.0)
                    + 0.02 * rng.standard_normal((rows, cols)), 0, 1)
    cap = nl.degrade(image, k=1 / 64, r=1.0, sigma=0.25, bits=12, seed=3)
    projected = nl.dequantize(cap.reexposed, quantization=cap.quantization, noise=0.25,
                              refine=False)
    return cap, cap.quantization, projected


def test_texture_refiner_travels_with_its_file_and_tiles_like_the_whole(tmp_path):
    from napari_lowlight.dequantizer.inference import refine_projected

    refiner = Refiner(width=6, texture_sigma=4.0)
    with torch.no_grad():
        for parameter in refiner.parameters():
            parameter.normal_(0, 0.5)
    assert refiner.body[0].in_channels == 2 + len(SMOOTHING_SIGMAS) + 1
    save_refiner(refiner, tmp_path / "t.safetensors")
    loaded = load_refiner(tmp_path / "t.safetensors")
    assert loaded.texture_sigma == 4.0
    cap, quant, projected = _wavy_capture(80, 96, seed=2)
    whole = refine_projected(loaded, cap.reexposed, projected, quant, noise=0.25)
    same = refine_projected(refiner, cap.reexposed, projected, quant, noise=0.25)
    np.testing.assert_array_equal(whole, same)
    # a tile with the refiner's halo gives the whole image's result inside it
    halo = loaded.halo()
    rows = slice(20, 60)
    outer = slice(max(0, 20 - halo), min(80, 60 + halo))
    sub_quant = nl.Quantization(quant.levels[outer], k=quant.k, r=quant.r, bits=quant.bits)
    tile = refine_projected(loaded, cap.reexposed[outer], projected[outer], sub_quant,
                            noise=0.25)
    start = rows.start - outer.start
    np.testing.assert_allclose(tile[start:start + 40], whole[rows], atol=1e-6)
    # a texture window beyond the limits is refused
    with pytest.raises(WeightsError, match="beyond the limits"):
        save_refiner(Refiner(width=4, texture_sigma=40.0), tmp_path / "big.safetensors")
        load_refiner(tmp_path / "big.safetensors")


def test_channels_last_refiner_gives_the_contiguous_result():
    # refine_plane runs the CNN channels-last (faster on the CPU), load_refiner returns it
    # so: the values must not depend on the layout
    from napari_lowlight.dequantizer.refiner import refine_plane

    torch.manual_seed(3)
    refiner = Refiner(texture_sigma=4.0).eval()
    with torch.no_grad():
        for parameter in refiner.parameters():
            parameter.normal_(0.0, 0.3)
    rng = np.random.default_rng(0)
    values = rng.random((70, 90)).astype(np.float32)
    network = np.clip(values + 0.004 * rng.standard_normal(values.shape), 0, 1)
    step = np.full(values.shape, 1 / 255, np.float32)

    def project(image):
        return np.clip(image, values - 0.004, values + 0.004)

    candidates = refiner_candidates(values, network, project, refiner.sigmas)
    with torch.no_grad():
        expected = refiner(torch.from_numpy(candidates)[None],
                           torch.from_numpy(step)[None, None]).numpy()[0, 0]
    refined = refine_plane(refiner, values, network, step, project)
    assert refiner.body[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert np.abs(refined - np.clip(expected, 0, 1)).max() < 1e-6
    assert np.abs(expected - network).max() > 1e-4  # the blend did move the network's output


def test_dilated_refiner_travels_with_its_file_and_tiles_like_the_whole(tmp_path):
    from napari_lowlight.dequantizer.inference import refine_projected

    refiner = Refiner(width=4, dilations=(1, 2, 4, 8, 16))
    assert refiner.reach == 31 and Refiner().reach == 7
    with torch.no_grad():
        for parameter in refiner.parameters():
            parameter.normal_(0, 0.5)
    save_refiner(refiner, tmp_path / "d.safetensors")
    loaded = load_refiner(tmp_path / "d.safetensors")
    assert loaded.dilations == (1, 2, 4, 8, 16)
    cap, quant, projected = _wavy_capture(120, 96, seed=4)
    whole = refine_projected(loaded, cap.reexposed, projected, quant, noise=0.25)
    np.testing.assert_array_equal(
        whole, refine_projected(refiner, cap.reexposed, projected, quant, noise=0.25))
    # the halo covers the wider reach: a tile gives the whole image's result inside it...
    halo = loaded.halo()
    assert halo >= 31 + 12
    outer = slice(50 - halo, 70 + halo)
    sub_quant = nl.Quantization(quant.levels[outer], k=quant.k, r=quant.r, bits=quant.bits)
    tile = refine_projected(loaded, cap.reexposed[outer], projected[outer], sub_quant,
                            noise=0.25)
    np.testing.assert_allclose(tile[halo:halo + 20], whole[50:70], atol=1e-6)
    # ...which the old 7-px halo would not have
    short = slice(50 - (halo - 24), 70 + halo - 24)
    sub_quant = nl.Quantization(quant.levels[short], k=quant.k, r=quant.r, bits=quant.bits)
    tile = refine_projected(loaded, cap.reexposed[short], projected[short], sub_quant,
                            noise=0.25)
    assert np.abs(tile[halo - 24:halo - 4] - whole[50:70]).max() > 1e-5
    with pytest.raises(ValueError, match="dilations"):
        Refiner(dilations=(1, 0))
    with pytest.raises(WeightsError, match="beyond the limits"):
        save_refiner(Refiner(width=4, dilations=(1,) * 9), tmp_path / "deep.safetensors")
        load_refiner(tmp_path / "deep.safetensors")


@pytest.mark.parametrize("options", [{}, {"texture_sigma": 4.0}, {"dilations": (1, 2, 4, 8)}])
def test_refiner_cnn_on_tiles_gives_the_whole_planes_result(options):
    # refine_plane runs the CNN on tiles (bounded memory on an 8K photograph's planes): with
    # its halo the result is the whole plane's, to float rounding, for every reach
    from napari_lowlight.dequantizer.refiner import refine_plane

    torch.manual_seed(5)
    refiner = Refiner(width=6, **options).eval()
    with torch.no_grad():
        for parameter in refiner.parameters():
            parameter.normal_(0.0, 0.5)
    cap, quant, projected = _wavy_capture(150, 170, seed=4)
    lower, upper = quant.bounds(noise=0.25)

    def project(image):
        return np.clip(image, lower, upper)

    step = quant.interval_width
    whole = refine_plane(refiner, cap.reexposed, projected, step, project, tile=4096)
    tiled = refine_plane(refiner, cap.reexposed, projected, step, project, tile=48)
    assert np.abs(tiled - whole).max() < 1e-6
    assert np.abs(whole - projected).max() > 1e-4  # the blend moved the network's output
    # a tile too small for the halo's sake is still exact: the halo is added around it
    np.testing.assert_allclose(
        refine_plane(refiner, cap.reexposed, projected, step, project, tile=7), whole,
        atol=1e-6)
    with pytest.raises(ValueError, match="tile must be a positive"):
        refine_plane(refiner, cap.reexposed, projected, step, project, tile=0)
