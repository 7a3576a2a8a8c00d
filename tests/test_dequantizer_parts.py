"""The dequantizer's networks and losses (hand-computed values)."""

import math

import pytest

torch = pytest.importorskip("torch")

from napari_lowlight.dequantizer.losses import (  # noqa: E402
    BARRIER_CLAMP,
    adversarial_discriminator_loss,
    adversarial_generator_loss,
    pixel_loss,
    quasi_linf_loss,
)
from napari_lowlight.dequantizer.networks import Discriminator, Generator  # noqa: E402


def test_generator_shapes_residual_and_receptive_field():
    torch.manual_seed(0)
    net = Generator(channels=3, depth=2, width=8, conditioned=True).eval()
    image = torch.rand(2, 3, 20, 24)
    step = torch.full((2, 1, 20, 24), 0.01)
    # a new generator is the identity (zero residual) until trained
    assert torch.count_nonzero(net(image, step)) == 0
    with torch.no_grad():
        net.tail.weight.normal_(0, 0.1)
    out = net(image, step)
    assert out.shape == image.shape
    assert net.receptive_field == 13
    # a change at one pixel reaches exactly the receptive field, no further
    probe = image.clone()
    probe[:, :, 10, 12] += 0.5
    changed = (net(probe, step) - out).abs().sum(dim=(0, 1)) > 0
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert rows.min() >= 10 - 6 and rows.max() <= 10 + 6
    assert cols.min() >= 12 - 6 and cols.max() <= 12 + 6
    with pytest.raises(ValueError, match="conditioned"):
        net(image)
    plain = Generator(channels=1, depth=1, width=4, conditioned=False)
    assert plain(torch.rand(1, 1, 8, 8)).shape == (1, 1, 8, 8)


def test_discriminator_takes_any_size():
    net = Discriminator(channels=1, width=4)
    assert net(torch.rand(3, 1, 32, 32)).shape == (3,)
    assert net(torch.rand(2, 1, 48, 40)).shape == (2,)


def barrier_case(violation_in_q, q=0.01):
    """A one-pixel case whose |C| is (1/2 + violation) q."""
    k, r = torch.tensor(0.5), torch.tensor(1.0)
    restored = torch.tensor([[[[0.4]]]])
    dark = k * restored + (0.5 + violation_in_q) * q
    return quasi_linf_loss(restored, dark, k, r, torch.zeros_like(restored), torch.tensor(q))


def test_quasi_linf_zero_inside_and_increasing_outside():
    assert barrier_case(-0.5).item() == 0.0  # C = 0
    assert barrier_case(-0.01).item() == 0.0  # just inside |C| < q/2
    values = [barrier_case(v).item() for v in (0.1, 0.3, 0.6, 0.9)]
    for v, expected in zip((0.1, 0.3, 0.6, 0.9), values):
        assert expected == pytest.approx(-math.log(1 - v), rel=1e-4)
    assert all(a < b for a, b in zip(values, values[1:]))
    # clamped: finite far outside
    far = barrier_case(5.0).item()
    assert math.isfinite(far) and far == pytest.approx(-math.log(BARRIER_CLAMP), rel=1e-4)


def test_quasi_linf_accounts_for_noise_and_the_truth_is_free():
    from napari_lowlight import degrade

    rng = torch.Generator().manual_seed(0)
    truth = torch.rand(1, 1, 16, 16, generator=rng).double()
    capture = degrade(truth.numpy()[0, 0], k=0.1, r=1.3, sigma=0.8, seed=3, return_noise=True)
    dark = torch.from_numpy(capture.dark)[None, None]
    noise = torch.from_numpy(capture.noise)[None, None]
    loss = quasi_linf_loss(truth, dark, torch.tensor(0.1), torch.tensor(1.3), noise,
                           torch.tensor(capture.q))
    assert loss.item() == pytest.approx(0.0, abs=1e-9)  # the truth re-darkens into its level


def test_pixel_and_adversarial_losses():
    a, b = torch.tensor([0.0, 1.0]), torch.tensor([0.5, 0.5])
    assert pixel_loss(a, b).item() == pytest.approx(0.5)
    assert pixel_loss(a, b, "l2").item() == pytest.approx(0.25)
    with pytest.raises(ValueError):
        pixel_loss(a, b, "l3")
    logits = torch.tensor([0.0])  # D = 1/2
    assert adversarial_generator_loss(logits).item() == pytest.approx(math.log(2))
    assert adversarial_discriminator_loss(logits, logits).item() == pytest.approx(2 * math.log(2))
    confident = adversarial_discriminator_loss(torch.tensor([20.0]), torch.tensor([-20.0]))
    assert confident.item() < 1e-6


def test_v2_context_generator_grows_from_v1_and_tiles_exactly(tmp_path):
    """A v2 network (wide-context inputs) seeded from a v1 one computes what v1 did, and its
    tiled inference (context once per plane, convolutions per tile) equals the whole."""
    import numpy as np
    import torch

    from napari_lowlight.dequantizer.inference import _run_plane
    from napari_lowlight.dequantizer.networks import Generator
    from napari_lowlight.dequantizer.training import _initialise_from
    from napari_lowlight.dequantizer.weights import load_generator, save_generator

    torch.manual_seed(0)
    v1 = Generator(1, 2, 8).eval()
    torch.nn.init.normal_(v1.tail.weight, std=0.1)  # not the identity, so the check bites
    path = tmp_path / "v1.safetensors"
    save_generator(v1, path)
    v2 = Generator(1, 2, 8, True, (2, 6)).eval()
    assert v2.receptive_field == 2 * (2 * 2 + 2 + 18) + 1 and v2.network_receptive_field == 13
    _initialise_from(v2, str(path))
    rng = np.random.default_rng(0)
    plane = rng.random((70, 90)).astype(np.float32)
    step = np.full_like(plane, 1 / 30)
    with torch.no_grad():
        x, s = torch.from_numpy(plane)[None, None], torch.from_numpy(step)[None, None]
        np.testing.assert_allclose(v2(x, s).numpy(), v1(x, s).numpy(), atol=1e-6)
        torch.nn.init.normal_(v2.head[0].weight, std=0.1)  # now the context matters
        whole = v2(x, s).numpy()[0, 0]
    device = torch.device("cpu")
    np.testing.assert_allclose(_run_plane(v2, plane, step, device, 16), whole, atol=1e-5)
    # saved and loaded with its context scales
    save_generator(v2, tmp_path / "v2.safetensors")
    loaded = load_generator(tmp_path / "v2.safetensors")
    assert loaded.context_sigmas == (2.0, 6.0)
