"""The full pipeline and the dequantizer's public entry point.

``dequantize`` and ``enhance`` import PyTorch only when called, so importing
``napari_lowlight`` stays light for scripts that only degrade or compensate.
"""

from __future__ import annotations

__all__ = ["dequantize", "enhance"]


def dequantize(image, *, quantization=None, model=None, device="auto", tile=None,
               project=True, channel_axis=None, progress=None):
    """Restore the detail a re-exposed image lost to quantization (the trained network).

    See :func:`napari_lowlight.dequantizer.inference.dequantize` for the parameters;
    returns float32 of the input's shape in [0, 1].
    """
    from .dequantizer.inference import dequantize as run

    return run(image, quantization=quantization, model=model, device=device, tile=tile,
               project=project, channel_axis=channel_axis, progress=progress)


def enhance(dark, *, channel_axis=None, model=None, device="auto", tile=None, project=True,
            **laic_options):
    """The paper's pipeline on a real dark image: LAIC, then the dequantizer.

    Parameters
    ----------
    dark : array_like
        The dark capture (float in [0, 1] or integers); gray, colour with
        ``channel_axis``, or a stack.
    channel_axis : int or None
    model, device, tile, project
        Passed to :func:`dequantize`.
    **laic_options
        Passed to :func:`napari_lowlight.laic` (``method``, ``contrast_weight``, ``bits``, ...).

    Returns
    -------
    ndarray of float32 in [0, 1], the input's shape
    """
    from .compensation import laic

    compensated = laic(dark, channel_axis=channel_axis, **laic_options)
    return dequantize(compensated.enhanced, quantization=compensated.quantization, model=model,
                      device=device, tile=tile, project=project, channel_axis=channel_axis)
