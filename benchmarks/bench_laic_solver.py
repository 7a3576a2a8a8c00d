"""LAIC's fast method: HiGHS dual simplex against interior point for each level's first solve.

The fast method solves one region LP per level and re-solves it after each round of cutting
planes (always warm-started dual simplex).  Which HiGHS method makes the *first* solve of a
level is ``napari_lowlight.compensation._fast.LEVEL_SOLVER``; this script runs ``laic()`` with
each choice in the same process, on the same captures, and reports the seconds, the ratio
and the largest difference between the two enhanced images (the LP optimum is the same; a
different optimal vertex can move gains where no constraint binds them, e.g. on black pixels).

Cases: photographs at 0.26 and 1 MP with the default region budget and with
``refine_edges=True`` (levels up to 8,192 regions), a 96 x 112 dark scene whose finest level
has 9,420 regions, and 256-px crops as the dequantizer's LAIC-made training pairs give them
to LAIC (one level of 1,024 regions: their small budget stops the refinement).

Run:  .venv/bin/python benchmarks/bench_laic_solver.py [--repeats 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import machine_line
from skimage import data as skdata
from skimage.transform import resize

import napari_lowlight as nl
from napari_lowlight.compensation import _fast

SOLVERS = ("ipm", "ds")


def dark_scene(shape, seed=0):
    """A smooth lit scene with texture, dimmed by a vignette, as 8-bit counts."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    yy, xx = np.mgrid[0:rows, 0:cols] / max(rows, cols)
    scene = np.clip(0.5 + 0.35 * np.sin(5 * xx + 2 * yy) + 0.03 * rng.standard_normal(shape),
                    0, 1)
    dark = nl.degrade(scene, k=0.1, dimming="vignette", bits=8, seed=seed).dark
    return np.rint(dark * 255).astype(np.uint8)


def cases():
    """name -> (dark image, laic keyword arguments)."""
    camera = skdata.camera() / 255.0
    astronaut = resize(skdata.astronaut()[..., 1] / 255.0, (1024, 1024), anti_aliasing=True)
    found = {}
    for name, image in (("camera 512^2", camera), ("astronaut 1024^2", astronaut)):
        dark = nl.degrade(image, k=1 / 20, sigma=0.25, bits=8, dimming="vignette", seed=0).dark
        found[f"{name}, default budget"] = (dark, dict(bits=8))
        found[f"{name}, refine_edges"] = (dark, dict(bits=8, refine_edges=True))
    found["dark scene 96x112"] = (dark_scene((96, 112)), {})
    moon = skdata.moon() / 255.0
    for index, (y, x) in enumerate(((0, 0), (128, 200), (250, 60))):
        crop = moon[y:y + 256, x:x + 256]
        dark = nl.degrade(crop, k=1 / 30, r=1.3, sigma=0.25, bits=8, seed=index).dark
        # a training pair's budget (about 400 px per region) stops after the first level
        found[f"training-pair crop {index}"] = (dark, dict(bits=8, max_regions=164))
    return found


def timed(image, options, solver, repeats):
    _fast.LEVEL_SOLVER = solver
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = nl.laic(image, **options)
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="best of N runs per case")
    args = parser.parse_args()
    chosen = _fast.LEVEL_SOLVER
    print(machine_line())
    print()
    print("| case | regions (finest level) | interior point s | dual simplex s | ratio | "
          "max difference of the enhanced images |")
    print("|---|---|---|---|---|---|")
    totals = dict.fromkeys(SOLVERS, 0.0)
    try:
        for name, (image, options) in cases().items():
            runs = {solver: timed(image, options, solver, args.repeats) for solver in SOLVERS}
            for solver in SOLVERS:
                totals[solver] += runs[solver][0]
            difference = np.max(np.abs(np.asarray(runs["ipm"][1].enhanced, dtype=np.float64)
                                       - np.asarray(runs["ds"][1].enhanced, dtype=np.float64)))
            regions = runs["ds"][1].info[0]["regions"]
            print(f"| {name} | {regions} | {runs['ipm'][0]:.2f} | {runs['ds'][0]:.2f} | "
                  f"{runs['ipm'][0] / runs['ds'][0]:.1f}x | {difference:.1e} |", flush=True)
    finally:
        _fast.LEVEL_SOLVER = chosen
    print(f"| all | | {totals['ipm']:.2f} | {totals['ds']:.2f} | "
          f"{totals['ipm'] / totals['ds']:.1f}x | |")


if __name__ == "__main__":
    main()
