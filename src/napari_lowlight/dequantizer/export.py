"""Exporting a trained run: weights, sha256 in ``models.json`` and a model card, into the
user's model folder (or, explicitly, the repository's ``weights/``).

Safety: an export never writes into an installed package (a wheel's
``napari_lowlight/weights``), writes into the shipped folder of a source checkout only
when asked (``weights_dir`` given and ``overwrite``), never replaces an existing model
without ``overwrite``, and never takes a shipped model's name outside the shipped folder
(it would be hidden behind it).
"""

from __future__ import annotations

import json
import os
import platform
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .weights import (available_models, load_generator, register, save_generator,
                      shipped_weights_dir, user_models_dir)

__all__ = ["export_run"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _is_source_checkout(folder: Path) -> bool:
    """Whether the shipped weights folder is a repository's ``weights/`` (editable install)."""
    root = folder.parent
    return (root / "pyproject.toml").is_file() and not any(
        part in ("site-packages", "dist-packages") for part in folder.parts)


def _describe(architecture: dict) -> str:
    if architecture.get("architecture", "residual") == "unet":
        return (f"U-Net generator with {architecture['depth'] + 1} scales (halved "
                f"{architecture['depth']} times, {architecture['width']} features at full "
                "resolution, residual units, no normalisation)")
    return (f"generator with {architecture['depth']} residual units of width "
            f"{architecture['width']}")


def _check_target(weights_dir: Path, name: str, *, explicit: bool, overwrite: bool) -> None:
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(".safetensors"):
        raise ValueError(f"model name {name!r}: use letters, digits, '.', '_' and '-' (a file "
                         "name, not a path)")
    if weights_dir.exists() and not weights_dir.is_dir():
        raise ValueError(f"--weights-dir {weights_dir} is a file; give a folder")
    shipped = shipped_weights_dir().resolve()
    target = weights_dir.resolve()
    if target == shipped or shipped in target.parents:
        if not _is_source_checkout(shipped):
            raise ValueError(f"{weights_dir} is the installed package's weights folder; "
                             "export into your model folder (the default, "
                             f"{user_models_dir()}) instead")
        if not (explicit and overwrite):
            raise ValueError(f"{weights_dir} holds the shipped models (every call of dequantize "
                             "loads from it); to ship a model there pass --weights-dir "
                             f"{weights_dir} --overwrite explicitly")
    elif name in available_models(shipped):
        raise ValueError(f"{name!r} is a shipped model's name: a model exported under it "
                         "would be hidden behind the shipped one; choose another --name")
    if overwrite:
        return
    existing = [p.name for p in (weights_dir / f"{name}.safetensors", weights_dir / f"{name}.md")
                if p.exists()]
    if weights_dir.is_dir() and name in available_models(weights_dir):
        existing.append(f"models.json entry {name!r}")
    if existing:
        raise ValueError(f"{weights_dir} already holds model {name!r} ({', '.join(existing)}); "
                         "pass --overwrite to replace it or choose another --name")


def export_run(run_dir, weights_dir=None, *, name: str | None = None,
               phase: str = "final", overwrite: bool = False) -> Path:
    """Copy ``run_dir``'s generator to ``weights_dir/NAME.safetensors`` with its model card.

    Parameters
    ----------
    run_dir : path
        A training run folder (``napari-lowlight train --out RUN``).
    weights_dir : path, optional
        Default: the user's model folder (:func:`~.weights.user_models_dir`), where
        ``dequantize(model=NAME)`` finds it.  The shipped folder of a source checkout
        only with ``overwrite``; an installed package's never.
    name : str, optional
        The model's name (default: the run folder's name).
    phase : "final" or "pretrained"
        After adversarial fine-tuning, or before it.
    overwrite : bool
        Replace an existing model of that name.
    """
    run_dir = Path(run_dir)
    explicit = weights_dir is not None
    weights_dir = Path(weights_dir) if explicit else user_models_dir()
    name = run_dir.resolve().name if name is None else name
    if phase not in ("final", "pretrained"):
        raise ValueError(f"phase must be 'final' or 'pretrained', got {phase!r}")
    source = run_dir / ("generator.safetensors" if phase == "final"
                        else "generator_pretrained.safetensors")
    if not source.is_file():
        raise FileNotFoundError(f"{run_dir} has no {source.name}: train it first")
    _check_target(weights_dir, name, explicit=explicit, overwrite=overwrite)
    generator = load_generator(source)  # damaged or non-finite weights: refused here
    config, history, data = _read_run(run_dir, phase)
    last = history[-1] if history else {}
    target = weights_dir / f"{name}.safetensors"
    weights_dir.mkdir(parents=True, exist_ok=True)
    staged = weights_dir / f".{name}.{os.getpid()}.safetensors.tmp"
    try:
        sha256 = save_generator(generator, staged, extra={"run": str(run_dir), "metrics": last})
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    card = _card(generator, config, last, phase=phase, data=data)
    register(weights_dir, name, target, sha256=sha256, card=card)
    (weights_dir / f"{name}.md").write_text(
        _card_markdown(name, target, sha256, card, history, data, phase=phase))
    return target


def _read_run(run_dir: Path, phase: str):
    """A run's ``config.json``, its validation history up to ``phase`` and its data.json."""
    config = json.loads((run_dir / "config.json").read_text())
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()
               if line.strip()] if (run_dir / "history.jsonl").exists() else []
    data = json.loads((run_dir / "data.json").read_text()) if (
        run_dir / "data.json").exists() else {}
    if phase == "pretrained":
        history = [h for h in history if h["step"] <= config["pretrain_steps"]]
    return config, history, data


