"""LIME: low-light enhancement through a refined illumination map."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.ndimage import gaussian_filter

from .._lazy import per_plane
from .._validation import check_real
from ._common import as_value_image, difference_operators, solve_spd, with_value

__all__ = ["lime", "lime_illumination"]


def lime_illumination(initial, *, alpha: float = 0.15, sigma: float = 2.0,
                      epsilon: float = 1e-3) -> np.ndarray:
    """Refine LIME's initial illumination ``T^ = max over channels`` (the sped-up solver).

    Solves ``min_T ||T - T^||^2 + alpha sum_d W_d (D_d T)^2`` with the structure-aware
    weights ``W_d = 1 / (|G_sigma * D_d T^| + epsilon)`` (strategy III of the paper):
    a sparse symmetric positive definite system, solved by Jacobi-preconditioned
    conjugate gradients (as the paper's sped-up solver does) from ``T^``.
    """
    shape = initial.shape
    vertical, horizontal = difference_operators(shape)
    t_hat = initial.ravel()
    system = sp.identity(t_hat.size, format="csr")
    for operator in (vertical, horizontal):
        gradient = (operator @ t_hat).reshape(shape)
        weight = 1.0 / (np.abs(gaussian_filter(gradient, sigma)) + epsilon)
        system = system + alpha * (operator.T @ sp.diags(weight.ravel()) @ operator)
    return solve_spd(system, t_hat, t_hat, name="LIME").reshape(shape)


@per_plane
def lime(image, *, channel_axis=None, alpha: float = 0.15, gamma: float = 0.8,
         sigma: float = 2.0, epsilon: float = 1e-3) -> np.ndarray:
    """LIME low-light enhancement: divide by a refined, gamma-corrected illumination map.

    X. Guo, Y. Li, H. Ling, "LIME: Low-light image enhancement via illumination map
    estimation", IEEE Trans. Image Processing 26(2), 2017.  The illumination starts
    as the max over colour channels, is refined with the structure-aware smoothness
    prior (:func:`lime_illumination`), gamma-corrected (``T ** gamma``) and divided
    out of every channel.  The paper's optional BM3D denoising is not applied.

    Parameters
    ----------
    image : array_like
        Float in [0, 1] or integers; gray, or colour with ``channel_axis``.
    channel_axis : int or None
    alpha : float, > 0
        Weight of the smoothness prior (paper: 0.15).
    gamma : float, in (0, 1]
        Gamma applied to the illumination map (paper: 0.8); smaller brightens more.
    sigma : float, > 0
        Standard deviation, pixels, of the Gaussian that builds the weights (paper: 2).
    epsilon : float, > 0
        Keeps the weights finite in flat areas.

    Returns
    -------
    ndarray of float64 in [0, 1], the input's shape
    """
    alpha = check_real(alpha, "alpha", low=0.0, low_inclusive=False)
    gamma = check_real(gamma, "gamma", low=0.0, high=1.0, low_inclusive=False)
    sigma = check_real(sigma, "sigma", low=0.0, low_inclusive=False)
    epsilon = check_real(epsilon, "epsilon", low=0.0, low_inclusive=False)
    colour, value, axis = as_value_image(image, channel_axis)
    if value.ndim != 2:
        raise ValueError(f"lime works on 2-D gray or RGB images, got spatial shape {value.shape}")
    illumination = lime_illumination(value, alpha=alpha, sigma=sigma, epsilon=epsilon)
    # the illumination is at least the brightest channel's value; a floor keeps it invertible
    illumination = np.clip(illumination, max(epsilon, 1e-4), 1.0) ** gamma
    new_value = value / illumination
    return with_value(colour, value, new_value, axis)
