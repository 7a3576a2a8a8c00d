"""What every baseline shares: input checks, the value channel, and putting colour back."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._validation import as_float_image, check_channel_axis
from ..intensity import to_intensity

__all__ = ["as_value_image", "difference_operators", "solve_spd", "with_value"]


def as_value_image(image, channel_axis):
    """Return ``(float image with channels last or None, value channel)``.

    The value channel is HSV's V, the max over colour channels (the image itself for gray).
    """
    array = np.asarray(image) if not isinstance(image, (str, bytes)) else image
    if not hasattr(array, "shape"):
        raise TypeError(f"image must be an array, got {type(image).__name__}")
    channel_axis = check_channel_axis(array.shape, channel_axis)
    # integers by their effective bit depth (the package's one rule, intensity.py)
    values = to_intensity(array)[0] if np.asarray(array).dtype.kind in "iu" else as_float_image(
        array)
    if channel_axis is None:
        return None, values, None
    colour = np.moveaxis(values, channel_axis, -1)
    return colour, colour.max(axis=-1), channel_axis


def with_value(colour, value, new_value, channel_axis):
    """Scale every channel by ``new_value / value`` (hue and saturation kept), back to the input layout."""
    if colour is None:
        return np.clip(new_value, 0.0, 1.0)
    ratio = np.where(value > 0, new_value / np.maximum(value, 1e-12), 0.0)
    # a black pixel has no hue: it becomes gray at the new value
    out = np.where(value[..., None] > 0, colour * ratio[..., None], new_value[..., None])
    return np.moveaxis(np.clip(out, 0.0, 1.0), -1, channel_axis)


def difference_operators(shape):
    """Sparse forward differences along rows (vertical) and columns (horizontal), zero at the end."""
    rows, cols = shape

    def forward(n):
        d = sp.diags([-np.ones(n), np.ones(n - 1)], [0, 1], shape=(n, n), format="lil")
        d[n - 1, n - 1] = 0.0  # Neumann boundary: no difference past the last pixel
        return d.tocsr()

    vertical = sp.kron(forward(rows), sp.identity(cols), format="csr")
    horizontal = sp.kron(sp.identity(rows), forward(cols), format="csr")
    return vertical, horizontal


def solve_spd(system, rhs, guess, *, name: str):
    """Solve a sparse symmetric positive definite system by Jacobi-preconditioned CG."""
    from scipy.sparse.linalg import cg

    system = system.tocsr()
    preconditioner = sp.diags(1.0 / system.diagonal())
    solution, info = cg(system, rhs, x0=guess, rtol=1e-6, maxiter=1000, M=preconditioner)
    if info < 0:
        raise RuntimeError(f"{name}: conjugate gradients broke down")
    return solution
