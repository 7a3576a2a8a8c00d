"""Dimming maps: smooth spatial patterns of light that multiply the dimming factor k.

Uneven light (a vignetting lens, a lamp at the side, an uneven microscope field)
is simulated as ``k(y, x) = k * dimming(y, x)`` with a map that is 1 where the
light is brightest and ``darkest`` where it is dimmest.  Maps are 2-D over the
last two spatial axes (Y, X) and are shared by every plane of an nD stack,
because an illumination pattern is a property of the optics, not of the plane.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import resize

from ._validation import check_real

__all__ = ["DIMMING_NAMES", "make_dimming", "smooth_random_field", "vignette"]

#: Names accepted by ``degrade(..., dimming=NAME)``.
DIMMING_NAMES = ("vignette", "random")


def _check_shape(shape) -> tuple[int, int]:
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of two ints, got {shape!r}") from None
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be two positive sizes (rows, columns), got {shape}")
    return shape


def vignette(shape, *, darkest: float = 0.3, center=None) -> np.ndarray:
    """Radial fall-off of light, 1 at ``center`` and ``darkest`` in the farthest corner.

    The profile is quadratic in the distance from the centre, the first term of
    the cos**4 law of a simple lens.

    Parameters
    ----------
    shape : tuple of int
        (rows, columns) of the map.
    darkest : float, in (0, 1]
        Relative light in the farthest corner; 1 means uniform light.
    center : tuple of float, optional
        (row, column) of the brightest point, in pixels; the image centre by default.

    Returns
    -------
    ndarray of float64, shape ``shape``, values in [darkest, 1]
    """
    rows, cols = _check_shape(shape)
    darkest = check_real(darkest, "darkest", low=0.0, high=1.0, low_inclusive=False)
    if center is None:
        center = ((rows - 1) / 2, (cols - 1) / 2)
    cy, cx = (check_real(c, "center") for c in center)
    # Separable: a column of row distances plus a row of column distances.
    dist2 = (np.arange(rows)[:, None] - cy) ** 2 + (np.arange(cols)[None, :] - cx) ** 2
    corners = [(0, 0), (0, cols - 1), (rows - 1, 0), (rows - 1, cols - 1)]
    far2 = max((y - cy) ** 2 + (x - cx) ** 2 for y, x in corners)
    if far2 == 0:  # a 1x1 map
        return np.ones((rows, cols))
    return 1.0 - (1.0 - darkest) * dist2 / far2


def smooth_random_field(
    shape, *, darkest: float = 0.2, correlation_length: float = 0.3, seed=None
) -> np.ndarray:
    """A seeded random low-frequency pattern of light, rescaled to [darkest, 1].

    White noise on a coarse grid is interpolated (bicubic) to the full size, so
    the field has features about ``correlation_length`` of the image wide and
    costs the same for any image size.

    Parameters
    ----------
    shape : tuple of int
        (rows, columns) of the map.
    darkest : float, in (0, 1]
        Light at the dimmest point of the field.
    correlation_length : float, in (0, 1]
        Size of the light's features, as a fraction of the larger image side.
    seed : int, numpy.random.Generator or None
        Passed to ``numpy.random.default_rng``.

    Returns
    -------
    ndarray of float64, shape ``shape``, values in [darkest, 1], max exactly 1
    """
    rows, cols = _check_shape(shape)
    darkest = check_real(darkest, "darkest", low=0.0, high=1.0, low_inclusive=False)
    correlation_length = check_real(
        correlation_length, "correlation_length", low=0.0, high=1.0, low_inclusive=False
    )
    rng = np.random.default_rng(seed)
    # Grid points one correlation length apart, plus a margin so the field
    # does not become flat at the borders.
    side = max(rows, cols)
    step = max(correlation_length * side, 1.0)
    grid = (int(np.ceil(rows / step)) + 2, int(np.ceil(cols / step)) + 2)
    coarse = rng.standard_normal(grid)
    field = resize(coarse, (rows, cols), order=3, mode="reflect", anti_aliasing=False)
    span = field.max() - field.min()
    if span == 0:
        return np.ones((rows, cols))
    unit = (field - field.min()) / span
    return darkest + (1.0 - darkest) * unit


def make_dimming(name: str, shape, *, seed=None) -> np.ndarray:
    """Build the named dimming map (``"vignette"`` or ``"random"``) with default settings."""
    if not isinstance(name, str):
        raise TypeError(f"dimming name must be a string, got {type(name).__name__}")
    if name == "vignette":
        return vignette(shape)
    if name == "random":
        return smooth_random_field(shape, seed=seed)
    raise ValueError(f"unknown dimming {name!r}; choose one of {DIMMING_NAMES} or pass a map")
