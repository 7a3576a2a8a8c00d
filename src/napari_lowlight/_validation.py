"""Input checks shared by every public function of the core.

Each check raises ``TypeError`` for a value of the wrong kind and ``ValueError``
for a value of the right kind but outside its range, with a message that names
the parameter and what was received, so that a user (or the napari widget that
turns the message into a notification) knows what to change.

:func:`parameter_default` reads a public function's default for one of its parameters:
the command line and the napari widgets offer the core's defaults through it, so that a
default is stated once, in the core function's signature.
"""

from __future__ import annotations

import inspect
import numbers

import numpy as np

__all__ = [
    "as_float_image",
    "check_bits",
    "check_channel_axis",
    "check_int",
    "check_real",
    "float_dtype_for",
    "parameter_default",
]


def parameter_default(function, parameter: str):
    """The default value of ``function``'s keyword ``parameter``, from its signature.

    Parameters
    ----------
    function : callable
        A core function (``degrade``, ``laic``, ``dequantize``, ...).
    parameter : str
        The name of one of its parameters that has a default.

    Returns
    -------
    object
        The default, as the signature states it.
    """
    default = inspect.signature(function).parameters[parameter].default
    if default is inspect.Parameter.empty:
        raise ValueError(f"{function.__name__}() has no default for {parameter!r}")
    return default


def check_real(
    value,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a Python float after checking it is a finite real in range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        raise ValueError(f"{name} must be {'>=' if low_inclusive else '>'} {low:g}, got {value!r}")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        raise ValueError(f"{name} must be {'<=' if high_inclusive else '<'} {high:g}, got {value!r}")
    return value


def check_int(value, name: str, *, low: int | None = None, high: int | None = None,
              allow_none: bool = False) -> int | None:
    """Return ``value`` as a Python int after checking it is an integer in range.

    Parameters
    ----------
    value : object
        The value to check.  Any ``numbers.Integral`` (Python or NumPy integers) is
        accepted; ``bool`` is not (``True`` is an integer to Python, never to a caller).
    name : str
        The parameter's name, used in the error messages.
    low, high : int, optional
        Inclusive bounds; None leaves that side open.
    allow_none : bool
        Accept None (and return it), for parameters where None means "choose for me".

    Returns
    -------
    int, or None when ``value`` is None and ``allow_none``

    Raises
    ------
    TypeError
        If ``value`` is not an integer (a float such as ``8.0`` included).
    ValueError
        If ``value`` lies outside ``low..high``.
    """
    if value is None and allow_none:
        return None
    if low is not None and high is not None:
        span = f"in {low}..{high}"
    elif low is not None:
        span = f">= {low}"
    elif high is not None:
        span = f"<= {high}"
    else:
        span = ""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        wanted = f"an integer {span}" if span else "an integer"
        wanted += " or None" if allow_none else ""
        raise TypeError(f"{name} must be {wanted}, got {type(value).__name__} {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {span}, got {value}")
    return value


def check_bits(bits) -> int:
    """Return ``bits`` as an int after checking it is an integer in 1..16."""
    return check_int(bits, "bits", low=1, high=16)


def check_channel_axis(shape: tuple[int, ...], channel_axis, *, min_spatial_ndim: int = 2):
    """Normalise ``channel_axis`` to a non-negative int (or None) for an array of ``shape``.

    Raises if the axis is not an integer, lies outside the array, or leaves fewer
    than ``min_spatial_ndim`` spatial axes.
    """
    ndim = len(shape)
    if channel_axis is not None:
        if isinstance(channel_axis, (bool, np.bool_)) or not isinstance(
            channel_axis, numbers.Integral
        ):
            raise TypeError(
                f"channel_axis must be an integer or None, got "
                f"{type(channel_axis).__name__} {channel_axis!r}"
            )
        channel_axis = int(channel_axis)
        if not -ndim <= channel_axis < ndim:
            raise ValueError(
                f"channel_axis={channel_axis} does not fit an image with {ndim} "
                f"dimension(s) (shape {shape}); valid values are {-ndim}..{ndim - 1} or None"
            )
        channel_axis %= ndim
    spatial_ndim = ndim - (channel_axis is not None)
    if spatial_ndim < min_spatial_ndim:
        what = f"shape {shape}" + (
            f" with channel_axis={channel_axis}" if channel_axis is not None else ""
        )
        raise ValueError(
            f"image must have at least {min_spatial_ndim} spatial dimensions, got {what}"
        )
    return channel_axis


def float_dtype_for(dtype: np.dtype) -> np.dtype:
    """Float type of results for an input of ``dtype`` (scikit-image's convention).

    float32 and float16 inputs give float32 results; everything else float64.
    """
    dtype = np.dtype(dtype)
    if dtype in (np.float16, np.float32):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def as_float_image(image, *, name: str = "image") -> np.ndarray:
    """Return a new float64 array in [0, 1] holding ``image``'s intensities.

    Integer images are scaled by the maximum of their dtype (scikit-image's
    convention: uint8 by 255, uint16 by 65535, int16 by 32767, ...); a 12-bit
    camera image stored in uint16 must therefore be divided by 4095 by the
    caller to use its full range. Float images must already lie in [0, 1].

    The result never shares memory with ``image``.
    """
    if isinstance(image, (str, bytes)) or image is None:
        raise TypeError(f"{name} must be an array, got {type(image).__name__}")
    array = np.asarray(image)
    dtype = array.dtype
    if dtype == np.bool_:
        raise TypeError(
            f"{name} is boolean (a mask); convert it to a float image in [0, 1] "
            "or an integer image first"
        )
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise TypeError(
            f"{name} must hold integers or floats, got dtype {dtype} "
            "(complex, object and string arrays are not images)"
        )
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if info.min < 0 and array.min() < 0:
            raise ValueError(
                f"{name} has negative values (min {array.min()}); intensities must be >= 0"
            )
        return array.astype(np.float64) / float(info.max)
    out = array.astype(np.float64)  # always a copy: the caller's data is never touched
    if not np.all(np.isfinite(out)):
        bad = int(np.count_nonzero(~np.isfinite(out)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s)")
    low, high = float(out.min()), float(out.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"float {name} must lie in [0, 1], got values in [{low:g}, {high:g}]; "
            "rescale it first (e.g. skimage.exposure.rescale_intensity)"
        )
    return out
