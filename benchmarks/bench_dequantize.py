"""Dequantizer speed: megapixels per second on the CPU, against the fp32 matmul peak.

Reports the shipped model's throughput on a 1-megapixel gray image (whole and
tiled), the network's FLOPs per pixel, the fp32 matrix-multiply rate measured in
the same run, and the achieved fraction of it.

Run:  .venv/bin/python benchmarks/bench_dequantize.py [--model default] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from scipy.ndimage import median_filter
from _machine import machine_line

import napari_lowlight as nl
from napari_lowlight.dequantizer.guard import median3
from napari_lowlight.dequantizer.inference import guard_projected
from napari_lowlight.dequantizer.networks import flops_per_pixel
from napari_lowlight.dequantizer.refiner import refiner_candidates, refiner_for
from napari_lowlight.dequantizer.weights import load_generator


def matmul_peak(threads: int) -> float:
    size = 1024
    a, b = torch.rand(size, size), torch.rand(size, size)
    for _ in range(3):
        a @ b
    start, runs = time.perf_counter(), 20
    for _ in range(runs):
        a @ b
    return 2 * size**3 * runs / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = load_generator(args.model)
    rng = np.random.default_rng(0)
    image = rng.random((1000, 1000))
    capture = nl.degrade(image, seed=0)
    peak = matmul_peak(args.threads)
    per_pixel = flops_per_pixel(generator)
    print(f"{machine_line()}, torch {torch.__version__}, {args.threads} threads")
    print(f"model {args.model!r}: {generator.config()}, {per_pixel / 1e3:.1f} kFLOP per pixel")
    print(f"fp32 matmul (1024^3): {peak / 1e9:.1f} GFLOP/s\n")
    print("| case | seconds | MP/s | GFLOP/s | fraction of matmul peak |")
    print("|---|---|---|---|---|")
    from napari_lowlight.dequantizer.inference import default_tile

    chosen = default_tile(generator, torch.device("cpu"), image.shape)
    cases = [("1 MP whole", 4096), (f"1 MP, default tiling ({chosen} px tiles)", None)]
    if chosen != 256:
        cases.append(("1 MP tiles of 256", 256))
    for label, tile in cases:
        best = min(_timed(capture, generator, tile) for _ in range(args.repeats))
        rate = per_pixel * 1e6 / best
        print(f"| {label} | {best:.3f} | {1 / best:.2f} | {rate / 1e9:.1f} | "
              f"{100 * rate / peak:.0f} % |", flush=True)
    refiner = refiner_for(args.model)
    if refiner is not None:
        # what dequantize(model=NAME) returns by default: the network, then its refiner
        # (the FLOP columns count the network only)
        best = min(_timed(capture, generator, None, refiner) for _ in range(args.repeats))
        rate = per_pixel * 1e6 / best
        print(f"| 1 MP, default tiling, then the model's refiner | {best:.3f} | "
              f"{1 / best:.2f} | {rate / 1e9:.1f} | {100 * rate / peak:.0f} % |", flush=True)
        _time_refiner_layouts(refiner, capture, generator, args.repeats)
    # a 12-bit capture: what dequantize does by default there, the texture guard last
    # (guard="auto"); the same capture unguarded for the guard's own cost
    deep = nl.degrade(image, k=1 / 64, r=1.0, bits=12, seed=0)
    for label, guard in (("without", False), ("with", "auto")):
        best = min(_timed(deep, generator, None, refiner is not None and refiner, guard)
                   for _ in range(args.repeats))
        rate = per_pixel * 1e6 / best
        print(f"| 1 MP 12-bit capture, default tiling, refiner, {label} the texture guard | "
              f"{best:.3f} | {1 / best:.2f} | {rate / 1e9:.1f} | {100 * rate / peak:.0f} % |",
              flush=True)
    # the guard alone, and its 3x3 median against SciPy's general rank filter
    restored = nl.dequantize(deep.reexposed, quantization=deep.quantization, model=generator,
                             device="cpu", guard=False)
    width = deep.quantization.interval_width
    levels = (deep.reexposed / np.where(width > 0, width, 1.0)).astype(np.float32)
    for label, work in (
            ("the texture guard alone (guard_projected)",
             lambda: guard_projected(deep.reexposed, restored, deep.quantization, noise=0.25)),
            ("its 3x3 median, guard.median3", lambda: median3(levels)),
            ("the same median, scipy.ndimage.median_filter",
             lambda: median_filter(levels, size=3, mode="nearest"))):
        best = min(_seconds(work) for _ in range(args.repeats))
        print(f"| 1 MP 12-bit capture, {label} | {best:.3f} | {1 / best:.2f} | | |", flush=True)
    # the quantization intervals, computed several times per dequantize call: per level
    # and looked up (Quantization.bounds, scalar k) against per pixel (as for a k map)
    for name, quant in (("8-bit", capture.quantization), ("12-bit", deep.quantization)):
        for label, work in (
                ("per level, looked up (Quantization.bounds)",
                 lambda quant=quant: quant.bounds(noise=0.25)),
                ("per pixel (as for a k map)",
                 lambda quant=quant: quant._interval_ends(quant.levels, quant.k, 0.25,
                                                          quant.reachable))):
            best = min(_seconds(work) for _ in range(args.repeats))
            print(f"| 1 MP {name} capture, interval bounds {label} | {best:.3f} | "
                  f"{1 / best:.2f} | | |", flush=True)


def _time_refiner_layouts(refiner, capture, generator, repeats: int) -> None:
    """The refiner's CNN alone on a 1 MP plane's candidates: in the contiguous layout (how
    it ran before session 27) against channels-last (how ``refine_plane`` runs it)."""
    quant = capture.quantization
    restored = nl.dequantize(capture.reexposed, quantization=quant, model=generator,
                             device="cpu", refine=False, guard=False)
    lower, upper = quant.bounds(noise=0.25)
    candidates = torch.from_numpy(refiner_candidates(
        capture.reexposed, restored, lambda image: np.clip(image, lower, upper),
        refiner.sigmas, refiner.input_sigmas))[None]
    step = torch.from_numpy(np.asarray(quant.interval_width, dtype=np.float32))[None, None]
    contiguous = copy.deepcopy(refiner).to(memory_format=torch.contiguous_format)
    channels_last = copy.deepcopy(refiner).to(memory_format=torch.channels_last)
    last = candidates.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        for label, work in (("contiguous layout", lambda: contiguous(candidates, step)),
                            ("channels-last (refine_plane)", lambda: channels_last(last, step))):
            best = min(_seconds(work) for _ in range(repeats))
            print(f"| 1 MP, the refiner's CNN alone, {label} | {best:.3f} | {1 / best:.2f} "
                  "| | |", flush=True)


def _seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _timed(capture, generator, tile, refiner=False, guard=False):
    start = time.perf_counter()
    nl.dequantize(capture.reexposed, quantization=capture.quantization, model=generator,
                  device="cpu", tile=tile, refine=refiner, guard=guard)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
