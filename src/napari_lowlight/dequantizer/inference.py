"""The network behind ``dequantize()``: restore the detail a re-exposed image lost to quantization.

The image is cut into planes (channels and leading axes) of shape (rows, cols),
each plane into tiles with a halo of at least the network's receptive field, so
tiled and whole-image inference agree; the residual is added, the result clipped
to [0, 1] and, when the quantization is known, projected into each pixel's
interval so it stays faithful to the capture; a model shipped with a refiner
(:mod:`.refiner`) then gets its learned per-pixel blend of that result, ``Jt`` and light
smoothings of the result, all inside the same intervals.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from .._backend import to_numpy
from .._lazy import check_lazy_dtype, is_lazy, overlap_layout
from .._validation import as_float_image, check_channel_axis, check_int, check_real
from ..intensity import to_intensity
from ..quantization import Quantization
from .networks import Generator
from .guard import GUARD_DEFAULTS, guard_applies, texture_guard
from .refiner import Refiner, refine_plane, refiner_for
from .weights import load_generator

__all__ = ["AUTO_NOISE_FLOOR", "DEFAULT_MODEL", "NOISE_WINDOW", "apply_dequantizer",
           "guard_projected", "judge_noise", "plane_windows", "project_planes",
           "refine_projected", "resolve_device"]

#: The model used when none is named.
DEFAULT_MODEL = "default"
#: Fraction of each interval kept free at its ends by the projection: just enough that
#: float rounding cannot land on the excluded upper edge (0.05, the classic baseline's
#: margin, clips good estimates: measured 0.05-0.27 dB on the validation set).
PROJECTION_MARGIN = 0.001
#: ``noise="auto"`` judges the capture's noise on the central window of at most this many
#: pixels a side of the middle plane (all channels): the same pixels for an in-memory and
#: a dask input, whatever the chunks, so both give the same result.
NOISE_WINDOW = 1024
#: The least noise allowance ``noise="auto"`` projects with, in steps.  Judged from the
#: network's output, the noise of a capture with 0.25 steps of it reads 0.04-0.24 (the
#: network removes only part of the noise), of a noise-free one 0.01-0.06: below a quarter
#: step the judgement cannot tell noise from the network's own deviations.  Chosen on 20
#: training images (``benchmarks/noise_allowance.py --images training --every 3``): over
#: the bare judgement +0.16..+0.23 dB on noisy captures, -0.04..-0.08 dB on noise-free ones.
AUTO_NOISE_FLOOR = 0.25


def resolve_device(device) -> torch.device:
    """"auto" -> CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}: {exc}") from None


def _tiles(length: int, tile: int):
    start = 0
    while start < length:
        yield start, min(start + tile, length)
        start += tile


