"""Dequantizer: weights IO (sha256, tampering), tiled inference, projection, training, resume."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_lowlight import degrade  # noqa: E402
from napari_lowlight.dequantizer.pairs import PairSettings, make_batch  # noqa: E402
from napari_lowlight.dequantizer import dequantize  # noqa: E402
from napari_lowlight.dequantizer.networks import Generator  # noqa: E402
from napari_lowlight.dequantizer.training import TrainConfig, train  # noqa: E402
from napari_lowlight.dequantizer.weights import (  # noqa: E402
    WeightsError,
    load_generator,
    register,
    save_generator,
    sha256_of,
)
from napari_lowlight.metrics import interval_consistency  # noqa: E402


def random_generator(depth=2, width=8, seed=0):
    torch.manual_seed(seed)
    net = Generator(1, depth, width, conditioned=True)
    with torch.no_grad():  # leave the zero-initialised tail: make the residual non-trivial
        net.tail.weight.normal_(0, 0.05)
    return net.eval()


def scene(rows=70, cols=90):
    yy, xx = np.mgrid[0:rows, 0:cols] / 90.0
    return np.clip(0.5 + 0.4 * np.sin(6 * xx) * np.cos(5 * yy), 0, 1)


def test_weights_round_trip_and_registry(tmp_path):
    net = random_generator()
    sha = save_generator(net, tmp_path / "m.safetensors")
    assert sha == sha256_of(tmp_path / "m.safetensors")
    register(tmp_path, "m", tmp_path / "m.safetensors", sha256=sha, card={"note": "test"})
    loaded = load_generator("m", folder=tmp_path)
    for (name, a), (_, b) in zip(net.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert json.loads((tmp_path / "models.json").read_text())["m"]["note"] == "test"


def test_tampered_truncated_missing_and_wrong_files_are_refused(tmp_path):
    net = random_generator()
    path = tmp_path / "m.safetensors"
    sha = save_generator(net, path)
    register(tmp_path, "m", path, sha256=sha, card={})
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        load_generator("m", folder=tmp_path)
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(WeightsError, match="sha256"):
        load_generator("m", folder=tmp_path)
    path.unlink()
    with pytest.raises(WeightsError, match="missing"):
        load_generator("m", folder=tmp_path)
    with pytest.raises(WeightsError, match="no model named"):
        load_generator("nope", folder=tmp_path)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load_generator(junk)
    # right format, wrong architecture
    other = tmp_path / "other.safetensors"
    save_generator(random_generator(depth=1), other)
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(other))
    save_file(tensors, str(other), metadata={"config": json.dumps(net.config())})
    with pytest.raises(WeightsError, match="does not fit"):
        load_generator(other)


def test_tiled_equals_whole_and_projection_is_consistent():
    net = random_generator(depth=2)
    capture = degrade(scene(), k=1 / 20, r=1.2, sigma=0.3, seed=0)
    whole = dequantize(capture.reexposed, quantization=capture.quantization, model=net,
                       device="cpu", project=False)
    tiled = dequantize(capture.reexposed, quantization=capture.quantization, model=net,
                       device="cpu", tile=16, project=False)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    assert not np.allclose(whole, capture.reexposed, atol=1e-4)  # the model did something
    projected = dequantize(capture.reexposed, quantization=capture.quantization, model=net,
                           device="cpu", tile=32)
    assert projected.dtype == np.float32 and projected.shape == capture.reexposed.shape
    assert interval_consistency(projected, capture.quantization) == 1.0


def test_colour_and_stack_are_restored_plane_by_plane():
    net = random_generator()
    rgb = np.stack([scene(), scene()[::-1], scene()[:, ::-1]], axis=-1)
    capture = degrade(rgb, k=1 / 20, sigma=0.0, channel_axis=-1)
    out = dequantize(capture.reexposed, quantization=capture.quantization, model=net,
                     device="cpu", channel_axis=-1)
    single = degrade(rgb[..., 1], k=1 / 20, sigma=0.0)
    alone = dequantize(single.reexposed, quantization=single.quantization, model=net,
                       device="cpu")
    np.testing.assert_allclose(out[..., 1], alone, atol=1e-6)
    stack = degrade(np.stack([scene(), scene()[::-1]]), k=1 / 20, sigma=0.0)
    both = dequantize(stack.reexposed, quantization=stack.quantization, model=net, device="cpu")
    assert both.shape == (2, 70, 90)


def test_bad_input():
    net = random_generator()
    capture = degrade(scene(), k=1 / 20, sigma=0.0)
    with pytest.raises(ValueError, match="conditioned"):
        dequantize(capture.reexposed, model=net, project=False)
    with pytest.raises(ValueError, match="project=True needs"):
        dequantize(capture.reexposed, model=net)
    with pytest.raises(ValueError, match="does not match"):
        dequantize(capture.reexposed[:10], quantization=capture.quantization, model=net)
    with pytest.raises(ValueError, match="tile"):
        dequantize(capture.reexposed, quantization=capture.quantization, model=net, tile=3)
    with pytest.raises(ValueError, match="NaN"):
        dequantize(np.full((8, 8), np.nan), model=net, project=False)
    with pytest.raises(ValueError, match="unknown device"):
        dequantize(capture.reexposed, quantization=capture.quantization, model=net,
                   device="quantum")


def tiny_config(steps):
    return TrainConfig(depth=1, width=8, batch=4, steps=steps, pretrain_steps=3,
                       validate_every=2, checkpoint_every=2, validation_pairs=4,
                       pairs=PairSettings(crop=24))


def training_images():
    rng = np.random.default_rng(0)
    return [np.clip(scene(48, 48) + 0.05 * rng.standard_normal((48, 48)), 0, 1)
            for _ in range(3)]


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    torch.set_num_threads(1)
    images = training_images()
    quiet = {"log": lambda message: None}
    train(images[:2], images[2:], tmp_path / "straight", config=tiny_config(6), **quiet)
    # the same run in chunks: 3 steps, then (as after a restart) the rest from the checkpoint
    assert train(images[:2], images[2:], tmp_path / "chunks", config=tiny_config(6),
                 max_steps=0, **quiet) == {}
    train(images[:2], images[2:], tmp_path / "chunks", config=tiny_config(6), max_steps=3,
          **quiet)
    train(images[:2], images[2:], tmp_path / "chunks", **quiet)
    straight = load_generator(tmp_path / "straight" / "generator.safetensors")
    resumed = load_generator(tmp_path / "chunks" / "generator.safetensors")
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    history = (tmp_path / "chunks" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in history] == [2, 4, 6]
    # the generator before adversarial fine-tuning (step 3) is kept beside the final one
    pretrained = load_generator(tmp_path / "chunks" / "generator_pretrained.safetensors")
    changed = any(not torch.equal(a, b) for a, b in zip(pretrained.state_dict().values(),
                                                         resumed.state_dict().values()))
    assert changed


def test_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    from napari_lowlight.dequantizer.losses import pixel_loss

    batch = make_batch(training_images(), np.random.default_rng(1), 8, PairSettings(crop=24))
    net = Generator(1, 1, 8, conditioned=True)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    inputs = torch.from_numpy(batch["input"])
    step = torch.from_numpy(batch["step"])
    target = torch.from_numpy(batch["target"])
    losses = []
    for _ in range(40):
        loss = pixel_loss(inputs + net(inputs, step), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_training_refuses_a_different_configuration(tmp_path):
    images = training_images()
    train(images[:2], images[2:], tmp_path, config=tiny_config(2), log=lambda s: 0)
    with pytest.raises(ValueError, match="another configuration"):
        train(images[:2], images[2:], tmp_path, config=tiny_config(4), log=lambda s: 0)


class _Recorder(torch.nn.Module):
    """Wraps a generator: records input sizes, fails like an allocator above a size."""

    def __init__(self, inner, fail_above=None, fail_on=("cpu", "meta")):
        super().__init__()
        self.inner, self.fail_above, self.fail_on = inner, fail_above, fail_on
        self.sizes, self.devices = [], []
        self.conditioned, self.channels = inner.conditioned, inner.channels
        self.receptive_field = inner.receptive_field

    def to(self, device):  # the weights stay where they are (meta cannot hold them)
        self.devices.append(torch.device(device).type)
        return self

    def eval(self):
        self.inner.eval()
        return self

    def forward(self, image, step=None):
        self.sizes.append(tuple(image.shape[-2:]))
        device = self.devices[-1] if self.devices else "cpu"
        if (self.fail_above is not None and device in self.fail_on
                and image.shape[-2] * image.shape[-1] > self.fail_above):
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.inner(image.cpu(), None if step is None else step.cpu())


def test_tiles_bound_the_working_size_of_a_large_image(monkeypatch):
    from napari_lowlight.dequantizer import inference
    from napari_lowlight.dequantizer.networks import Generator

    generator = Generator(1, depth=1, width=4, conditioned=False)
    recorder = _Recorder(generator)
    monkeypatch.setattr(inference, "Generator", _Recorder)  # accepted as a ready model
    image = np.random.default_rng(0).random((1024, 1536)).astype(np.float32)
    out = inference.apply_dequantizer(image, model=recorder, project=False, device="cpu", tile=128)
    halo = generator.receptive_field // 2 + 1
    assert max(h * w for h, w in recorder.sizes) <= (128 + 2 * halo) ** 2
    assert out.shape == image.shape and len(recorder.sizes) == 8 * 12


def test_out_of_memory_halves_tiles_then_leaves_the_gpu(monkeypatch):
    from napari_lowlight.dequantizer import inference
    from napari_lowlight.dequantizer.networks import Generator

    monkeypatch.setattr(inference, "Generator", _Recorder)
    generator = Generator(1, depth=1, width=4, conditioned=False)
    image = np.random.default_rng(1).random((300, 300)).astype(np.float32)
    expected = inference.apply_dequantizer(image, model=_Recorder(generator), project=False,
                                    device="cpu", tile=256)
    # too big for 256-px tiles (with halo) on this "device": smaller tiles, same result
    small = _Recorder(generator, fail_above=120 ** 2)
    with pytest.warns(RuntimeWarning, match="64-pixel tiles"):
        out = inference.apply_dequantizer(image, model=small, project=False, device="cpu", tile=256)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    # a device that fails at every size: down to 64-px tiles, then on to the CPU
    gpu_only = _Recorder(generator, fail_above=0, fail_on=("meta",))
    with pytest.warns(RuntimeWarning, match="continuing on the CPU"):
        out = inference.apply_dequantizer(image, model=gpu_only, project=False, device="meta")
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert gpu_only.devices[-1] == "cpu"
    # and where even the CPU fails: a clear MemoryError
    hopeless = _Recorder(generator, fail_above=0)
    with pytest.raises(MemoryError, match="even with 64-pixel tiles"):
        inference.apply_dequantizer(image, model=hopeless, project=False, device="cpu")
