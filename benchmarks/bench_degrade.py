"""Throughput of ``degrade`` against the bare Eq. 6-7 formula, in one process.

The bare formula (no validation, no Quantization object, float64 all the way)
is the baseline: the ratio says what the checks and the bookkeeping cost.

Run:  .venv/bin/python benchmarks/bench_degrade.py [--size 2048] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import machine_line

from napari_lowlight import degrade


def bare_formula(J, k, r, sigma, bits, seed):
    q = 1.0 / (2**bits - 1)
    x = k * J**r + np.random.default_rng(seed).normal(0.0, sigma * q, J.shape)
    dark = np.clip(q * np.floor(x / q + 0.5), 0.0, 1.0)
    return dark, (dark / k) ** (1 / r)


def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="image side in pixels")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    gray = rng.random((args.size, args.size))
    rgb8 = (rng.random((args.size, args.size, 3)) * 255).astype(np.uint8)
    mp_gray = gray.size / 1e6
    print(machine_line())
    print(f"image: {args.size}x{args.size}; best of {args.repeats}")
    rows = [
        ("bare formula, gray float64", mp_gray,
         lambda: bare_formula(gray, 1 / 30, 1.3, 0.25, 8, 0)),
        ("degrade, gray float64", mp_gray, lambda: degrade(gray, seed=0)),
        ("degrade, gray, vignette", mp_gray, lambda: degrade(gray, seed=0, dimming="vignette")),
        ("degrade, RGB uint8 (MP = spatial)", mp_gray, lambda: degrade(rgb8, seed=0, channel_axis=-1)),
        ("degrade, gray, 16 bits, no noise", mp_gray,
         lambda: degrade(gray, bits=16, sigma=0.0)),
    ]
    base = None
    print(f"{'case':38s} {'seconds':>8s} {'MP/s':>8s} {'time / bare':>12s}")
    for name, megapixels, fn in rows:
        seconds = best_time(fn, args.repeats)
        base = base or seconds
        print(f"{name:38s} {seconds:8.3f} {megapixels / seconds:8.1f} {seconds / base:12.2f}")


if __name__ == "__main__":
    main()
