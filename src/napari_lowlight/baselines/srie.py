"""SRIE: simultaneous reflectance and illumination estimation with a weighted variational model."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.ndimage import gaussian_filter

from .._lazy import per_plane
from .._validation import check_int, check_real
from ._common import as_value_image, difference_operators, solve_spd, with_value

__all__ = ["srie", "srie_decompose"]


def srie_decompose(value, *, alpha: float = 1e-3, beta: float = 1e-4, gamma: float = 0.1,
                   iterations: int = 4, epsilon: float = 1e-3):
    """Estimate reflectance ``R`` and illumination ``L`` with ``value ~ R * L``.

    Alternating minimisation of
    ``||R L - S||^2 + alpha ||grad L||^2 + beta sum w |grad R|^2 + gamma ||L - L0||^2``
    with ``L0`` a smoothed copy of ``S`` and the reweighting ``w = 1 / (|grad R| + epsilon)``
    (iteratively reweighted least squares for the total variation of ``R``).  Each half
    step is a sparse symmetric positive definite system.  ``L >= S`` and ``0 <= R <= 1``
    are enforced after each step, as in the paper.

    Returns
    -------
    reflectance, illumination : ndarray of float64, the value's shape
    """
    shape = value.shape
    s = value.ravel()
    vertical, horizontal = difference_operators(shape)
    laplacian = vertical.T @ vertical + horizontal.T @ horizontal
    identity = sp.identity(s.size, format="csr")
    l0 = np.maximum(gaussian_filter(value, 2.0).ravel(), s)
    illumination = np.maximum(l0, 1e-3)
    reflectance = np.clip(s / illumination, 0.0, 1.0)
    for _ in range(iterations):
        # illumination step: (R^2 + alpha Lap + gamma I) L = R S + gamma L0
        system = sp.diags(reflectance**2) + alpha * laplacian + gamma * identity
        illumination = solve_spd(system, reflectance * s + gamma * l0, illumination,
                                 name="SRIE")
        illumination = np.clip(np.maximum(illumination, s), 1e-3, 1.0)
        # reflectance step: (L^2 + beta D^T W D) R = L S, weights from the last R
        weighted = 0
        for operator in (vertical, horizontal):
            weight = 1.0 / (np.abs(operator @ reflectance) + epsilon)
            weighted = weighted + operator.T @ sp.diags(weight) @ operator
        system = sp.diags(illumination**2) + beta * weighted
        reflectance = solve_spd(system, illumination * s, reflectance, name="SRIE")
        reflectance = np.clip(reflectance, 0.0, 1.0)
    return reflectance.reshape(shape), illumination.reshape(shape)


@per_plane
def srie(image, *, channel_axis=None, alpha: float = 1e-3, beta: float = 1e-4,
         gamma: float = 0.1, iterations: int = 4, illumination_gamma: float = 2.2) -> np.ndarray:
    """SRIE enhancement: recompose the reflectance with a gamma-corrected illumination.

    X. Fu, D. Zeng, Y. Huang, X.-P. Zhang, X. Ding, "A weighted variational model
    for simultaneous reflectance and illumination estimation", CVPR 2016.  The value
    channel is decomposed (:func:`srie_decompose`), the illumination is brightened as
    ``(L / max L) ** (1 / illumination_gamma)`` and ``R * L'`` becomes the new value; every
    channel is scaled by the same ratio.  Weights are for intensities in [0, 1]
    (see docs/baselines.md for how they were chosen).

    Parameters
    ----------
    image : array_like
        Float in [0, 1] or integers; gray, or colour with ``channel_axis``.
    channel_axis : int or None
    alpha : float, > 0
        Smoothness weight of the illumination.
    beta : float, > 0
        Total-variation weight of the reflectance.
    gamma : float, >= 0
        Weight keeping the illumination near its smoothed initial estimate.
    iterations : int, >= 1
        Alternating steps.
    illumination_gamma : float, >= 1
        Gamma used to brighten the illumination (the paper: 2.2).

    Returns
    -------
    ndarray of float64 in [0, 1], the input's shape
    """
    alpha = check_real(alpha, "alpha", low=0.0, low_inclusive=False)
    beta = check_real(beta, "beta", low=0.0, low_inclusive=False)
    gamma = check_real(gamma, "gamma", low=0.0)
    illumination_gamma = check_real(illumination_gamma, "illumination_gamma", low=1.0)
    iterations = check_int(iterations, "iterations", low=1)
    colour, value, axis = as_value_image(image, channel_axis)
    if value.ndim != 2:
        raise ValueError(f"srie works on 2-D gray or RGB images, got spatial shape {value.shape}")
    reflectance, illumination = srie_decompose(value, alpha=alpha, beta=beta, gamma=gamma,
                                               iterations=int(iterations))
    # The illumination is normalised to its maximum before the gamma, so a dark capture is
    # brought to the full range (the paper's images are dim, not 1/30 of normal exposure).
    new_value = reflectance * (illumination / illumination.max()) ** (1.0 / illumination_gamma)
    return with_value(colour, value, new_value, axis)
