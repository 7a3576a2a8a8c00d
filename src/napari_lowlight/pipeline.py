"""The full pipeline: LAIC, then the dequantizer.

:func:`laic_then_dequantize` is the one place where LAIC's output and intervals are handed
to a dequantizer: :func:`enhance`, the Enhance and Compare widgets, ``evaluate`` and the
methods of :mod:`napari_lowlight.methods` all go through it.  PyTorch is imported only
when the network runs (through ``dequantize``), so importing ``napari_lowlight`` stays
light for scripts that only degrade or compensate.
"""

from __future__ import annotations

__all__ = ["DEQUANTIZERS", "enhance", "laic_then_dequantize"]

#: What may follow LAIC: the trained network (:func:`napari_lowlight.dequantize`) or the
#: classic smoothing and projection (:func:`napari_lowlight.dequantizer.smooth_project`).
DEQUANTIZERS = ("dequantizer", "smooth_project")


def laic_then_dequantize(dark, *, channel_axis=None, dequantizer: str = "dequantizer",
                         compensated=None, laic_options=None, progress=None,
                         **dequantize_options):
    """LAIC on a dark image, then a dequantizer inside LAIC's quantization intervals.

    Parameters
    ----------
    dark : array_like
        The dark capture (float in [0, 1] or integer counts), NumPy or dask; not modified.
    channel_axis : int or None
    dequantizer : {"dequantizer", "smooth_project"}
        The trained network (PyTorch imported now) or the classic smooth + project.
    compensated : LAICResult, optional
        LAIC's result on ``dark`` when it is already at hand (several methods share one
        LAIC run): LAIC is not run again and ``laic_options`` are not used.
    laic_options : dict, optional
        Keyword arguments of :func:`napari_lowlight.laic` (``bits``, ``black_level``,
        ``shading``, ``contrast_weight``, ...).
    progress : callable, optional
        ``progress(done, total)`` over both steps: LAIC's planes as the first half, the
        network's as the second.
    **dequantize_options
        Keyword arguments of :func:`napari_lowlight.dequantize` (``model``, ``device``,
        ``tile``, ``project``, ``noise``); the classic dequantizer takes none.

    Returns
    -------
    compensated : LAICResult
        LAIC's result (its gain and intervals are what the callers record).
    restored : ndarray of float in [0, 1], the input's shape (a dask array for dask input)
    """
    if dequantizer not in DEQUANTIZERS:
        raise ValueError(f"unknown dequantizer {dequantizer!r}; choose from "
                         f"{', '.join(DEQUANTIZERS)}")
    if dequantizer == "smooth_project" and dequantize_options:
        raise TypeError("smooth_project takes none of the network's options, got "
                        f"{', '.join(sorted(dequantize_options))}")
    if compensated is None:
        from .compensation import laic

        compensated = laic(dark, channel_axis=channel_axis,
                           progress=None if progress is None else (
                               lambda done, total: progress(done, 2 * total)),
                           **(laic_options or {}))
    if dequantizer == "smooth_project":
        from .dequantizer import smooth_project

        return compensated, smooth_project(compensated.enhanced, compensated.quantization,
                                           channel_axis=channel_axis)
    # looked up now, not at import: a replaced napari_lowlight.dequantizer.dequantize is used
    from .dequantizer import dequantize

    restored = dequantize(compensated.enhanced, quantization=compensated.quantization,
                          channel_axis=channel_axis,
                          progress=None if progress is None else (
                              lambda done, total: progress(total + done, 2 * total)),
                          **dequantize_options)
    return compensated, restored


def enhance(dark, *, channel_axis=None, model=None, device="auto", tile=None, project=True,
            preset=None, progress=None, noise="auto", guard="auto", **laic_options):
    """The paper's pipeline on a real dark image: LAIC, then the dequantizer.

    Parameters
    ----------
    dark : array_like
        The dark capture (float in [0, 1] or integer counts, e.g. a camera's uint16
        frame); gray, colour with ``channel_axis``, or a stack.  Not modified.
    channel_axis : int or None
    model, device, tile, project, noise, guard
        Passed to :func:`napari_lowlight.dequantize` (``noise``: the capture's noise in
        its levels, or "auto" to judge it from the network's output; ``guard``: the
        texture guard for shot-noise-limited frames; "auto", the default, guards captures
        of 12 bits and more).
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
    from .presets import preset_options

    options = preset_options(preset, **laic_options)
    return laic_then_dequantize(dark, channel_axis=channel_axis, laic_options=options,
                                progress=progress, model=model, device=device, tile=tile,
                                project=project, noise=noise, guard=guard)[1]
