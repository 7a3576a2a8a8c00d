"""The low-light image formation model: a normal image to a dark capture and its re-exposure.

``docs/formation.md`` states the model and the decisions taken where the method
is vague.  In short, for a normal image ``J`` in [0, 1]::

    dark      = clip(Q(k * J**r + n), 0, 1)      n ~ Normal(0, (sigma * q)**2)
    reexposed = clip((dark / k) ** (1 / r), 0, 1)

with ``Q(x) = q * floor(x / q + 0.5)`` and ``q = 1 / (2**bits - 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._lazy import check_lazy_dtype, is_lazy, location_slices, slice_broadcast
from ._noise import noise_key, position_normal
from ._validation import (
    as_float_image,
    check_bits,
    check_channel_axis,
    check_real,
    float_dtype_for,
)
from .dimming import make_dimming
from .intensity import infer_bits, to_intensity
from .quantization import Quantization, quantize_levels

__all__ = ["DegradedImage", "degrade"]


@dataclass(frozen=True, eq=False)
class DegradedImage:
    """Result of :func:`degrade`.

    Attributes
    ----------
    dark : ndarray of float
        The dark capture, on the grid of multiples of ``q``, in [0, 1].
    reexposed : ndarray of float
        ``(dark / k) ** (1 / r)`` clipped to [0, 1]: bright, with the capture's
        quantization artifacts (banding).
    quantization : Quantization
        Each re-exposed pixel's quantization interval (levels, k, r, bits).
    dimming : ndarray or None
        The dimming map that multiplied ``k``, shaped to broadcast against the
        image (channel axis of length 1); None for uniform light.
    k, r, sigma : float
        The parameters used; ``sigma`` in units of ``q``.
    bits : int
    channel_axis : int or None
        Normalised (non-negative) channel axis of the arrays.
    noise : ndarray or None
        The noise added before quantization (float64), when ``return_noise=True``
        and ``sigma > 0``.
    """

    dark: np.ndarray
    reexposed: np.ndarray
    quantization: Quantization
    dimming: np.ndarray | None
    k: float
    r: float
    sigma: float
    bits: int
    channel_axis: int | None
    noise: np.ndarray | None = None

    @property
    def q(self) -> float:
        """Quantization step ``1 / (2**bits - 1)``."""
        return self.quantization.q


def _dimming_map(dimming, spatial_shape, channel_axis, ndim, rng) -> np.ndarray | None:
    """Validate or build the dimming map and shape it to broadcast against the image."""
    if dimming is None:
        return None
    if isinstance(dimming, str):
        plane = make_dimming(dimming, spatial_shape[-2:], seed=rng)
        dim = plane
    else:
        dim = np.asarray(dimming)
        if dim.dtype == np.bool_ or not (
            np.issubdtype(dim.dtype, np.floating) or np.issubdtype(dim.dtype, np.integer)
        ):
            raise TypeError(f"dimming must be None, a name or a real array, got dtype {dim.dtype}")
        dim = dim.astype(np.float64)  # a copy: the caller's map is never modified
        if dim.ndim == 0 or dim.ndim > len(spatial_shape):
            raise ValueError(
                f"dimming map of shape {dim.shape} must have 1..{len(spatial_shape)} "
                f"dimensions and broadcast to the spatial shape {spatial_shape}"
            )
        try:
            fits = np.broadcast_shapes(dim.shape, spatial_shape) == tuple(spatial_shape)
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"dimming map of shape {dim.shape} does not broadcast to the image's "
                f"spatial shape {spatial_shape}"
            )
        if not np.all(np.isfinite(dim)) or np.any(dim <= 0):
            raise ValueError("dimming map must be finite and > 0 everywhere")
    # Pad to the full spatial rank, then give the channel axis length 1.
    dim = dim.reshape((1,) * (len(spatial_shape) - dim.ndim) + dim.shape)
    if channel_axis is not None:
        dim = np.expand_dims(dim, channel_axis)
    assert dim.ndim == ndim
    return dim


def degrade(
    image,
    *,
    k: float = 1 / 30,
    r: float = 1.3,
    sigma: float = 0.25,
    bits: int = 8,
    dimming=None,
    seed=None,
    channel_axis: int | None = None,
    return_noise: bool = False,
) -> DegradedImage:
    """Simulate a low-light capture of ``image`` and its naive re-exposure (Eq. 6-7).

    Parameters
    ----------
    image : array_like
        The normally exposed image ``J``: float in [0, 1], or integers divided by
        ``2**b - 1`` where ``b`` is their effective bit depth by the package's one rule
        (:func:`napari_lowlight.intensity.infer_bits`: uint8 by 255, a 12-bit frame in
        uint16 by 4095, full-range uint16 by 65535; the same for dask arrays).
        2-D gray, RGB/multichannel with ``channel_axis``, or an nD stack (z, t, ...).
        Never modified.
    k : float, in (0, 1]
        Dimming factor ``a ** g2`` (light level relative to the normal exposure);
        the paper's global low light is 1/30, local low light 1/5.
    r : float, > 0
        Gamma ratio ``g2 / g1``; the paper uses 1.3 (global) and 1.5 (local).
    sigma : float, >= 0
        Standard deviation of the sensor noise, in units of the quantization step
        ``q``; added before quantization.  The paper uses 0.25.
    bits : int, 1..16
        Bit depth of the capture (8 for photographs, 12/16 for scientific cameras).
    dimming : None, "vignette", "random" or array_like
        Uneven light: a map multiplying ``k``, broadcastable to the spatial shape
        (the image's shape without the channel axis), > 0, with ``k * dimming <= 1``;
        or the name of a generator in :mod:`napari_lowlight.dimming` applied to the
        last two spatial axes (``"random"`` is seeded by ``seed``).
    seed : int, numpy.random.Generator or None
        Seeds the noise.  Each pixel's deviate depends only on the seed and the
        pixel's position (a counter-based generator, :mod:`napari_lowlight._noise`),
        so a dask array gives the same capture whatever its chunking.  The random
        dimming field draws from an independent stream spawned from the seed.
    channel_axis : int or None
        Axis of the colour channels (scikit-image convention); None for gray.
    return_noise : bool
        Keep the drawn noise in ``.noise`` (the dequantizer's training needs it for
        the quasi-l-infinity loss); off by default to save memory.

    Returns
    -------
    DegradedImage
        ``.dark``, ``.reexposed`` (new arrays of the input's shape; float32 for
        float32/float16 input, float64 otherwise) and ``.quantization``.  For a
        dask array they are lazy dask arrays of the same chunks (value errors such
        as NaN then surface when a block is computed) and ``.noise`` is None.

    Raises
    ------
    TypeError
        For an image or parameter of the wrong kind.
    ValueError
        For NaN/inf, an empty image, out-of-range values or parameters, or a
        ``channel_axis`` that does not fit the image.
    """
    k = check_real(k, "k", low=0.0, high=1.0, low_inclusive=False)
    r = check_real(r, "r", low=0.0, low_inclusive=False)
    sigma = check_real(sigma, "sigma", low=0.0)
    bits = check_bits(bits)
    array, normal, input_bits, channel_axis = _normal_image(image, channel_axis)
    lazy = normal is None  # a dask array: captured block by block, as it is computed
    shape = array.shape
    out_dtype = float_dtype_for(np.dtype(array.dtype))
    spatial_shape = tuple(s for i, s in enumerate(shape) if i != channel_axis)
    dim, k_eff, key = _light_and_noise_key(dimming, k, seed, spatial_shape, channel_axis,
                                           len(shape))
    q = 1.0 / (2**bits - 1)
    if lazy:
        levels = array.map_blocks(
            _capture_levels, shape=shape, k=k_eff, r=r, noise_std=sigma * q, bits=bits,
            key=key, input_bits=input_bits, dtype=np.uint8 if bits <= 8 else np.uint16)
        noise = None
    else:
        levels, noise = _capture_in_memory(normal, shape, k_eff=k_eff, r=r, sigma=sigma, q=q,
                                           bits=bits, key=key)
    quantization = Quantization(levels, k=k_eff, r=r, bits=bits)
    dark = quantization.dark.astype(out_dtype)
    reexposed = quantization.reexposed(out_dtype)
    return DegradedImage(
        dark=dark,
        reexposed=reexposed,
        quantization=quantization,
        dimming=dim,
        k=k,
        r=r,
        sigma=sigma,
        bits=bits,
        channel_axis=channel_axis,
        noise=noise if return_noise else None,
    )


def _normal_image(image, channel_axis):
    """Check ``image``: (array, normal intensities or None when lazy, input bits, channel axis)."""
    lazy = is_lazy(image)
    array = image if lazy else (
        np.asarray(image) if not isinstance(image, (str, bytes)) else image)
    shape = getattr(array, "shape", None)
    if shape is None:
        raise TypeError(f"image must be an array, got {type(image).__name__}")
    channel_axis = check_channel_axis(shape, channel_axis)
    # integers: scaled by their effective depth over the whole array (one rule, in memory
    # and lazy alike)
    input_bits = None
    if np.dtype(array.dtype).kind in "iu" and getattr(array, "size", 0):
        input_bits = infer_bits(array)
    if lazy:
        check_lazy_dtype(array)  # a lazy array is scaled block by block, in _capture_levels
        return array, None, input_bits, channel_axis
    normal = as_float_image(array) if input_bits is None else to_intensity(
        array, bits=input_bits)[0]
    return array, normal, input_bits, channel_axis


def _light_and_noise_key(dimming, k, seed, spatial_shape, channel_axis, ndim):
    """The dimming map, the per-pixel light ``k * dimming`` (checked) and the noise key."""
    rng = np.random.default_rng(seed)
    # The dimming field draws from a child stream, the noise key after it: this order is
    # part of what a seed means (the same seed gives the same capture in every version).
    dim = _dimming_map(dimming, spatial_shape, channel_axis, ndim, rng.spawn(1)[0])
    key = noise_key(rng)
    k_eff = k if dim is None else k * dim
    if dim is not None and np.max(k_eff) > 1.0:
        raise ValueError(
            f"k * dimming must be <= 1 everywhere (light cannot exceed the normal "
            f"exposure), got a maximum of {np.max(k_eff):g}"
        )
    return dim, k_eff, key


def _capture_in_memory(normal, shape, *, k_eff, r, sigma, q, bits, key):
    """The capture's levels and the noise added before quantization (None without noise)."""
    # the same arithmetic as _capture_levels, which does it block by block for dask arrays
    signal = k_eff * normal**r
    noise = None
    if sigma > 0:
        noise = sigma * q * position_normal(key, shape)
        signal = signal + noise
    return quantize_levels(signal, bits), noise


def _capture_levels(block, *, shape, k, r, noise_std, bits, key, input_bits=None,
                    block_info=None):
    """One block of a lazy capture: the same arithmetic as the in-memory path."""
    where = location_slices(block_info)
    normal = as_float_image(block) if input_bits is None else to_intensity(
        block, bits=input_bits)[0]
    signal = slice_broadcast(k, where) * normal ** r
    if noise_std > 0:
        signal = signal + noise_std * position_normal(key, shape, where)
    return quantize_levels(signal, bits)
