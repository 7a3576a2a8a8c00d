"""Shipping a trained run: weights into ``weights/``, sha256 in ``models.json``, a model card."""

from __future__ import annotations

import json
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .weights import load_generator, register, save_generator

__all__ = ["export_run"]


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def export_run(run_dir, weights_dir, *, name: str = "default",
               phase: str = "final") -> Path:
    """Copy ``run_dir``'s generator to ``weights_dir/NAME.safetensors`` with its model card.

    ``phase``: "final" (after adversarial fine-tuning) or "pretrained" (before it).
    """
    run_dir, weights_dir = Path(run_dir), Path(weights_dir)
    if phase not in ("final", "pretrained"):
        raise ValueError(f"phase must be 'final' or 'pretrained', got {phase!r}")
    source = run_dir / ("generator.safetensors" if phase == "final"
                        else "generator_pretrained.safetensors")
    if not source.is_file():
        raise FileNotFoundError(f"{run_dir} has no generator.safetensors: train it first")
    generator = load_generator(source)
    config = json.loads((run_dir / "config.json").read_text())
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()
               if line.strip()] if (run_dir / "history.jsonl").exists() else []
    data = json.loads((run_dir / "data.json").read_text()) if (
        run_dir / "data.json").exists() else {}
    if phase == "pretrained":
        history = [h for h in history if h["step"] <= config["pretrain_steps"]]
    last = history[-1] if history else {}
    target = weights_dir / f"{name}.safetensors"
    sha256 = save_generator(generator, target, extra={"run": str(run_dir), "metrics": last})
    card = {
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
    register(weights_dir, name, target, sha256=sha256, card=card)
    curve = "\n".join(
        f"| {h['step']} | {h['psnr_reexposed']:.2f} | {h['psnr_classic']:.2f} | "
        f"{h['psnr_model']:.2f} | {h['psnr_model_projected']:.2f} | "
        f"{100 * h['interval_consistency_model']:.1f} % |" for h in history)
    (weights_dir / f"{name}.md").write_text(f"""# Model card: `{name}`

- File: `{target.name}`, sha256 `{sha256}` (checked at every load; see `models.json`).
- Architecture: generator with {card['architecture']['depth']} residual units of width
  {card['architecture']['width']}, conditioned on the quantization step:
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
- Reproduce: `napari-lowlight train --test-set --out RUN --steps {config['steps']} --depth
  {card['architecture']['depth']} --width {card['architecture']['width']} --batch
  {config['batch']} --crop {config['pairs']['crop']} --device cpu` then
  `napari-lowlight export RUN --name {name}`.

## Validation curve (PSNR in dB on the validation pairs)

| step | re-exposed Jt | classic (smooth + project) | model | model + projection | model interval consistency |
|---|---|---|---|---|---|
{curve}
""")
    return target
