"""Helpers for lazy (dask) arrays, shared by every public function.

The core functions keep one in-memory implementation; for a dask array they run
that implementation block by block: pointwise and local steps through
``map_blocks``/``map_overlap`` (with a halo of at least the step's reach, so the
result does not depend on the chunking), plane-global steps (LAIC, the baselines)
on chunks that hold whole 2-D planes.  dask is imported only when a dask array is
passed in.
"""

from __future__ import annotations

import numpy as np

__all__ = ["is_lazy", "location_slices", "overlap_layout", "plane_chunks",
           "slice_broadcast"]


def is_lazy(array) -> bool:
    """True for a dask array (checked without importing dask)."""
    return type(array).__module__.split(".")[0] == "dask" and hasattr(array, "chunks")


def location_slices(block_info, index: int = 0) -> tuple[slice, ...]:
    """The block's position in the whole array, from ``map_blocks``' ``block_info``."""
    return tuple(slice(start, stop) for start, stop in block_info[index]["array-location"])


def slice_broadcast(values, where: tuple[slice, ...]):
    """``values`` (a scalar or an array broadcastable to the whole array) at ``where``."""
    if np.ndim(values) == 0:
        return values
    values = np.asarray(values)
    offset = len(where) - values.ndim
    return values[tuple(slice(None) if values.shape[i] == 1 else where[offset + i]
                        for i in range(values.ndim))]


def plane_chunks(shape: tuple[int, ...], channel_axis: int | None) -> tuple:
    """Chunks holding whole (rows, cols[, channels]) planes, one plane per chunk."""
    spatial = [i for i in range(len(shape)) if i != channel_axis]
    whole = set(spatial[-2:]) | ({channel_axis} if channel_axis is not None else set())
    return tuple(-1 if axis in whole else 1 for axis in range(len(shape)))


def overlap_layout(image, halos: dict, *, multiple: int = 1, min_chunk: int = 64):
    """``image`` rechunked for ``dask.array.map_overlap`` and the depth per axis.

    The one halo rule of the local steps on dask arrays (the dequantizer's network, the
    classic smoothing): a step that reaches ``halos[axis]`` pixels along ``axis`` gets that
    halo (rounded up to ``multiple``), so every block sees what the whole image would
    show it and the result does not depend on the chunking.

    Parameters
    ----------
    image : dask array
    halos : dict of int -> int
        Axis -> the step's reach along it, pixels (>= 0); other axes get no halo.
    multiple : int, >= 1
        Grid the blocks must start on: a multi-scale network sees the same pixels as on
        the whole image only from blocks on its grid, so chunks become whole multiples of
        it (any remainder merged into the last chunk).
    min_chunk : int, >= 1
        Smallest chunk side, pixels: halos cost less next to larger chunks.

    Returns
    -------
    (dask array, dict)
        The rechunked image and ``depth`` (axis -> halo) for ``map_overlap`` with
        ``boundary="none"``.  Every chunk is at least the halo (``map_overlap`` needs
        that); an axis no longer than two chunks becomes one chunk, without a halo.
    """
    depth = dict.fromkeys(range(image.ndim), 0)
    chunks = {}
    for axis, reach in halos.items():
        if reach <= 0:
            continue
        halo = -(-reach // multiple) * multiple
        size = image.shape[axis]
        chunk = max(min_chunk, halo, max(image.chunks[axis]))
        chunk = -(-chunk // multiple) * multiple
        if size <= 2 * chunk:
            if len(image.chunks[axis]) > 1:
                chunks[axis] = size
            continue
        aligned = all(c % multiple == 0 for c in image.chunks[axis][:-1])
        if not aligned or min(image.chunks[axis]) < halo:
            count, remainder = divmod(size, chunk)
            chunks[axis] = (chunk,) * (count - 1) + (chunk + remainder,)
        depth[axis] = halo
    if chunks:
        image = image.rechunk(chunks)
    return image, depth


def check_lazy_dtype(array, name: str = "image") -> None:
    """The dtype checks ``as_float_image`` makes, for an array that is not computed yet."""
    dtype = np.dtype(array.dtype)
    if dtype == np.bool_:
        raise TypeError(f"{name} is boolean (a mask); convert it to a float image in [0, 1] "
                        "or an integer image first")
    if dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold integers or floats, got dtype {dtype} "
                        "(complex, object and string arrays are not images)")
    if 0 in array.shape:
        raise ValueError(f"{name} is empty (shape {array.shape})")


def per_plane(func):
    """Let a 2-D function (gray or colour) take a dask array of any rank, lazily, per plane.

    A stack (z, t, ... leading axes) in memory is processed plane by plane; a dask
    array is rechunked to whole (rows, cols[, channels]) planes and each plane
    computed with the in-memory code when its chunk is needed.  Parameters are
    checked at once on a small plane, so a bad one raises now rather than at
    compute time.
    """
    import functools

    from ._validation import check_channel_axis

    @functools.wraps(func)
    def wrapper(image, *args, channel_axis=None, **kwargs):
        if not is_lazy(image):
            if isinstance(image, np.ndarray) and image.size:
                axis = check_channel_axis(image.shape, channel_axis)
                if image.ndim - (axis is not None) > 2:
                    planes = [_run_on_plane(plane, function=func, args=args, kwargs=kwargs,
                                            channel_axis=None if axis is None else -1)
                              for plane in _planes(image, axis)]
                    return _unplanes(planes, image.shape, axis)
            return func(image, *args, channel_axis=channel_axis, **kwargs)

        channel_axis = check_channel_axis(image.shape, channel_axis)
        check_lazy_dtype(image)
        channels = () if channel_axis is None else (image.shape[channel_axis],)
        func(np.full((16, 16) + channels, 0.5), *args,
             channel_axis=None if channel_axis is None else -1, **kwargs)
        planes = image.rechunk(plane_chunks(image.shape, channel_axis))
        run = functools.partial(_run_on_plane, function=func, args=args, kwargs=kwargs,
                                channel_axis=channel_axis)
        return planes.map_blocks(run, dtype=np.float64)

    return wrapper


def _run_on_plane(block, *, function, args, kwargs, channel_axis):
    moved = block if channel_axis is None else np.moveaxis(block, channel_axis, -1)
    plane_shape = moved.shape[-3:] if channel_axis is not None else moved.shape[-2:]
    out = function(moved.reshape(plane_shape), *args,
               channel_axis=None if channel_axis is None else -1, **kwargs)
    out = out.reshape(moved.shape)
    return out if channel_axis is None else np.moveaxis(out, -1, channel_axis)


def _planes(image: np.ndarray, channel_axis: int | None):
    """(rows, cols[, channels]) planes of a stack, each with one leading axis of 1."""
    moved = image if channel_axis is None else np.moveaxis(image, channel_axis, -1)
    plane_ndim = 2 if channel_axis is None else 3
    flat = moved.reshape((-1,) + moved.shape[moved.ndim - plane_ndim:])
    return [flat[i:i + 1] for i in range(flat.shape[0])]


def _unplanes(planes, shape, channel_axis):
    stacked = np.concatenate(planes, axis=0)
    if channel_axis is None:
        return stacked.reshape(shape)
    moved_shape = tuple(n for i, n in enumerate(shape) if i != channel_axis) + (
        shape[channel_axis],)
    return np.moveaxis(stacked.reshape(moved_shape), -1, channel_axis)
