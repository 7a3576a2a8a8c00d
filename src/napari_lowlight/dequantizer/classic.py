"""The classic dequantizer: Gaussian smoothing, then projection into the quantization intervals."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from .._lazy import is_lazy, overlap_layout
from .._validation import check_channel_axis, check_real
from ..quantization import Quantization

__all__ = ["smooth_project"]


def smooth_project(image, quantization: Quantization, *, sigma: float = 1.5,
                   channel_axis=None, margin: float = 0.05) -> np.ndarray:
    """Smooth a re-exposed image, then clip every pixel back into its quantization interval.

    The textbook answer to banding: a low-pass filter removes the steps, the
    projection (:meth:`Quantization.project`) keeps the result faithful to the
    capture (every pixel re-quantizes to its observed level).  The baseline the
    dequantizer network must beat.

    Parameters
    ----------
    image : ndarray
        Re-exposed image (float in [0, 1]) of the quantization's shape.
    quantization : Quantization
    sigma : float, >= 0
        Gaussian standard deviation, pixels (0..256), along the spatial axes (not across
        channels).
    channel_axis : int or None
        Colour axis (not smoothed across).
    margin : float, in [0, 0.5)
        The projection's margin (:meth:`Quantization.project`); 0.05, the value this
        baseline is defined with in the benchmarks.

    Returns
    -------
    ndarray of float, the input's shape, 100 % interval-consistent
    """
    if not isinstance(quantization, Quantization):
        raise TypeError(f"quantization must be a Quantization, got {type(quantization).__name__}")
    # a kernel is 8 sigma wide: beyond a few hundred pixels it is a mistake, not a filter
    sigma = check_real(sigma, "sigma", low=0.0, high=256.0)
    if is_lazy(image) or quantization.is_lazy:
        return _smooth_project_lazy(image, quantization, sigma=sigma, channel_axis=channel_axis,
                                    margin=margin)
    image = np.asarray(image)
    channel_axis = check_channel_axis(image.shape, channel_axis)
    sigmas = [sigma] * image.ndim
    if channel_axis is not None:
        sigmas[channel_axis] = 0.0
    smoothed = gaussian_filter(image.astype(np.float64), sigmas, mode="nearest")
    return quantization.project(smoothed, margin=margin)


def _smooth_project_lazy(image, quantization, *, sigma, channel_axis, margin=0.05):
    """The same filter per chunk, with a halo of the Gaussian's reach (4 sigma)."""
    import dask.array as da

    image = da.asarray(image)
    channel_axis = check_channel_axis(image.shape, channel_axis)
    reach = int(4.0 * sigma + 0.5) + 1  # scipy truncates the kernel at 4 sigma
    image, depth = overlap_layout(
        image, {axis: reach for axis in range(image.ndim) if axis != channel_axis})
    sigmas = [0.0 if axis == channel_axis else sigma for axis in range(image.ndim)]
    smoothed = da.map_overlap(
        lambda block: gaussian_filter(block.astype(np.float64), sigmas, mode="nearest"),
        image, depth=depth, boundary="none", dtype=np.float64)
    return quantization.project(smoothed, margin=margin)
