"""The dequantizer: restore the detail a re-exposed image lost to quantization.

The public face of this step (one place to look):

- :func:`dequantize`: the trained network (METHOD.md section 3), then the projection into
  each pixel's quantization interval.  PyTorch is imported when it is called, so importing
  this package (and ``napari_lowlight``) stays light.
- :func:`smooth_project`: the classic dequantizer (Gaussian smoothing, then the projection),
  the baseline the network must beat; NumPy/SciPy only.

Inside, one module a job: ``networks`` (the generator and critic), ``losses``, ``pairs``
(synthetic training pairs), ``config`` (a run's settings, without torch), ``training``
(the resumable trainer), ``weights`` (safe
loading, the model registry), ``export`` (a run to a named model and its card) and
``inference`` (tiles, planes, dask blocks, the noise judgement).
"""

from __future__ import annotations

from .classic import smooth_project

__all__ = ["dequantize", "smooth_project"]


def dequantize(image, *, quantization=None, model=None, device="auto", tile=None,
               project=True, channel_axis=None, progress=None, noise="auto", refine="auto",
               guard="auto"):
    """Estimate the detail lost to quantization in a re-exposed (or LAIC-enhanced) image.

    Parameters
    ----------
    image : array_like
        The re-exposed image ``Jt``, float in [0, 1] (``degrade(...).reexposed`` or
        ``laic(...).enhanced``): gray, colour with ``channel_axis``, or a stack.
    quantization : Quantization, optional
        Its quantization (``.quantization`` of those results).  Needed by conditioned
        models (the default) and for the projection.
    model : str, Generator or None
        A shipped model's name (``available_models()``), a ``.safetensors`` path, a
        :class:`Generator`, or None for the default model.
    device : "auto", "cpu", "cuda", ...
        "auto" takes CUDA (with bfloat16 autocast) when available.
    tile : int, optional
        Tile side in pixels (each tile gets a halo of the receptive field, so the
        result does not depend on it); None: ``inference.default_tile`` (the residual network
        256 px on the CPU, 1024 on a GPU; the U-Net whole planes up to 4 MP on the CPU).
    project : bool
        Clip every pixel into its quantization interval (needs ``quantization``), keeping
        a margin of :data:`PROJECTION_MARGIN` of the interval from its ends.
    noise : "auto" or float, 0..8
        Sensor noise allowance of the projection, in quantization steps (the ``sigma`` of
        :func:`~napari_lowlight.degrade`; for a camera, its noise in levels of the
        capture): each interval is widened by this much on each side
        (:meth:`Quantization.bounds`), since noise may have carried the clean value
        across an edge.  0: every pixel stays consistent with its level (strict).
        "auto" (default): judged from the network's own output on the central
        ``NOISE_WINDOW`` pixels of the middle plane (:meth:`Quantization.noise_of`), and
        at least ``AUTO_NOISE_FLOOR`` (0.25 step: below it the judgement cannot tell
        noise from the network's own deviations).  Measured on the validation set
        (docs/dequantizer.md, "A floor under the judged noise"): at noise 0.25 steps
        "auto" gains 0.6-0.95 dB over the strict projection (0.13 dB in the 12-bit
        setting), on noise-free captures it costs about 0.1 dB (pass ``noise=0`` for a
        capture known to be clean).
    channel_axis : int or None
        Colour axis; each channel is restored on its own.
    refine : "auto", bool or Refiner
        Finish the projected result with the model's refiner (:mod:`.refiner`): a small
        learned per-pixel convex blend of that result, light Gaussian smoothings of it
        (each projected again) and ``Jt``, so it stays inside the same intervals.  "auto"
        (default): when the named model ships one (the ``default`` does) and ``project``
        is on; True: required (an error for a model without one); False: the projected
        network output as is.  Measured on the validation set in docs/results.md.
    guard : "auto" or bool
        The texture guard (:mod:`.guard`), last: where the scene itself scatters by a step
        or more from pixel to pixel (a noisy fluorescence frame), the neighbours cannot
        tell where a pixel lies inside its interval, so the result is blended toward
        ``Jt`` (each interval's centre) there; a convex blend, so it stays inside the same
        intervals.  Measured on noisy nuclei frames it lifts results that were 0.1-3.6 dB
        below ``Jt`` to at or above it; on photographs, where fine texture misleads it,
        it costs about 1 dB at 8 bits (docs/results.md, "Full resolution, noisy frames
        and the texture guard", and "The guard by bit depth").  "auto" (default): on for
        captures of ``GUARD_AUTO_BITS`` (12) bits and more - scientific cameras, whose
        frames are shot-noise limited - when ``project`` is on, off for 8- and 10-bit
        ones; True: always (needs ``project``); False: off.
    progress : callable, optional
        ``progress(done, total)`` after each plane.

    Returns
    -------
    ndarray of float32, the input's shape, in [0, 1]
        A lazy dask array for a dask input: computed block by block through
        ``map_overlap`` with a halo of the receptive field, equal to the in-memory
        result (to float rounding).
    """
    from .inference import apply_dequantizer  # torch loads here, on the first call

    return apply_dequantizer(image, quantization=quantization, model=model, device=device,
                             tile=tile, project=project, channel_axis=channel_axis,
                             progress=progress, noise=noise, refine=refine, guard=guard)
