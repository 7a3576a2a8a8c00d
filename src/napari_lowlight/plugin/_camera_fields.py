"""The fields that say how a camera's integers become light (bits, black level, shading).

One definition for the LAIC, Enhance and Compare widgets, read back into the keyword
arguments of :func:`napari_lowlight.intensity.to_intensity` / :func:`napari_lowlight.laic`.
"""

from __future__ import annotations

from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox

from .._validation import parameter_default
from ..compensation import laic
from ..dequantizer import dequantize

__all__ = ["BITS_CHOICES", "GUARD_CHOICES", "bits_field", "black_level_field",
           "camera_options", "guard_field", "noise_fields", "noise_option", "shading_field"]

BITS_CHOICES = ["auto", "8", "10", "12", "14", "16"]


def bits_field(value: str = "auto", *, auto: str = "the smallest of 8/10/12/14/16 bits "
               "holding the maximum") -> ComboBox:
    """The camera's bit depth; ``auto`` says what "auto" means for this widget."""
    return ComboBox(label="bits", choices=BITS_CHOICES, value=value,
                    tooltip="The camera's bit depth: integer data are divided by 2**bits - 1 "
                    f"(a 12-bit camera's uint16 frame by 4095). auto: {auto}")


def black_level_field() -> FloatSpinBox:
    return FloatSpinBox(label="black level", value=0.0, min=0.0, max=65535.0, step=1.0,
                        tooltip="The camera's offset, in counts (float images: in [0, 1] "
                        "units), subtracted before anything else")


def shading_field(value: float | None = None) -> FloatSpinBox:
    """The shading pre-correction; ``value`` None: :func:`napari_lowlight.laic`'s default."""
    if value is None:
        value = parameter_default(laic, "shading")
    return FloatSpinBox(label="shading correction", value=value, min=0.0, max=1.0, step=0.05,
                        tooltip="Fraction of the estimated smooth illumination divided out "
                        "before LAIC (1 takes a vignette out; 0 is the paper's LAIC)")


def camera_options(bits: ComboBox, black_level: FloatSpinBox) -> dict:
    """``{"bits": int or None, "black_level": float or None}`` from the two fields."""
    return {"bits": None if bits.value == "auto" else int(bits.value),
            "black_level": float(black_level.value) or None}


def noise_fields() -> tuple[CheckBox, FloatSpinBox]:
    """The dequantizer's noise allowance: judged from the output (default), or given.

    The level field shows only when "judge" is off; both start at
    :func:`napari_lowlight.dequantize`'s default.
    """
    default = parameter_default(dequantize, "noise")
    judge = CheckBox(text="judge the noise from the output", value=default == "auto",
                     tooltip="Estimate the capture's sensor noise from the network's output "
                     "(about 0 for a noise-free capture) and let each pixel lie that far "
                     "outside its level's interval, since noise may have moved it across "
                     "an edge. Off: give the noise yourself")
    level = FloatSpinBox(label="noise (levels)", value=0.0 if default == "auto" else default,
                         min=0.0, max=8.0, step=0.05, visible=default != "auto",
                         tooltip="The capture's sensor noise in its own levels (a camera's "
                         "dark-frame standard deviation; for a simulated capture, Simulate's "
                         "sigma); 0 keeps every pixel consistent with its level")

    def show_level(judged: bool) -> None:
        level.visible = not judged

    judge.changed.connect(show_level)
    return judge, level


#: The guard box's choices: (shown, ``dequantize(guard=...)``).
GUARD_CHOICES = [("auto (12 bits and more)", "auto"), ("on", True), ("off", False)]


def guard_field(note: str = "") -> ComboBox:
    """The texture guard's choice (``dequantize(guard=...)``), starting at its default
    ("auto"); ``note`` ends the tooltip (what the choice needs in its widget)."""
    return ComboBox(label="guard noisy frames", choices=GUARD_CHOICES,
                    value=parameter_default(dequantize, "guard"),
                    tooltip="Where the frame itself scatters by a level or more from pixel "
                    "to pixel (shot-noise-limited fluorescence), blend the result back "
                    "toward the plain levels: there the network alone can end up below them. "
                    "auto: for captures of 12 bits and more (scientific cameras); it costs "
                    "about 1 dB on 8-bit photographs, whose fine texture misleads it" + note)


def noise_option(judge: CheckBox, level: FloatSpinBox):
    """``"auto"`` or the given number of levels, for ``dequantize(noise=)``."""
    return "auto" if judge.value else float(level.value)
