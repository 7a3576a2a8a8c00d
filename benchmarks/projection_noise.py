"""Projection against a noise allowance: PSNR of a model's output, raw and projected.

For each validation image and setting (the captures of ``eval_validation.py``): Jt, the
classic baseline (with its margin of 0.05 and with ``PROJECTION_MARGIN``), the network's raw
output, the strict projection with the classic margin
(0.05) and with ``PROJECTION_MARGIN``, and projections into intervals widened by ``w`` steps
(``Quantization.bounds(noise=w)``).  Prints the mean PSNR and the worst image against Jt.

Run:  .venv/bin/python benchmarks/projection_noise.py [--model default] [--max-size 192]
(32 validation images; about 5 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from eval_validation import DEFAULT_DATA, capture, find_validation_images, prepare

import napari_lowlight as nl
from napari_lowlight.dequantizer import smooth_project
from napari_lowlight.dequantizer.inference import PROJECTION_MARGIN
from napari_lowlight.dequantizer.weights import load_generator
from napari_lowlight.metrics import psnr

ALLOWANCES = (0.0, 0.25, 0.5, 0.75)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--max-size", type=int, default=192)
    parser.add_argument("--settings", nargs="+", default=["global", "local", "fluo12"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = load_generator(args.model).eval()
    found = find_validation_images([Path(d) for d in DEFAULT_DATA])
    columns = ["jt", "classic", f"classic {PROJECTION_MARGIN}", "raw", "strict 0.05",
               f"strict {PROJECTION_MARGIN}"] + [
        f"w={w}" for w in ALLOWANCES[1:]]
    print(f"model {args.model}, {len(found)} images at <= {args.max_size} px")
    print("| setting | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for setting in args.settings:
        scores = {column: [] for column in columns}
        for load in found.values():
            array = load()
            if array is None:
                continue
            image = prepare(array, args.max_size)
            axis = -1 if image.ndim == 3 else None
            reference, jt, quant = capture(setting, image, axis)
            raw = nl.dequantize(jt, quantization=quant, model=generator, device="cpu",
                                project=False, channel_axis=axis).astype(np.float64)
            scores["jt"].append(psnr(reference, jt))
            scores["classic"].append(psnr(reference, smooth_project(jt, quant, channel_axis=axis)))
            scores[f"classic {PROJECTION_MARGIN}"].append(psnr(reference, smooth_project(
                jt, quant, channel_axis=axis, margin=PROJECTION_MARGIN)))
            scores["raw"].append(psnr(reference, raw))
            scores["strict 0.05"].append(psnr(reference, quant.project(raw, margin=0.05)))
            scores[f"strict {PROJECTION_MARGIN}"].append(
                psnr(reference, quant.project(raw, margin=PROJECTION_MARGIN)))
            for w in ALLOWANCES[1:]:
                scores[f"w={w}"].append(psnr(reference, quant.project(
                    raw, margin=PROJECTION_MARGIN, noise=w)))
        jt = np.array(scores["jt"])
        cells = [f"{np.mean(v):.2f} ({np.min(np.array(v) - jt):+.2f})" for v in scores.values()]
        print(f"| {setting} | " + " | ".join(cells) + " |", flush=True)
    print("\ncells: mean PSNR dB (worst image minus Jt)")


if __name__ == "__main__":
    main()
