"""The refiner: a small learned per-pixel blend that finishes the network's projected output.

The dequantizer network, trained with a per-pixel L1 loss, leaves a little of the capture's
noise and dither in smooth regions, where a light low-pass filter of its output is closer to
the truth; in dense line art it smooths where the plain re-exposure ``Jt`` is closer.  The
refiner chooses per pixel: a small CNN (three dilated layers by default) looks at the
candidates' differences (in quantization steps) and outputs convex weights (a softmax) over

- ``Jt`` itself (the input, inside its exact interval),
- the network's projected output,
- that output smoothed by Gaussians of :data:`SMOOTHING_SIGMAS` pixels, each projected again.

Every candidate lies inside the (noise-widened) quantization intervals, and so does any convex
combination of them: the refined result is exactly as consistent as the projected network
output.  Pure PyTorch / NumPy / SciPy, no napari.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch import nn

__all__ = ["DEFAULT_DILATIONS", "REFINER_TILE", "SMOOTHING_SIGMAS", "TEXTURE_DETAIL_SIGMA",
           "Refiner", "load_refiner", "local_texture", "refine_plane", "refiner_candidates",
           "refiner_for", "save_refiner"]

#: Gaussian standard deviations (pixels) of the smoothed candidates.
SMOOTHING_SIGMAS = (0.7, 1.5, 3.0)

#: Dilations of the CNN's hidden 3x3 layers (the shipped refiners'; 7 px of reach each side).
DEFAULT_DILATIONS = (1, 2, 4)


def refiner_candidates(values: np.ndarray, network: np.ndarray,
                       project: Callable[[np.ndarray], np.ndarray],
                       sigmas=SMOOTHING_SIGMAS, input_sigmas=()) -> np.ndarray:
    """The refiner's candidates for one (rows, cols) plane, stacked (K, rows, cols) float32.

    Parameters
    ----------
    values : ndarray (rows, cols)
        The network's input ``Jt`` (re-exposed or LAIC output), in [0, 1].
    network : ndarray (rows, cols)
        The network's output already projected into the intervals.
    project : callable
        Clips a (rows, cols) array into the same intervals (the projection ``network`` went
        through).
    sigmas : sequence of float
        Gaussian standard deviations of the network's smoothings, pixels.
    input_sigmas : sequence of float
        Gaussian standard deviations of ``Jt``'s smoothings (1.5: the classic dequantizer's
        filter), pixels.

    Returns
    -------
    ndarray of float32, shape (2 + len(sigmas) + len(input_sigmas), rows, cols): ``Jt``, the
    network, the projected smoothed networks, then the projected smoothed inputs.
    """
    network64 = np.asarray(network, dtype=np.float64)
    stack = [np.asarray(values, dtype=np.float32), network64.astype(np.float32)]
    for sigma in sigmas:
        stack.append(np.asarray(project(gaussian_filter(network64, sigma, mode="nearest")),
                                dtype=np.float32))
    values64 = np.asarray(values, dtype=np.float64)
    for sigma in input_sigmas:
        stack.append(np.asarray(project(gaussian_filter(values64, sigma, mode="nearest")),
                                dtype=np.float32))
    return np.stack(stack)


#: Gaussian (pixels) whose residual measures the capture's pixel-scale texture.
TEXTURE_DETAIL_SIGMA = 1.5


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, 1, H, W) smoothed by a Gaussian of ``sigma`` px, truncated at 4 sigma, edges
    repeated: ``scipy.ndimage.gaussian_filter(..., mode="nearest")`` in torch."""
    radius = int(4.0 * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = nn.functional.pad(image, (radius, radius, radius, radius), mode="replicate")
    rows = nn.functional.conv2d(padded, kernel.view(1, 1, -1, 1))
    return nn.functional.conv2d(rows, kernel.view(1, 1, 1, -1))


def local_texture(values: torch.Tensor, step: torch.Tensor, sigma: float) -> torch.Tensor:
    """The capture's local pixel-scale texture, steps: the root mean square, over a
    Gaussian window of ``sigma`` px, of ``values`` minus their
    :data:`TEXTURE_DETAIL_SIGMA`-px smoothing divided by the widest interval of each
    pixel's 3x3 neighbourhood (as :func:`~.guard.pixel_texture` counts: the range's end
    intervals, cut short at 0 and at a saturated 1, count as whole steps).

    About 0.3 for a smooth scene captured with a quarter step of noise; one or more where
    the scene (or the capture's noise) varies by a step from pixel to pixel.

    Parameters
    ----------
    values, step : torch.Tensor (N, 1, H, W)
        ``Jt`` in [0, 1] and the exact interval widths (>= 0; 0 at unreachable levels;
        where a whole 3x3 neighbourhood has widths of 0, the widest within the detail
        Gaussian's reach counts).
    sigma : float
        The averaging window, pixels.
    """
    width = nn.functional.max_pool2d(step, 3, stride=1, padding=1)
    # Deeper than a pixel inside an unreachable (zero-width) region no 3x3 neighbour has a
    # step; there the detail is nonzero only where its blur reaches across the region's edge,
    # and is counted in the widest step within that reach (not in a tiny floor, which made
    # it millions of steps).  Local, so tiles and dask blocks with the halo give the same.
    reach = int(4.0 * TEXTURE_DETAIL_SIGMA + 0.5)
    wider = nn.functional.max_pool2d(step, 2 * reach + 1, stride=1, padding=reach)
    width = torch.where(width > 0, width, wider).clamp(min=1e-6)
    detail = (values - _gaussian_blur(values, TEXTURE_DETAIL_SIGMA)) / width
    return torch.sqrt(_gaussian_blur(detail * detail, sigma) + 1e-12)


class Refiner(nn.Module):
    """Per-pixel convex weights over the candidates of :func:`refiner_candidates`.

    Parameters
    ----------
    width : int
        Features of the hidden layers.
    sigmas : sequence of float
        The smoothed networks' Gaussians (stored with the weights).
    input_sigmas : sequence of float
        The smoothed inputs' Gaussians (stored with the weights).
    texture_sigma : float or None
        When set, one more input: the capture's local texture, the root mean square of
        ``Jt`` minus its :data:`TEXTURE_DETAIL_SIGMA`-px smoothing, in steps, averaged over
        a Gaussian window of ``texture_sigma`` pixels (:func:`local_texture`).  Where the
        scene itself varies by a step or more from pixel to pixel (a noisy fluorescence
        frame), nothing within an interval can be inferred from the neighbours, and ``Jt``
        (each interval's centre) is the safe answer; this feature lets the refiner see it.
        None (the shipped session-24 refiner's form): no such input.
    dilations : sequence of int
        The dilation of each hidden 3x3 layer, in order: the CNN sees ``sum(dilations)``
        pixels each side.  The shipped refiners: (1, 2, 4).
    """

    def __init__(self, width: int = 16, sigmas=SMOOTHING_SIGMAS, input_sigmas=(),
                 texture_sigma: float | None = None, dilations=DEFAULT_DILATIONS):
        super().__init__()
        self.sigmas = tuple(float(s) for s in sigmas)
        self.input_sigmas = tuple(float(s) for s in input_sigmas)
        self.texture_sigma = None if texture_sigma is None else float(texture_sigma)
        self.width = int(width)
        self.dilations = tuple(int(d) for d in dilations)
        if not self.dilations or min(self.dilations) < 1:
            raise ValueError(f"dilations must be one or more integers >= 1, got {dilations}")
        candidates = 2 + len(self.sigmas) + len(self.input_sigmas)
        features = candidates + (self.texture_sigma is not None)
        # inputs: every other candidate minus the network, in steps, log2 of the step and
        # (texture_sigma) the local texture
        layers, channels = [], features
        for dilation in self.dilations:
            layers += [nn.Conv2d(channels, width, 3, padding=dilation, dilation=dilation),
                       nn.ReLU(inplace=True)]
            channels = width
        self.body = nn.Sequential(*layers, nn.Conv2d(width, candidates, 1))
        with torch.no_grad():
            # start as the plain network output (weight ~0.9 on it)
            bias = torch.full((candidates,), -2.0)
            bias[1] = 2.0
            self.body[-1].bias.copy_(bias)

    @property
    def reach(self) -> int:
        """Pixels each side that a result pixel depends on (the CNN's reach)."""
        return sum(self.dilations)

    def halo(self) -> int:
        """Pixels each side a tile needs for the whole plane's result: the CNN's reach
        plus the largest Gaussian's (scipy truncates at 4 sigma)."""
        widest = max(self.sigmas + self.input_sigmas, default=0.0)
        if self.texture_sigma is not None:
            # the texture: a detail Gaussian, then the window's, both truncated at 4 sigma
            widest = max(widest, TEXTURE_DETAIL_SIGMA + self.texture_sigma)
        return self.reach + int(4.0 * widest + 0.5) + 2

    def forward(self, candidates: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """Refined image (N, 1, H, W) from ``candidates`` (N, K, H, W) and ``step``
        (N, 1, H, W), the exact interval widths."""
        return (self.weights(candidates, step) * candidates).sum(dim=1, keepdim=True)

    def weights(self, candidates: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """The per-pixel convex weights (N, K, H, W) that :meth:`forward` gives the
        candidates (what the refiner chose; ``benchmarks/refiner_choice.py`` reports them)."""
        step = step.clamp(min=1e-6)
        network = candidates[:, 1:2]
        others = torch.cat([candidates[:, :1], candidates[:, 2:]], dim=1)
        features = [((others - network) / step).clamp(-4.0, 4.0),
                    (torch.log2(step) + 8.0) / 8.0]
        if self.texture_sigma is not None:
            texture = local_texture(candidates[:, :1], step, self.texture_sigma)
            features.append(texture.clamp(max=8.0) / 4.0)
        return torch.softmax(self.body(torch.cat(features, dim=1)), dim=1)


#: Side, pixels, of the tiles the refiner's CNN runs on within a plane.  Its hidden layers
#: hold ``width`` float32 features per pixel: on a whole 11 MP plane (one channel of an 8K
#: photograph) that was most of ``dequantize``'s 13.5 GB peak (benchmarks/bench_memory.py).
REFINER_TILE = 1024


def _weights_reach(refiner: Refiner) -> int:
    """Pixels each side that :meth:`Refiner.weights` reads beyond a pixel, given the
    candidates: the CNN's reach, plus the texture input's Gaussians (truncated at 4 sigma)
    and its 3x3 widest interval."""
    reach = refiner.reach
    if refiner.texture_sigma is not None:
        reach += (int(4.0 * TEXTURE_DETAIL_SIGMA + 0.5) + int(4.0 * refiner.texture_sigma + 0.5)
                  + 1)
    return reach


def refine_plane(refiner: Refiner, values: np.ndarray, network: np.ndarray, step: np.ndarray,
                 project: Callable[[np.ndarray], np.ndarray], *,
                 tile: int = REFINER_TILE) -> np.ndarray:
    """The refined (rows, cols) plane, float32 (CPU; the refiner is tiny).

    The candidates are made for the whole plane; the CNN runs on ``tile``-px tiles with a
    halo of its reach, which gives the whole plane's result (to float rounding) in a
    bounded amount of memory."""
    if int(tile) != tile or tile < 1:
        raise ValueError(f"tile must be a positive number of pixels, got {tile!r}")
    tile = int(tile)
    candidates = refiner_candidates(values, network, project, refiner.sigmas,
                                    refiner.input_sigmas)
    rows, cols = candidates.shape[1:]
    # an own writable copy: torch.from_numpy takes no read-only (broadcast) array
    step = np.array(np.broadcast_to(np.asarray(step, dtype=np.float32), (rows, cols)))
    # oneDNN's channels-last convolutions: the refiner's CNN runs 1.7-2.4x faster on the
    # CPU (benchmarks/bench_dequantize.py, "the refiner's CNN alone" rows), same values
    # within 1e-6. load_refiner returns it so; a refiner built otherwise is converted once
    if not refiner.body[0].weight.is_contiguous(memory_format=torch.channels_last):
        refiner.to(memory_format=torch.channels_last)
    halo = _weights_reach(refiner) + 1
    refined = np.empty((rows, cols), dtype=np.float32)
    with torch.no_grad():
        for top in range(0, rows, tile):
            for left in range(0, cols, tile):
                bottom, right = min(top + tile, rows), min(left + tile, cols)
                y0, y1 = max(0, top - halo), min(rows, bottom + halo)
                x0, x1 = max(0, left - halo), min(cols, right + halo)
                result = refiner(
                    torch.from_numpy(np.ascontiguousarray(candidates[:, y0:y1, x0:x1]))[None]
                    .contiguous(memory_format=torch.channels_last),
                    torch.from_numpy(np.ascontiguousarray(step[y0:y1, x0:x1]))[None, None])
                refined[top:bottom, left:right] = result.numpy()[
                    0, 0, top - y0:bottom - y0, left - x0:right - x0]
    # float32 sums of values at 1 can land a rounding step above it
    return np.clip(refined, 0.0, 1.0)


#: Largest refiner a weights file may declare (checked before it is built).
REFINER_LIMITS = {"width": 128, "sigmas": 8, "sigma": 32.0, "layers": 8, "dilation": 64}


def save_refiner(refiner: Refiner, path, *, extra: dict | None = None) -> str:
    """Write ``refiner`` to ``path`` (safetensors, its configuration in the metadata) and
    return the file's sha256."""
    from safetensors.torch import save_file

    from .weights import sha256_of

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().cpu().contiguous()
               for name, tensor in refiner.state_dict().items()}
    config = {"width": refiner.width, "sigmas": list(refiner.sigmas),
              "input_sigmas": list(refiner.input_sigmas)}
    if refiner.texture_sigma is not None:
        config["texture_sigma"] = refiner.texture_sigma
    if refiner.dilations != DEFAULT_DILATIONS:
        config["dilations"] = list(refiner.dilations)
    metadata = {"refiner": json.dumps(config),
                "format": "napari-lowlight-refiner/1"}
    if extra:
        metadata["extra"] = json.dumps(extra)
    save_file(tensors, str(path), metadata=metadata)
    return sha256_of(path)


def load_refiner(path, *, sha256: str | None = None) -> Refiner:
    """Load a refiner from a ``.safetensors`` file (never unpickled), checked against
    ``sha256`` when given; refused with :class:`~.weights.WeightsError` when missing,
    altered, not a refiner, beyond :data:`REFINER_LIMITS`, non-finite or ill-fitting."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from .weights import WeightsError, verify_file

    path = Path(path)
    verify_file(path, sha256=sha256, what="refiner file", remedy="reinstall the package")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        config = json.loads(metadata["refiner"])
        width, sigmas = int(config["width"]), tuple(float(x) for x in config["sigmas"])
        input_sigmas = tuple(float(x) for x in config.get("input_sigmas", ()))
        texture_sigma = config.get("texture_sigma")
        texture_sigma = None if texture_sigma is None else float(texture_sigma)
        dilations = tuple(int(d) for d in config.get("dilations", DEFAULT_DILATIONS))
    except Exception as exc:  # noqa: BLE001 - bad header, no or bad configuration
        raise WeightsError(f"{path} is not a refiner file: {exc}") from None
    if not (1 <= width <= REFINER_LIMITS["width"]
            and len(sigmas) + len(input_sigmas) <= REFINER_LIMITS["sigmas"]
            and all(0.0 < x <= REFINER_LIMITS["sigma"] for x in sigmas + input_sigmas)
            and (texture_sigma is None or 0.0 < texture_sigma <= REFINER_LIMITS["sigma"])
            and 1 <= len(dilations) <= REFINER_LIMITS["layers"]
            and all(1 <= d <= REFINER_LIMITS["dilation"] for d in dilations)):
        raise WeightsError(f"{path} declares a refiner beyond the limits {REFINER_LIMITS}: "
                           f"width {width}, sigmas {sigmas}, input sigmas {input_sigmas}, "
                           f"texture sigma {texture_sigma}, dilations {dilations}")
    tensors = load_file(str(path))
    if any(t.is_floating_point() and not bool(torch.isfinite(t).all())
           for t in tensors.values()):
        raise WeightsError(f"{path} holds non-finite weights")
    refiner = Refiner(width=width, sigmas=sigmas, input_sigmas=input_sigmas,
                      texture_sigma=texture_sigma, dilations=dilations)
    try:
        refiner.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path} does not fit a refiner of width {width}: {exc}") from exc
    # the layout refine_plane runs fastest in (the values do not depend on it)
    return refiner.to(memory_format=torch.channels_last).eval()


def refiner_for(model) -> Refiner | None:
    """The refiner registered with the model named ``model`` (``models.json`` entry
    ``"refiner": {"file", "sha256"}``), or None: unnamed models (a path, a network) and
    models registered without one have none."""
    if not isinstance(model, str) or model.endswith(".safetensors"):
        return None
    from .weights import available_models

    entry = available_models().get(model)
    if not entry or not isinstance(entry.get("refiner"), dict):
        return None
    return load_refiner(Path(entry["folder"]) / entry["refiner"]["file"],
                        sha256=entry["refiner"]["sha256"])


def refiner_training_data(generator, images, settings, *, pairs: int = 800, seed: int = 123,
                          noise: float = 0.25, batch: int = 8, sigmas=SMOOTHING_SIGMAS,
                          input_sigmas=(), progress=None):
    """Candidates, steps and targets of ``pairs`` synthetic pairs for :func:`train_refiner`.

    Pairs are drawn as the network's training draws them (:func:`~.pairs.make_batch` with
    ``settings``, LAIC-made ones included); the network's output is projected into the
    intervals widened by ``noise`` steps (``AUTO_NOISE_FLOOR``, what ``dequantize``'s
    judged allowance mostly is; linearly in the re-exposed domain, the pair carrying only its
    exact bounds), as are its smoothings.

    Returns
    -------
    candidates (P, K, S, S), steps (P, 1, S, S), targets (P, 1, S, S), float32
    """
    from .pairs import make_batch

    rng = np.random.default_rng(seed)
    candidates, steps, targets = [], [], []
    generator = generator.eval()
    while len(candidates) < pairs:
        drawn = make_batch(images, rng, batch, settings)
        with torch.no_grad():
            inputs = [torch.from_numpy(drawn["input"])]
            if getattr(generator, "conditioned", False):
                inputs.append(torch.from_numpy(drawn["step"]))
            residual = generator(*inputs).numpy()
        for index in range(residual.shape[0]):
            if len(candidates) == pairs:
                break
            lower = drawn["lower"][index, 0].astype(np.float64)
            upper = drawn["upper"][index, 0].astype(np.float64)
            width = upper - lower
            low, high = np.maximum(lower - noise * width, 0.0), upper + noise * width
            span = high - low

            def project(image, low=low, high=high, span=span):
                return np.clip(image, low + 0.001 * span, high - 0.001 * span)

            values = drawn["input"][index, 0]
            network = project(np.clip(values + residual[index, 0], 0.0, 1.0))
            candidates.append(refiner_candidates(values, network, project, sigmas,
                                                 input_sigmas))
            steps.append(drawn["step"][index])
            targets.append(drawn["target"][index])
        if progress is not None:
            progress(len(candidates), pairs)
    return np.stack(candidates), np.stack(steps), np.stack(targets)


def train_refiner(candidates, steps, targets, *, iterations: int = 2500, batch: int = 16,
                  crop: int = 96, learning_rate: float = 2e-3, width: int = 16, seed: int = 0,
                  sigmas=SMOOTHING_SIGMAS, input_sigmas=(), texture_sigma=None,
                  dilations=DEFAULT_DILATIONS, progress=None) -> Refiner:
    """Fit a :class:`Refiner` on :func:`refiner_training_data`'s arrays.

    The loss is each pair's log mean squared error relative to the network's own (the
    mean dB gained per pair), so a 16-bit pair weighs as much as an 8-bit one.

    Parameters
    ----------
    iterations : int
        Adam steps of ``batch`` random ``crop``-px windows.
    progress : callable, optional
        ``progress(iteration, running_gain_db)`` every 250 iterations.
    """
    torch.manual_seed(seed)
    candidates, steps, targets = (torch.from_numpy(np.ascontiguousarray(a))
                                  for a in (candidates, steps, targets))
    side = candidates.shape[-1]
    refiner = Refiner(width=width, sigmas=sigmas, input_sigmas=input_sigmas,
                      texture_sigma=texture_sigma, dilations=dilations)
    if candidates.shape[1] != 2 + len(refiner.sigmas) + len(refiner.input_sigmas):
        raise ValueError(f"{candidates.shape[1]} candidates do not fit sigmas {sigmas} and "
                         f"input_sigmas {input_sigmas}")
    optimizer = torch.optim.Adam(refiner.parameters(), lr=learning_rate)
    draws = torch.Generator().manual_seed(seed)
    running = 0.0
    for iteration in range(iterations):
        chosen = torch.randint(0, candidates.shape[0], (batch,), generator=draws)
        y, x = torch.randint(0, side - crop + 1, (2,), generator=draws).tolist()
        window = (chosen, slice(None), slice(y, y + crop), slice(x, x + crop))
        target = targets[window]
        refined = refiner(candidates[window], steps[window])
        error = ((refined - target) ** 2).mean(dim=(1, 2, 3)) + 1e-14
        network_error = ((candidates[window][:, 1:2] - target) ** 2).mean(dim=(1, 2, 3)) + 1e-14
        loss = (torch.log(error) - torch.log(network_error)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running = 0.98 * running + 0.02 * loss.item()
        if progress is not None and iteration % 250 == 0:
            progress(iteration, -10.0 * running / np.log(10.0))
    return refiner.eval()
