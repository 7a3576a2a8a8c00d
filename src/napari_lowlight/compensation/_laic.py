"""``laic()``: locally adaptive illumination compensation of a dark image (METHOD.md section 4)."""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._backend import array_module, to_numpy
from .._lazy import check_lazy_dtype, is_lazy, plane_chunks
from .._validation import check_channel_axis, check_int, check_real, float_dtype_for
from ..intensity import Intensity, effective_bits, sample_positions, to_intensity
from ..quantization import Quantization
from ._fast import solve_fast
from ._lp import LAICSolverError, solve_partition
from ._problem import LocalContrast, rank_preservation
from ._shading import shading_gain

__all__ = ["EDGE_REGIONS", "EXACT_MAX_PIXELS", "LAICResult", "laic"]

#: "auto" uses the exact LP up to this many pixels per problem (about 1 s here).
EXACT_MAX_PIXELS = 64 * 64
#: The ways ``laic(method=...)`` solves the problem (docstring of :func:`laic`).
LAIC_METHODS = ("auto", "exact", "fast")


@dataclass(frozen=True, eq=False)
class LAICResult:
    """Result of :func:`laic`.

    Attributes
    ----------
    enhanced : ndarray
        ``gain * image`` for every channel, float in [0, 1], the input's shape.
    gain : ndarray
        The gain map, >= ``min_gain``: the input's shape without the channel axis.
    objective : float
        The Eq. 19/22 objective (:func:`laic_objective`, with the paper's
        ``lambda2 = contrast_weight / max(Ja)``), summed over the independent
        problems (planes); lower is better, comparable across methods.
    quantization : Quantization
        Each enhanced pixel's interval: the capture's levels with ``k = 1 / gain``
        and ``r = 1``, i.e. a quantization step of ``q * gain``.
    method : str
        "exact" or "fast", the method that ran.
    rank_preserved : float
        Fraction of non-tie pixels whose local rank is kept (constraint holds to 1e-9).
    info : list of dict
        Solver details per problem (regions, rows, seconds, levels).
    intensity : Intensity
        How the stored values were read: the bit depth (given or inferred) and the
        black level subtracted (:func:`napari_lowlight.intensity.to_intensity`).
    """

    enhanced: object
    gain: object
    objective: float
    quantization: Quantization
    method: str
    rank_preserved: float
    info: list = field(default_factory=list)
    intensity: Intensity | None = None


def _to_float(image, xp, bits, black_level):
    """Float64 copy in [0, 1] on the image's device, and how it was scaled (one rule:
    :func:`napari_lowlight.intensity.to_intensity`)."""
    if xp is np:
        return to_intensity(image, bits=bits, black_level=black_level)
    dtype = image.dtype
    if dtype.kind == "b" or dtype.kind not in "iuf":
        raise TypeError(f"image must hold integers or floats, got dtype {dtype}")
    if image.size == 0:
        raise ValueError(f"image is empty (shape {image.shape})")
    if black_level is not None and not isinstance(black_level, numbers.Real):
        black_level = xp.asarray(black_level, dtype=xp.float64)
    if dtype.kind in "iu":
        if dtype.kind == "i" and bool((image < 0).any()):
            raise ValueError("image has negative values; intensities must be >= 0")
        depth, inferred = effective_bits(image, bits)
        out = image.astype(xp.float64)
        if black_level is not None:
            out = xp.maximum(out - black_level, 0.0)
        out = out / float(2**depth - 1)
    else:
        out = image.astype(xp.float64)
        if not bool(xp.isfinite(out).all()):
            raise ValueError("image contains NaN or infinite values")
        if float(out.min()) < 0 or float(out.max()) > 1:
            raise ValueError("float image must lie in [0, 1]")
        depth, inferred = effective_bits(to_numpy(out.ravel()[sample_positions(out.size)]),
                                         bits)
        if black_level is not None:
            out = xp.maximum(out - black_level, 0.0)
    scalar = float(black_level) if isinstance(black_level, numbers.Real) else None
    return out, Intensity(depth, inferred, scalar, black_level is not None and scalar is None)


#: A pixel may reach full scale only where it is the brightest within this radius (px).
SATURATION_RADIUS = 4

#: With ``max_gain=None`` the gain may reach this many times the uniform gain ``1 / max(Ja)``
#: (the gain that takes the frame's bright end to 1), at any exposure or bit depth.  Measured
#: on the cell sample's k = 1/30 capture (benchmarks/real_dim_data.py, docs/laic.md): 2 keeps
#: what the old fixed cap of 64 gave a photograph at k = 1/30 (LOE 36, no clipping); 4 and
#: more let the contrast reward lift the noisy background to full scale (LOE 600-800,
#: 15 % of pixels at 1.0, a deeper dark ring around the cell).
DEFAULT_GAIN_HEADROOM = 2.0


