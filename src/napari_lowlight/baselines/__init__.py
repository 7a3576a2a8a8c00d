"""Classic low-light enhancement methods the paper compares against (METHOD.md section 5).

Each ``f(image, *, channel_axis=None, ...)`` takes a gray or colour image, or a stack of
them processed plane by plane (in memory or as a dask array), (float in
[0, 1] or integers), works on the HSV value channel where colour is involved, and
returns a new float64 image in [0, 1] of the input's shape.  See docs/baselines.md.
"""

from .clahe import clahe
from .lime import lime
from .octm import octm
from .srie import srie

# The classic dequantizer lives with the dequantizers; importable from here too, as since 0.1.
from ..dequantizer.classic import smooth_project

#: name -> function, for the evaluate command and the napari widget.
BASELINES = {"clahe": clahe, "lime": lime, "octm": octm, "srie": srie}

__all__ = ["BASELINES", "clahe", "lime", "octm", "smooth_project", "srie"]
