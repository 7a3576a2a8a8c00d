"""Saving and loading generator weights: safetensors only, checked against a sha256.

A model is a ``NAME.safetensors`` file (tensors only, no code: nothing is
unpickled) whose metadata holds the generator's configuration, and an entry in
``models.json`` beside it with the file's sha256.  A file whose hash differs is
refused before it is read.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .networks import Generator

__all__ = ["WeightsError", "available_models", "load_generator", "register", "save_generator",
           "sha256_of", "shipped_weights_dir"]


class WeightsError(ValueError):
    """A weights file that is missing, altered or does not fit the architecture."""


def shipped_weights_dir() -> Path:
    """The shipped weights: the repository's ``weights/``, installed as ``napari_lowlight.weights``."""
    from importlib.resources import files

    return Path(str(files("napari_lowlight.weights")))


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
    return json.loads(registry.read_text())


def available_models(folder=None) -> dict:
    """name -> registry entry (file, sha256, config, ...) of the models in ``folder``."""
    return _registry(Path(folder) if folder else shipped_weights_dir())


def load_generator(name_or_path, *, sha256: str | None = None, folder=None) -> Generator:
    """Load a generator by registered name or from a ``.safetensors`` path.

    A registered name's file must match the sha256 in ``models.json``; a path must
    match ``sha256`` when given.  Refused with :class:`WeightsError`: a missing
    file, a hash mismatch (altered or truncated), a file that is not safetensors,
    or tensors that do not fit the recorded architecture.
    """
    folder = Path(folder) if folder else shipped_weights_dir()
    path = Path(name_or_path)
    if path.suffix != ".safetensors":
        registry = _registry(folder)
        if str(name_or_path) not in registry:
            known = ", ".join(registry) or "none"
            raise WeightsError(f"no model named {name_or_path!r} (available: {known})")
        entry = registry[str(name_or_path)]
        path, sha256 = folder / entry["file"], entry["sha256"]
    if not path.is_file():
        raise WeightsError(f"weights file {path} is missing")
    if sha256 is not None and sha256_of(path) != sha256:
        raise WeightsError(f"weights file {path} does not match its recorded sha256: it was "
                           "altered or truncated; reinstall the package or retrain")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for a bad header
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from exc
    if "config" not in metadata:
        raise WeightsError(f"{path} has no generator configuration in its metadata")
    config = json.loads(metadata["config"])
    generator = Generator(**config)
    try:
        generator.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path} does not fit a generator {config}: {exc}") from exc
    return generator.eval()


def register(folder, name: str, path, *, sha256: str, card: dict) -> None:
    """Add or replace ``name`` in ``folder/models.json``."""
    folder = Path(folder)
    registry = _registry(folder)
    registry[name] = {"file": Path(path).name, "sha256": sha256, **card}
    (folder / "models.json").write_text(json.dumps(registry, indent=2) + "\n")