def _gain_range(brightest: float, min_gain, max_gain, *,
                stacklevel: int) -> tuple[float, float]:
    """``(floor, ceiling)`` of the gain for a problem whose brightest pixel is ``brightest``;
    ``stacklevel`` points a binding ``max_gain``'s warning at the caller of ``laic``."""
    uniform = 1.0 / brightest
    ceiling = DEFAULT_GAIN_HEADROOM * uniform if max_gain is None else max_gain
    if min_gain is None:
        if uniform > ceiling * (1 + 1e-12):
            warnings.warn(
                f"max_gain={max_gain:g} binds: the uniform gain that takes this image's "
                f"brightest pixel ({brightest:.4g}) to full scale is {uniform:.4g}, so the "
                f"result reaches only {max_gain * brightest:.1%} of full scale; raise max_gain "
                "or leave it None", RuntimeWarning, stacklevel=stacklevel)
        return min(uniform, ceiling), ceiling
    if min_gain > uniform * (1 + 1e-12):
        raise ValueError(
            f"min_gain={min_gain:g} would push the brightest pixel ({brightest:g}) above 1; "
            f"it must be <= {uniform:g} for this image"
        )
    return min_gain, max(ceiling, min_gain)


#: The fast method's least region budget with ``refine_edges=True`` (the cell sample's
#: k = 1/30 capture, 0.36 MP, needed about 8000 regions to lose its ring).
EDGE_REGIONS = 8192


