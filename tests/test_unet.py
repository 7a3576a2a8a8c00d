"""The v2 dequantizer network (U-Net) and the training features it came with."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import napari_lowlight as nl
from napari_lowlight.dequantizer.pairs import PairSettings
from napari_lowlight.dequantizer.pairs import test_set_images as skimage_images
from napari_lowlight.dequantizer.inference import _run_plane, default_tile
from napari_lowlight.dequantizer.networks import UNetGenerator, build_generator
from napari_lowlight.dequantizer.training import TrainConfig, train
from napari_lowlight.dequantizer.weights import (
    WeightsError,
    check_config,
    load_generator,
    save_generator,
)


def _busy_unet(depth=3, width=8, seed=0) -> UNetGenerator:
    """A U-Net whose every weight is non-zero (a fresh one is the identity: zero tails)."""
    torch.manual_seed(seed)
    net = UNetGenerator(1, depth, width).eval()
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.5 / np.sqrt(module.weight[0].numel()))
    return net


def test_a_new_unet_is_the_identity():
    net = UNetGenerator(1, 3, 8).eval()
    image = torch.rand(1, 1, 40, 56)
    assert torch.count_nonzero(net(image, torch.full_like(image, 0.01))) == 0


def test_receptive_field_bounds_the_measured_dependence():
    net = _busy_unet(depth=3, width=4)
    image = torch.rand(1, 1, 160, 160, requires_grad=True)
    net(image, torch.full_like(image, 0.02))[0, 0, 80, 80].backward()
    rows, cols = np.nonzero(image.grad[0, 0].numpy())
    extent = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
    # a real dependence over most of the stated field, never beyond it
    assert 0.7 * net.network_receptive_field <= extent <= net.network_receptive_field


@pytest.mark.parametrize("shape", [(97, 130), (64, 64), (33, 200)])
def test_any_image_size_keeps_its_shape(shape):
    net = _busy_unet()
    image = torch.rand(2, 1, *shape)
    out = net(image, torch.full_like(image, 0.01))
    assert out.shape == image.shape and torch.isfinite(out).all()


def test_tiled_equals_whole_plane():
    net = _busy_unet(depth=3, width=8)
    rng = np.random.default_rng(1)
    plane = rng.random((150, 211)).astype(np.float32)
    step = np.full_like(plane, 1 / 64)
    whole = _run_plane(net, plane, step, torch.device("cpu"), tile=None)
    tiled = _run_plane(net, plane, step, torch.device("cpu"), tile=40)  # rounded up to 48
    assert np.abs(whole).max() > 1e-3  # the network does change the image
    np.testing.assert_allclose(tiled, whole, atol=1e-5 * max(1.0, np.abs(whole).max()))


def test_default_tile_is_the_whole_plane_for_a_unet_and_256_for_the_residual_net():
    cpu = torch.device("cpu")
    assert default_tile(UNetGenerator(1, 3, 4), cpu, (300, 500)) == 500
    assert default_tile(UNetGenerator(1, 3, 4), cpu, (4096, 4096)) == 1024
    assert default_tile(nl.dequantizer.networks.Generator(1, 1, 4), cpu, (300, 500)) == 256


def test_weights_round_trip_through_safetensors(tmp_path):
    net = _busy_unet(depth=2, width=4)
    path = tmp_path / "unet.safetensors"
    save_generator(net, path)
    loaded = load_generator(path)
    assert isinstance(loaded, UNetGenerator) and loaded.config() == net.config()
    image = torch.rand(1, 1, 37, 45)
    step = torch.full_like(image, 0.03)
    assert torch.equal(loaded(image, step), net(image, step))


def test_dequantize_runs_a_unet_given_as_a_module():
    image = skimage_images()["skimage:camera"][:96, :96].astype(np.float64)
    capture = nl.degrade(image, k=1 / 20, r=1.2, sigma=0.0, bits=8, seed=0)
    out = nl.dequantize(capture.reexposed, quantization=capture.quantization,
                        model=_busy_unet(depth=2, width=4), device="cpu")
    assert out.shape == image.shape
    assert capture.quantization.is_consistent(out).mean() > 0.99  # projected


@pytest.mark.parametrize("config, message", [
    ({"architecture": "transformer", "depth": 2, "width": 8}, "unknown generator architecture"),
    ({"architecture": "unet", "depth": 9, "width": 8}, "depth 9"),
    ({"architecture": "unet", "depth": 2, "width": 512, "channels": 4}, None),
    ({"architecture": "unet", "depth": 2, "width": 8, "context_sigmas": [3.0]},
     "context_sigmas"),
])
def test_check_config_refuses_unknown_or_oversized_unets(config, message):
    if message is None:  # within the per-key limits but far beyond the parameter limit
        with pytest.raises(WeightsError, match="values"):
            check_config(config)
    else:
        with pytest.raises(WeightsError, match=message):
            check_config(config)


def test_build_generator_defaults_to_the_residual_network():
    net = build_generator({"channels": 1, "depth": 1, "width": 4, "conditioned": True})
    assert net.architecture == "residual"


def _tiny_config(**changes) -> TrainConfig:
    values = dict(architecture="unet", depth=2, width=4, per_step_seeds=True, batch=2,
                  steps=4, pretrain_steps=100, validate_every=2, checkpoint_every=2,
                  validation_pairs=2, pairs=PairSettings(crop=32))
    values.update(changes)
    return TrainConfig(**values)


def _images():
    images = skimage_images()
    return [images["skimage:coins"], images["skimage:moon"]], [images["skimage:camera"]]


def _weights(run) -> dict:
    return {k: v.clone() for k, v in load_generator(run / "generator.safetensors")
            .state_dict().items()}


def test_per_step_seeds_give_the_same_run_with_or_without_workers(tmp_path):
    training, validation = _images()
    train(training, validation, tmp_path / "inline", config=_tiny_config(), workers=0,
          log=lambda *a: None)
    train(training, validation, tmp_path / "workers", config=_tiny_config(), workers=2,
          log=lambda *a: None)
    a, b = _weights(tmp_path / "inline"), _weights(tmp_path / "workers")
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_a_run_cut_in_two_equals_an_uninterrupted_one_with_ema(tmp_path):
    training, validation = _images()
    config = _tiny_config(ema_decay=0.5)
    train(training, validation, tmp_path / "whole", config=config, log=lambda *a: None)
    train(training, validation, tmp_path / "cut", config=config, max_steps=2,
          log=lambda *a: None)
    train(training, validation, tmp_path / "cut", config=config, log=lambda *a: None)
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    assert all(torch.equal(a[key], b[key]) for key in a)
    history = [json.loads(line) for line in (tmp_path / "whole" / "history.jsonl").open()]
    assert [row["step"] for row in history] == [2, 4]


def test_the_saved_generator_is_the_moving_average(tmp_path):
    training, validation = _images()
    train(training, validation, tmp_path, config=_tiny_config(ema_decay=0.9),
          log=lambda *a: None)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    saved = _weights(tmp_path)
    assert all(torch.equal(saved[key], state["average"][key]) for key in saved)
    assert any(not torch.equal(state["average"][key], state["generator"][key])
               for key in saved)


def test_dask_input_with_unaligned_chunks_equals_in_memory():
    import dask.array as da

    net = _busy_unet(depth=2, width=4)  # a grid of 4 px, receptive field 73 px
    camera = skimage_images()["skimage:camera"][:, :300].astype(np.float64)
    image = np.vstack([camera, camera[:200]])  # 712 rows: more than two 256-px chunks
    capture = nl.degrade(image, k=1 / 20, r=1.2, sigma=0.0, bits=8, seed=0)
    jt = capture.reexposed
    expected = nl.dequantize(jt, quantization=capture.quantization, model=net, device="cpu",
                             project=False)
    lazy = da.from_array(jt, chunks=(101, 77))  # neither aligned nor as large as the halo
    out = nl.dequantize(lazy, quantization=capture.quantization, model=net, device="cpu",
                        project=False)
    assert isinstance(out, da.Array)
    np.testing.assert_allclose(out.compute(), expected, atol=1e-5)


def test_flops_per_pixel_counts_each_convolution_at_the_resolution_it_runs_at():
    from napari_lowlight.dequantizer.networks import Generator, flops_per_pixel

    def stride_one_sum(net):  # every convolution as if it ran at full resolution
        return sum(2 * m.in_channels // m.groups * m.out_channels * m.kernel_size[0]
                   * m.kernel_size[1] for m in net.modules() if isinstance(m, torch.nn.Conv2d))

    residual = Generator(1, depth=3, width=8)  # stride 1 throughout: the sum is exact
    assert flops_per_pixel(residual, side=64) == pytest.approx(stride_one_sum(residual))
    unet = UNetGenerator(1, 3, 8)
    # the same per pixel at any size (a count, not a timing) ...
    assert flops_per_pixel(unet, side=64) == pytest.approx(flops_per_pixel(unet, side=128))
    # ... and far below the full-resolution sum: the device report's U-Net "454 TFLOP/s"
    # in fp32 (session 30) came from that sum
    assert flops_per_pixel(unet, side=64) < 0.5 * stride_one_sum(unet)
    with pytest.raises(ValueError, match="at least 8"):
        flops_per_pixel(unet, side=4)
