"""Issue 13, item 1: the interval-parametrised output and the U-Net's optional BatchNorm.

The interval output must stay inside every pixel's quantization interval whatever the network
computes; the default path (residual output, U-Net without normalisation) must stay as it was,
and the shipped weights must still load.
"""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

import napari_lowlight as nl
from napari_lowlight.dequantizer.pairs import PairSettings
from napari_lowlight.dequantizer.networks import UNetGenerator, build_generator, interval_output
from napari_lowlight.dequantizer.training import TrainConfig, restore, train
from napari_lowlight.dequantizer.weights import available_models, load_generator, save_generator


def _tensor(array) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]


@pytest.fixture
def capture():
    """A dark 8-bit capture of a smooth 40x52 gradient (about 10 levels in use)."""
    yy, xx = np.mgrid[0:40, 0:52]
    scene = 0.1 + 0.8 * (xx / 51.0) * (0.6 + 0.4 * np.cos(yy / 9.0))
    return nl.degrade(scene, k=1 / 30, r=1.3, sigma=0.25, bits=8, seed=0)


@pytest.fixture
def images():
    """Smooth random training images (no downloads, quick pair making)."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    return [(0.5 + 0.4 * np.sin(a * xx + b * yy + c)).astype(np.float32)
            for a, b, c in rng.uniform(1, 6, size=(4, 3))]


def _tiny(**changes) -> TrainConfig:
    settings = dict(architecture="unet", depth=2, width=4, batch=2, steps=2, pretrain_steps=100,
                    validate_every=1, checkpoint_every=1, validation_pairs=2,
                    pairs=PairSettings(crop=32))
    return TrainConfig(**{**settings, **changes})


def test_interval_output_stays_inside_the_interval_for_any_logits():
    rng = np.random.default_rng(0)
    lower = torch.from_numpy(rng.uniform(0, 1, 6000).astype(np.float32))
    upper = torch.minimum(lower + torch.from_numpy(rng.uniform(0, 0.3, 6000).astype(np.float32)),
                          torch.tensor(1.0))
    upper[:100] = lower[:100]  # unreachable pixels: lo = hi
    extremes = torch.tensor([-np.inf, -1e30, -100.0, -17.0, 0.0, 17.0, 100.0, 1e30, np.inf])
    logits = torch.cat([torch.from_numpy(rng.normal(0, 20, 6000 - len(extremes))
                                         .astype(np.float32)), extremes])
    out = interval_output(logits, lower, upper)
    assert torch.all(out >= lower) and torch.all(out <= upper)
    # the ends are reached exactly at +-infinity, the middle at 0
    ends = interval_output(torch.tensor([-np.inf, 0.0, np.inf]), torch.tensor(0.2),
                           torch.tensor(0.6))
    assert ends[0] == 0.2 and ends[2] == 0.6 and abs(float(ends[1]) - 0.4) < 1e-7


def test_an_interval_model_is_consistent_with_the_capture_even_when_saturated(capture):
    quant = capture.quantization
    lower, upper = quant.bounds()
    image, step = _tensor(capture.reexposed), _tensor(quant.interval_width)
    net = UNetGenerator(depth=2, width=4).eval()
    for bias in (-1e4, -3.0, 0.0, 3.0, 1e4):
        torch.nn.init.constant_(net.tail.bias, bias)
        with torch.no_grad():
            out = restore(net, image, step, output="interval", lower=_tensor(lower),
                          upper=_tensor(upper))[0, 0].numpy()
        assert out.shape == capture.reexposed.shape
        assert np.all(out >= lower.astype(np.float32)) and np.all(out <= upper.astype(np.float32))
        if abs(bias) <= 3.0:  # unsaturated: the upper end (excluded below 1) is not reached
            assert nl.metrics.interval_consistency(out, quant) == 1.0
    # a fresh network (zero last layer) starts in the middle of every interval
    torch.nn.init.zeros_(net.tail.bias)
    with torch.no_grad():
        middle = restore(net, image, step, output="interval", lower=_tensor(lower),
                         upper=_tensor(upper))[0, 0].numpy()
    np.testing.assert_allclose(middle, (lower + upper) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="bounds"):
        restore(net, image, step, output="interval")


def test_the_residual_output_is_the_reexposed_image_plus_the_residual(capture):
    image, step = _tensor(capture.reexposed), _tensor(capture.quantization.interval_width)
    net = UNetGenerator(depth=2, width=4).eval()
    torch.nn.init.normal_(net.tail.weight, std=0.1)
    with torch.no_grad():
        assert torch.equal(restore(net, image, step), image + net(image, step))
        assert not torch.equal(restore(net, image, step), image)
    config = TrainConfig()
    assert (config.output, config.norm) == ("residual", "none")
    # a run folder written before these options resumes: its stored configuration matches
    stored = config.to_json()
    del stored["output"], stored["norm"]
    assert TrainConfig.from_json(stored).to_json() == config.to_json()


def test_a_batchnorm_unet_starts_as_the_identity_and_trains_a_step(tmp_path, images):
    net = UNetGenerator(depth=2, width=4, norm="batch").eval()
    assert net.config()["norm"] == "batch"
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    odd = torch.rand(1, 1, 37, 50)
    with torch.no_grad():
        residual = net(odd, torch.full_like(odd, 0.01))
    assert residual.shape == (1, 1, 37, 50) and torch.all(residual == 0)

    metrics = train(images[:3], images[3:], tmp_path, config=_tiny(norm="batch"), max_steps=1,
                    log=lambda *a: None)
    assert metrics["step"] == 1 and np.isfinite(metrics["psnr_model"])
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["generator"]
    trained = build_generator({"architecture": "unet", "channels": 1, "depth": 2, "width": 4,
                               "conditioned": True, "norm": "batch"})
    trained.load_state_dict(state)
    assert float(state["encode.0.body.1.running_var"].sub(1).abs().max()) > 0  # BN statistics
    with torch.no_grad():
        assert trained.eval()(odd, torch.full_like(odd, 0.01)).shape == (1, 1, 37, 50)
    with pytest.raises(ValueError, match="U-Net"):
        train(images[:3], images[3:], tmp_path / "residual", log=lambda *a: None,
              config=_tiny(architecture="residual", norm="batch"), max_steps=1)


def test_an_interval_run_trains_and_says_so_in_its_weights(tmp_path, images):
    metrics = train(images[:3], images[3:], tmp_path, config=_tiny(output="interval"),
                    max_steps=2, log=lambda *a: None)
    assert metrics["step"] == 2 and metrics["interval_consistency_model"] == 1.0
    with safe_open(str(tmp_path / "generator.safetensors"), framework="pt") as handle:
        assert json.loads(handle.metadata()["extra"])["output"] == "interval"
        assert "norm" not in json.loads(handle.metadata()["config"])


def test_the_shipped_weights_and_v2_files_still_load(tmp_path):
    for name, entry in available_models().items():
        if entry["origin"] != "shipped":
            continue
        net = load_generator(name)
        assert net.config() == entry["architecture"]  # no new key such as "norm"
        if isinstance(net, UNetGenerator):
            assert net.norm == "none"
            assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    path = tmp_path / "v2.safetensors"
    save_generator(UNetGenerator(depth=3, width=4), path)
    assert load_generator(path).config() == {"architecture": "unet", "channels": 1, "depth": 3,
                                             "width": 4, "conditioned": True}