def default_max_regions(pixels: int) -> int:
    """The fast method's default region budget for a plane of ``pixels`` pixels."""
    return int(np.clip(2**28 // max(pixels, 1), 1536, 16384))


def laic(
    image,
    *,
    method: str = "auto",
    channel_axis: int | None = None,
    contrast_weight: float = 1.0,
    window_radius: int = 2,
    min_gain: float | None = None,
    max_gain: float | None = None,
    shared_gain: bool = False,
    bits: int | None = None,
    black_level=None,
    shading: float = 0.0,
    time_limit: float = 60.0,
    max_regions: int | None = None,
    refine_edges: bool = False,
    progress=None,
) -> LAICResult:
    """Brighten a dark image as if a soft light were added, preserving local ranks (Eq. 19-23).

    Solves, with HiGHS, the linear program::

        minimize    TV(g) - contrast_weight * sum_i |Jt_i - mean(Jt)_i|
        subject to  Jt = g * Ja,  min_gain <= g,  0 <= Jt <= 1,
                    sign(Jt_i - mean(Jt)_i) = sign(Ja_i - mean(Ja)_i)

    for the gain map ``g`` of the luminance ``Ja`` (max over colour channels),
    and applies the gain to every channel.  See ``docs/laic.md``.

    Parameters
    ----------
    image : array_like (NumPy, CuPy or dask)
        The dark image: float in [0, 1] or integer counts (divided by
        ``2**bits - 1``, see ``bits``).  2-D gray, colour with ``channel_axis``, or
        a stack (z, t, ...) processed per plane.  Not modified.
    method : {"auto", "exact", "fast"}
        "exact": one LP over every pixel (the reference; about 1 s at 64x64, a
        minute at 128x128).  "fast": multilevel piecewise-constant gain, every
        constraint kept.  "auto": exact up to 64x64 pixels per problem, else fast.
    channel_axis : int or None
        Colour axis; None for gray.
    contrast_weight : float, >= 0
        Reward for local contrast against the total variation of the gain,
        measured on the image brightened uniformly to a maximum of 1, so that
        the same value suits any exposure: the paper's ``lambda2`` is
        ``contrast_weight / max(Ja)``.  0 gives the largest uniform gain; near 1
        the gain follows large dim areas; above about 2 single pixels start to
        trade gain for contrast (dark specks), see ``docs/laic.md``.
    window_radius : int, 1..15
        Radius of the local-mean window, pixels (window side ``2 r + 1``).
    min_gain : float or None
        Lowest gain allowed.  None (default): the uniform gain ``1 / max(Ja)``
        that brings the brightest pixel to 1, so LAIC only ever adds light to a
        uniformly corrected image (this also rules out the dark specks a
        pixel-level solution would otherwise trade for contrast).  A number
        must lie in (0, 1 / max(Ja)]; 1 keeps the dark image as the floor.
    max_gain : float >= 1 or None
        Highest gain allowed.  None (default): twice the uniform gain, so a dim
        frame always reaches full scale (whatever its exposure or bit depth) and dark
        regions may be lifted up to 2x more than the brightest one.  A number caps
        every gain, the uniform one included: when it keeps the brightest pixel below
        full scale a ``RuntimeWarning`` says so.  ``min_gain > max_gain`` is a ``ValueError``.
    shared_gain : bool
        For stacks: one gain for all planes (no flicker in a time series).
    bits : int in 1..16 or None
        Bit depth of the capture: integers are divided by ``2**bits - 1`` (a 12-bit
        camera's uint16 frame by 4095) and ``.quantization`` uses it.  None infers
        it by the package's one rule (:func:`napari_lowlight.intensity.infer_bits`:
        the smallest of 8/10/12/14/16 bits holding an integer image's maximum; the
        coarsest grid a float image lies on), reported in ``.intensity``.
    black_level : float, array_like or None
        The camera's offset in the data's units (counts for integers): a scalar or
        a per-pixel map (dask inputs: a scalar), subtracted before anything else.
    shading : float in [0, 1]
        Fraction of the estimated smooth illumination divided out before the LP (a
        flat-field correction with the illumination estimated from the image: its
        smooth upper envelope over 1/8 of the side).  0 (default) is the paper's
        LAIC; 1 flattens a vignette or light gradient fully but also lifts large
        genuinely dark areas.  The local ranks kept are then those of the corrected
        capture, which differ from the raw capture's only at near-ties (``rank_preserved``
        is measured against the raw capture).  See ``docs/laic.md``.
    time_limit : float
        Seconds HiGHS may spend per problem.  "exact" raises
        :class:`LAICSolverError` when it runs out; "auto" then falls back to "fast".
    max_regions : int or None
        Region budget of the fast method's finest level.  By default it shrinks
        as the image grows, ``clip(2**28 / pixels, 1536, 16384)``: every pixel
        may become a region up to 128x128 (the gain may turn pixel-fine near its
        steps, as the exact solution does), 4096 at 256x256, and 1536 from
        about 420x420 up (the resolution of an illumination field); the refinement
        stops at the level that would exceed it.
    refine_edges : bool
        Over the budget, keep refining where the gain steps most (regions held down
        by a bright pixel first, then the largest steps), with a budget of at least
        :data:`EDGE_REGIONS`, so the gain turns pixel-fine along bright objects'
        edges.  Without it a coarse block carries a bright object's low gain into the
        lifted background around it: a dark ring.  Measured on the cell sample's
        k = 1/30 capture (0.36 MP): ring +0.46 without, 0 with, at 5-20x the time
        (0.5 s -> 9 s on a 2-core CPU); ``docs/laic.md``.
    progress : callable, optional
        ``progress(done, total)`` after each plane (in-memory images only).

    Returns
    -------
    LAICResult
        For a dask array: ``enhanced``, ``gain`` and the quantization's levels and
        ``k`` are lazy dask arrays, each plane solved on its own when its chunk is
        computed (the same numbers as in memory; a plane must fit in memory);
        ``objective`` and ``rank_preserved`` are NaN and ``info`` empty, since
        they would need every plane computed.
    """
    options = _checked_options(
        method=method, contrast_weight=contrast_weight, window_radius=window_radius,
        min_gain=min_gain, max_gain=max_gain, time_limit=time_limit, shading=shading,
        max_regions=max_regions, refine_edges=refine_edges)
    if isinstance(image, (str, bytes)) or not hasattr(image, "shape") and not isinstance(
        image, (list, tuple)
    ):
        raise TypeError(f"image must be an array, got {type(image).__name__}")
    if is_lazy(image):
        if shared_gain:
            raise ValueError("shared_gain=True needs every plane at once: pass an in-memory "
                             "array (or compute the stack) for one gain over all planes")
        return _laic_lazy(image, channel_axis=channel_axis, bits=bits, black_level=black_level,
                          **options)
    xp = array_module(image)
    array = image if xp is not np else np.asarray(image)
    channel_axis = check_channel_axis(array.shape, channel_axis)
    values, intensity = _to_float(array, xp, bits, black_level)
    _check_has_light(values, intensity)

    # channels last, then planes: (planes, rows, cols[, channels])
    moved = values if channel_axis is None else xp.moveaxis(values, channel_axis, -1)
    luminance = moved if channel_axis is None else moved.max(axis=-1)
    planes = luminance.reshape((-1,) + luminance.shape[-2:])
    host_planes = to_numpy(planes)
    groups = [host_planes] if shared_gain else [p[None] for p in host_planes]
    gains, infos, objective = _solve_groups(groups, options, progress)

    if shared_gain:
        gain_planes = np.broadcast_to(gains[0], host_planes.shape)
    else:
        gain_planes = np.stack(gains)
    gain = xp.asarray(np.ascontiguousarray(gain_planes).reshape(luminance.shape))
    return _assemble_result(values, gain, host_planes, channel_axis=channel_axis,
                            out_dtype=float_dtype_for(array.dtype), intensity=intensity,
                            objective=objective, infos=infos, window_radius=window_radius)


def _checked_options(*, method, contrast_weight, window_radius, min_gain, max_gain, time_limit,
                     shading, max_regions, refine_edges) -> dict:
    """``laic``'s solver settings, checked and normalised (what ``_solve_group`` takes)."""
    if not isinstance(method, str) or method not in LAIC_METHODS:
        raise ValueError(f"method must be one of {LAIC_METHODS}, got {method!r}")
    contrast_weight = check_real(contrast_weight, "contrast_weight", low=0.0)
    window_radius = check_int(window_radius, "window_radius", low=1, high=15)
    if min_gain is not None:
        min_gain = check_real(min_gain, "min_gain", low=0.0, low_inclusive=False)
    if max_gain is not None:
        max_gain = check_real(max_gain, "max_gain", low=1.0)
    if min_gain is not None and max_gain is not None and min_gain > max_gain:
        raise ValueError(f"min_gain={min_gain:g} is above max_gain={max_gain:g}: the gain "
                         "range is empty")
    time_limit = check_real(time_limit, "time_limit", low=0.0, low_inclusive=False)
    shading = check_real(shading, "shading", low=0.0, high=1.0)
    if max_regions is not None:
        max_regions = check_int(max_regions, "max_regions", low=1, high=10**8)
    if not isinstance(refine_edges, (bool, np.bool_)):
        raise TypeError(f"refine_edges must be True or False, got {refine_edges!r}")
    return dict(method=method, contrast_weight=contrast_weight, window_radius=window_radius,
                min_gain=min_gain, max_gain=max_gain, time_limit=time_limit,
                max_regions=max_regions, refine_edges=bool(refine_edges), shading=shading)


def _check_has_light(values, intensity: Intensity) -> None:
    """Refuse an image with no light to compensate (all zero, or below half a level)."""
    if not bool((values > 0).any()):
        raise ValueError("image is entirely black (all zero): there is no light to compensate")
    if float(values.max()) < 0.5 / (2**intensity.bits - 1):
        # below half a level of its own bit depth: not a measurement of light (and the gain
        # that would lift it, beyond 1e5, is past what an LP solver resolves)
        raise ValueError(f"image is black at its bit depth ({intensity.bits} bits): its "
                         f"brightest value {float(values.max()):.3g} is below half a level; "
                         "there is no light to compensate")


def _solve_groups(groups, options: dict, progress):
    """Solve each group of planes (one problem each): ``(gains, infos, summed objective)``."""
    gains, infos, objective = [], [], 0.0
    for done, raw_group in enumerate(groups, start=1):
        gain, info, group_objective = _solve_group(raw_group, **options)
        objective += group_objective
        gains.append(gain)
        infos.append(info)
        if progress is not None:
            progress(done, len(groups))
    return gains, infos, objective


def _solve_group(raw_group, *, method, contrast_weight, window_radius, min_gain, max_gain,
                 time_limit, max_regions, refine_edges, shading):
    """One LAIC problem over the planes of ``raw_group``: ``(gain, info, objective)``."""
    if float(raw_group.max()) == 0:
        raise ValueError("a plane of the image is entirely black: there is no light to "
                         "compensate (use shared_gain=True for a time series with black frames)")
    pre_gain = shading_gain(raw_group, strength=shading) if shading > 0 else None
    group = raw_group if pre_gain is None else raw_group * pre_gain
    brightest = float(group.max())
    # stacklevel 5: _gain_range, _solve_group, _solve_groups, laic, then laic's caller
    floor, ceiling = _gain_range(brightest, min_gain, max_gain, stacklevel=5)
    problem = LocalContrast.build(group, radius=window_radius,
                                  weight=contrast_weight / brightest,
                                  min_gain=floor, max_gain=ceiling,
                                  saturation_radius=SATURATION_RADIUS)
    chosen = method
    if method == "auto":
        chosen = "exact" if group.size <= EXACT_MAX_PIXELS else "fast"
    if chosen == "exact":
        try:
            region_gain, info = solve_partition(
                problem, np.arange(group[0].size).reshape(group.shape[-2:]),
                time_limit=time_limit, solver="ds", lazy=False)
            gain = region_gain.reshape(group.shape[-2:])
        except LAICSolverError:
            if method == "exact":
                raise
            # stacklevel 4: _solve_group, _solve_groups, laic, then laic's caller
            warnings.warn("exact LAIC ran out of time; using the fast method",
                          RuntimeWarning, stacklevel=4)
            chosen = "fast"
    if chosen == "fast":
        budget = max_regions or default_max_regions(group[0].size)
        if refine_edges and max_regions is None:
            budget = max(budget, EDGE_REGIONS)
        gain, info = solve_fast(problem, max_regions=budget, time_limit=time_limit,
                                prioritise=bool(refine_edges))
    objective = problem.objective(gain)
    return (gain if pre_gain is None else gain * pre_gain), {"method": chosen, **info}, objective


def _assemble_result(values, gain, host_planes, *, channel_axis, out_dtype, intensity,
                     objective, infos, window_radius) -> LAICResult:
    """The :class:`LAICResult` of the gain ``gain`` (luminance's shape) applied to ``values``."""
    xp = array_module(values)
    rank = rank_preservation(
        to_numpy(gain).reshape(host_planes.shape), host_planes, radius=window_radius)
    gain_full = gain if channel_axis is None else xp.expand_dims(gain, channel_axis)
    enhanced = xp.clip(values * gain_full, 0.0, 1.0).astype(out_dtype)
    bits = intensity.bits
    levels = np.rint(to_numpy(values) * (2**bits - 1)).astype(np.int64)
    quantization = Quantization(levels, k=1.0 / to_numpy(gain_full), r=1.0, bits=bits)
    ran = {info["method"] for info in infos}
    return LAICResult(
        enhanced=enhanced,
        gain=gain,
        objective=float(objective),
        quantization=quantization,
        method="exact" if ran == {"exact"} else "fast" if ran == {"fast"} else "mixed",
        rank_preserved=rank,
        info=infos,
        intensity=intensity,
    )


def _laic_lazy(image, *, channel_axis, bits, black_level, **options) -> LAICResult:
    """``laic`` on a dask array: one in-memory solve per plane, when its chunk is computed."""
    import dask.array as da

    channel_axis = check_channel_axis(image.shape, channel_axis)
    check_lazy_dtype(image)
    dtype = np.dtype(image.dtype)
    if black_level is not None and not isinstance(black_level, numbers.Real):
        raise ValueError("a per-pixel black_level map needs an in-memory image; for a dask "
                         "array pass a scalar black level (or subtract the map lazily first)")
    # one bit depth for the whole stack, by the same rule as in memory (the whole array:
    # a dask maximum is one pass over the data)
    inferred = bits is None
    bits, _ = effective_bits(image, bits)
    planes = image.rechunk(plane_chunks(image.shape, channel_axis))
    stacked = planes.map_blocks(_laic_block, channel_axis=channel_axis, bits=bits,
                                black_level=black_level, options=options, new_axis=0,
                                chunks=((2,),) + planes.chunks, dtype=np.float64)
    enhanced = stacked[0].astype(float_dtype_for(dtype))
    gain_full = stacked[1] if channel_axis is None else stacked[1][
        tuple(slice(0, 1) if axis == channel_axis else slice(None)
              for axis in range(image.ndim))]
    gain = gain_full if channel_axis is None else da.squeeze(gain_full, axis=channel_axis)
    values = planes.map_blocks(lambda block: to_intensity(block, bits=bits,
                                                           black_level=black_level)[0],
                               dtype=np.float64)
    levels = da.rint(values * (2**bits - 1)).astype(np.uint8 if bits <= 8 else np.uint16)
    quantization = Quantization(levels, k=1.0 / gain_full, r=1.0, bits=bits)
    rows, cols = [n for axis, n in enumerate(image.shape) if axis != channel_axis][-2:]
    plane_pixels = rows * cols
    method = options["method"]
    if method == "auto":
        method = "exact" if plane_pixels <= EXACT_MAX_PIXELS else "fast"
    intensity = Intensity(bits, inferred, None if black_level is None else float(black_level))
    return LAICResult(enhanced=enhanced, gain=gain, objective=float("nan"),
                      quantization=quantization, method=method,
                      rank_preserved=float("nan"), info=[], intensity=intensity)


def _laic_block(block, *, channel_axis, bits, black_level, options):
    """One dask block's ``laic``: its enhanced image and gain, stacked on a new first axis."""
    result = laic(block, channel_axis=channel_axis, bits=bits, black_level=black_level,
                  **options)
    gain = result.gain if channel_axis is None else np.expand_dims(result.gain, channel_axis)
    gain = np.broadcast_to(gain, block.shape)
    return np.stack([result.enhanced.astype(np.float64), gain])
