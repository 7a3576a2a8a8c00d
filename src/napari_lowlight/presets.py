"""Named settings for :func:`napari_lowlight.enhance` (the Enhance widget and ``--preset``).

Each preset is a set of keyword arguments of :func:`napari_lowlight.laic`; arguments given
explicitly win over the preset's.  The values are chosen on data (docs/laic.md):

- ``photograph``: 8-bit, full shading pre-correction (a vignette's corners come back to
  0.91-0.95 of the centre instead of 0.55-0.62, benchmarks/bench_laic_uneven.py);
- ``microscope-12bit`` / ``microscope-16bit``: the camera's depth, no shading estimate and no
  contrast reward (``contrast_weight=0``: LAIC's gain is then the uniform gain to full scale,
  so intensities stay proportional — quantitative — and no dark ring or speckle can appear;
  a fluorescence background is dark because it is empty, not because it is unlit, and
  lifting it would amplify its noise; divide by a measured flat field first where shading
  matters).  The dequantizer then restores what the quantization took;
- ``time-lapse``: as the microscope presets, with one gain for the whole series (no flicker
  between frames), depth from the data.
"""

from __future__ import annotations

__all__ = ["PRESETS", "preset_options"]

PRESETS: dict[str, dict] = {
    "photograph": {"bits": 8, "shading": 1.0, "contrast_weight": 1.0},
    "microscope-12bit": {"bits": 12, "shading": 0.0, "contrast_weight": 0.0},
    "microscope-16bit": {"bits": 16, "shading": 0.0, "contrast_weight": 0.0},
    "time-lapse": {"bits": None, "shading": 0.0, "contrast_weight": 0.0, "shared_gain": True},
}


def preset_options(preset: str | None, **explicit) -> dict:
    """The preset's LAIC options updated with the ``explicit`` ones that are not None."""
    if preset is None:
        options = {}
    elif preset in PRESETS:
        options = dict(PRESETS[preset])
    else:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    options.update({key: value for key, value in explicit.items() if value is not None})
    return options
