"""How well ``dequantize(noise="auto")`` judges a capture's noise, and what it is worth.

For each validation image (as ``eval_validation.py`` finds them), each setting and each
true noise sigma (steps), the capture is restored once without projection; the noise is
judged from that raw output (``judge_noise``) and the result projected with no allowance
(strict), the true sigma (known) and the judged one (auto).  Prints, per setting and sigma,
the mean judged noise (min, max), the mean PSNR of Jt, the raw output, strict, known and
auto, and the worst image against Jt.

Run:  .venv/bin/python benchmarks/noise_judgement.py [--every 2 --limit 16 --max-size 320]
      quick check: ... --limit 2 --max-size 96 --sigmas 0.25
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _machine import machine_line
from eval_validation import DEFAULT_DATA, find_validation_images, prepare

import napari_lowlight as nl
from napari_lowlight.dequantizer.inference import PROJECTION_MARGIN, judge_noise
from napari_lowlight.dequantizer.weights import load_generator
from napari_lowlight.metrics import psnr

SETTINGS = {"global": dict(k=1 / 30, r=1.3, bits=8), "fluo12": dict(k=1 / 64, r=1.0, bits=12),
            "local": dict(k=1 / 5, r=1.5, bits=8, dimming="vignette")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="*", default=DEFAULT_DATA)
    parser.add_argument("--model", default="default")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.25, 0.5])
    parser.add_argument("--every", type=int, default=2, help="every n-th validation image")
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--max-size", type=int, default=320)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = load_generator(args.model).eval()
    found = find_validation_images(args.data)
    names = list(found)[::args.every][:args.limit]
    images = {name: prepare(found[name](), args.max_size) for name in names
              if found[name]() is not None}
    print(f"{machine_line()}, model {args.model}, {len(images)} images, longer side "
          f"{args.max_size} px\n")
    print("| setting | sigma | judged (min, max) | Jt | raw | strict | known | auto | "
          "worst auto − Jt | worst strict − Jt |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for setting in args.settings:
        for sigma in args.sigmas:
            rows = []
            for image in images.values():
                axis = -1 if image.ndim == 3 else None
                capture = nl.degrade(image, seed=0, sigma=sigma, channel_axis=axis,
                                     **SETTINGS[setting])
                jt, quant = capture.reexposed, capture.quantization
                raw = nl.dequantize(jt, quantization=quant, model=generator, device="cpu",
                                    project=False, channel_axis=axis)
                judged = judge_noise(raw, quant, channel_axis=axis)
                scores = [psnr(image, jt), psnr(image, raw)]
                for allowance in (0.0, sigma, judged):
                    scores.append(psnr(image, quant.project(
                        raw.astype(np.float64), margin=PROJECTION_MARGIN, noise=allowance)))
                rows.append([judged] + scores)
            a = np.array(rows)
            print(f"| {setting} | {sigma:g} | {a[:, 0].mean():.3f} ({a[:, 0].min():.3f}, "
                  f"{a[:, 0].max():.3f}) | {a[:, 1].mean():.2f} | {a[:, 2].mean():.2f} | "
                  f"{a[:, 3].mean():.2f} | {a[:, 4].mean():.2f} | {a[:, 5].mean():.2f} | "
                  f"{(a[:, 5] - a[:, 1]).min():+.2f} | {(a[:, 3] - a[:, 1]).min():+.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