@torch.no_grad()
def _run_plane(generator: Generator, plane: np.ndarray, step: np.ndarray | None, device,
               tile: int | None) -> np.ndarray:
    """Residual for one (rows, cols) plane, tile by tile with a halo."""
    rows, cols = plane.shape
    context = None
    # duck-typed: any module with the Generator's call signature and receptive_field works
    if getattr(generator, "context_sigmas", ()):
        # the wide-context channels once for the whole plane (cheap: separable Gaussians),
        # so each tile needs only the convolutions' halo, not the context kernels' too
        context = generator.context_features(
            torch.from_numpy(np.ascontiguousarray(plane))[None, None].to(device),
            torch.from_numpy(np.ascontiguousarray(step))[None, None].to(device))
    halo = getattr(generator, "network_receptive_field", generator.receptive_field) // 2 + 1
    # a multi-scale network gives the whole image's result only on tiles that start on its
    # grid of 2**depth pixels
    multiple = getattr(generator, "multiple", 1)
    halo = -(-halo // multiple) * multiple
    if tile is None:
        tile = default_tile(generator, device, (rows, cols))
    tile = -(-tile // multiple) * multiple
    out = np.empty((rows, cols), dtype=np.float32)
    autocast = device.type == "cuda"
    for y0, y1 in _tiles(rows, tile):
        for x0, x1 in _tiles(cols, tile):
            ya, yb = max(0, y0 - halo), min(rows, y1 + halo)
            xa, xb = max(0, x0 - halo), min(cols, x1 + halo)
            # reflect-pad so the borders of the image see the same context tiled or not
            window = torch.from_numpy(np.ascontiguousarray(plane[ya:yb, xa:xb]))[None, None]
            inputs = [window.to(device)]
            if generator.conditioned:
                inputs.append(torch.from_numpy(
                    np.ascontiguousarray(step[ya:yb, xa:xb]))[None, None].to(device))
            if context is not None:
                inputs.append(context[:, :, ya:yb, xa:xb])
            precision = (torch.autocast(device_type="cuda", dtype=torch.bfloat16) if autocast
                         else contextlib.nullcontext())
            with precision:
                residual = generator(*inputs)
            residual = residual.float().cpu().numpy()[0, 0]
            out[y0:y1, x0:x1] = residual[y0 - ya: y1 - ya, x0 - xa: x1 - xa]
    return out


def default_tile(generator, device, shape) -> int:
    """Tile side, pixels, for ``generator`` on ``device`` and a plane of ``shape``.

    The residual network: 256-pixel tiles on the CPU (they keep the activations in cache:
    measured 1.7x faster than whole 1-MP planes; the halo makes the result the same), 1024
    on a GPU.  The U-Net's halo is half its few-hundred-pixel receptive field, so it runs
    whole planes up to 4 MP (CPU) or 16 MP (GPU) and 1024- or 2048-pixel tiles beyond.
    """
    if getattr(generator, "architecture", "residual") == "residual":
        return 256 if device.type == "cpu" else 1024
    whole, tile = (4 * 2**20, 1024) if device.type == "cpu" else (16 * 2**20, 2048)
    return max(shape) if shape[0] * shape[1] <= whole else tile


def _on_device(generator, device):
    """``generator`` moved to ``device``, in the memory layout that runs fastest there."""
    generator = generator.to(device)
    if device.type == "cpu" and getattr(generator, "architecture", None) == "unet":
        # oneDNN's channels-last convolutions: 1.7x faster for the U-Net on 2 cores
        # (benchmarks/bench_dequantize.py), not for the narrow residual network
        generator = generator.to(memory_format=torch.channels_last)
    return generator


#: Smallest tile tried after running out of memory before giving up on a device.
MIN_TILE = 64


def _out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    # the CPU allocator reports a failed allocation as a RuntimeError
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def _run_plane_within_memory(generator, plane, step, device, tile):
    """``_run_plane``, halving the tile after an out-of-memory error down to ``MIN_TILE``,
    then moving from the GPU to the CPU; warns at each step.  Returns the residual and
    the generator, device and tile that worked (kept for the next planes)."""
    import warnings

    if tile is None:
        tile = default_tile(generator, device, plane.shape)
    while True:
        try:
            return _run_plane(generator, plane, step, device, tile), generator, device, tile
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not _out_of_memory(exc):
                raise
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if tile > MIN_TILE:
            tile = max(MIN_TILE, tile // 2)
            warnings.warn(f"dequantize: out of memory on {device.type}; retrying with "
                          f"{tile}-pixel tiles", RuntimeWarning, stacklevel=3)
        elif device.type != "cpu":
            warnings.warn(f"dequantize: out of memory on {device.type} even with {tile}-pixel "
                          "tiles; continuing on the CPU", RuntimeWarning, stacklevel=3)
            device = torch.device("cpu")
            generator = _on_device(generator, device)
            tile = default_tile(generator, device, plane.shape)
        else:
            raise MemoryError(f"dequantize ran out of memory even with {tile}-pixel tiles on "
                              "the CPU; free memory or process a smaller image") from None


def apply_dequantizer(image, *, quantization: Quantization | None = None, model=None,
                      device="auto", tile: int | None = None, project: bool = True,
                      channel_axis: int | None = None, progress=None,
                      noise: float | str = "auto", refine="auto",
                      guard="auto") -> np.ndarray:
    """The work of :func:`napari_lowlight.dequantizer.dequantize` (same parameters and
    result), with PyTorch loaded: checks, the network plane by plane (or block by block
    for dask input), the projection."""
    lazy = is_lazy(image)
    # CuPy input (e.g. laic() on a CuPy array inside enhance()) comes to the host: the
    # network takes torch tensors, which are moved to the device plane by plane anyway
    array = image if lazy else (
        to_numpy(image) if not isinstance(image, (str, bytes)) else image)
    if not hasattr(array, "shape"):
        raise TypeError(f"image must be an array, got {type(image).__name__}")
    channel_axis = check_channel_axis(array.shape, channel_axis)
    _check_quantization(quantization, array.shape, project)
    values = None if lazy else _values(array, quantization)
    tile = check_int(tile, "tile", low=8, allow_none=True)
    noise = _check_noise(noise)
    refiner = _refiner(refine, model, project)
    guarded = guard_applies(guard, None if quantization is None else quantization.bits,
                            project=project)
    generator = _generator_for(model, quantization)
    device = resolve_device(device)
    generator = _on_device(generator, device)
    if lazy or (quantization is not None and quantization.is_lazy):
        if lazy:
            check_lazy_dtype(array)
        if project and noise == "auto":
            noise = _window_noise_lazy(array, quantization, generator=generator,
                                       device=device, tile=tile, channel_axis=channel_axis)
        return _dequantize_lazy(array, quantization, generator=generator, device=device,
                                tile=tile, project=project, channel_axis=channel_axis,
                                noise=noise, refiner=refiner, guarded=guarded)
    restored = _restore_planes(values, quantization, generator,
                               device=device, tile=tile, channel_axis=channel_axis,
                               progress=progress)
    if project:
        if noise == "auto":
            noise = judge_noise(restored, quantization, channel_axis=channel_axis)
        # float32 in: project() then steps any value that float32 rounding put on an
        # interval's excluded edge back inside (a 16-bit interval is below a float32 ulp
        # near 1 times the margin's 1/1000)
        restored = project_planes(quantization, restored, noise=noise,
                                  channel_axis=channel_axis)
        if refiner is not None:
            restored = refine_projected(refiner, values, restored, quantization, noise=noise,
                                        channel_axis=channel_axis)
        if guarded:
            restored = guard_projected(values, restored, quantization, noise=noise,
                                       channel_axis=channel_axis)
    return restored.astype(np.float32)


def refine_projected(refiner: Refiner, values, projected, quantization: Quantization, *,
                     noise: float, channel_axis=None) -> np.ndarray:
    """``projected`` (the network's output projected with ``noise``) finished by
    ``refiner``: what ``dequantize(..., refine=...)`` returns, float32."""
    refined = _refine_planes(refiner, values, projected, quantization, noise=noise,
                             channel_axis=channel_axis)
    # the blend is convex, so inside the intervals up to float32 rounding: the projection
    # again puts any value rounding moved onto an edge back inside
    return project_planes(quantization, refined, noise=noise, channel_axis=channel_axis)


def guard_projected(values, restored, quantization: Quantization, *, noise: float,
                    channel_axis=None) -> np.ndarray:
    """``restored`` (projected with ``noise``) through the texture guard
    (:func:`.guard.texture_guard`) plane by plane: what ``dequantize(..., guard=True)``
    returns, float32."""
    values, restored = np.asarray(values), np.asarray(restored)
    out = np.empty(restored.shape, dtype=np.float32)
    for window in plane_windows(restored.shape, channel_axis):
        # Jt as float32, as the network and the refiner see it: a float64 Jt and its float32
        # copy (a result saved and reopened) then give the same answer, to the bit
        out[window] = texture_guard(np.asarray(values[window], dtype=np.float32),
                                    restored[window],
                                    _window_quantization(quantization, window).interval_width)
    # a convex blend of values inside the intervals: the projection only undoes float32
    # rounding onto an edge
    return project_planes(quantization, out, noise=noise, channel_axis=channel_axis)


def plane_windows(shape, channel_axis=None):
    """Index tuples of every (rows, cols) plane of an array of ``shape``: the last two axes
    other than ``channel_axis`` are the plane's; channels outermost, then the other leading
    axes in order.  ``array[window]`` is a 2-D view."""
    ndim = len(shape)
    channel = None if channel_axis is None else channel_axis % ndim
    others = [axis for axis in range(ndim) if axis != channel]
    leading = others[:-2]
    for index in np.ndindex(*([] if channel is None else [shape[channel]]),
                            *[shape[axis] for axis in leading]):
        window = [slice(None)] * ndim
        for axis, position in zip(([] if channel is None else [channel]) + leading, index):
            window[axis] = position
        yield tuple(window)


def project_planes(quantization: Quantization, image, *, noise: float,
                   channel_axis=None) -> np.ndarray:
    """``quantization.project(image as float32, margin=PROJECTION_MARGIN, noise=noise)``,
    float32, computed plane by plane: the same values, to the bit (the projection is per
    pixel), with the interval bounds of one plane in memory at a time instead of the
    whole image's (float64: four of them for an 8K RGB photograph are 3.2 GB)."""
    image = np.asarray(image)
    out = np.empty(image.shape, dtype=np.float32)
    for window in plane_windows(image.shape, channel_axis):
        out[window] = _window_quantization(quantization, window).project(
            np.asarray(image[window], dtype=np.float32), margin=PROJECTION_MARGIN, noise=noise)
    return out


def _refiner(refine, model, project: bool) -> Refiner | None:
    """The refiner ``refine`` asks for: "auto" the named model's when it ships one (none
    without the projection), True the same but required, False none, or a Refiner."""
    if isinstance(refine, Refiner):
        refiner = refine
    elif refine is False or refine is None:
        return None
    elif refine is True or refine == "auto":
        if refine == "auto" and not project:
            return None
        name = DEFAULT_MODEL if model is None else model
        refiner = refiner_for(name)
        if refine is True and refiner is None:
            raise ValueError(f"refine=True: the model {name!r} has no refiner (only a "
                             "registered model name can have one)")
        if refiner is None:
            return None
    else:
        raise ValueError(f'refine must be "auto", True, False or a Refiner, got {refine!r}')
    if not project:
        raise ValueError("refine needs the projection (project=True): the refiner blends "
                         "candidates inside the intervals")
    return refiner


def _refine_planes(refiner: Refiner, values, restored, quantization: Quantization, *,
                   noise: float, channel_axis) -> np.ndarray:
    """The refiner on every (rows, cols) plane, its candidates projected as ``restored``
    was (the intervals widened by ``noise`` steps, margin :data:`PROJECTION_MARGIN`)."""
    values, restored = np.asarray(values), np.asarray(restored)
    out = np.empty(restored.shape, dtype=np.float32)
    # one plane's bounds at a time (float64; the whole image's would be several copies)
    for window in plane_windows(restored.shape, channel_axis):
        plane = _window_quantization(quantization, window)
        lo, hi = plane.bounds(noise=noise)
        span = hi - lo
        low, high = lo + PROJECTION_MARGIN * span, hi - PROJECTION_MARGIN * span
        out[window] = refine_plane(refiner, values[window], restored[window],
                                   plane.interval_width,
                                   lambda image, low=low, high=high: np.clip(image, low, high))
    return out


def _values(array, quantization: Quantization | None) -> np.ndarray:
    """The in-memory image as floats in [0, 1]: integers by their bit depth (the
    quantization's when given, else the one rule of :func:`to_intensity`)."""
    if array.dtype.kind in "iu" and array.size:
        return to_intensity(array, bits=None if quantization is None else quantization.bits)[0]
    return as_float_image(array)


def _check_quantization(quantization, shape, project: bool) -> None:
    if quantization is not None:
        if not isinstance(quantization, Quantization):
            raise TypeError("quantization must be a napari_lowlight.Quantization, got "
                            f"{type(quantization).__name__}")
        if tuple(quantization.shape) != tuple(shape):
            raise ValueError(f"quantization shape {tuple(quantization.shape)} does not match "
                             f"the image's {tuple(shape)}")
    if project and quantization is None:
        raise ValueError("project=True needs the quantization; pass quantization= or "
                         "project=False")


#: Pixels each side a guarded pixel depends on: the 3x3 median and the 3x3 widest interval,
#: then the Gaussian window (truncated at 4 sigma), and one to spare.
GUARD_REACH = 1 + int(4.0 * GUARD_DEFAULTS["sigma"] + 0.5) + 1


def _check_noise(noise):
    """``"auto"`` or the allowance in steps, 0..8."""
    if isinstance(noise, str):
        if noise == "auto":
            return noise
        raise ValueError(f'noise must be "auto" or a number of steps in 0..8, got {noise!r}')
    return check_real(noise, "noise", low=0.0, high=8.0)


def _generator_for(model, quantization: Quantization | None):
    """The network ``model`` names (or is), checked against what this function can run."""
    if isinstance(model, (Generator, torch.nn.Module)):  # a ready network, any architecture
        generator = model.eval()
    else:
        generator = load_generator(DEFAULT_MODEL if model is None else model)
    if generator.channels != 1:
        raise ValueError("this dequantize() restores channels one by one: use a 1-channel model")
    if generator.conditioned and quantization is None:
        raise ValueError("this model is conditioned on the quantization step: pass "
                         "quantization= (from degrade(...) or laic(...))")
    return generator


def _restore_planes(values, quantization, generator, *, device, tile, channel_axis,
                    progress) -> np.ndarray:
    """The network on every (rows, cols) plane of an in-memory image: the input plus the
    residual, clipped to [0, 1], in the input's layout."""
    values = np.asarray(values)
    step = None if quantization is None else np.asarray(quantization.interval_width)
    restored = np.empty(values.shape, dtype=np.float32)
    windows = list(plane_windows(values.shape, channel_axis))
    for index, window in enumerate(windows):
        plane = np.ascontiguousarray(values[window], dtype=np.float32)
        plane_step = None if step is None else np.ascontiguousarray(step[window],
                                                                    dtype=np.float32)
        residual, generator, device, tile = _run_plane_within_memory(
            generator, plane, plane_step, device, tile)
        restored[window] = np.clip(plane + residual, 0.0, 1.0)
        if progress is not None:
            progress(index + 1, len(windows))
    return restored


def judge_noise(estimate, quantization: Quantization, *, channel_axis: int | None = None,
                floor: float | None = None) -> float:
    """The noise allowance ``dequantize(noise="auto")`` uses, from its raw output.

    Parameters
    ----------
    estimate : ndarray of float
        The network's raw output (``dequantize(..., project=False)``), the quantization's
        shape.
    quantization : Quantization
        In memory.
    channel_axis : int or None
        Colour axis of both.
    floor : float or None
        The least allowance returned, steps; None: :data:`AUTO_NOISE_FLOOR`, 0: the bare
        judgement.

    Returns
    -------
    float, 0..8
        :meth:`Quantization.noise_of` on the central ``NOISE_WINDOW`` pixels a side of
        the middle plane (all channels), in quantization steps, at least ``floor``.
    """
    window = _noise_window(np.shape(estimate), channel_axis)
    judged = _window_quantization(quantization, window).noise_of(np.asarray(estimate)[window])
    return max(judged, AUTO_NOISE_FLOOR if floor is None else float(floor))


def _noise_window(shape, channel_axis, *, context: int = 0, multiple: int = 1) -> tuple:
    """Index of the window ``noise="auto"`` judges: the central ``NOISE_WINDOW`` pixels a
    side of the middle plane, all channels.  With ``context``, the window grown by that
    many pixels on each side (clipped to the image), its start on the network's grid of
    ``multiple`` pixels, so the network sees there what it sees in the whole image."""
    spatial = [axis for axis in range(len(shape)) if axis != channel_axis][-2:]
    index = []
    for axis, size in enumerate(shape):
        if axis == channel_axis:
            index.append(slice(None))
        elif axis in spatial:
            length = min(size, NOISE_WINDOW)
            start = (size - length) // 2
            grown = max(0, start - context) // multiple * multiple
            index.append(slice(grown, min(size, start + length + context)))
        else:
            index.append(slice(size // 2, size // 2 + 1))
    return tuple(index)


def _window_quantization(quantization: Quantization, window) -> Quantization:
    k = quantization.k
    if np.ndim(k) > 0:
        k = np.asarray(np.broadcast_to(k, quantization.shape)[window])
    return Quantization(np.asarray(quantization.levels[window]), k=k, r=quantization.r,
                        bits=quantization.bits)


def _window_noise_lazy(image, quantization, *, generator, device, tile, channel_axis) -> float:
    """``noise="auto"`` for a dask input: the network runs on the judged window plus a halo
    of its receptive field (as ``map_overlap`` would give it), then the window is judged."""
    halo = generator.receptive_field // 2 + 1
    multiple = getattr(generator, "multiple", 1)
    outer = _noise_window(image.shape, channel_axis, context=halo, multiple=multiple)
    inner = _noise_window(image.shape, channel_axis)
    local = _window_quantization(quantization, outer)
    values = np.asarray(image[outer])
    raw = apply_dequantizer(values, quantization=local, model=generator, device=device,
                            tile=tile, project=False, channel_axis=channel_axis)
    core = tuple(slice(i.start - o.start, i.stop - o.start) if i.start is not None else i
                 for i, o in zip(inner, outer))
    # the core is already the judged window: judge_noise takes all of it (floor included)
    return judge_noise(raw[core], _window_quantization(local, core), channel_axis=channel_axis)


def _overlap_layout(image, generator, axes, *, finish_reach: int = 0):
    """``image`` rechunked for ``map_overlap`` over ``axes`` and the depth per axis: a halo
    of half the receptive field plus one (or ``finish_reach``, the refiner's and guard's,
    when larger), blocks on the network's grid of ``generator.multiple`` pixels, chunks of
    at least 256 (:func:`overlap_layout`)."""
    reach = max(generator.receptive_field // 2 + 1, int(finish_reach))
    return overlap_layout(image, dict.fromkeys(axes, reach),
                          multiple=getattr(generator, "multiple", 1), min_chunk=256)


def _dequantize_lazy(image, quantization, *, generator, device, tile, project, channel_axis,
                     noise=0.0, refiner=None, guarded=False):
    """``dequantize`` on dask arrays: ``map_overlap`` with a halo of the receptive field."""
    import dask.array as da

    image = da.asarray(image)
    rows_axis, cols_axis = [axis for axis in range(image.ndim) if axis != channel_axis][-2:]
    finish = (refiner.halo() if refiner is not None else 0) + (GUARD_REACH if guarded else 0)
    image, depth = _overlap_layout(image, generator, (rows_axis, cols_axis),
                                   finish_reach=finish)
    arrays, k, r, bits = [image], None, None, None
    if quantization is not None:
        arrays.append(da.asarray(quantization.levels).rechunk(image.chunks))
        k, r, bits = quantization.k, quantization.r, quantization.bits
        if np.ndim(k) > 0:
            k_full = da.broadcast_to(k if is_lazy(k) else da.from_array(np.asarray(k)),
                                     image.shape)
            arrays.append(k_full.rechunk(image.chunks))
            k = None
    return da.map_overlap(
        _dequantize_block, *arrays, depth=depth, boundary="none", dtype=np.float32,
        k=k, r=r, bits=bits, generator=generator, device=device, tile=tile,
        project=project, channel_axis=channel_axis, noise=noise, refiner=refiner,
        guarded=guarded)


def _dequantize_block(block, levels=None, k_block=None, *, k, r, bits, generator, device,
                      tile, project, channel_axis, noise=0.0, refiner=None, guarded=False):
    quantization = None
    if levels is not None:
        quantization = Quantization(levels, k=k if k_block is None else k_block, r=r, bits=bits)
    return apply_dequantizer(block, quantization=quantization, model=generator,
                             device=device, tile=tile, project=project,
                             channel_axis=channel_axis, noise=noise,
                             refine=False if refiner is None else refiner, guard=guarded)
