"""Dequantizer design experiments at equal compute (issue 7, item 2; issue 13, item 1).

Trains each variant (conditioning, depth/width including the paper's 16x64,
pixel loss, training distribution; the U-Net with and without BatchNorm and with
an output parametrised inside the quantization interval) from scratch for the same
wall-clock budget on the same machine, in chunks; after each chunk the generator is
scored on the held-out images at the paper's global and local settings (PSNR of
model + projection minus the classic baseline, and raw interval consistency).  The
curves go to ``OUT/<variant>/curve.jsonl``; the summary table is printed as Markdown.

Runs are resumable: re-running the same command continues where it stopped, and
re-running it on finished runs only prints the table.

Run:  .venv/bin/python benchmarks/dequantizer_experiments.py --minutes 8 --threads 1
      [--variants base,unconditioned,...] [--out runs/experiments]
      Issue 13: --variants base,unet,unet-bn,unet-interval --minutes 30 --chunk 7.5
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from _machine import machine_line
from safetensors import safe_open
from safetensors.torch import load_file
from skimage import data as skdata
from skimage.transform import resize

import napari_lowlight as nl
from napari_lowlight.dequantizer import smooth_project
from napari_lowlight.dequantizer.pairs import PairSettings, test_set_images
from napari_lowlight.dequantizer.networks import build_generator
from napari_lowlight.dequantizer.training import TrainConfig, restore, train
from napari_lowlight.metrics import interval_consistency, psnr

VALIDATION = ["camera", "astronaut", "coffee", "chelsea"]
SETTINGS = {
    "global": dict(k=1 / 30, r=1.3, sigma=0.25, bits=8),
    "local": dict(k=1 / 5, r=1.5, sigma=0.25, bits=8, dimming="vignette"),
}
BASE = TrainConfig(depth=6, width=32, batch=16, steps=1_000_000, pretrain_steps=1_000_000,
                   validate_every=10_000_000, checkpoint_every=100,
                   pairs=PairSettings(crop=48))
#: The shipped v2 U-Net (5 halvings, width 16; 786 k parameters, a third of the base's
#: arithmetic per pixel), with the base's optimiser.  Crops of 96 px (three of its 32-px
#: grid cells, no padding) let the multi-scale network see more than its padding, and batch
#: 16 keeps BatchNorm's statistics meaningful; a step costs about twice the base's on a CPU.
UNET = replace(BASE, architecture="unet", depth=5, width=16, pairs=PairSettings(crop=96))
VARIANTS = {
    "base": BASE,  # the shipped configuration: 6x32, conditioned, L1
    "unconditioned": replace(BASE, conditioned=False),
    "l2": replace(BASE, pixel="l2"),
    "no-linf": replace(BASE, linf_weight=0.0),
    "deep-12x32": replace(BASE, depth=12),
    "paper-16x64": replace(BASE, depth=16, width=64),
    "severe-pairs": replace(BASE, pairs=PairSettings(crop=48, k_range=(1 / 64, 1 / 8))),
    "crop-96": replace(BASE, batch=4, pairs=PairSettings(crop=96)),
    # the training-length curve: the base design, run longer (--minutes 30 --threads 2)
    "base-long": BASE,
    # issue 13, item 1: architecture and output at equal compute (--minutes 30)
    "unet": UNET,
    "unet-bn": replace(UNET, norm="batch"),
    "unet-interval": replace(UNET, output="interval"),
}
DEFAULT_VARIANTS = ["base", "unconditioned", "l2", "no-linf", "deep-12x32", "paper-16x64",
                    "severe-pairs", "crop-96"]


def scenes(size: int):
    out = []
    for name in VALIDATION:
        image = np.asarray(getattr(skdata, name)()) / 255.0
        if image.ndim == 3:
            image = image.mean(axis=-1)  # one channel: the model restores channels one by one
        scale = size / max(image.shape)
        shape = tuple(int(round(s * scale)) for s in image.shape)
        out.append(resize(image, shape, anti_aliasing=True))
    captures = {setting: [nl.degrade(image, seed=0, **kwargs) for image in out]
                for setting, kwargs in SETTINGS.items()}
    return out, captures


def load_run_generator(path: Path):
    """The generator saved by a training run, built from the file's configuration.

    ``weights.load_generator`` knows the shipped architectures only (it refuses, e.g., a
    U-Net with ``norm``); these are our own files, so no registry or hash applies.
    """
    with safe_open(str(path), framework="pt") as handle:
        config = json.loads(handle.metadata()["config"])
    generator = build_generator(config)
    generator.load_state_dict(load_file(str(path)))
    return generator.eval()


@torch.no_grad()
def restore_raw(generator, capture, output: str) -> np.ndarray:
    """The network's image before projection, as the product would make it.

    Residual models go through ``nl.dequantize``; an interval-parametrised one (which
    ``dequantize`` does not apply) is run on the whole image with its intervals' bounds.
    """
    quant = capture.quantization
    if output == "residual":
        return nl.dequantize(capture.reexposed, quantization=quant, model=generator,
                             device="cpu", project=False)
    lower, upper = quant.bounds()
    image, step, lower, upper = (
        torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
        for array in (capture.reexposed, quant.interval_width, lower, upper))
    restored = restore(generator, image, step, output=output, lower=lower, upper=upper)
    return restored[0, 0].numpy()


def score(generator, images, captures, output: str = "residual") -> dict:
    result = {}
    for setting, caps in captures.items():
        gains, consistency = [], []
        for image, capture in zip(images, caps):
            quant = capture.quantization
            classic = smooth_project(capture.reexposed, quant)
            raw = restore_raw(generator, capture, output)
            gains.append(psnr(image, quant.project(raw.astype(np.float64)))
                         - psnr(image, classic))
            consistency.append(interval_consistency(raw, quant))
        result[f"{setting}_gain_db"] = float(np.mean(gains))
        result[f"{setting}_consistency"] = float(np.mean(consistency))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget per variant")
    parser.add_argument("--chunk", type=float, default=2.0, help="minutes between scores")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, default=160, help="longer side of scored images")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--out", type=Path, default=Path("runs/experiments"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{machine_line()}, torch {torch.__version__} ({args.threads} threads), "
          f"{args.minutes} min per variant")
    images = test_set_images()
    val = [images[f"skimage:{name}"] for name in VALIDATION]
    training = [image for name, image in images.items()
                if name.removeprefix("skimage:") not in VALIDATION]
    scored_images, captures = scenes(args.size)
    rows = []
    for name in args.variants.split(","):
        config, run = VARIANTS[name], args.out / name
        curve_path = run / "curve.jsonl"
        curve = ([json.loads(line) for line in curve_path.read_text().splitlines()]
                 if curve_path.exists() else [])
        spent = curve[-1]["seconds"] if curve else 0.0
        while spent < 60 * args.minutes - 1:
            chunk = min(60 * args.chunk, 60 * args.minutes - spent)
            start = time.perf_counter()
            train(training, val, run, config=config, max_seconds=chunk, log=lambda *a: None)
            spent += time.perf_counter() - start
            step = torch.load(run / "checkpoint.pt", weights_only=True)["step"]
            point = {"seconds": spent, "step": step,
                     **score(load_run_generator(run / "generator.safetensors"), scored_images,
                             captures, config.output)}
            curve.append(point)
            with open(curve_path, "a") as handle:
                handle.write(json.dumps(point) + "\n")
            print(f"{name}: {spent / 60:.1f} min, step {step}: "
                  f"global {point['global_gain_db']:+.2f} dB, "
                  f"local {point['local_gain_db']:+.2f} dB", flush=True)
        last = curve[-1]
        params = sum(p.numel() for p in load_run_generator(run / "generator.safetensors")
                     .parameters())
        rows.append((name, config, params, last))
    print("\n| variant | params | steps | global dB vs classic | local dB vs classic | "
          "global raw consistency | local raw consistency |")
    print("|---|---|---|---|---|---|---|")
    for name, config, params, last in rows:
        print(f"| {name} ({config.depth}x{config.width}) | {params / 1e3:.0f} k | {last['step']} | "
              f"{last['global_gain_db']:+.2f} | {last['local_gain_db']:+.2f} | "
              f"{100 * last['global_consistency']:.1f} % | "
              f"{100 * last['local_consistency']:.1f} % |")


if __name__ == "__main__":
    main()
