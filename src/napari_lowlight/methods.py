"""The one registry of named low-light settings and enhancement methods.

``napari-lowlight evaluate`` (:mod:`napari_lowlight.evaluation`), ``make demo``
(:mod:`napari_lowlight.demo`), the command line's ``evaluate --setting`` /
``--methods`` / ``--list-methods`` and the napari "Compare methods" widget all read these
tables: a setting or method added here appears in each of them.

- :data:`SETTINGS`: the paper's low-light settings, name -> :class:`LowLightSetting` (the
  keyword arguments of :func:`napari_lowlight.degrade`, with a one-line description).
- :data:`METHODS`: name -> :class:`Method` (what it runs on, whether it needs PyTorch, a
  one-line label, and how it runs).
- :data:`DARK_METHODS`: the methods that need only a dark image, in the order they are
  run and shown (real dim images, the Compare widget).

LAIC followed by a dequantizer runs through
:func:`napari_lowlight.pipeline.laic_then_dequantize`, and the methods that start with
LAIC share one LAIC run per image.  Nothing here imports PyTorch: the network's methods
import it when they run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._lazy import is_lazy
from .baselines import BASELINES
from .dequantizer import smooth_project
from .intensity import to_intensity
from .pipeline import laic_then_dequantize

__all__ = ["DARK_METHODS", "METHODS", "NEEDS", "SETTINGS", "LowLightSetting", "Method",
           "MethodInput"]


class LowLightSetting(dict):
    """Keyword arguments of :func:`napari_lowlight.degrade`, with a one-line ``description``.

    A dict, so that ``degrade(image, **setting)`` captures an image in this setting.
    """

    def __init__(self, description: str, **degrade_options):
        super().__init__(degrade_options)
        self.description = description


#: The paper's two evaluation settings (METHOD.md section 5).
SETTINGS: dict[str, LowLightSetting] = {
    "global": LowLightSetting(
        "the paper's global low light: uniform, 1/30 of the light, gamma ratio 1.3",
        k=1 / 30, r=1.3, sigma=0.25, bits=8, dimming=None),
    "local": LowLightSetting(
        "the paper's local low light: a vignette over 1/5 of the light, gamma ratio 1.5",
        k=1 / 5, r=1.5, sigma=0.25, bits=8, dimming="vignette"),
}


@dataclass
class MethodInput:
    """What a method may read about one image; one per image, shared by its methods.

    Attributes
    ----------
    dark : array_like
        The dark capture as recorded (float in [0, 1] or integer counts; NumPy or dask).
    channel_axis : int or None
    bits, black_level
        How the capture's values become light (:func:`napari_lowlight.intensity.to_intensity`);
        None: inferred, none.
    reexposed : array_like or None
        The re-exposed image of a synthetic capture (``degrade(...).reexposed``); None for
        a real capture.
    quantization : Quantization or None
        The re-exposed image's intervals, with ``reexposed``.
    device : str
        Where the dequantizer network runs ("auto", "cpu", "cuda", ...).
    cache : dict
        Results the methods share: the light of the dark capture and LAIC's result.
    """

    dark: Any
    channel_axis: int | None = None
    bits: int | None = None
    black_level: Any = None
    reexposed: Any = None
    quantization: Any = None
    device: str = "auto"
    cache: dict = field(default_factory=dict)

    @property
    def light(self):
        """The dark capture as light in [0, 1], read by the same rule as LAIC reads it."""
        if "light" not in self.cache:
            # a lazy capture keeps its own per-block reading (the baselines work per plane)
            self.cache["light"] = self.dark if is_lazy(self.dark) else to_intensity(
                self.dark, bits=self.bits, black_level=self.black_level)[0]
        return self.cache["light"]

    @property
    def compensated(self):
        """LAIC's result on the dark capture (:class:`napari_lowlight.LAICResult`), run once."""
        if "laic" not in self.cache:
            from .compensation import laic

            self.cache["laic"] = laic(self.dark, channel_axis=self.channel_axis, bits=self.bits,
                                      black_level=self.black_level)
        return self.cache["laic"]


#: What a method runs on: a dark image alone (any real capture), or a synthetic capture's
#: re-exposed image and its Quantization (only ``evaluate`` has those).
NEEDS = ("dark", "reexposed")


