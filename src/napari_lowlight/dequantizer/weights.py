"""Saving and loading generator weights: safetensors only, checked against a sha256.

A model is a ``NAME.safetensors`` file (tensors only, no code: nothing is
unpickled) whose metadata holds the generator's configuration, and an entry in
``models.json`` beside it with the file's sha256.  A file whose hash differs is
refused before it is read; a configuration beyond :data:`LIMITS` is refused before
the network is built, and non-finite weights are refused after reading.

Models are looked up by name in two folders, in this order: the shipped weights
(the package's ``napari_lowlight.weights``) and the user's model folder
(:func:`user_models_dir`: ``$NAPARI_LOWLIGHT_MODELS``, else platformdirs'
``user_data_dir("napari-lowlight")/models``, else ``~/.local/share/napari-lowlight/models``),
where ``napari-lowlight export`` writes.  A shipped name always wins.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .networks import ARCHITECTURES, Generator, build_generator

__all__ = ["LIMITS", "MODELS_ENV", "WeightsError", "available_models", "check_config",
           "load_generator", "model_folders", "register", "save_generator", "sha256_of",
           "shipped_weights_dir", "user_models_dir", "verify_file", "write_registry"]

#: Environment variable naming the user's model folder.
MODELS_ENV = "NAPARI_LOWLIGHT_MODELS"
#: Largest architecture a weights file may declare (checked before the network is built).
LIMITS = {"channels": 4, "depth": 128, "width": 512, "context_sigmas": 8,
          "parameters": 50_000_000}
_CONFIG_KEYS = {"architecture", "channels", "depth", "width", "conditioned", "context_sigmas"}


class WeightsError(ValueError):
    """A weights file that is missing, altered or does not fit the architecture."""


def shipped_weights_dir() -> Path:
    """The shipped weights: the repository's ``weights/``, installed as ``napari_lowlight.weights``."""
    from importlib.resources import files

    return Path(str(files("napari_lowlight.weights")))


