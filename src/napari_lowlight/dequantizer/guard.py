"""The texture guard: back to the plain re-exposure where the scene is noise at the pixel scale.

A dequantizer infers where inside its quantization interval each pixel lies from its
neighbours.  That works where the scene is smooth at the scale of a step; where the scene
itself varies by a step or more from one pixel to the next (a real fluorescence frame's shot
noise, fine grain), the neighbours say nothing about a pixel's position inside its interval,
and a network trained on smooth scenes pulls each pixel toward its neighbourhood's mean:
measured, 0.5-3.6 dB *below* the plain re-exposure ``Jt`` on noisy nuclei frames
(docs/dequantizer-experiments.md, "Noisy references").  There the interval's centre, ``Jt``
itself, is the safe answer.

The guard measures that texture from the capture alone - the local mean of
``|Jt - median3(Jt)|`` counted in steps (a 3x3 median keeps edges, so edges between levels do
not count, only pixel-scale scatter) - and blends the restored image toward ``Jt`` where it
is high.  Both lie inside the (noise-widened) intervals, so the blend does too.  By default
(``guard="auto"``) it runs on captures of :data:`GUARD_AUTO_BITS` (12) bits and more, the
shot-noise-limited frames of scientific cameras; on 8-bit photographs, fine texture that the
network does restore misleads it, so there it runs only when asked (``guard=True``).  Pure
NumPy / SciPy, no napari.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, maximum_filter

__all__ = ["GUARD_AUTO_BITS", "GUARD_DEFAULTS", "guard_applies", "guard_weight", "median3",
           "pixel_texture", "texture_guard"]

#: The shipped guard's settings, chosen on training images only (benchmarks/calibrate_guard.py):
#: texture (steps) where the blend toward ``Jt`` starts and where it reaches ``strength``,
#: the largest share of ``Jt``, and the averaging window (px).  Recalibrated in session 28
#: when :func:`pixel_texture` stopped counting the range's cut end intervals as texture
#: (docs/evaluation/guard-calibration.md; low 0.4, high 0.7 before).
GUARD_DEFAULTS = {"low": 0.3, "high": 0.6, "strength": 0.8, "sigma": 4.0}

#: ``guard="auto"`` (the default) guards captures of this many bits and more.  A scientific
#: camera's 12-16-bit frame is shot-noise limited: its own noise spans one level or more per
#: pixel wherever there is signal, the case the guard is for, and its levels are fine enough
#: that falling back toward ``Jt`` costs little where the scene is smooth.  An 8-bit capture's
#: levels are coarse, sensor noise stays below one of them, and what scatters there is fine
#: texture the network does restore.  Measured (benchmarks/guard_by_setting.py, all 71
#: training images of session 28's checkout): at 12 bits it lifts 19 of the 21 image-settings
#: below ``Jt`` for +0.01 dB on average, at 8 bits it costs 0.5 dB; on the 109 of session
#: 29's checkout, 19 of 21 lifted for -0.06 dB at 12 bits, 0.4-0.6 dB at 8 bits.
GUARD_AUTO_BITS = 12


def guard_applies(guard, bits: int | None, *, project: bool = True) -> bool:
    """Whether :func:`~napari_lowlight.dequantize`'s ``guard`` runs on a capture of ``bits``.

    Parameters
    ----------
    guard : "auto", bool or None
        "auto": with the projection, when ``bits >= GUARD_AUTO_BITS``; True: always (needs
        the projection); False or None: never.
    bits : int or None
        The capture's bit depth (``Quantization.bits``); None: unknown (no quantization).
    project : bool
        Whether the result is projected into the intervals, which the guard blends inside.

    Returns
    -------
    bool
    """
    if guard is False or guard is None:
        return False
    if isinstance(guard, str) and guard == "auto":
        return bool(project) and bits is not None and int(bits) >= GUARD_AUTO_BITS
    if guard is True:
        if not project:
            raise ValueError("guard needs the projection (project=True): it blends the "
                             "projected result with Jt inside the intervals")
        return True
    raise ValueError(f"guard must be 'auto', True or False, got {guard!r}")


#: Paeth's 19 compare-exchanges whose fourth slot ends as the median of nine (the network
#: of N. Devillard, "Fast median search", 1998).
_MEDIAN9_NETWORK = ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8),
                    (0, 3), (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4),
                    (4, 2))


def median3(plane: np.ndarray) -> np.ndarray:
    """The 3x3 median of a (rows, cols) plane, edges repeated: equal to
    ``scipy.ndimage.median_filter(plane, size=3, mode="nearest")``.

    A sorting network over the nine shifted copies of the plane, element-wise in NumPy:
    on float32 about 6x faster than SciPy's general rank filter (0.02 against 0.15 s per
    megapixel on this project's CPU), which was most of the guard's time.
    """
    rows, cols = plane.shape
    padded = np.pad(plane, 1, mode="edge")
    slots = [padded[i:i + rows, j:j + cols].copy() for i in range(3) for j in range(3)]
    for low, high in _MEDIAN9_NETWORK:
        smaller = np.minimum(slots[low], slots[high])
        np.maximum(slots[low], slots[high], out=slots[high])
        slots[low] = smaller
    return slots[4]


def pixel_texture(values, step, *, sigma: float = GUARD_DEFAULTS["sigma"]) -> np.ndarray:
    """The scene's pixel-scale texture of one (rows, cols) plane, in quantization steps.

    The local mean (a Gaussian window of ``sigma`` px) of ``|Jt - median3(Jt)|`` counted in
    steps: divided by the widest interval of each pixel's 3x3 neighbourhood, so that the
    range's end intervals, cut short at 0 and at a saturated 1, count as whole ones.  About
    0.1-0.3 for smooth or edged scenes captured with a quarter step of noise (up to 0.5
    along the contours where that noise flips pixels between two levels); 0.6 and more
    where the scene scatters by a step from pixel to pixel.

    Parameters
    ----------
    values : ndarray (rows, cols)
        The re-exposed image ``Jt`` (or LAIC's output), intensities in [0, 1].
    step : ndarray (rows, cols) or float
        The exact quantization interval widths (``Quantization.interval_width``); where a
        whole 3x3 neighbourhood has widths of 0 (unreachable levels), the plane's median
        width.
    sigma : float
        Averaging window, pixels.

    Returns
    -------
    ndarray of float64, shape (rows, cols)
    """
    # float32 values: exact to 1/256 of a level up to 16 bits, and twice the memory speed
    values = np.asarray(values, dtype=np.float32)
    step = np.broadcast_to(np.asarray(step, dtype=np.float64), values.shape)
    positive = step > 0
    fallback = float(np.median(step[positive])) if positive.any() else 1.0
    # The scatter is measured in intensity, then counted in steps.  Dividing the values by
    # each pixel's own width first (session 27 and before) made a step out of nothing where
    # the width changes: the range's end intervals are cut short (the level at a saturated
    # 1.0 keeps part of a step, those beyond it none), so a saturated flower petal read as
    # 13 steps of texture and the guard cost calla.png 2.1 dB.  The widest interval of each
    # 3x3 neighbourhood is the step an edge or a scatter there is counted in.
    width = maximum_filter(np.where(positive, step, 0.0).astype(np.float32), size=3,
                           mode="nearest")
    width = np.where(width > 0, width, np.float32(fallback))
    scatter = np.abs(values - median3(values)) / width
    return gaussian_filter(scatter, sigma, output=np.float64, mode="nearest")


def guard_weight(texture, *, low: float = GUARD_DEFAULTS["low"],
                 high: float = GUARD_DEFAULTS["high"],
                 strength: float = GUARD_DEFAULTS["strength"]) -> np.ndarray:
    """Share of ``Jt`` in the guarded result: 0 below ``low`` steps of texture, rising
    linearly to ``strength`` at ``high`` and above."""
    if not 0.0 <= low < high:
        raise ValueError(f"the guard needs 0 <= low < high, got low={low}, high={high}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"the guard's strength must lie in [0, 1], got {strength}")
    return strength * np.clip((np.asarray(texture) - low) / (high - low), 0.0, 1.0)


def texture_guard(values, restored, step, *, low: float = GUARD_DEFAULTS["low"],
                  high: float = GUARD_DEFAULTS["high"],
                  strength: float = GUARD_DEFAULTS["strength"],
                  sigma: float = GUARD_DEFAULTS["sigma"], texture=None) -> np.ndarray:
    """``restored`` blended toward ``values`` (``Jt``) where the scene is pixel-scale noise.

    One (rows, cols) plane; :func:`~napari_lowlight.dequantize` applies it plane by plane
    where :func:`guard_applies` says (docs/results.md, "Full resolution, noisy frames and
    the texture guard", and "The guard by bit depth").

    Parameters
    ----------
    values : ndarray (rows, cols)
        ``Jt``, the re-exposed image (inside its exact intervals), in [0, 1].
    restored : ndarray (rows, cols)
        The projected (and refined) dequantizer output.
    step : ndarray (rows, cols) or float
        The exact interval widths.
    low, high, strength, sigma : float
        See :func:`guard_weight` and :func:`pixel_texture`.
    texture : ndarray (rows, cols), optional
        ``pixel_texture(values, step, sigma=sigma)`` when already measured (it depends on
        the capture alone: a calibration blends one capture with many settings); None:
        measured here.

    Returns
    -------
    ndarray of float32, shape (rows, cols): ``w * Jt + (1 - w) * restored``, a convex blend,
    so inside every interval that holds both.
    """
    if texture is None:
        texture = pixel_texture(values, step, sigma=sigma)
    elif np.shape(texture) != np.shape(values):
        raise ValueError(f"texture has shape {np.shape(texture)}, the plane {np.shape(values)}")
    weight = guard_weight(texture, low=low, high=high, strength=strength)
    values = np.asarray(values, dtype=np.float64)
    blended = weight * values + (1.0 - weight) * np.asarray(restored, dtype=np.float64)
    return blended.astype(np.float32)
