"""The LAIC gain around the bundled cell's edge: where a dark ring comes from (issue 18).

Captures the bundled cell sample at k = 1/30, r = 1.3 (seed 0), segments the cell (Otsu on
the clean image, largest component) and prints the median gain in 3-px bands by distance
from its edge: the fast method with its default budget, with ``refine_edges=True``, and
with ``--budgets`` given; then the exact LP and the fast method on a 180 x 180 crop around
the cell (``--no-crop`` skips that).

Run:  .venv/bin/python benchmarks/laic_ring_profile.py [--budgets 16000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import machine_line
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

import napari_lowlight as nl
from napari_lowlight.data import cell


def cell_mask(clean):
    bright = ndi.binary_opening(clean > threshold_otsu(clean))
    labels, count = ndi.label(bright)
    sizes = ndi.sum(bright, labels, range(1, count + 1))
    return labels == 1 + int(np.argmax(sizes))


def profile(gain, distance, bands=range(0, 24, 3)) -> str:
    return " | ".join(f"{np.median(gain[(distance > d) & (distance <= d + 3)]):.1f}"
                      for d in bands)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, nargs="*", default=[])
    parser.add_argument("--no-crop", action="store_true")
    args = parser.parse_args()
    clean = cell().astype(np.float64) / 255.0
    dark = nl.degrade(clean, k=1 / 30, r=1.3, seed=0).dark
    print(machine_line(), "\n")
    print("| run | s | 0-3 | 3-6 | 6-9 | 9-12 | 12-15 | 15-18 | 18-21 | 21-24 |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    def row(label, image, mask, **options):
        start = time.perf_counter()
        result = nl.laic(image, bits=8, **options)
        seconds = time.perf_counter() - start
        distance = ndi.distance_transform_edt(~mask)
        print(f"| {label} | {seconds:.1f} | {profile(result.gain, distance)} |", flush=True)

    mask = cell_mask(clean)
    row("fast, default", dark, mask)
    row("fast, refine_edges", dark, mask, refine_edges=True)
    for budget in args.budgets:
        row(f"fast, max_regions={budget}", dark, mask, max_regions=budget)
    if not args.no_crop:
        rows, cols = np.nonzero(mask)
        top, left = int(rows.mean()) - 90, int(cols.mean()) - 90
        crop = (slice(max(top, 0), max(top, 0) + 180), slice(max(left, 0), max(left, 0) + 180))
        row("crop 180x180, fast", dark[crop], mask[crop], method="fast")
        row("crop 180x180, exact", dark[crop], mask[crop], method="exact", time_limit=600)


if __name__ == "__main__":
    main()
