"""What the refiner chooses, per validation image: each candidate's PSNR, the refined result's,
the classic dequantizer's, a per-pixel oracle over the candidates, and the refiner's mean
weight on each candidate (issue 13, item 5: why some 12-bit frames stay below classic).

For each gray validation image (colour images are skipped: the refiner works per channel,
and one table row per channel would hide nothing new), captured in one of
``eval_validation.py``'s settings, as ``dequantize`` restores it without the texture guard:

- the candidates (``refiner_candidates``): ``Jt``, the network's output projected into the
  intervals widened by the judged noise, and that output smoothed by the refiner's Gaussians
  (0.7 / 1.5 / 3 px), each projected again;
- ``refined``: ``dequantize(..., guard=False)``, the model's refiner on those candidates;
- ``classic``: ``smooth_project`` (what ``eval_validation.py`` calls classic);
- ``oracle``: every pixel given its best candidate (knows the reference: an upper bound on
  what a per-pixel choice among these candidates could reach);
- ``reference noise``: the reference's own pixel noise (:func:`pixel_noise`) in the capture's
  median interval width: where it nears a third of a step, the scene's scatter is part of
  what PSNR scores, and smoothing it away costs.

Run:  .venv/bin/python benchmarks/refiner_choice.py [--model default] [--setting fluo12]
      [--images data_015 data_020 img_terra] [--max-size 512] [--crop]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _machine import machine_line
from eval_validation import capture, find_validation_images, per_image_arguments, prepare
from scipy.ndimage import convolve

import napari_lowlight as nl
from napari_lowlight.dequantizer import smooth_project
from napari_lowlight.dequantizer.inference import PROJECTION_MARGIN, judge_noise
from napari_lowlight.dequantizer.refiner import refiner_candidates, refiner_for
from napari_lowlight.metrics import psnr

DATA = ("data/wallpapers/unpacked", "data/microscopy/unpacked")

#: Immerkaer's mask: the difference of two Laplacians, blind to planes and ramps.
_NOISE_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)


def pixel_noise(image: np.ndarray) -> float:
    """Standard deviation of an image's white pixel noise (J. Immerkaer, "Fast noise variance
    estimation", CVIU 64, 1996): the mean absolute response to :data:`_NOISE_MASK`, which
    cancels smooth structure, scaled for Gaussian noise (skimage's wavelet estimate needs
    PyWavelets, which the project does not install)."""
    response = convolve(np.asarray(image, dtype=np.float64), _NOISE_MASK)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2.0) * np.abs(response).mean() / 6.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = per_image_arguments(parser, images_help="all gray ones")
    refiner = refiner_for(args.model)
    if refiner is None:
        parser.error(f"model {args.model!r} ships no refiner")
    labels = (["Jt", "network"] + [f"network {s:g} px" for s in refiner.sigmas]
              + [f"Jt {s:g} px" for s in refiner.input_sigmas])
    print(f"{machine_line()}, torch {torch.__version__} ({args.threads} threads); model "
          f"{args.model!r}, setting {args.setting}, "
          + (f"central {args.max_size}-px squares" if args.crop
             else f"longer side at most {args.max_size} px") + "; PSNR in dB\n")
    print("| image | " + " | ".join(labels) + " | classic | refined | oracle | "
          + " | ".join(f"weight: {label}" for label in labels) + " | reference noise, steps |")
    print("|---" * (2 * len(labels) + 5) + "|")
    for name, load in find_validation_images(DATA).items():
        if args.images and not any(part in name for part in args.images):
            continue
        image = prepare(load(), args.max_size, crop=args.crop)
        if image.ndim != 2:
            continue
        reference, jt, quant = capture(args.setting, image, None)
        raw = nl.dequantize(jt, quantization=quant, model=args.model, device="cpu",
                            project=False, refine=False, guard=False)
        lower, upper = quant.bounds(noise=judge_noise(raw, quant))
        span = upper - lower
        low, high = lower + PROJECTION_MARGIN * span, upper - PROJECTION_MARGIN * span

        def project(array, low=low, high=high):
            return np.clip(array, low, high)

        candidates = refiner_candidates(jt, project(raw), project, refiner.sigmas,
                                        refiner.input_sigmas)
        step = np.asarray(quant.interval_width, dtype=np.float32)
        with torch.no_grad():
            weights = refiner.weights(torch.from_numpy(candidates)[None],
                                      torch.from_numpy(step)[None, None])[0].numpy()
        refined = nl.dequantize(jt, quantization=quant, model=args.model, device="cpu",
                                guard=False)
        errors = (candidates.astype(np.float64) - reference) ** 2
        oracle = 10.0 * np.log10(1.0 / max(errors.min(axis=0).mean(), 1e-20))
        scores = [psnr(reference, np.clip(c, 0.0, 1.0)) for c in candidates]
        scores += [psnr(reference, smooth_project(jt, quant)), psnr(reference, refined), oracle]
        width = float(np.median(step[step > 0]))
        print(f"| {name} | " + " | ".join(f"{s:.2f}" for s in scores) + " | "
              + " | ".join(f"{w.mean():.2f}" for w in weights)
              + f" | {pixel_noise(reference) / width:.2f} |", flush=True)


if __name__ == "__main__":
    main()
