"""The LAIC problem (Eq. 19-23): local signs, the linear objective and its one evaluation.

Unknown: the gain map ``g`` (one value per pixel, shared by the planes of a
stack when asked); the enhanced image is ``Jt = g * Ja`` (black pixels stay
black: see ``docs/laic.md``).  With ``mean`` the box mean over a
``(2 radius + 1)**2`` window clipped at the borders and
``s = sign(Ja - mean(Ja))`` (0 for ties)::

    objective(g) = TV(g) - weight * sum_i s_i * (Jt_i - mean(Jt)_i)

    subject to   min_gain <= g,   0 <= Jt <= 1,   s_i * (Jt_i - mean(Jt)_i) >= 0

This is Eq. 19 with the absolute value replaced by its sign-fixed linear form
(Eq. 22): the two agree wherever the rank constraints hold.  Every method and
every benchmark reports :func:`laic_objective`, so their numbers compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._backend import array_module, box_mean, box_sum, window_counts

__all__ = ["LocalContrast", "laic_objective", "local_signs", "rank_preservation"]

#: |Ja - mean(Ja)| at or below this is a tie (no rank to preserve).  Real
#: differences of a quantized image are at least q / window area (>= 1e-8 for
#: 16 bits and radius 7), so the threshold only catches exact ties.
TIE_TOLERANCE = 1e-10

#: Headroom below full scale of a pixel under its local maximum, as a fraction of its
#: relative distance to that maximum (see ``LocalContrast.build``).
SATURATION_MARGIN = 0.25


def local_signs(luminance, radius: int):
    """``sign(Ja - mean(Ja))`` per pixel, 0 for ties, as int8 (NumPy or CuPy like the input)."""
    xp = array_module(luminance)
    diff = luminance - box_mean(luminance, radius)
    signs = xp.sign(diff).astype(xp.int8)
    signs[xp.abs(diff) <= TIE_TOLERANCE] = 0
    return signs


def _total_variation(gain):
    xp = array_module(gain)
    return float(xp.abs(xp.diff(gain, axis=-1)).sum() + xp.abs(xp.diff(gain, axis=-2)).sum())


def laic_objective(gain, luminance, *, radius: int, weight: float, signs=None) -> float:
    """The Eq. 19/22 objective of ``gain`` for the luminance planes ``luminance``.

    Parameters
    ----------
    gain : ndarray, shape (rows, cols)
        The gain map.
    luminance : ndarray, shape (rows, cols) or (planes, rows, cols)
        The dark luminance ``Ja`` in [0, 1]; planes share the gain.
    radius : int
        Window radius of the local mean, pixels.
    weight : float
        The contrast weight lambda2.
    signs : ndarray of int8, optional
        ``local_signs(luminance, radius)`` if already computed.

    Returns
    -------
    float
        ``TV(g) - weight * sum s * (Jt - mean(Jt))``, lower is better.
    """
    if signs is None:
        signs = local_signs(luminance, radius)
    enhanced = gain * luminance
    contrast = float((signs * (enhanced - box_mean(enhanced, radius))).sum())
    return _total_variation(gain) - weight * contrast


def rank_preservation(gain, luminance, *, radius: int, signs=None) -> float:
    """Fraction of non-tie pixels whose local rank survives: ``s (Jt - mean(Jt)) >= -1e-9``.

    Returns 1.0 when every pixel is a tie.
    """
    if signs is None:
        signs = local_signs(luminance, radius)
    enhanced = gain * luminance
    kept = signs * (enhanced - box_mean(enhanced, radius)) >= -1e-9
    ranked = signs != 0
    total = int(ranked.sum())
    return 1.0 if total == 0 else float((kept & ranked).sum()) / total


@dataclass
class LocalContrast:
    """Per-pixel quantities of one LAIC problem, on the host (NumPy), for building LPs.

    ``luminance`` has shape (planes, rows, cols); the planes share one gain map.
    """

    luminance: np.ndarray
    radius: int
    weight: float
    min_gain: float
    max_gain: float
    signs: np.ndarray  # int8, (planes, rows, cols)
    counts: np.ndarray  # window sizes, (rows, cols)
    cost: np.ndarray  # linear cost of the gain in the objective, (rows, cols)
    upper: np.ndarray  # largest gain keeping every plane <= 1, (rows, cols)

    @classmethod
    def build(cls, luminance, *, radius, weight, min_gain, max_gain,
              saturation_radius: int = 0) -> LocalContrast:
        luminance = np.asarray(luminance, dtype=np.float64)
        if luminance.ndim == 2:
            luminance = luminance[None]
        signs = local_signs(luminance, radius)
        counts = window_counts(luminance.shape, radius)
        # sum_i s_i (g_i Ja_i - mean(g Ja)_i) = sum_j g_j Ja_j (s_j - sum_{i: j in W_i} s_i / n_i)
        # and the window relation is symmetric, so the inner sum is a box sum of s / n.
        spread = box_sum(signs / counts, radius)
        cost = -weight * (luminance * (signs - spread)).sum(axis=0)
        brightest = luminance.max(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            upper = np.where(brightest > 0, 1.0 / brightest, np.inf)
            if saturation_radius:
                # Decision (docs/laic.md): only a pixel that is the brightest of its
                # neighbourhood may reach full scale; one below its local maximum L stays
                # below 1 by a margin, Jt <= 1 - margin * (1 - Ja / L).  With the plain
                # Jt <= 1 the contrast reward pushed every pixel of a bright object's flank
                # to exactly 1 (4 % of a dim camera frame saturated).  The margin is partial
                # (not Jt <= Ja / L) so a dark pixel next to a bright object is not held
                # down with it (that would draw a dark ring).
                from scipy.ndimage import maximum_filter

                local = maximum_filter(brightest, size=2 * saturation_radius + 1,
                                       mode="nearest")
                room = 1.0 - SATURATION_MARGIN * (1.0 - brightest / local)
                upper = np.where(brightest > 0, room / brightest, np.inf)
        upper = np.minimum(upper, max_gain)
        return cls(luminance, radius, weight, min_gain, max_gain, signs, counts, cost, upper)

    @property
    def shape(self) -> tuple[int, int]:
        return self.luminance.shape[-2:]

    def objective(self, gain) -> float:
        return laic_objective(gain, self.luminance, radius=self.radius, weight=self.weight,
                              signs=self.signs)
