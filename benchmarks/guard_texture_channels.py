"""The texture guard per colour channel of a validation image: what it measures and costs.

For each channel of the chosen validation images, captured in one of ``eval_validation.py``'s
settings: the share of pixels whose quantization interval is cut short by the range's ends
(narrower than three quarters of the plane's median width: the level at a saturated 1.0, or
an unreachable one beyond it), the guard's mean texture (``pixel_texture``) as measured now
and as measured until session 28 (``Jt`` divided by each pixel's own width, then
``|L - median3(L)|``), and the PSNR of ``Jt``, classic, ``dequantize`` unguarded and guarded.
It reproduces the session-28 finding on calla.png (docs/dequantizer-experiments.md): its
saturated red and blue channels read as texture only with the old measure.

Run:  .venv/bin/python benchmarks/guard_texture_channels.py [--images calla.png]
      [--setting fluo12] [--max-size 512] [--crop]   (seconds per image on 2 cores)
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _machine import machine_line
from eval_validation import capture, find_validation_images, per_image_arguments, prepare
from scipy.ndimage import gaussian_filter

import napari_lowlight as nl
from napari_lowlight.dequantizer import smooth_project
from napari_lowlight.dequantizer.guard import GUARD_DEFAULTS, median3, pixel_texture
from napari_lowlight.metrics import psnr

DATA = ["data/wallpapers/unpacked", "data/microscopy/unpacked"]


def texture_until_session_27(values, step, sigma=GUARD_DEFAULTS["sigma"]) -> np.ndarray:
    """The guard's texture as measured until session 28: ``|L - median3(L)|`` with
    ``L = values / step`` per pixel (widths of 0 counted as the median width)."""
    values = np.asarray(values, dtype=np.float64)
    step = np.asarray(step, dtype=np.float64)
    positive = step > 0
    fallback = float(np.median(step[positive])) if positive.any() else 1.0
    levels = (values / np.where(positive, step, fallback)).astype(np.float32)
    return gaussian_filter(np.abs(levels - median3(levels)), sigma, output=np.float64,
                           mode="nearest")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = per_image_arguments(parser, images=["calla.png"], images_help="calla.png")
    print(f"{machine_line()}, torch {torch.__version__} ({args.threads} threads); model "
          f"{args.model!r}, setting {args.setting}, "
          + (f"central {args.max_size}-px squares" if args.crop
             else f"longer side at most {args.max_size} px") + "; PSNR in dB\n")
    print("| image | channel | cut intervals | texture now | texture until session 27 | "
          "Jt | classic | unguarded | guarded |")
    print("|---" * 9 + "|")
    for name, load in find_validation_images(DATA).items():
        if not any(part in name for part in args.images):
            continue
        image = prepare(load(), args.max_size, crop=args.crop)
        axis = -1 if image.ndim == 3 else None
        reference, jt, quant = capture(args.setting, image, axis)
        unguarded = nl.dequantize(jt, quantization=quant, model=args.model, guard=False,
                                  channel_axis=axis)
        guarded = nl.dequantize(jt, quantization=quant, model=args.model, guard=True,
                                channel_axis=axis)
        classic = smooth_project(jt, quant, channel_axis=axis)
        width = np.broadcast_to(quant.interval_width, np.shape(jt))
        channels = range(image.shape[-1]) if axis is not None else [None]
        for channel in channels:
            def plane(array, channel=channel):
                array = np.asarray(array)
                return array if channel is None else array[..., channel]

            step = plane(width)
            cut = float(np.mean(step < 0.75 * np.median(step[step > 0])))
            print(f"| {name} | {'gray' if channel is None else channel} | {100 * cut:.1f} % | "
                  f"{pixel_texture(plane(jt), step).mean():.2f} | "
                  f"{texture_until_session_27(plane(jt), step).mean():.2f} | "
                  + " | ".join(f"{psnr(plane(reference), plane(result)):.2f}"
                               for result in (jt, classic, unguarded, guarded)) + " |")


if __name__ == "__main__":
    main()
