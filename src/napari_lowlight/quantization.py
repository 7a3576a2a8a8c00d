"""The A/D quantizer and the per-pixel quantization intervals of a re-exposed image.

Notation (``docs/formation.md``): a dark capture holds integer levels ``m`` of
the uniform quantizer ``Q(x) = q * floor(x / q + 0.5)`` with step
``q = 1 / (2**bits - 1)``. A re-exposed value ``y`` (an estimate of the normally
exposed image) is *consistent* with the capture when re-darkening it,
``x = k * y**r``, re-quantizes to the observed level ``m``.  The set of such
``y`` in [0, 1] is an interval ``[lo, hi]``; :class:`Quantization` computes it
per pixel and projects any image into it.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._lazy import is_lazy, location_slices, slice_broadcast
from ._validation import as_float_image, check_bits, check_real

__all__ = ["Quantization", "implied_quantization", "quantization_step", "quantize_levels"]


def quantization_step(bits: int) -> float:
    """Step ``q = 1 / (2**bits - 1)`` of a ``bits``-bit quantizer on [0, 1].

    Parameters
    ----------
    bits : int
        Bit depth, 1..16.

    Returns
    -------
    float
        The step, in the same units as the [0, 1] intensities.
    """
    return 1.0 / (2 ** check_bits(bits) - 1)


def quantize_levels(x, bits: int) -> np.ndarray:
    """Integer levels ``clip(floor(x / q + 0.5), 0, 2**bits - 1)`` of ``x``.

    This is the one rounding rule of the project (ties round up, values are
    clipped to the sensor's range); the formation model and every consistency
    check use it, so that a value re-quantizes exactly as it was formed.

    Parameters
    ----------
    x : array_like of float
        Values in [0, 1] units (may lie outside; they are clipped).
    bits : int
        Bit depth, 1..16.

    Returns
    -------
    ndarray of uint8 (bits <= 8) or uint16
    """
    bits = check_bits(bits)
    max_level = 2**bits - 1
    q = 1.0 / max_level
    levels = np.clip(np.floor(np.asarray(x, dtype=np.float64) / q + 0.5), 0, max_level)
    return np.asarray(levels).astype(np.uint8 if bits <= 8 else np.uint16)


def implied_quantization(image, *, k: float = 1.0, r: float = 1.0, bits: int) -> Quantization:
    """The quantization of an image that carries none: levels ``Q(k * y**r)`` of its values.

    A layer or file whose metadata lost (or never had) its :class:`Quantization` still
    implies one once the capture's light level, gamma ratio and bit depth are known:
    re-darkening each value ``y`` gives the level it was quantized to.  With ``k = r = 1``
    the image is the capture itself, on its own ``bits``-bit grid.

    Parameters
    ----------
    image : array_like (NumPy or dask)
        Float in [0, 1], or integers scaled by their dtype's maximum
        (:func:`~napari_lowlight._validation.as_float_image`); pass integer counts
        through :func:`~napari_lowlight.intensity.to_intensity` first.
    k : float
        The capture's dimming factor, in (0, 1].
    r : float
        Its gamma ratio, > 0.
    bits : int
        Its bit depth, 1..16.

    Returns
    -------
    Quantization
        Levels by the project's one rounding rule (:func:`quantize_levels`); for a dask
        array, lazy levels of the same chunks.
    """
    bits = check_bits(bits)
    if is_lazy(image):
        levels = image.map_blocks(_implied_levels, k=k, r=r, bits=bits,
                                  dtype=np.uint8 if bits <= 8 else np.uint16)
    else:
        levels = _implied_levels(image, k=k, r=r, bits=bits)
    return Quantization(levels, k=k, r=r, bits=bits)


def _implied_levels(values, *, k, r, bits):
    """One block of :func:`implied_quantization`'s levels."""
    return quantize_levels(k * as_float_image(values) ** r, bits)


def _check_k(k, shape):
    """Validate k as a positive finite scalar or an array broadcastable to ``shape``."""
    if isinstance(k, numbers.Real) and not isinstance(k, (bool, np.bool_)):
        return check_real(k, "k", low=0.0, low_inclusive=False)
    if isinstance(k, (bool, np.bool_)) or k is None:
        raise TypeError(f"k must be a positive number or an array of them, got {k!r}")
    k = np.asarray(k)
    if not np.issubdtype(k.dtype, np.number) or np.issubdtype(k.dtype, np.complexfloating):
        raise TypeError(f"k must be a real number or a real array, got dtype {k.dtype}")
    k = k.astype(np.float64)  # own copy: later changes to the caller's map do not leak in
    if k.ndim == 0:
        return _check_k(float(k), shape)
    try:
        broadcast = np.broadcast_shapes(k.shape, shape)
    except ValueError:
        broadcast = None
    if broadcast != tuple(shape):
        raise ValueError(f"k map of shape {k.shape} does not broadcast to the levels' shape {shape}")
    if not np.all(np.isfinite(k)) or np.any(k <= 0):
        raise ValueError("k map must be finite and > 0 everywhere")
    k.setflags(write=False)
    return k


class Quantization:
    """What is known about each pixel of a re-exposed image: its quantization interval.

    A re-exposed image ``y`` was made from a capture whose pixels hold integer
    levels ``m`` (dark value ``m * q``) of a ``bits``-bit quantizer, taken with
    dimming factor ``k`` (scalar, or a per-pixel map for uneven light) and gamma
    ratio ``r``.  Re-darkening ``x = k * y**r`` must re-quantize to ``m``.

    The same object describes LAIC output (``r = 1`` and ``k = 1 / gain``).

    Parameters
    ----------
    levels : ndarray of int
        Observed dark levels, 0 .. 2**bits - 1, one per pixel (and channel).
    k : float or ndarray
        Dimming factor, > 0: a scalar or a map broadcastable to ``levels``.
    r : float
        Gamma ratio ``g2 / g1``, > 0.
    bits : int
        Bit depth of the capture, 1..16.

    Notes
    -----
    Levels above ``Q(k)`` cannot be produced by any scene value in [0, 1]
    without noise (sensor noise can push the brightest pixels there).  Such
    pixels are *unreachable*: their interval collapses to the nearest feasible
    value ``[1, 1]``, :attr:`reachable` is False there, and
    :func:`napari_lowlight.metrics.interval_consistency` leaves them out.
    """

    def __init__(self, levels, *, k, r, bits):
        self.bits = check_bits(bits)
        self.r = check_real(r, "r", low=0.0, low_inclusive=False)
        if is_lazy(levels):
            self._init_lazy(levels, k)
            return
        levels = np.asarray(levels)
        if levels.dtype == np.bool_ or not np.issubdtype(levels.dtype, np.integer):
            raise TypeError(f"levels must be an integer array, got dtype {levels.dtype}")
        if levels.size and (levels.min() < 0 or levels.max() > self.max_level):
            raise ValueError(
                f"levels must lie in 0..{self.max_level} for bits={self.bits}, "
                f"got {levels.min()}..{levels.max()}"
            )
        self.levels = levels.astype(np.uint8 if self.bits <= 8 else np.uint16)
        self.levels.setflags(write=False)
        self.k = _check_k(k, self.levels.shape)

    def _init_lazy(self, levels, k) -> None:
        """Levels (and possibly k) as dask arrays: every method then returns dask arrays,
        computed block by block with the in-memory code (range checks happen then)."""
        if levels.dtype == np.bool_ or not np.issubdtype(levels.dtype, np.integer):
            raise TypeError(f"levels must be an integer array, got dtype {levels.dtype}")
        self.levels = levels.astype(np.uint8 if self.bits <= 8 else np.uint16)
        if is_lazy(k):
            if np.broadcast_shapes(k.shape, levels.shape) != levels.shape:
                raise ValueError(f"k map of shape {k.shape} does not broadcast to the "
                                 f"levels' shape {levels.shape}")
            self.k = k.astype(np.float64)
        else:
            self.k = _check_k(k, levels.shape)

    @property
    def is_lazy(self) -> bool:
        """True when the levels are a dask array (methods then return dask arrays)."""
        return is_lazy(self.levels)

    def _blockwise(self, method, *images, dtype):
        """``method(Quantization_of_block, *image_blocks)`` over the chunks of the levels."""
        import dask.array as da

        levels, r, bits = self.levels, self.r, self.bits
        arrays = [da.asarray(image).rechunk(levels.chunks) for image in images]
        lazy_k = is_lazy(self.k)
        if lazy_k:
            arrays.insert(0, da.broadcast_to(self.k, levels.shape).rechunk(levels.chunks))
        static_k = None if lazy_k else self.k

        def run(level_block, *blocks, block_info=None):
            if lazy_k:
                k_block, blocks = blocks[0], blocks[1:]
            else:
                k_block = slice_broadcast(static_k, location_slices(block_info))
            return method(Quantization(level_block, k=k_block, r=r, bits=bits), *blocks)

        return da.map_blocks(run, levels, *arrays, dtype=dtype)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_dark(cls, dark, *, k, r, bits) -> Quantization:
        """Build from a dark image on the grid of multiples of ``q`` (float in [0, 1]).

        Raises ``ValueError`` if ``dark`` is not on that grid (to 1e-3 of a level).
        """
        bits = check_bits(bits)
        dark = np.asarray(dark, dtype=np.float64)
        max_level = 2**bits - 1
        scaled = dark * max_level
        levels = np.rint(scaled)
        if not np.all(np.isfinite(scaled)) or np.any(np.abs(scaled - levels) > 1e-3):
            raise ValueError(
                f"dark image is not on the {bits}-bit grid (multiples of 1/{max_level})"
            )
        if np.any(levels < 0) or np.any(levels > max_level):
            raise ValueError("dark image must lie in [0, 1]")
        return cls(levels.astype(np.int64), k=k, r=r, bits=bits)

    # -- basic properties -----------------------------------------------------------
    @property
    def max_level(self) -> int:
        """Highest level, ``2**bits - 1``."""
        return 2**self.bits - 1

    @property
    def q(self) -> float:
        """Quantization step of the capture, ``1 / (2**bits - 1)``."""
        return 1.0 / self.max_level

    @property
    def shape(self) -> tuple[int, ...]:
        return self.levels.shape

    @property
    def dark(self) -> np.ndarray:
        """The observed dark image ``m * q`` (float64, new array)."""
        return self.levels * self.q

    def __repr__(self) -> str:
        k = f"{self.k:.6g}" if isinstance(self.k, float) else f"map{tuple(self.k.shape)}"
        return f"Quantization(shape={self.shape}, bits={self.bits}, k={k}, r={self.r:g})"

    # -- the model ------------------------------------------------------------------
    def redarken(self, image) -> np.ndarray:
        """``k * max(image, 0) ** r``: what the capture would record before quantization."""
        if self.is_lazy:
            return self._blockwise(lambda quant, im: quant.redarken(im), image,
                                   dtype=np.float64)
        image = self._check_image(image)
        return self.k * np.maximum(image, 0.0) ** self.r

    def requantize(self, image) -> np.ndarray:
        """Levels that ``image``, re-darkened, would be quantized to."""
        if self.is_lazy:
            return self._blockwise(lambda quant, im: quant.requantize(im), image,
                                   dtype=self.levels.dtype)
        return quantize_levels(self.redarken(image), self.bits)

    def reexposed(self, dtype=np.float64) -> np.ndarray:
        """The naive re-exposure ``(m q / k) ** (1 / r)``, clipped to [0, 1]."""
        if self.is_lazy:
            return self._blockwise(lambda quant: quant.reexposed(dtype), dtype=dtype)
        out = (self.dark / self.k) ** (1.0 / self.r)
        np.clip(out, 0.0, 1.0, out=out)
        return out.astype(dtype, copy=False)

    @property
    def reachable(self) -> np.ndarray:
        """True where some value in [0, 1] re-quantizes to the observed level."""
        if self.is_lazy:
            return self._blockwise(lambda quant: quant.reachable, dtype=bool)
        # the level of y = 1: one number for a scalar k, a map for a k map
        top = quantize_levels(self.k if np.ndim(self.k) == 0 else
                              np.broadcast_to(self.k, self.shape), self.bits)
        return self.levels <= top

    def bounds(self, *, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel interval ``[lo, hi]`` of re-exposed values consistent with the capture.

        Parameters
        ----------
        noise : float, >= 0
            Widen each interval by this many quantization steps on each side, in the dark
            domain: ``[(m - 1/2 - noise) q, (m + 1/2 + noise) q)``.  A noisy capture's
            level need not hold the clean value (sensor noise moved it before it was
            quantized); an allowance of about the noise's standard deviation, in steps,
            keeps the clean values that noise pushed across an edge.  0: the exact
            intervals of the capture.

        Returns
        -------
        lo, hi : ndarray of float64, each of the levels' shape, 0 <= lo <= hi <= 1
            ``hi`` itself is excluded where it is below 1 (the quantizer's
            upper edge is open); unreachable pixels get ``lo = hi = 1``.
        """
        noise = check_real(noise, "noise", low=0.0, high=8.0)
        if np.ndim(self.k) == 0:
            # One interval per level: compute each of the 2**bits levels' ends once and
            # look the pixels' up: the same float64 arithmetic, to the bit, 4-10x faster on
            # a 1 MP image, whose two powers dominate (benchmarks/bench_dequantize.py)
            every_level = np.arange(self.max_level + 1)
            reachable = every_level <= quantize_levels(self.k, self.bits)
            lo, hi = self._interval_ends(every_level, self.k, noise, reachable)
            if self.is_lazy:  # block by block, still lazy
                return tuple(self.levels.map_blocks(lambda block, table=table: table[block],
                                                    dtype=np.float64) for table in (lo, hi))
            return lo[self.levels], hi[self.levels]
        return self._interval_ends(self.levels, self.k, noise, self.reachable)

    def _interval_ends(self, levels, k, noise: float, reachable):
        """:meth:`bounds` of ``levels`` (any integer array) dimmed by ``k`` (broadcastable)."""
        m = levels.astype(np.float64)
        q, inv_r = self.q, 1.0 / self.r
        # Re-darkened values in [(m - 1/2) q, (m + 1/2) q) quantize to m; the
        # lowest level also takes everything below, the highest everything above.
        lower_dark = np.maximum(m - 0.5 - noise, 0.0) * q
        upper_dark = (m + 0.5 + noise) * q
        lo = (lower_dark / k) ** inv_r
        hi = (upper_dark / k) ** inv_r
        hi = np.where(levels == self.max_level, 1.0, hi)
        # k broadcasts to the levels' shape (checked at construction): so do lo and hi
        lo = np.where(reachable, np.minimum(lo, 1.0), 1.0)
        hi = np.where(reachable, np.minimum(hi, 1.0), 1.0)
        return lo, hi

    @property
    def interval_width(self) -> np.ndarray:
        """``hi - lo``: the quantization step as seen in the re-exposed image (float64)."""
        if self.is_lazy:
            return self._blockwise(lambda quant: quant.interval_width, dtype=np.float64)
        lo, hi = self.bounds()
        return hi - lo

    def is_consistent(self, image, *, noise: float = 0.0) -> np.ndarray:
        """Boolean map: True where ``image`` re-quantizes to the observed level.

        ``noise`` (steps, >= 0): True where ``image`` lies within the interval widened by
        that much on each side (:meth:`bounds`), what a noisy capture's clean values do.
        """
        noise = check_real(noise, "noise", low=0.0, high=8.0)
        if self.is_lazy:
            return self._blockwise(lambda quant, im: quant.is_consistent(im, noise=noise),
                                   image, dtype=bool)
        if noise == 0:
            return self.requantize(image) == self.levels
        lower, upper = self.bounds(noise=noise)
        values = np.asarray(image, dtype=np.float64)
        if values.shape != lower.shape:
            raise ValueError(f"image has shape {values.shape}, the quantization {lower.shape}")
        # as the quantizer: the lowest level takes everything below, the highest all above
        lower = np.where(self.levels == 0, -np.inf, lower)
        upper = np.where(self.levels == self.max_level, np.inf, upper)
        return (values >= lower) & (values <= upper)

    def noise_of(self, estimate) -> float:
        """Sensor noise of the capture, in quantization steps, judged from a clean estimate.

        With a clean value ``c`` (in dark-domain steps) and noise ``n ~ N(0, sigma)``
        the capture holds ``m = round(c + n)``, so ``c - m`` is the rounding error
        (about uniform on [-1/2, 1/2], variance 1/12) minus the noise: its mean square
        is ``1/12 + sigma**2``.  Computed from a good estimate of ``c`` (a dequantizer's
        raw output), the excess over 1/12 is the noise's variance.  Only pixels strictly
        between the lowest and highest level count (the ends are clipped, not
        rounded); deviations beyond 4 steps (an estimate's own failures) are clipped.

        Parameters
        ----------
        estimate : ndarray of float, the levels' shape
            An estimate of the clean re-exposed image, in [0, 1].

        Returns
        -------
        float, 0..8
            The noise's standard deviation in steps; 0 when the estimate is as
            consistent as noise-free rounding allows, or when fewer than 64 pixels
            lie between the end levels.
        """
        if self.is_lazy:
            raise TypeError("noise_of needs an in-memory quantization: compute a window "
                            "of the levels first")
        estimate = self._check_image(estimate)
        m = self.levels.astype(np.float64)
        usable = (m > 0) & (m < self.max_level) & self.reachable
        if np.count_nonzero(usable) < 64:
            return 0.0
        dark = self.redarken(np.clip(estimate.astype(np.float64), 0.0, 1.0))
        deviation = np.clip((dark / self.q - m)[usable], -4.0, 4.0)
        excess = float(np.mean(deviation**2)) - 1.0 / 12.0
        return float(np.clip(np.sqrt(max(excess, 0.0)), 0.0, 8.0))

    def project(self, image, *, margin: float = 0.05, noise: float = 0.0) -> np.ndarray:
        """Return a new image clipped strictly inside every pixel's interval.

        Parameters
        ----------
        image : ndarray of float, the levels' shape
            Any estimate of the re-exposed image (values outside [0, 1] allowed).
        margin : float, in [0, 0.5)
            Distance kept from each interval end, as a fraction of the interval's
            width, so that rounding in later arithmetic cannot move a value onto
            the excluded edge.
        noise : float, 0..8
            Allowance for sensor noise, in quantization steps on each side of the
            interval (:meth:`bounds`); 0 (default) keeps every pixel consistent with
            its observed level, a positive value lets values that noise explains
            stay a little outside it.

        Returns
        -------
        ndarray
            Same shape; float32 for float32/float16 input, else float64.  With
            ``noise=0`` every reachable pixel re-quantizes to its observed level.
        """
        margin = check_real(margin, "margin", low=0.0, high=0.5, high_inclusive=False)
        noise = check_real(noise, "noise", low=0.0, high=8.0)
        if self.is_lazy:
            dtype = np.float32 if np.dtype(image.dtype) in (np.float16, np.float32) else np.float64
            return self._blockwise(
                lambda quant, im: quant.project(im, margin=margin, noise=noise), image,
                dtype=dtype)
        image = self._check_image(image)
        out_dtype = np.float32 if image.dtype in (np.float16, np.float32) else np.float64
        lo, hi = self.bounds(noise=noise)
        width = hi - lo
        result = np.clip(image.astype(np.float64), lo + margin * width, hi - margin * width)
        if noise > 0:
            # widened intervals overlap their neighbours: no level to land exactly in
            return result.astype(out_dtype)
        if out_dtype == np.float32:
            # float32 rounding could land on an interval end; step back inside where it did.
            result32 = result.astype(np.float32)
            bad = ~self.is_consistent(result32) & self.reachable
            if np.any(bad):
                centre = ((lo + hi) / 2).astype(np.float32)
                result32[bad] = centre[bad]
            return result32
        return result

    # -- helpers --------------------------------------------------------------------
    def _check_image(self, image) -> np.ndarray:
        image = np.asarray(image)
        if image.dtype == np.bool_ or not (
            np.issubdtype(image.dtype, np.floating) or np.issubdtype(image.dtype, np.integer)
        ):
            raise TypeError(f"image must be a real float array, got dtype {image.dtype}")
        if image.shape != self.shape:
            raise ValueError(
                f"image shape {image.shape} does not match the quantization's shape {self.shape}"
            )
        if np.issubdtype(image.dtype, np.floating) and not np.all(np.isfinite(image)):
            raise ValueError("image contains NaN or infinite values")
        if np.issubdtype(image.dtype, np.integer):
            image = image.astype(np.float64) / np.iinfo(image.dtype).max
        return image
