"""Training the dequantizer on synthetic pairs, in resumable chunks.

Two phases (METHOD.md section 3, Decision): pretraining with a pixel loss plus the
quasi-l-infinity barrier, then adversarial fine-tuning (``L_G = pixel + L_inf +
lambda * L_adv``).  Everything that decides the next step (weights, optimiser
moments, step counter, NumPy and torch random states) is checkpointed, so a run
cut into chunks of a few minutes gives the same weights as one uninterrupted run.
Checkpoints are our own files, read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..metrics import psnr
from .config import OUTPUTS, TrainConfig  # re-exported: they were defined here
from .pairs import make_batch
from .losses import (
    adversarial_discriminator_loss,
    adversarial_generator_loss,
    pixel_loss,
    quasi_linf_loss,
)
from .networks import NORMS, Discriminator, Generator, build_generator, interval_output
from .weights import save_generator

__all__ = ["OUTPUTS", "TrainConfig", "restore", "train", "validate", "validation_batch"]

VALIDATION_SEED = 12345
#: Batch entries the training step needs (the interval bounds serve validation only, unless
#: the output is interval-parametrised: :data:`INTERVAL_KEYS`).
TRAINING_KEYS = ("input", "step", "target", "dark", "k", "r", "noise", "q")
#: Batch entries the training step of an interval output needs as well.
INTERVAL_KEYS = ("lower", "upper")


def _training_keys(config: TrainConfig) -> tuple:
    """The batch entries a training step of ``config`` reads (workers send only these)."""
    return TRAINING_KEYS + (INTERVAL_KEYS if config.output == "interval" else ())


def _tensors(batch: dict, device, keys=None) -> dict:
    out = {}
    for key, value in batch.items():
        if keys is not None and key not in keys:
            continue
        tensor = value if isinstance(value, torch.Tensor) else torch.from_numpy(
            np.ascontiguousarray(value))
        if tensor.ndim == 1:  # per-image scalars broadcast over (N, 1, H, W)
            tensor = tensor[:, None, None, None]
        out[key] = tensor.to(device, non_blocking=True)
    return out


class StepBatches(torch.utils.data.Dataset):
    """Item ``n``: the pairs of training step ``n`` (``TrainConfig.per_step_seeds``).

    A ``DataLoader`` over it makes batches in worker processes (shared memory, no
    pickling of the images: workers are forked with them) while the accelerator trains.
    """

    def __init__(self, images: list[np.ndarray], config: TrainConfig):
        self.images, self.config = images, config

    def __len__(self) -> int:
        return self.config.steps

    def __getitem__(self, step: int) -> dict:
        rng = np.random.default_rng([self.config.seed, int(step)])
        batch = make_batch(self.images, rng, self.config.batch, self.config.pairs)
        return {key: torch.from_numpy(np.ascontiguousarray(batch[key]))
                for key in _training_keys(self.config)}


def _batches(images, config: TrainConfig, rng, first_step: int, workers: int, device):
    """Training batches from step ``first_step`` on (an endless iterator)."""
    if not config.per_step_seeds:
        while True:  # the v1 stream: one generator, checkpointed with the run
            yield make_batch(images, rng, config.batch, config.pairs)
    if workers:
        import multiprocessing

        if "fork" not in multiprocessing.get_all_start_methods():
            # the workers inherit the images by forking (no copy through pickles)
            raise ValueError("pair-making workers need the 'fork' start method (Linux, "
                             "macOS); use workers=0 on this platform")
    loader = torch.utils.data.DataLoader(
        StepBatches(images, config), batch_size=None,
        sampler=range(first_step, config.steps), num_workers=workers,
        prefetch_factor=4 if workers else None, persistent_workers=False,
        pin_memory=torch.device(device).type == "cuda",
        multiprocessing_context="fork" if workers else None)
    yield from loader


def validation_batch(images: list[np.ndarray], config: TrainConfig) -> dict:
    """The fixed validation pairs: same images, same seed, every run."""
    rng = np.random.default_rng(VALIDATION_SEED)
    return make_batch(images, rng, config.validation_pairs, config.pairs)


#: Ceiling of one pair's validation PSNR (an MSE of 1e-12): a pair restored exactly (an
#: all-black crop, say) would otherwise make the mean over the pairs infinite.
PSNR_CEILING_DB = 120.0


def _mean_psnr(images: np.ndarray, targets: np.ndarray) -> float:
    """Mean over the pairs (axis 0) of each pair's :func:`~napari_lowlight.metrics.psnr`."""
    return float(np.mean([min(psnr(target, image), PSNR_CEILING_DB)
                          for image, target in zip(images, targets)]))


