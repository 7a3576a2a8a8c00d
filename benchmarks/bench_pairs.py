"""Training-pair making: pairs per second with and without LAIC-made pairs, and with reuse.

On a lent GPU the pairs, not the network, set the pace of training with LAIC pairs (session
23: 6-7 steps/s of batch 16 with 20 % LAIC pairs, 35 without, 14 worker processes).  This
script makes batches of 256-px crops the way ``napari-lowlight train`` does (``make_batch``,
one process) from scikit-image's training images and reports pairs per second for plain
pairs, for ``laic_probability`` 0.2 with ``laic_reuse`` 1, 2 and 4, and how many LAIC solves
each made, all in one process so the ratios compare like with like.

Run:  .venv/bin/python benchmarks/bench_pairs.py [--batches 20] [--batch 16]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
from _machine import machine_line

from napari_lowlight.dequantizer import pairs as pairs_module
from napari_lowlight.dequantizer.pairs import (PairSettings, is_validation_image, make_batch,
                                               test_set_images)


def timed_batches(images, settings, batches: int, batch: int) -> tuple[float, int]:
    """Seconds per pair and LAIC solves, over ``batches`` batches of per-step seeds."""
    solves = []
    original = pairs_module._laic_pair

    def counting(*args, **kwargs):
        solves.append(1)
        return original(*args, **kwargs)

    pairs_module._laic_pair = counting
    try:
        start = time.perf_counter()
        for step in range(batches):
            make_batch(images, np.random.default_rng([7, step]), batch, settings)
        seconds = time.perf_counter() - start
    finally:
        pairs_module._laic_pair = original
    return seconds / (batches * batch), len(solves)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    images = [image for name, image in test_set_images().items()
              if not is_validation_image(name) and min(image.shape[:2]) >= 256]
    base = PairSettings(crop=256)
    cases = {"plain pairs": base}
    for reuse in (1, 2, 4):
        cases[f"20 % LAIC, reuse {reuse}"] = dataclasses.replace(
            base, laic_probability=0.2, laic_reuse=reuse)
    print(machine_line())
    print(f"\n{len(images)} training images, {args.batches} batches of {args.batch} "
          "256-px pairs per case, one process\n")
    print("| case | ms per pair | pairs/s | LAIC solves | vs reuse 1 |")
    print("|---|---|---|---|---|")
    reference = None
    for name, settings in cases.items():
        per_pair, solves = timed_batches(images, settings, args.batches, args.batch)
        if name.endswith("reuse 1"):
            reference = per_pair
        ratio = f"{reference / per_pair:.2f}x" if reference and "LAIC" in name else ""
        print(f"| {name} | {per_pair * 1000:.0f} | {1 / per_pair:.1f} | {solves} | {ratio} |",
              flush=True)


if __name__ == "__main__":
    main()
