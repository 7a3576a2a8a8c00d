"""A training run's configuration, without PyTorch.

:class:`TrainConfig` is everything a run depends on (stored in its folder as
``config.json``).  It lives here, not in ``training`` (which imports torch), so that the
command line reads its defaults from it (``napari-lowlight train --help``) without loading
torch for every command; ``training`` re-exports it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .pairs import PairSettings

__all__ = ["OUTPUTS", "TrainConfig"]

#: How a generator's output becomes the restored image (``TrainConfig.output``):
#: "residual" ``Jt + G(Jt)`` (then projected by ``dequantize``), or "interval"
#: ``lo + (hi - lo) * sigmoid(G(Jt) / step)`` (:func:`~.networks.interval_output`).
OUTPUTS = ("residual", "interval")


@dataclass
class TrainConfig:
    """Everything a run depends on (stored in the run folder)."""

    #: The size of the shipped residual models (``residual-v1``, ``default-adversarial``)
    #: and :class:`~.networks.Generator`'s default; the paper's 16 units of 64 features
    #: cost about 10x the arithmetic per pixel.
    depth: int = 6
    width: int = 32
    conditioned: bool = True
    context_sigmas: tuple = ()
    #: "residual" (v1: :class:`Generator`) or "unet" (v2: :class:`UNetGenerator`, where
    #: ``depth`` counts halvings and ``width`` the full-resolution features).
    architecture: str = "residual"
    #: Normalisation of the U-Net (:data:`~.networks.NORMS`): "none" (the shipped v2
    #: design) or "batch".  The residual network always has BatchNorm.
    norm: str = "none"
    #: :data:`OUTPUTS`: "residual" (what ``dequantize`` does) or "interval" (the output
    #: parametrised inside each pixel's quantization interval; an experiment: the
    #: product's ``dequantize`` applies residual models only).
    output: str = "residual"
    #: Draw step ``n``'s pairs from a generator seeded with ``(seed, n)``: the pairs then
    #: do not depend on how many worker processes make them, so a run made by 14 workers
    #: on a GPU machine resumes on a laptop with the same data.  False: one sequential
    #: stream (the v1 runs).
    per_step_seeds: bool = False
    #: Exponential moving average of the generator's weights (0: none); the saved generator
    #: and the validation use the average, which does what a decaying learning rate does
    #: without knowing in advance when a time-limited run will stop.
    ema_decay: float = 0.0
    batch: int = 16
    steps: int = 2000
    pretrain_steps: int = 1500  # adversarial fine-tuning after this step
    learning_rate: float = 2e-4
    linf_weight: float = 0.1
    adversarial_weight: float = 1e-3
    pixel: str = "l1"
    seed: int = 0
    validate_every: int = 250
    checkpoint_every: int = 250
    validation_pairs: int = 64
    #: Start from these generator weights (a shipped model's name or a ``.safetensors``
    #: path) instead of random ones; a run can so continue across sessions from what was
    #: committed, without the (uncommitted) checkpoint.
    init_from: str | None = None
    pairs: PairSettings = field(default_factory=PairSettings)

    def to_json(self) -> dict:
        """The configuration as JSON-ready values (``config.json``)."""
        data = asdict(self)
        data["pairs"] = asdict(self.pairs)
        return data

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        """The configuration a ``config.json`` holds (lists back to tuples)."""
        data = dict(data)
        pairs = data.pop("pairs", {})
        pairs = {key: tuple(value) if isinstance(value, list) else value
                 for key, value in pairs.items()}
        if "context_sigmas" in data:
            data["context_sigmas"] = tuple(data["context_sigmas"])
        return cls(**data, pairs=PairSettings(**pairs))
