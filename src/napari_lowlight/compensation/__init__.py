"""LAIC: locally adaptive illumination compensation as a HiGHS linear program.

``laic()`` is the entry point; ``laic_objective`` evaluates Eq. 19/22 the one
way every method and benchmark uses.  See ``docs/laic.md``.
"""

from ._laic import EXACT_MAX_PIXELS, LAIC_METHODS, LAICResult, laic
from ._lp import LAICSolverError
from ._problem import laic_objective, local_signs, rank_preservation

__all__ = [
    "EXACT_MAX_PIXELS",
    "LAIC_METHODS",
    "LAICResult",
    "LAICSolverError",
    "laic",
    "laic_objective",
    "local_signs",
    "rank_preservation",
]