def _card(generator, config: dict, last: dict, *, phase: str, data: dict) -> dict:
    """The model card's facts, as ``models.json`` records them."""
    return {
        "architecture": generator.config(),
        "parameters": int(sum(p.numel() for p in generator.parameters())),
        "receptive_field": generator.receptive_field,
        "steps": last.get("step"),
        "phase": phase,
        "validation": {k: v for k, v in last.items() if k != "step"},
        "training": {key: config[key] for key in
                     ("batch", "steps", "pretrain_steps", "learning_rate", "linf_weight",
                      "adversarial_weight", "pixel", "seed")},
        "pairs": config.get("pairs"),
        "data": data,
        "software": {"torch": _version("torch"), "numpy": _version("numpy"),
                     "scikit-image": _version("scikit-image"),
                     "napari-lowlight": _version("napari-lowlight"),
                     "python": platform.python_version()},
    }


def _card_markdown(name: str, target: Path, sha256: str, card: dict, history: list,
                   data: dict, *, phase: str) -> str:
    """The model card ``NAME.md``: what the model is, how it was trained, its curve."""
    curve = "\n".join(
        f"| {h['step']} | {h['psnr_reexposed']:.2f} | {h['psnr_classic']:.2f} | "
        f"{h['psnr_model']:.2f} | {h['psnr_model_projected']:.2f} | "
        f"{100 * h['interval_consistency_model']:.1f} % |" for h in history)
    return f"""# Model card: `{name}`

- File: `{target.name}`, sha256 `{sha256}` (checked at every load; see `models.json`).
- Architecture: {_describe(card['architecture'])}, conditioned on the quantization step:
  {card['architecture']['conditioned']}; {card['parameters']} parameters; receptive field
  {card['receptive_field']} px. One channel: colour images are restored channel by channel.
- Training: {card['steps']} steps of batch {card['training']['batch']}
  (pixel loss {card['training']['pixel']} + 0.1 x quasi-l-infinity; adversarial fine-tuning from
  step {card['training']['pretrain_steps']}, weight {card['training']['adversarial_weight']});
  this file is the {phase} generator{' (before fine-tuning)' if phase == 'pretrained' else ''},
  seed {card['training']['seed']}, on {len(data.get('training', []))} images:
  {', '.join(data.get('training', []))}.
- Validation (never trained on): {', '.join(data.get('validation', []))}; the fixed
  validation pairs mix every setting the training draws from (k 1/64-1/2, r 1-1.8,
  sigma 0-1 q, 8-16 bits, uneven light).
- Software: {json.dumps(card['software'])}.
- Reproduce: `napari-lowlight train --test-set --out RUN --config RUN_CONFIG.json` (this
  run's `config.json`; add `--data FOLDER`s for the images above) then
  `napari-lowlight export RUN --name {name}`.

## Validation curve (PSNR in dB on the validation pairs)

| step | re-exposed Jt | classic (smooth + project) | model | model + projection | model interval consistency |
|---|---|---|---|---|---|
{curve}
"""
