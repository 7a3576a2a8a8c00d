"""napari-lowlight: restore images taken in low or uneven light.

The core (this package without :mod:`napari_lowlight.plugin`) imports no napari
or Qt and works on arrays in scripts and on clusters.
"""

from importlib.metadata import PackageNotFoundError, version

from . import dimming, metrics
from .compensation import LAICResult, laic
from .formation import DegradedImage, degrade
from .dequantizer import dequantize
from .pipeline import enhance
from .quantization import Quantization, quantization_step, quantize_levels

try:
    __version__ = version("napari-lowlight")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "DegradedImage",
    "LAICResult",
    "Quantization",
    "__version__",
    "degrade",
    "dequantize",
    "dimming",
    "enhance",
    "laic",
    "metrics",
    "quantization_step",
    "quantize_levels",
]