def user_models_dir() -> Path:
    """The user's model folder (``napari-lowlight export`` writes there; see the module doc)."""
    env = os.environ.get(MODELS_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs
    except ImportError:
        return Path.home() / ".local" / "share" / "napari-lowlight" / "models"
    return Path(platformdirs.user_data_dir("napari-lowlight", appauthor=False)) / "models"


def model_folders() -> list[Path]:
    """Where models are looked up by name, in order: the shipped folder, the user's."""
    return [shipped_weights_dir(), user_models_dir()]


def verify_file(path, *, sha256: str | None = None, what: str = "weights file",
                remedy: str = "reinstall the package or retrain") -> None:
    """Refuse (:class:`WeightsError`) a missing file, or one whose sha256 is not ``sha256``
    (when given): checked before any byte of it is parsed."""
    if not Path(path).is_file():
        raise WeightsError(f"{what} {path} is missing")
    if sha256 is not None and sha256_of(path) != sha256:
        raise WeightsError(f"{what} {path} does not match its recorded sha256: it was "
                           f"altered or truncated; {remedy}")


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_generator(generator: Generator, path, *, extra: dict | None = None) -> str:
    """Write ``generator`` to ``path`` (safetensors) and return the file's sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().cpu().contiguous()
               for name, tensor in generator.state_dict().items()}
    metadata = {"config": json.dumps(generator.config()), "format": "napari-lowlight/1"}
    if extra:
        metadata["extra"] = json.dumps(extra)
    save_file(tensors, str(path), metadata=metadata)
    return sha256_of(path)


def _registry(folder: Path) -> dict:
    registry = folder / "models.json"
    if not registry.is_file():
        return {}
    try:
        entries = json.loads(registry.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{registry} is not a readable model registry: {exc}") from None
    if not isinstance(entries, dict):
        raise WeightsError(f"{registry} is not a model registry (a JSON object)")
    return entries


def available_models(folder=None) -> dict:
    """name -> registry entry (file, sha256, config, ...) of the models.

    With ``folder``: that folder's models only.  Without: the shipped models, then the
    user's (:func:`user_models_dir`; a shipped name wins), each entry with its ``folder``
    and ``origin`` ("shipped" or "user").
    """
    if folder:
        return _registry(Path(folder))
    models = {}
    for origin, place in zip(("shipped", "user"), model_folders()):
        try:
            entries = _registry(place)
        except WeightsError as exc:
            if origin == "shipped":
                raise
            warnings.warn(f"user models skipped: {exc}", stacklevel=2)
            continue
        for name, entry in entries.items():
            if name not in models and isinstance(entry, dict):
                models[name] = {**entry, "folder": str(place), "origin": origin}
    return models


def _parameters(config: dict) -> int:
    """Values in a generator's state dict (weights, biases, batch-norm statistics)."""
    if config.get("architecture", "residual") != "residual":
        import torch

        # counted on the meta device: shapes only, nothing allocated
        with torch.device("meta"):
            network = build_generator(config)
        return sum(t.numel() for t in network.state_dict().values())
    channels, depth, width = config["channels"], config["depth"], config["width"]
    inputs = channels + (1 if config["conditioned"] else 0) + channels * len(
        config.get("context_sigmas", ()))
    head = inputs * width * 9 + width
    unit = 2 * (width * width * 9) + 2 * (4 * width + 1)
    tail = width * channels * 9 + channels
    return head + depth * unit + tail


def check_config(config, path="weights") -> dict:
    """A generator configuration from a file's metadata, checked against :data:`LIMITS`.

    Refused with :class:`WeightsError`, before anything is allocated: unknown keys,
    wrong types, sizes beyond the limits.
    """
    if not isinstance(config, dict):
        raise WeightsError(f"{path}: the generator configuration is not a JSON object")
    unknown = set(config) - _CONFIG_KEYS
    if unknown:
        raise WeightsError(f"{path}: unknown generator configuration keys {sorted(unknown)}")
    architecture = config.get("architecture", "residual")
    if not isinstance(architecture, str) or architecture not in ARCHITECTURES:
        raise WeightsError(f"{path}: unknown generator architecture {_brief(architecture)} "
                           f"(this package knows {', '.join(ARCHITECTURES)})")
    checked = {"channels": config.get("channels", 1), "depth": config.get("depth", 16),
               "width": config.get("width", 64), "conditioned": config.get("conditioned", True),
               "context_sigmas": config.get("context_sigmas", [])}
    for key in ("channels", "depth", "width"):
        value = checked[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise WeightsError(f"{path}: {key} must be an integer, got {value!r}")
        low = 0 if key == "depth" else 1
        if not low <= value <= LIMITS[key]:
            raise WeightsError(f"{path} declares {key} {value}; this package loads {key} "
                               f"{low}..{LIMITS[key]}: the file is damaged or not a "
                               "napari-lowlight model")
    if not isinstance(checked["conditioned"], bool):
        raise WeightsError(f"{path}: conditioned must be true or false")
    if architecture != "residual":
        if config.get("context_sigmas"):
            raise WeightsError(f"{path}: context_sigmas belong to the residual architecture")
        if not 1 <= checked["depth"] <= 6:
            raise WeightsError(f"{path} declares a {architecture} of depth {checked['depth']}; "
                               "this package loads 1..6")
        checked = {"architecture": architecture, **{
            key: checked[key] for key in ("channels", "depth", "width", "conditioned")}}
        count = _parameters(checked)
        if count > LIMITS["parameters"]:
            raise WeightsError(f"{path} declares a network of {count:,} values; this package "
                               f"loads at most {LIMITS['parameters']:,}")
        return checked
    sigmas = checked["context_sigmas"]
    if not isinstance(sigmas, list) or len(sigmas) > LIMITS["context_sigmas"] or any(
            isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s)
            for s in sigmas):
        raise WeightsError(f"{path}: context_sigmas must be a list of at most "
                           f"{LIMITS['context_sigmas']} finite numbers, got {_brief(sigmas)}")
    count = _parameters(checked)
    if count > LIMITS["parameters"]:
        raise WeightsError(f"{path} declares a network of {count:,} values; this package loads "
                           f"at most {LIMITS['parameters']:,}")
    if "context_sigmas" not in config:
        del checked["context_sigmas"]
    return checked


def _brief(value) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def load_generator(name_or_path, *, sha256: str | None = None, folder=None) -> Generator:
    """Load a generator by registered name or from a ``.safetensors`` path.

    A name is looked up in ``folder`` when given, else in the shipped models and then the
    user's model folder (:func:`available_models`).  A registered name's file must match
    the sha256 in ``models.json``; a path must match ``sha256`` when given.  Refused with
    :class:`WeightsError`: a missing file, a hash mismatch (altered or truncated), a file
    that is not safetensors, a declared architecture beyond :data:`LIMITS` or that does
    not match the tensors (checked before the network is built), non-finite weights, or
    tensors that do not fit the recorded architecture.
    """
    path = Path(name_or_path)
    if path.suffix != ".safetensors":
        registry = available_models(folder)
        if str(name_or_path) not in registry:
            known = ", ".join(registry) or "none"
            raise WeightsError(f"no model named {name_or_path!r} (available: {known})")
        entry = registry[str(name_or_path)]
        place = Path(folder) if folder else Path(entry["folder"])
        path, sha256 = place / entry["file"], entry["sha256"]
    verify_file(path, sha256=sha256)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            stored = sum(math.prod(handle.get_slice(key).get_shape()) for key in handle.keys())
    except Exception as exc:  # safetensors raises several types for a bad header
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from exc
    if "config" not in metadata:
        raise WeightsError(f"{path} has no generator configuration in its metadata")
    try:
        config = json.loads(metadata["config"])
    except ValueError as exc:
        raise WeightsError(f"{path}: its generator configuration is not JSON: {exc}") from None
    config = check_config(config, path)
    expected = _parameters(config)
    if stored != expected:
        raise WeightsError(f"{path} does not fit a generator {config}: it holds {stored:,} "
                           f"values, the architecture needs {expected:,}")
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # noqa: BLE001
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from exc
    import torch

    bad = sum(int((~torch.isfinite(t)).sum()) for t in tensors.values()
              if t.is_floating_point())
    if bad:
        raise WeightsError(f"{path} holds {bad} non-finite (NaN or infinite) weight value(s): "
                           "the file is damaged or comes from a diverged training run; retrain "
                           "or use another model")
    try:
        generator = build_generator(config)
    except ValueError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    try:
        generator.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path} does not fit a generator {config}: {exc}") from exc
    return generator.eval()


def register(folder, name: str, path, *, sha256: str, card: dict) -> None:
    """Add or replace ``name`` in ``folder/models.json`` (written atomically)."""
    folder = Path(folder)
    registry = _registry(folder)
    registry[name] = {"file": Path(path).name, "sha256": sha256, **card}
    write_registry(folder, registry)


def write_registry(folder, registry: dict) -> None:
    """Write ``registry`` as ``folder/models.json``, atomically (a temporary file, then
    ``os.replace``): a reader never sees half a registry."""
    folder = Path(folder)
    temporary = folder / f".models.json.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(registry, indent=2) + "\n")
    os.replace(temporary, folder / "models.json")
