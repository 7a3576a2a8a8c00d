"""Dequantizer quality on the held-out validation images at the paper's settings.

For each validation image (never trained on) and setting — global (k = 1/30,
r = 1.3, sigma = 0.25 q, 8 bits), local (k = 1/5, r = 1.5, vignette, 8 bits) and a
12-bit scientific setting (k = 1/30, r = 1.0, sigma = 0.5 q) — reports PSNR and
SSIM of the re-exposed image Jt, of the classic baseline (Gaussian smoothing
projected into the intervals) and of the model with and without projection, and
the model's interval consistency without projection.  Colour images are restored
channel by channel.

Run:  .venv/bin/python benchmarks/eval_dequantize.py [--model default] [--size 256]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _machine import machine_line
from skimage import data as skdata
from skimage.transform import resize

import napari_lowlight as nl
from napari_lowlight.dequantizer import smooth_project
from napari_lowlight.metrics import interval_consistency, psnr, ssim

SETTINGS = {
    "global": dict(k=1 / 30, r=1.3, sigma=0.25, bits=8),
    "local": dict(k=1 / 5, r=1.5, sigma=0.25, bits=8, dimming="vignette"),
    "12-bit": dict(k=1 / 30, r=1.0, sigma=0.5, bits=12),
}
VALIDATION = ["camera", "astronaut", "coffee", "chelsea"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--size", type=int, default=256, help="longer side, pixels")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{machine_line()}, torch {torch.__version__} ({args.threads} threads), "
          f"model {args.model!r}")
    print("\n| setting | image | Jt dB | classic dB | model dB | model+proj dB | Jt SSIM | "
          "classic SSIM | model+proj SSIM | model consistency |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    summary = {}
    for setting, kwargs in SETTINGS.items():
        rows = []
        for name in VALIDATION:
            image = np.asarray(getattr(skdata, name)()) / 255.0
            scale = args.size / max(image.shape[:2])
            shape = tuple(int(round(s * scale)) for s in image.shape[:2]) + image.shape[2:]
            image = resize(image, shape, anti_aliasing=True)
            axis = -1 if image.ndim == 3 else None
            capture = nl.degrade(image, seed=0, channel_axis=axis, **kwargs)
            quant = capture.quantization
            classic = smooth_project(capture.reexposed, quant, channel_axis=axis)
            raw = nl.dequantize(capture.reexposed, quantization=quant, model=args.model,
                                device="cpu", project=False, channel_axis=axis)
            projected = quant.project(raw.astype(np.float64))
            row = [psnr(image, capture.reexposed), psnr(image, classic), psnr(image, raw),
                   psnr(image, projected), ssim(image, capture.reexposed, channel_axis=axis),
                   ssim(image, classic, channel_axis=axis),
                   ssim(image, projected, channel_axis=axis), interval_consistency(raw, quant)]
            rows.append(row)
            print(f"| {setting} | {name} | " + " | ".join(
                f"{v:.2f}" if i < 4 else (f"{100 * v:.1f} %" if i == 7 else f"{v:.4f}")
                for i, v in enumerate(row)) + " |", flush=True)
        mean = np.mean(rows, axis=0)
        summary[setting] = mean
        print(f"| {setting} | **mean** | " + " | ".join(
            f"{v:.2f}" if i < 4 else (f"{100 * v:.1f} %" if i == 7 else f"{v:.4f}")
            for i, v in enumerate(mean)) + " |", flush=True)
    print()
    for setting, mean in summary.items():
        print(f"{setting}: model+projection {mean[3] - mean[1]:+.2f} dB over the classic "
              f"baseline, {mean[3] - mean[0]:+.2f} dB over Jt")


if __name__ == "__main__":
    main()
