"""From stored values to light: bit depth, black level and the [0, 1] scale (one rule).

Cameras write integers: an 8-bit photograph in uint8, a 12-bit sCMOS frame in uint16
(values 0..4095, often with a black level of ~100 counts), a 16-bit frame in uint16.
Scaling every integer by its dtype's maximum (scikit-image's convention) leaves a
12-bit frame at 1/16 of full scale and a dim one near black, so every step of this
package reads intensities through :func:`to_intensity`:

1. **Bit depth.** ``bits`` (1..16) when given: the data must fit in ``2**bits - 1``.
   With ``bits=None`` the *effective* depth is inferred by one rule
   (:func:`infer_bits`): for integers, the smallest standard camera depth among
   8, 10, 12, 14 and 16 bits whose full scale holds the data's maximum; for floats
   in [0, 1], the coarsest grid ``m / (2**b - 1)`` the values lie on (16 if none).
   The rule looks at the whole array, in memory or lazy (a dask array's maximum is
   computed once), so both give the same numbers.
2. **Black level.** ``black_level`` (a scalar or a per-pixel map broadcastable to the
   image, in the data's own units: counts for integers) is subtracted first; values
   below it become 0.
3. **Scale.** Integers are divided by ``2**bits - 1``; floats stay as they are.

A dim 16-bit frame whose maximum is below 256 is thereby read as 8-bit: its values
become brighter, but LAIC's output does not depend on that scale (its floor is the
uniform gain that takes the brightest pixel to 1, and the quantization step it
reports is ``q * gain`` in output units); pass ``bits=16`` to record the camera's
depth in the metadata.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ._validation import as_float_image, check_int

__all__ = ["STANDARD_BITS", "Intensity", "check_bits_or_none", "float_sample", "grid_bits",
           "infer_bits", "sample_positions", "to_intensity"]

#: Bit depths the inference chooses from for integer data (cameras write these).
STANDARD_BITS = (8, 10, 12, 14, 16)


@dataclass(frozen=True)
class Intensity:
    """How stored values became light in [0, 1] (recorded in results and layer metadata)."""

    bits: int
    bits_inferred: bool
    black_level: float | None  # scalar black level, or None when a map (or none) was used
    black_level_map: bool = False

    def as_dict(self) -> dict:
        return {"bits": self.bits, "bits_inferred": self.bits_inferred,
                "black_level": self.black_level, "black_level_map": self.black_level_map}


def check_bits_or_none(bits) -> int | None:
    """``bits`` as an int in 1..16, or None."""
    return check_int(bits, "bits", low=1, high=16, allow_none=True)


def _maximum(image) -> float:
    maximum = image.max()
    if hasattr(maximum, "compute"):  # dask: one pass over the data, same rule as in memory
        maximum = maximum.compute()
    return float(maximum)


def infer_bits(image) -> int:
    """The effective bit depth of ``image`` by the package's one rule (module docstring).

    Parameters
    ----------
    image : array_like (NumPy or dask)
        Unsigned/signed integers (counts) or floats in [0, 1].

    Returns
    -------
    int in 1..16
    """
    dtype = np.dtype(image.dtype)
    if dtype.kind in "iu":
        maximum = _maximum(image) if image.size else 0.0
        for bits in STANDARD_BITS:
            if maximum <= 2**bits - 1:
                return bits
        raise ValueError(f"integer values up to {maximum:.0f} exceed 16 bits (65535): they are "
                         "not camera counts; convert the image to float in [0, 1]")
    return grid_bits(float_sample(image))


#: Float data: the grid is checked on this many values, evenly spaced over the whole array.
GRID_SAMPLE = 100_000


def sample_positions(size: int) -> np.ndarray:
    """Flat positions of the float sample: every ``size // GRID_SAMPLE``-th value."""
    return np.arange(0, size, max(1, size // GRID_SAMPLE))


def float_sample(image) -> np.ndarray:
    """The values at :func:`sample_positions` of ``image`` (NumPy or dask: the same values)."""
    positions = sample_positions(int(image.size))
    if hasattr(image, "vindex"):  # dask: only these values are computed
        return np.asarray(image.vindex[np.unravel_index(positions, image.shape)].compute(),
                          dtype=np.float64)
    return np.asarray(image).ravel()[positions].astype(np.float64)


def grid_bits(sample: np.ndarray) -> int:
    """The coarsest grid ``m / (2**b - 1)`` that every value of ``sample`` lies on (16 if none)."""
    sample = np.asarray(sample, dtype=np.float64)
    for bits in range(1, 17):
        scaled = sample * (2**bits - 1)
        if np.all(np.abs(scaled - np.rint(scaled)) < 1e-4):
            return bits
    return 16


def effective_bits(image, bits) -> tuple[int, bool]:
    """``(bits, inferred)``: ``bits`` checked against integer data, or inferred."""
    bits = check_bits_or_none(bits)
    if bits is None:
        return infer_bits(image), True
    dtype = np.dtype(image.dtype)
    if dtype.kind in "iu" and image.size:
        maximum = _maximum(image)
        if maximum > 2**bits - 1:
            raise ValueError(f"the image holds values up to {maximum:.0f}, above the full scale "
                             f"of bits={bits} ({2**bits - 1}); pass the camera's bit depth "
                             "or bits=None to infer it")
    return bits, False


def _check_black_level(black_level, shape, dtype):
    """Scalar float or a float64 array broadcast to ``shape``; None for none."""
    if black_level is None:
        return None
    if isinstance(black_level, (bool, np.bool_)):
        raise TypeError("black_level must be a number or an array, got a boolean")
    if isinstance(black_level, numbers.Real):
        value = float(black_level)
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"black_level must be a finite number >= 0, got {black_level!r}")
        if dtype.kind == "f" and value >= 1:
            raise ValueError(f"black_level={value:g} is in the data's units: for a float image "
                             "in [0, 1] it must be below 1")
        return value
    array = np.asarray(black_level, dtype=np.float64)
    if array.dtype.kind not in "iuf":
        raise TypeError("black_level must be a number or a numeric array")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError("black_level map must be finite and >= 0")
    try:
        return np.broadcast_to(array, shape)
    except ValueError:
        raise ValueError(f"black_level map of shape {array.shape} does not broadcast to the "
                         f"image's shape {tuple(shape)}") from None


def to_intensity(image, *, bits=None, black_level=None,
                 name: str = "image") -> tuple[np.ndarray, Intensity]:
    """Light in [0, 1] from stored values: black level off, integers over ``2**bits - 1``.

    Parameters
    ----------
    image : array_like
        Integers (counts) or floats in [0, 1]; not modified.
    bits : int in 1..16 or None
        The camera's bit depth; None infers it (:func:`infer_bits`).  Integer data above
        ``2**bits - 1`` are refused.
    black_level : float, array_like or None
        Offset added by the camera, in the data's units (counts for integers),
        subtracted before scaling: a scalar or a per-pixel map broadcastable to the
        image.  Values below it become 0.
    name : str
        Used in error messages.

    Returns
    -------
    values : ndarray of float64 in [0, 1], a new array
    intensity : Intensity
        The bit depth used (and whether it was inferred) and the black level.
    """
    if isinstance(image, (str, bytes)) or image is None:
        raise TypeError(f"{name} must be an array, got {type(image).__name__}")
    array = np.asarray(image)
    as_float_image(array[(0,) * array.ndim] if array.size else array, name=name)  # dtype checks
    dtype = array.dtype
    depth, inferred = effective_bits(array, bits)
    black = _check_black_level(black_level, array.shape, dtype)
    if dtype.kind in "iu":
        if dtype.kind == "i" and array.size and array.min() < 0:
            raise ValueError(f"{name} has negative values (min {array.min()}); intensities "
                             "must be >= 0")
        values = array.astype(np.float64)
        if black is not None:
            values = np.maximum(values - black, 0.0)
        values /= float(2**depth - 1)
    else:
        values = as_float_image(array, name=name)
        if black is not None:
            values = np.maximum(values - black, 0.0)
    scalar = black if isinstance(black, float) else None
    return values, Intensity(depth, inferred, scalar, black is not None and scalar is None)
