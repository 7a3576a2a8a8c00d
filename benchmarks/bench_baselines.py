"""Time per megapixel of every enhancement method, in one run.

Each method runs on the same dark capture (the bundled photograph resized to the
requested size, captured in the paper's global setting); the classic dequantizer
and LAIC are timed beside the four baselines.  Best of ``--repeats`` runs.

Run:  .venv/bin/python benchmarks/bench_baselines.py [--megapixels 0.25 1] [--repeats 2]
"""

from __future__ import annotations

import argparse

import numpy as np
from _machine import machine_line
from skimage.transform import resize

import napari_lowlight as nl
from napari_lowlight import data
from napari_lowlight.evaluation import METHODS, run_method


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, nargs="*", default=[0.25, 1.0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(machine_line())
    photo = data.coffee() / 255.0
    header = "| method | " + " | ".join(f"{mp:g} MP: s | s/MP" for mp in args.megapixels) + " |"
    print("\n" + header)
    print("|---|" + "---|---|" * len(args.megapixels))
    captures = []
    for mp in args.megapixels:
        rows = int(round(np.sqrt(mp * 1e6 / 1.5)))
        image = resize(photo, (rows, int(round(rows * 1.5)), 3), order=1)
        captures.append((rows * int(round(rows * 1.5)) / 1e6,
                         nl.degrade(image, k=1 / 30, r=1.3, seed=0, channel_axis=-1)))
    for method in METHODS:
        cells = []
        for megapixels, capture in captures:
            best = min(run_method(method, capture, -1)[2] for _ in range(args.repeats))
            cells.append(f"{best:.3f} | {best / megapixels:.3f}")
        print(f"| {method} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
