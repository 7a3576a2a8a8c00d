"""Shading pre-correction: divide out the smooth illumination before the LP (optional).

LAIC's objective (Eq. 19) lifts dark regions only as far as their local contrast pays for
the gain's total variation, so a vignette or a light gradient is only partly taken out
(measured in docs/laic.md).  Microscopy's standard answer is flat-field correction:
divide by the illumination.  Where the illumination is not known it is estimated here as
the smooth upper envelope of the capture (a running maximum over ``scale`` of the image
side, then a Gaussian of half that width): the light that the brightest local content
received.  A fraction ``strength`` of it is divided out (``gain0 = (L / max L) ** -strength``)
and LAIC then solves on the corrected capture; the final gain is ``gain0 * gain_LAIC``.

The estimate cannot tell a dim region of the scene from dimmed light: at ``strength = 1``
a genuinely dark object large against ``scale`` is lifted too.  Hence it is off by default
for :func:`napari_lowlight.laic` and set by the Enhance presets where shading is expected.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["shading_gain", "smooth_illumination"]


def smooth_illumination(luminance: np.ndarray, *, scale: float = 0.125) -> np.ndarray:
    """The smooth upper envelope of ``luminance`` (planes, rows, cols): float64, > 0.

    ``scale`` is the running maximum's width as a fraction of the longer image side.
    Planes given together (a shared-gain stack) share one envelope (their maximum).
    """
    stacked = np.asarray(luminance, dtype=np.float64)
    plane = stacked.max(axis=0) if stacked.ndim == 3 else stacked
    width = max(3, int(round(scale * max(plane.shape))))
    envelope = ndi.maximum_filter(plane, size=width, mode="nearest")
    envelope = ndi.gaussian_filter(envelope, width / 2, mode="nearest")
    floor = max(float(plane.max()) * 1e-3, 1e-12)  # black areas: no division by ~0
    return np.maximum(envelope, floor)


def shading_gain(luminance: np.ndarray, *, strength: float, scale: float = 0.125) -> np.ndarray:
    """Smooth gain ``(L / max L) ** -strength`` (rows, cols), >= 1, that flattens the light."""
    envelope = smooth_illumination(luminance, scale=scale)
    return (envelope / envelope.max()) ** (-float(strength))
