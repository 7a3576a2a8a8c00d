"""The full pipeline: LAIC, then the dequantizer.

``enhance`` imports PyTorch only when called (through ``dequantize``), so importing
``napari_lowlight`` stays light for scripts that only degrade or compensate.
"""

from __future__ import annotations

from .dequantizer import dequantize

__all__ = ["enhance"]


def enhance(dark, *, channel_axis=None, model=None, device="auto", tile=None, project=True,
            preset=None, progress=None, noise="auto", **laic_options):
    """The paper's pipeline on a real dark image: LAIC, then the dequantizer.

    Parameters
    ----------
    dark : array_like
        The dark capture (float in [0, 1] or integer counts, e.g. a camera's uint16
        frame); gray, colour with ``channel_axis``, or a stack.  Not modified.
    channel_axis : int or None
    model, device, tile, project, noise
        Passed to :func:`dequantize` (``noise``: the capture's noise in its levels, or
        "auto" to judge it from the network's output).
    preset : str or None
        Named LAIC settings (:data:`napari_lowlight.presets.PRESETS`: "photograph",
        "microscope-12bit", "microscope-16bit", "time-lapse"); explicit
        ``laic_options`` win over it.
    progress : callable, optional
        ``progress(done, total)``: LAIC's planes, then the dequantizer's.
    **laic_options
        Passed to :func:`napari_lowlight.laic` (``bits``, ``black_level``, ``shading``,
        ``method``, ``contrast_weight``, ``max_gain``, ``shared_gain``, ...).

    Returns
    -------
    ndarray of float32 in [0, 1], the input's shape
    """
    from .compensation import laic
    from .presets import preset_options

    options = preset_options(preset, **laic_options)
    compensated = laic(dark, channel_axis=channel_axis,
                       progress=None if progress is None else (lambda d, t: progress(d, 2 * t)),
                       **options)
    def restore_progress(done, total):
        if progress is not None:
            progress(total + done, 2 * total)

    return dequantize(compensated.enhanced, quantization=compensated.quantization, model=model,
                      device=device, tile=tile, project=project, channel_axis=channel_axis,
                      progress=restore_progress, noise=noise)
