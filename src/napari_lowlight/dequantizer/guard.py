"""The texture guard: back to the plain re-exposure where the scene is noise at the pixel scale.

A dequantizer infers where inside its quantization interval each pixel lies from its
neighbours.  That works where the scene is smooth at the scale of a step; where the scene
itself varies by a step or more from one pixel to the next (a real fluorescence frame's shot
noise, fine grain), the neighbours say nothing about a pixel's position inside its interval,
and a network trained on smooth scenes pulls each pixel toward its neighbourhood's mean:
measured, 0.5-3.6 dB *below* the plain re-exposure ``Jt`` on noisy nuclei frames
(docs/dequantizer-experiments.md, "Noisy references").  There the interval's centre, ``Jt``
itself, is the safe answer.

The guard measures that texture from the capture alone - the local mean of ``|L - median3(L)|``
with ``L`` the re-exposed image in steps (a 3x3 median keeps edges, so edges between levels do
not count, only pixel-scale scatter) - and blends the restored image toward ``Jt`` where it is
high.  Both lie inside the (noise-widened) intervals, so the blend does too.  Off by default
(``dequantize(guard=True)`` turns it on): on photographs, fine texture that the network does
restore misleads it.  Pure NumPy / SciPy, no napari.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, median_filter

__all__ = ["GUARD_DEFAULTS", "guard_weight", "pixel_texture", "texture_guard"]

#: The shipped guard's settings, chosen on training images only (benchmarks/calibrate_guard.py):
#: texture (steps) where the blend toward ``Jt`` starts and where it reaches ``strength``,
#: the largest share of ``Jt``, and the averaging window (px).
GUARD_DEFAULTS = {"low": 0.4, "high": 0.7, "strength": 0.8, "sigma": 4.0}


def pixel_texture(values, step, *, sigma: float = GUARD_DEFAULTS["sigma"]) -> np.ndarray:
    """The scene's pixel-scale texture of one (rows, cols) plane, in quantization steps.

    The local mean (a Gaussian window of ``sigma`` px) of ``|L - median3(L)|``, where
    ``L = values / step``.  About 0.1-0.3 for smooth or edged scenes captured with a quarter
    step of noise (up to 0.5 along the contours where that noise flips pixels between two
    levels); 0.6 and more where the scene scatters by a step from pixel to pixel.

    Parameters
    ----------
    values : ndarray (rows, cols)
        The re-exposed image ``Jt`` (or LAIC's output), intensities in [0, 1].
    step : ndarray (rows, cols) or float
        The exact quantization interval widths (``Quantization.interval_width``); widths of
        0 (unreachable levels) count as the plane's median width.
    sigma : float
        Averaging window, pixels.

    Returns
    -------
    ndarray of float64, shape (rows, cols)
    """
    values = np.asarray(values, dtype=np.float64)
    step = np.broadcast_to(np.asarray(step, dtype=np.float64), values.shape)
    positive = step > 0
    fallback = float(np.median(step[positive])) if positive.any() else 1.0
    levels = values / np.where(positive, step, fallback)
    scatter = np.abs(levels - median_filter(levels, size=3, mode="nearest"))
    return gaussian_filter(scatter, sigma, mode="nearest")


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
                  sigma: float = GUARD_DEFAULTS["sigma"]) -> np.ndarray:
    """``restored`` blended toward ``values`` (``Jt``) where the scene is pixel-scale noise.

    One (rows, cols) plane; :func:`~napari_lowlight.dequantize` applies it plane by plane
    with ``guard=True`` (off by default: docs/results.md, "Full resolution, noisy frames
    and the texture guard").

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

    Returns
    -------
    ndarray of float32, shape (rows, cols): ``w * Jt + (1 - w) * restored``, a convex blend,
    so inside every interval that holds both.
    """
    weight = guard_weight(pixel_texture(values, step, sigma=sigma), low=low, high=high,
                          strength=strength)
    values = np.asarray(values, dtype=np.float64)
    blended = weight * values + (1.0 - weight) * np.asarray(restored, dtype=np.float64)
    return blended.astype(np.float32)