@dataclass(frozen=True)
class Method:
    """One enhancement method of the registry.

    Attributes
    ----------
    name : str
    label : str
        One line saying what it is (the Compare widget's tooltip).
    needs : {"dark", "reexposed"}
        "dark": a dark image alone; "reexposed": a synthetic capture's re-exposed image
        and its quantization.
    needs_torch : bool
        Whether it runs the dequantizer network (PyTorch, imported when it runs).
    run : callable
        ``run(MethodInput) -> (output image, Quantization or None)``: the intervals the
        output has to be consistent with, where it has any.
    """

    name: str
    label: str
    needs: str
    needs_torch: bool
    run: Callable[[MethodInput], tuple]

    def __post_init__(self):
        if self.needs not in NEEDS:
            raise ValueError(f"{self.name}: needs must be one of {NEEDS}, got {self.needs!r}")

    def __call__(self, capture, channel_axis=None, cache=None):
        """Run on a synthetic capture (a :class:`~napari_lowlight.DegradedImage`), as
        ``evaluate`` does: the network on the CPU; ``cache`` shared by one capture's methods.

        Returns ``(output, Quantization or None)``.
        """
        return self.run(MethodInput(
            capture.dark, channel_axis, bits=capture.bits, reexposed=capture.reexposed,
            quantization=capture.quantization, device="cpu",
            cache={} if cache is None else cache))

    def on_dark(self, dark, *, channel_axis=None, bits=None, black_level=None,
                device="auto", cache=None):
        """Run on a dark image alone (a real capture); ``cache`` shared by one image's methods.

        Returns ``(output, Quantization or None)``.
        """
        if self.needs != "dark":
            raise ValueError(f"{self.name} needs a synthetic capture's re-exposed image; on a "
                             f"dark image alone choose from {', '.join(DARK_METHODS)}")
        return self.run(MethodInput(dark, channel_axis, bits=bits, black_level=black_level,
                                    device=device, cache={} if cache is None else cache))


def _reexposed(inputs: MethodInput):
    return inputs.reexposed, inputs.quantization


def _smooth_project(inputs: MethodInput):
    return (smooth_project(inputs.reexposed, inputs.quantization,
                           channel_axis=inputs.channel_axis), inputs.quantization)


def _dequantizer(inputs: MethodInput):
    from .dequantizer import dequantize

    return (dequantize(inputs.reexposed, quantization=inputs.quantization,
                       channel_axis=inputs.channel_axis, device=inputs.device),
            inputs.quantization)


def _baseline(name: str):
    def run(inputs: MethodInput):
        # looked up when it runs, so that BASELINES stays the one table of the baselines
        return BASELINES[name](inputs.light, channel_axis=inputs.channel_axis), None

    return run


def _laic(inputs: MethodInput):
    return inputs.compensated.enhanced, inputs.compensated.quantization


def _laic_then(dequantizer: str):
    def run(inputs: MethodInput):
        options = {"device": inputs.device} if dequantizer == "dequantizer" else {}
        compensated, restored = laic_then_dequantize(
            inputs.dark, channel_axis=inputs.channel_axis, dequantizer=dequantizer,
            compensated=inputs.compensated, **options)
        return restored, compensated.quantization

    return run


_BASELINE_LABELS = {
    "clahe": "Contrast-limited adaptive histogram equalization (baseline)",
    "lime": "LIME: illumination map estimation (baseline)",
    "octm": "OCTM: optimal contrast-tone mapping (baseline)",
    "srie": "SRIE: simultaneous reflectance and illumination estimation (baseline)",
}

#: Every method, in the order ``evaluate`` runs and reports them.  A method that builds
#: on another (laic+smooth_project on laic) reuses its result from the per-image cache,
#: and its time then counts only its own step.
METHODS: dict[str, Method] = {method.name: method for method in (
    Method("reexposed", "Eq. 7 by itself: the dark capture brightened back, banding and all",
           "reexposed", False, _reexposed),
    Method("smooth_project", "The classic dequantizer (smooth, then project) on the "
           "re-exposed image", "reexposed", False, _smooth_project),
    *(Method(name, _BASELINE_LABELS.get(name, name), "dark", False, _baseline(name))
      for name in BASELINES),
    Method("dequantizer", "The shipped dequantizer network on the re-exposed image",
           "reexposed", True, _dequantizer),
    Method("laic", "LAIC: locally adaptive illumination compensation", "dark", False, _laic),
    Method("laic+smooth_project", "LAIC, then the classic dequantizer (smooth, then project)",
           "dark", False, _laic_then("smooth_project")),
    Method("laic+dequantizer", "LAIC, then the shipped dequantizer network (the full "
           "pipeline)", "dark", True, _laic_then("dequantizer")),
)}

#: The methods that need only a dark image, in the order they are run and shown.
DARK_METHODS: list[str] = [name for name, method in METHODS.items() if method.needs == "dark"]