def _project(image, lower, upper, margin=0.05):
    width = upper - lower
    return np.clip(image, lower + margin * width, upper - margin * width)


def restore(generator, image: torch.Tensor, step: torch.Tensor, *, output: str = "residual",
            lower: torch.Tensor | None = None, upper: torch.Tensor | None = None):
    """The restored image a generator trained with ``output`` makes of ``image``.

    Parameters
    ----------
    generator : Generator or UNetGenerator
    image, step : Tensor (N, 1, H, W)
        The re-exposed image ``Jt`` and its quantization step (``interval_width``); the
        step reaches the network only when it is conditioned.
    output : {"residual", "interval"}
        "residual": ``Jt + G(Jt)``.  "interval": the generator's output in units of the
        step, mapped into ``[lower, upper]`` by :func:`~.networks.interval_output`.
    lower, upper : Tensor (N, 1, H, W), optional
        The intervals' bounds (``Quantization.bounds``); needed by "interval".

    Returns
    -------
    Tensor (N, 1, H, W)
        Not clipped to [0, 1] (an interval output lies inside it already).
    """
    residual = generator(image, step if generator.conditioned else None)
    if output == "residual":
        return image + residual
    if output != "interval":
        raise ValueError(f"unknown output {output!r} (known: {', '.join(OUTPUTS)})")
    if lower is None or upper is None:
        raise ValueError("the interval output needs the intervals' bounds (lower, upper)")
    # a conditioned network multiplies its last layer by the (clamped) step: dividing by
    # it again gives that layer's output, which is 0 (the interval's middle) at the start
    return interval_output(residual / step.clamp(min=1e-6), lower, upper)


@torch.no_grad()
def validate(generator: Generator, batch: dict, device, *, output: str = "residual") -> dict:
    """PSNR of Jt, of the classic baseline (smooth + project) and of the model; consistency.

    ``output``: how the generator's output becomes the image (:func:`restore`).
    """
    from scipy.ndimage import gaussian_filter

    generator.eval()
    data = _tensors(batch, device)
    chunks = range(0, len(data["input"]), 16)
    restored = torch.cat([
        restore(generator, data["input"][i:i + 16], data["step"][i:i + 16], output=output,
                lower=data["lower"][i:i + 16], upper=data["upper"][i:i + 16])
        for i in chunks]).clamp(0, 1).cpu().numpy()
    target, lower, upper = batch["target"], batch["lower"], batch["upper"]
    smooth = np.stack([gaussian_filter(image, (0, 1.5, 1.5), mode="nearest")
                       for image in batch["input"]])
    inside = (restored >= lower) & ((restored < upper) | (upper >= 1.0))
    generator.train()
    return {
        "psnr_reexposed": _mean_psnr(batch["input"], target),
        "psnr_classic": _mean_psnr(_project(smooth, lower, upper), target),
        "psnr_model": _mean_psnr(restored, target),
        "psnr_model_projected": _mean_psnr(_project(restored, lower, upper), target),
        "interval_consistency_model": float(inside.mean()),
    }


def _initialise_from(generator: Generator, source: str) -> None:
    """Copy the weights of ``source`` (model name or path) into ``generator``."""
    from .weights import WeightsError, load_generator

    initial = load_generator(source)
    base = {key: value for key, value in generator.config().items() if key != "context_sigmas"}
    if initial.config() == generator.config():
        generator.load_state_dict(initial.state_dict())
        return
    if initial.config() != base:
        raise WeightsError(f"--init-from {source}: its architecture {initial.config()} differs "
                           f"from this run's {generator.config()}")
    # A v1 network grows context inputs: the head gets zero weights for them, so the new
    # network starts computing exactly what the old one did and learns to use the context.
    state = initial.state_dict()
    head = generator.head[0].weight.detach().clone()
    head.zero_()
    head[:, :state["head.0.weight"].shape[1]] = state["head.0.weight"]
    state["head.0.weight"] = head
    generator.load_state_dict(state)


def _save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a run killed while saving keeps the previous checkpoint


