"""Gaussian noise keyed by pixel position, so any block of an image can be drawn alone.

``degrade`` must give the same capture whether the image is processed whole, in
tiles, or as a dask array with any chunking, on any worker, in any order.  A
sequential generator cannot do that; a counter-based one can: each pixel's normal
deviate is a function of a 64-bit key (from the seed) and the pixel's linear index
in the whole array only.  The index is hashed with SplitMix64 (Steele, Lea & Flood
2014; a bijective 64-bit mixer whose outputs pass BigCrush), the top 53 bits give
a uniform in (0, 1), and the inverse normal CDF turns it into N(0, 1).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

__all__ = ["noise_key", "position_normal"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def noise_key(seed) -> int:
    """A 64-bit key from an int seed, a ``numpy.random.Generator`` or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**64, dtype=np.uint64))
    return int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0])


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x * _GOLDEN  # spread consecutive indices before mixing
        x = (x ^ (x >> np.uint64(30))) * _MIX1
        x = (x ^ (x >> np.uint64(27))) * _MIX2
        return x ^ (x >> np.uint64(31))


def position_normal(key: int, shape: tuple[int, ...],
                    where: tuple[slice, ...] | None = None) -> np.ndarray:
    """Standard normal deviates for the pixels ``where`` of an array of ``shape`` (float64).

    ``position_normal(key, shape)[where] == position_normal(key, shape, where)``
    exactly, for any ``where`` (a tuple of slices with unit step).
    """
    if where is None:
        where = tuple(slice(0, n) for n in shape)
    strides = np.cumprod((1,) + tuple(shape[::-1][:-1]), dtype=np.uint64)[::-1]
    index = np.zeros((), dtype=np.uint64)
    for axis, (region, stride) in enumerate(zip(where, strides)):
        start, stop, _ = region.indices(shape[axis])
        coordinate = np.arange(start, stop, dtype=np.uint64) * stride
        index = np.add.outer(index, coordinate) if index.ndim else coordinate.copy()
    index = index.reshape(tuple(s.indices(n)[1] - s.indices(n)[0]
                                for s, n in zip(where, shape)))
    with np.errstate(over="ignore"):
        bits = _splitmix64(index + np.uint64(key) * _MIX2)
    uniform = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
    return ndtri(uniform)
