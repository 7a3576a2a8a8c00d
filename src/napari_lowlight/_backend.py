"""NumPy or CuPy: per-pixel work runs where the data lives.

CuPy is imported lazily and only when a CuPy array is passed in, so the core
works without it (and without a GPU); ``gpu_available()`` tells whether CuPy
and a CUDA device can be used.
"""

from __future__ import annotations

import numpy as np

__all__ = ["array_module", "box_mean", "box_sum", "gpu_available", "to_numpy"]


def array_module(x):
    """``cupy`` for CuPy arrays, ``numpy`` for everything else."""
    if type(x).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    return np


def to_numpy(x) -> np.ndarray:
    """A NumPy array of ``x`` (copied from the GPU for CuPy arrays)."""
    if type(x).__module__.split(".")[0] == "cupy":
        return x.get()
    return np.asarray(x)


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - no CuPy, no driver, no device: all mean "no"
        return False


def _ndimage(xp):
    if xp is np:
        from scipy import ndimage
    else:
        from cupyx.scipy import ndimage
    return ndimage


def box_sum(x, radius: int):
    """Sum over the ``(2 radius + 1)**2`` window of the last two axes, zero outside the image."""
    xp = array_module(x)
    size = (1,) * (x.ndim - 2) + (2 * radius + 1,) * 2
    # uniform_filter computes the mean with zero padding; times the window area is the sum.
    return _ndimage(xp).uniform_filter(x, size=size, mode="constant", cval=0.0) * float(
        (2 * radius + 1) ** 2
    )


def window_counts(shape, radius: int, xp=np):
    """Number of image pixels in each pixel's window (windows are clipped at the borders)."""
    rows, cols = shape[-2:]

    def count(n):
        i = xp.arange(n)
        return xp.minimum(i + radius, n - 1) - xp.maximum(i - radius, 0) + 1

    return (count(rows)[:, None] * count(cols)[None, :]).astype(xp.float64)


def box_mean(x, radius: int):
    """Mean over each pixel's window of the last two axes, clipped at the image borders."""
    xp = array_module(x)
    return box_sum(x, radius) / window_counts(x.shape, radius, xp)
