"""LAIC: exact against fast (objective gap, time, ranks kept) and the fast method's scaling.

Part 1, sizes where the exact LP solves (default 64, 96, 128 px square): for
each bundled/scikit-image test image, captured in the paper's local setting
(k = 1/5, r = 1.5, vignette) and global setting (k = 1/30, r = 1.3), run
``laic(method="exact")`` and ``laic(method="fast")`` with default parameters and
report both objectives, the relative gap, both times, the fraction of rank
constraints kept, and scikit-image CLAHE's time on the same image (the
baseline, run in the same process).

Part 2, large RGB images (default 0.5, 1 and 2 megapixels): the fast method's
time, time per megapixel (close to constant = linear cost), ranks kept, and
CLAHE's time.

Run:  .venv/bin/python benchmarks/bench_laic.py [--exact-sizes 64 96 128] [--megapixels 0.5 1 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import machine_line
from skimage import data as skdata
from skimage.color import hsv2rgb, rgb2hsv
from skimage.exposure import equalize_adapthist
from skimage.transform import resize

import napari_lowlight as nl
from napari_lowlight import data

SETTINGS = {
    "local": dict(k=1 / 5, r=1.5, sigma=0.25, dimming="vignette"),
    "global": dict(k=1 / 30, r=1.3, sigma=0.25),
}


def images():
    return {
        "coffee": data.coffee() / 255.0,
        "cell": data.cell() / 255.0,
        "camera": skdata.camera() / 255.0,
        "astronaut": skdata.astronaut() / 255.0,
    }


def clahe(image, channel_axis):
    """CLAHE on the V channel of HSV, as the paper runs it."""
    if channel_axis is None:
        return equalize_adapthist(image)
    hsv = rgb2hsv(image)
    hsv[..., 2] = equalize_adapthist(hsv[..., 2])
    return hsv2rgb(hsv)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def part_exact(sizes):
    print("\n## exact vs fast (default parameters)\n")
    print("| size | image | setting | exact objective | fast objective | gap % | exact s | "
          "fast s | speed-up | ranks kept exact / fast | CLAHE s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    worst = 0.0
    for size in sizes:
        for name, image in images().items():
            small = resize(image, (size, size) + image.shape[2:], anti_aliasing=True)
            axis = -1 if small.ndim == 3 else None
            for setting, kwargs in SETTINGS.items():
                dark = nl.degrade(small, seed=0, channel_axis=axis, **kwargs).dark
                exact, t_exact = timed(lambda: nl.laic(dark, channel_axis=axis, method="exact",
                                                       time_limit=600))
                fast, t_fast = timed(lambda: nl.laic(dark, channel_axis=axis, method="fast"))
                _, t_clahe = timed(lambda: clahe(dark, axis))
                gap = (fast.objective - exact.objective) / abs(exact.objective)
                worst = max(worst, gap)
                print(f"| {size} | {name} | {setting} | {exact.objective:.2f} | "
                      f"{fast.objective:.2f} | {100 * gap:.3f} | {t_exact:.2f} | {t_fast:.2f} | "
                      f"{t_exact / t_fast:.1f} | {exact.rank_preserved:.4f} / "
                      f"{fast.rank_preserved:.4f} | {t_clahe:.3f} |", flush=True)
    print(f"\nworst gap: {100 * worst:.3f} %")


def part_large(megapixels):
    print("\n## fast method on large RGB images (coffee, local setting, resized)\n")
    print("| megapixels | shape | fast s | s per MP | regions | ranks kept | CLAHE s |")
    print("|---|---|---|---|---|---|---|")
    photo = data.coffee() / 255.0
    for mp in megapixels:
        rows = int(round(np.sqrt(mp * 1e6 / 1.5)))
        cols = int(round(rows * 1.5))
        image = resize(photo, (rows, cols, 3), order=1)
        dark = nl.degrade(image, seed=0, channel_axis=-1, **SETTINGS["local"]).dark
        result, t_fast = timed(lambda: nl.laic(dark, channel_axis=-1, method="fast"))
        _, t_clahe = timed(lambda: clahe(dark, -1))
        pixels = rows * cols / 1e6
        print(f"| {pixels:.2f} | {rows}x{cols}x3 | {t_fast:.2f} | {t_fast / pixels:.2f} | "
              f"{result.info[0]['regions']} | {result.rank_preserved:.4f} | {t_clahe:.2f} |",
              flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exact-sizes", type=int, nargs="*", default=[64, 96, 128])
    parser.add_argument("--megapixels", type=float, nargs="*", default=[0.5, 1.0, 2.0])
    args = parser.parse_args()
    print(f"{machine_line()}, napari-lowlight {nl.__version__}")
    if args.megapixels:
        part_large(args.megapixels)
    if args.exact_sizes:
        part_exact(args.exact_sizes)


if __name__ == "__main__":
    main()
