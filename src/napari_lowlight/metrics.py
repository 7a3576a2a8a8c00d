"""Quality measures of a restored image.

``interval_consistency`` is the project's own: the fraction of pixels that a
restoration keeps faithful to the capture (re-darkened, they re-quantize to the
observed level).  PSNR and SSIM come from scikit-image.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ._validation import as_float_image, check_channel_axis
from .quantization import Quantization

__all__ = ["interval_consistency", "psnr", "ssim"]


def interval_consistency(image, quantization: Quantization) -> float:
    """Fraction of pixels whose re-darkened value re-quantizes to the observed level.

    Parameters
    ----------
    image : ndarray
        A restored (re-exposed) image of the quantization's shape, float in [0, 1]
        (values outside are allowed and judged as they are).
    quantization : Quantization
        The capture's quantization (``degrade(...).quantization`` or LAIC's).

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
    consistent = quantization.is_consistent(image)
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
    """Structural similarity (scikit-image, data range 1) of ``image`` against ``reference``."""
    reference, image = _pair(reference, image)
    channel_axis = check_channel_axis(reference.shape, channel_axis)
    return float(
        structural_similarity(reference, image, data_range=1.0, channel_axis=channel_axis)
    )