def train(train_images: list[np.ndarray], val_images: list[np.ndarray], out_dir, *,
          config: TrainConfig | None = None, device="cpu", max_seconds: float | None = None,
          max_steps: int | None = None, progress=None, log=print, workers: int = 0) -> dict:
    """Train (or resume) a run in ``out_dir``; stop at ``config.steps``, after ``max_seconds``
    or after ``max_steps`` steps in this call (a chunk: run again to continue).

    Returns the last validation metrics.  ``out_dir`` receives ``config.json``,
    ``checkpoint.pt`` (resumable), ``history.jsonl`` (validation curve),
    ``generator.safetensors`` (the latest weights) and, once adversarial fine-tuning starts,
    ``generator_pretrained.safetensors`` (the weights before it).  ``workers``: processes
    making the pairs (``config.per_step_seeds`` runs only; 0 makes them in this process).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = _run_config(out_dir, config)
    if not train_images or not val_images:
        raise ValueError("training needs at least one training and one validation image")

    nets = _Nets.new(config, device)
    rng = np.random.default_rng(config.seed)
    step = _start(nets, config, out_dir, rng, device=device, log=log)
    val_batch = validation_batch(val_images, config)
    started = time.perf_counter()
    first_step = step
    metrics: dict = {}

    nets.generator.train()
    nets.critic.train()
    batches = _batches(train_images, config, rng, step, workers, device)
    while step < config.steps:
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            break
        if max_steps is not None and step - first_step >= max_steps:
            break
        data = _tensors(next(batches), device, _training_keys(config))
        loss = _training_step(nets, config, data, adversarial=step >= config.pretrain_steps)
        step += 1
        if progress is not None:
            progress(step, config.steps, float(loss.detach()))
        if step % config.validate_every == 0 or step == config.steps:
            metrics = {"step": step, **validate(nets.shipped, val_batch, device,
                                                output=config.output)}
            with open(out_dir / "history.jsonl", "a") as history:
                history.write(json.dumps(metrics) + "\n")
            log(json.dumps(metrics))
        if step % config.checkpoint_every == 0 or step == config.steps:
            _checkpoint(nets, out_dir, rng, step, extra=_generator_extra(config, step, metrics))
        if step == config.pretrain_steps:
            # the pretrained generator is kept beside the fine-tuned one (METHOD.md: report both)
            save_generator(nets.shipped, out_dir / "generator_pretrained.safetensors",
                           extra=_generator_extra(config, step, metrics))
    del batches  # stops the worker processes
    _checkpoint(nets, out_dir, rng, step, extra=_generator_extra(config, step, metrics))
    return metrics


def _run_config(out_dir: Path, config: TrainConfig | None) -> TrainConfig:
    """The run's configuration: the stored one (``config`` must match it), else ``config``
    (default: ``TrainConfig()``), written to ``config.json``; checked."""
    config_path = out_dir / "config.json"
    if config_path.exists():
        stored = TrainConfig.from_json(json.loads(config_path.read_text()))
        if config is not None and config.to_json() != stored.to_json():
            raise ValueError(f"{out_dir} holds a run with another configuration; "
                             "use a new folder or the same settings")
        config = stored
    else:
        config = config or TrainConfig()
        config_path.write_text(json.dumps(config.to_json(), indent=2))
    if not 0.0 <= config.ema_decay < 1.0:
        raise ValueError(f"ema_decay must lie in [0, 1), got {config.ema_decay}")
    if config.output not in OUTPUTS:
        raise ValueError(f"unknown output {config.output!r} (known: {', '.join(OUTPUTS)})")
    return config


@dataclass
class _Nets:
    """A run's networks and their optimisers; ``average`` is the moving average (or None)."""

    generator: torch.nn.Module
    average: torch.nn.Module | None
    critic: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer

    @classmethod
    def new(cls, config: TrainConfig, device) -> _Nets:
        """Freshly initialised networks, seeded by ``config.seed``."""
        torch.manual_seed(config.seed)
        generator = _new_generator(config).to(device)
        average = _new_generator(config).to(device) if config.ema_decay else None
        critic = Discriminator(1, width=max(8, config.width // 2)).to(device)
        opt_g = torch.optim.Adam(generator.parameters(), lr=config.learning_rate,
                                 betas=(0.9, 0.999))
        opt_d = torch.optim.Adam(critic.parameters(), lr=config.learning_rate,
                                 betas=(0.5, 0.999))
        return cls(generator, average, critic, opt_g, opt_d)

    @property
    def shipped(self) -> torch.nn.Module:
        """The weights that are validated and saved: the moving average when there is one."""
        return self.average if self.average is not None else self.generator


def _start(nets: _Nets, config: TrainConfig, out_dir: Path, rng, *, device, log) -> int:
    """Initialise ``nets`` (and ``rng``) from the run's checkpoint, else from
    ``config.init_from``; the step to continue from."""
    checkpoint_path = out_dir / "checkpoint.pt"
    step = 0
    if config.init_from and not checkpoint_path.exists():
        _initialise_from(nets.generator, config.init_from)
        log(f"initialised the generator from {config.init_from}")
    if nets.average is not None and not checkpoint_path.exists():
        nets.average.load_state_dict(nets.generator.state_dict())
    if checkpoint_path.exists():
        state = torch.load(checkpoint_path, weights_only=True, map_location=device)
        nets.generator.load_state_dict(state["generator"])
        nets.critic.load_state_dict(state["critic"])
        nets.opt_g.load_state_dict(state["opt_g"])
        nets.opt_d.load_state_dict(state["opt_d"])
        step = int(state["step"])
        if nets.average is not None:
            nets.average.load_state_dict(state["average"])
        rng.bit_generator.state = json.loads(state["numpy_rng"])
        # map_location moved every tensor to `device`; the CPU generator takes only a CPU
        # ByteTensor ("RNG state must be a torch.ByteTensor" on a CUDA resume otherwise)
        torch.set_rng_state(state["torch_rng"].cpu())
        log(f"resumed {out_dir} at step {step}")
    return step


def _training_step(nets: _Nets, config: TrainConfig, data: dict, *, adversarial: bool):
    """One optimiser step of the generator (and of the critic when ``adversarial``);
    returns the generator's loss."""
    restored = restore(nets.generator, data["input"], data["step"], output=config.output,
                       lower=data.get("lower"), upper=data.get("upper"))
    loss = pixel_loss(restored, data["target"], config.pixel)
    loss = loss + config.linf_weight * quasi_linf_loss(
        restored, data["dark"], data["k"], data["r"], data["noise"], data["q"])
    if adversarial:
        loss = loss + config.adversarial_weight * adversarial_generator_loss(
            nets.critic(restored))
    nets.opt_g.zero_grad(set_to_none=True)
    loss.backward()
    nets.opt_g.step()
    if nets.average is not None:
        with torch.no_grad():
            for mean, value in zip(nets.average.parameters(), nets.generator.parameters()):
                mean.lerp_(value, 1.0 - config.ema_decay)
            for mean, value in zip(nets.average.buffers(), nets.generator.buffers()):
                mean.copy_(value)  # batch-norm statistics follow the live network
    if adversarial:
        d_loss = adversarial_discriminator_loss(nets.critic(data["target"]),
                                                nets.critic(restored.detach()))
        nets.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        nets.opt_d.step()
    return loss


def _generator_extra(config: TrainConfig, step: int, metrics: dict) -> dict:
    """Metadata of a saved generator; an interval model says so (its output differs)."""
    info = {"step": step, "metrics": metrics}
    if config.output != "residual":
        info["output"] = config.output
    return info


def _checkpoint(nets: _Nets, out_dir: Path, rng, step: int, *, extra: dict) -> None:
    """Save everything the next step depends on, and the generator to ship."""
    state = {
        "generator": nets.generator.state_dict(), "critic": nets.critic.state_dict(),
        "opt_g": nets.opt_g.state_dict(), "opt_d": nets.opt_d.state_dict(), "step": step,
        "numpy_rng": json.dumps(rng.bit_generator.state), "torch_rng": torch.get_rng_state(),
    }
    if nets.average is not None:
        state["average"] = nets.average.state_dict()
    _save_checkpoint(out_dir / "checkpoint.pt", state)
    save_generator(nets.shipped, out_dir / "generator.safetensors", extra=extra)


def _new_generator(config: TrainConfig):
    if config.context_sigmas and config.architecture != "residual":
        raise ValueError("context sigmas belong to the residual architecture")
    if config.norm not in NORMS:
        raise ValueError(f"unknown norm {config.norm!r} (known: {', '.join(NORMS)})")
    if config.norm != "none" and config.architecture != "unet":
        raise ValueError("norm is an option of the U-Net (the residual network has BatchNorm)")
    spec = {"architecture": config.architecture, "channels": 1, "depth": config.depth,
            "width": config.width, "conditioned": config.conditioned}
    if config.context_sigmas:
        spec["context_sigmas"] = config.context_sigmas
    if config.norm != "none":
        spec["norm"] = config.norm
    return build_generator(spec)
