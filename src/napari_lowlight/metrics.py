"""Quality measures of a restored image.

``interval_consistency`` is the project's own: the fraction of pixels that a
restoration keeps faithful to the capture (re-darkened, they re-quantize to the
observed level).  PSNR and SSIM come from scikit-image.  ``is_degenerate`` is a
sanity check of one result on its own: it says when a method left nearly no image.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ._validation import as_float_image, check_channel_axis, check_int, check_real
from .quantization import Quantization

__all__ = ["interval_consistency", "is_degenerate", "lightness_order_error", "psnr", "ssim"]


def interval_consistency(image, quantization: Quantization, *, noise: float = 0.0) -> float:
    """Fraction of pixels whose re-darkened value re-quantizes to the observed level.

    Parameters
    ----------
    image : ndarray
        A restored (re-exposed) image of the quantization's shape, float in [0, 1]
        (values outside are allowed and judged as they are).
    quantization : Quantization
        The capture's quantization (``degrade(...).quantization`` or LAIC's).
    noise : float, 0..8, optional
        Sensor noise allowed for, in quantization steps: a pixel counts as consistent
        within its interval widened by this much on each side
        (:meth:`Quantization.bounds`).  With noise of standard deviation ``sigma``
        steps, the clean image itself lies outside the exact intervals at many pixels
        (about 20 % at ``sigma = 0.25``) and within ``noise = 3 * sigma`` at all but
        about 0.3 %.  0 (default): the exact intervals.

    Returns
    -------
    float, in [0, 1]
        Consistent pixels / reachable pixels.  Pixels whose observed level no
        value in [0, 1] can produce (noise above the brightest possible level,
        see :attr:`Quantization.reachable`) are left out of both counts; if
        there are none left the result is 1.0.
    """
    if not isinstance(quantization, Quantization):
        raise TypeError(
            f"quantization must be a napari_lowlight.Quantization, got {type(quantization).__name__}"
        )
    consistent = quantization.is_consistent(image, noise=noise)
    reachable = quantization.reachable
    total = int(np.count_nonzero(reachable))
    if total == 0:
        return 1.0
    return float(np.count_nonzero(consistent & reachable)) / total


def _pair(reference, image):
    reference = as_float_image(reference, name="reference")
    image = as_float_image(image, name="image")
    if reference.shape != image.shape:
        raise ValueError(f"shapes differ: reference {reference.shape}, image {image.shape}")
    return reference, image


def psnr(reference, image) -> float:
    """Peak signal-to-noise ratio in dB of ``image`` against ``reference`` (range [0, 1])."""
    reference, image = _pair(reference, image)
    if np.array_equal(reference, image):
        return float("inf")  # skimage would divide by zero (with a warning) to get here
    return float(peak_signal_noise_ratio(reference, image, data_range=1.0))


def ssim(reference, image, *, channel_axis=None) -> float:
    """Structural similarity (scikit-image, data range 1) of ``image`` against ``reference``.

    The usual 7x7 window; images with a side below 7 pixels use the largest odd
    window that fits (at least 3), smaller ones are refused.
    """
    reference, image = _pair(reference, image)
    channel_axis = check_channel_axis(reference.shape, channel_axis)
    smallest = min(n for axis, n in enumerate(reference.shape) if axis != channel_axis)
    window = min(7, smallest if smallest % 2 else smallest - 1)
    if window < 3:
        raise ValueError(f"image of shape {reference.shape} is too small for SSIM: every "
                         "spatial side must be at least 3 pixels")
    return float(structural_similarity(reference, image, data_range=1.0, win_size=window,
                                       channel_axis=channel_axis))


def lightness_order_error(reference, image, *, channel_axis=None, size: int = 50) -> float:
    """Lightness-order error (LOE) of ``image`` against ``reference``, in [0, size**2].

    S. Wang, J. Zheng, H.-M. Hu, B. Li, "Naturalness preserved enhancement algorithm
    for non-uniform illumination images", IEEE Trans. Image Processing 22(9), 2013.
    Lightness is the max over colour channels; both images are resized (area
    averaging) so that the shorter side has ``size`` pixels, as the paper does to
    keep the pairwise count affordable, and LOE is the mean over pixels of the number
    of pixels whose lightness order relative to it differs between the two images.
    0 means every pairwise order is kept.
    """
    from skimage.transform import resize

    reference, image = _pair(reference, image)
    channel_axis = check_channel_axis(reference.shape, channel_axis)
    size = check_int(size, "size", low=2)
    if channel_axis is not None:
        reference = reference.max(axis=channel_axis)
        image = image.max(axis=channel_axis)
    if reference.ndim != 2:
        raise ValueError(f"LOE needs 2-D images (gray or colour), got shape {reference.shape}")
    scale = size / min(reference.shape)
    if scale < 1:
        shape = tuple(max(2, int(round(s * scale))) for s in reference.shape)
        reference = resize(reference, shape, anti_aliasing=True)
        image = resize(image, shape, anti_aliasing=True)
    a = reference.ravel()
    b = image.ravel()
    differs = (a[:, None] >= a[None, :]) != (b[:, None] >= b[None, :])
    return float(differs.sum(axis=1).mean())


#: At most this many values are examined by :func:`is_degenerate` (an even subsample of
#: larger images): the verdict is about most of the image, so a subsample decides it.
_DEGENERATE_SAMPLE = 1 << 20


def is_degenerate(image, *, tolerance: float = 1 / 255, fraction: float = 0.9) -> str | None:
    """Why a method's result is degenerate (nearly no image left), or None if it is not.

    A check of one result on its own, no reference needed: the napari "Compare
    methods" widget uses it to flag a method that failed on the image at hand.
    All values count alike, whatever the channels.  In order, the image is
    degenerate when

    - none of its values is finite ("has no finite values"), or at least
      ``fraction`` of them are NaN or infinite;
    - its finite values span at most ``tolerance`` ("is constant (0.5)");
    - at least ``fraction`` of its finite values are clipped at 0, at 1, or at
      either ("is nearly all black (95% of values at 0)");
    - at least ``fraction`` of its finite values lie within ``tolerance`` of their
      median, so the image shows one grey with a few details at most ("is nearly
      flat (94% of values within 1/255 of 0.671)").

    Parameters
    ----------
    image : array_like
        A result, float in [0, 1] (values outside are judged as they are), or
        integers, scaled by their dtype's maximum.  Images of more than about a
        million values are judged on an even subsample of them.
    tolerance : float, > 0
        Width that counts as "one grey"; the default is one 8-bit display level.
    fraction : float, in (0, 1]
        Share of the values that makes the image degenerate.

    Returns
    -------
    str or None
        A short reason that completes "<method>'s result ...", e.g.
        ``"is nearly flat (94% of values within 1/255 of 0.671)"``; None when the
        image is not degenerate (so the result reads as a truth value too).
    """
    tolerance = check_real(tolerance, "tolerance", low=0.0, low_inclusive=False)
    fraction = check_real(fraction, "fraction", low=0.0, high=1.0, low_inclusive=False)
    if isinstance(image, (str, bytes)) or image is None:
        raise TypeError(f"image must be an array, got {type(image).__name__}")
    values = np.asarray(image).reshape(-1)
    if values.dtype.kind not in "iuf":
        raise TypeError(f"image must hold integers or floats, got dtype {values.dtype}")
    if values.size == 0:
        raise ValueError("image is empty")
    if values.size > _DEGENERATE_SAMPLE:
        values = values[:: -(-values.size // _DEGENERATE_SAMPLE)]
    scale = float(np.iinfo(values.dtype).max) if values.dtype.kind in "iu" else 1.0
    values = values.astype(np.float64) / scale
    finite = np.isfinite(values)
    if not finite.any():
        return "has no finite values"
    if 1.0 - finite.mean() >= fraction:
        return f"is nearly all NaN or infinite ({1.0 - finite.mean():.0%} of values)"
    values = values[finite]
    if values.max() - values.min() <= tolerance:
        return f"is constant ({float(np.median(values)):.3g})"
    black, white = float(np.mean(values <= 0.0)), float(np.mean(values >= 1.0))
    if black >= fraction:
        return f"is nearly all black ({black:.0%} of values at 0)"
    if white >= fraction:
        return f"is nearly all white ({white:.0%} of values at 1)"
    if black + white >= fraction:
        return f"is nearly all clipped ({black + white:.0%} of values at 0 or 1)"
    median = float(np.median(values))
    flat = float(np.mean(np.abs(values - median) <= tolerance))
    if flat >= fraction:
        width = "1/255" if tolerance == 1 / 255 else f"{tolerance:.3g}"
        return f"is nearly flat ({flat:.0%} of values within {width} of {median:.3g})"
    return None
