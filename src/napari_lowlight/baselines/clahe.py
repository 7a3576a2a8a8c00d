"""CLAHE on the value channel, as the paper runs it."""

from __future__ import annotations

import numpy as np
from skimage.exposure import equalize_adapthist

from .._lazy import per_plane
from ._common import as_value_image, with_value

__all__ = ["clahe"]


@per_plane
def clahe(image, *, channel_axis=None, kernel_size=None, clip_limit: float = 0.01,
          nbins: int = 256) -> np.ndarray:
    """Contrast-limited adaptive histogram equalization of the HSV value channel.

    K. Zuiderveld, "Contrast limited adaptive histogram equalization", Graphics
    Gems IV, 1994; scikit-image's ``equalize_adapthist`` does the work.  The
    value channel (max over RGB) is equalized and every channel is scaled by the
    same ratio, so hue and saturation stay.

    Parameters
    ----------
    image : array_like
        Float in [0, 1] or integers; gray, or colour with ``channel_axis``.
    channel_axis : int or None
    kernel_size : int or tuple, optional
        Contextual region size, pixels (scikit-image default: 1/8 of each side).
    clip_limit : float, in (0, 1]
        Histogram clip limit (normalised); higher gives more contrast.
    nbins : int
        Histogram bins.

    Returns
    -------
    ndarray of float64 in [0, 1], the input's shape
    """
    colour, value, axis = as_value_image(image, channel_axis)
    # scikit-image takes a trailing axis of 3 or 4 for RGB(A) and drops alpha; a gray
    # volume gets a trailing axis of 1 so it is equalized as the volume it is (same result)
    volume = value.ndim >= 3 and value.shape[-1] in (3, 4)
    equalized = equalize_adapthist(value[..., None] if volume else value,
                                   kernel_size=kernel_size, clip_limit=clip_limit, nbins=nbins)
    equalized = equalized[..., 0] if volume else equalized
    return with_value(colour, value, equalized, axis)
