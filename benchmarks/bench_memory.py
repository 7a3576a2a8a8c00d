"""Peak memory of the in-memory pipeline on one large photograph (issue 13's full-size check).

A wallpaper can be 8K (7680 x 4320, 33 MP, RGB).  Each case runs in a fresh Python process,
so that its peak resident memory (``ru_maxrss``) is its own: the capture is made first
(``degrade``, RGB, uint8-like synthetic scene of the given size), the resident memory is
noted, then the product call runs and the peak is read.  Reported: the peak, the growth
over the memory before the call, and that growth per megapixel and as a multiple of the
float64 RGB image's own size (what one more copy of the input costs).

Cases:

- ``dequantize-8bit``: ``dequantize(jt, quantization=...)`` on the global setting's capture
  (k = 1/30, r = 1.3, 8 bit): network, projection, refiner (no guard at 8 bits);
- ``dequantize-12bit``: the same on the 12-bit setting (k = 1/64, r = 1), where the texture
  guard runs too;
- ``enhance``: ``enhance(dark, bits=8)`` on the global setting's dark capture: LAIC, then the
  dequantizer on its output.

Run:  .venv/bin/python benchmarks/bench_memory.py [--size 7680 4320] [--threads 2]
      [--cases dequantize-8bit dequantize-12bit enhance]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _machine import machine_line

CASES = ("dequantize-8bit", "dequantize-12bit", "enhance")

_CHILD = r"""
import json, resource, sys, time
import numpy as np
import torch
import napari_lowlight as nl

case, cols, rows, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)

def peak_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux

# a photograph-like scene: smooth light, edges and fine texture, on the 8-bit grid
y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
y /= rows
x /= cols
scene = np.stack([0.5 + 0.4 * np.sin(6 * x + c) * np.cos(4 * y - c)
                  + 0.05 * np.sin(300 * x * (c + 1)) * np.sin(200 * y) for c in range(3)], -1)
del x, y
image = np.round(np.clip(scene, 0, 1) * 255).astype(np.uint8)
del scene
setting = {"k": 1 / 64, "r": 1.0, "bits": 12} if case == "dequantize-12bit" else \
          {"k": 1 / 30, "r": 1.3, "bits": 8}
capture = nl.degrade(image, sigma=0.25, seed=0, channel_axis=-1, **setting)
if case == "enhance":
    inputs = {"dark": capture.dark}
else:
    inputs = {"jt": capture.reexposed.astype(np.float32), "quant": capture.quantization}
del capture
before = peak_gb()
import gc; gc.collect()
resident = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 1e9
started = time.perf_counter()
if case == "enhance":
    out = nl.enhance(inputs["dark"], bits=8, channel_axis=-1)
else:
    out = nl.dequantize(inputs["jt"], quantization=inputs["quant"], channel_axis=-1)
seconds = time.perf_counter() - started
print(json.dumps({"resident_before_gb": resident, "peak_before_gb": before,
                  "peak_gb": peak_gb(), "seconds": seconds,
                  "out_dtype": str(np.asarray(getattr(out, "enhanced", out)).dtype)}))
"""


def run_case(case: str, cols: int, rows: int, threads: int) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, case, str(cols), str(rows),
                           str(threads)], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1],
                "returncode": done.returncode}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(7680, 4320),
                        metavar=("COLS", "ROWS"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    args = parser.parse_args()
    cols, rows = args.size
    megapixels = cols * rows / 1e6
    image_gb = cols * rows * 3 * 8 / 1e9
    print(f"{machine_line()}; {cols} x {rows} RGB ({megapixels:.1f} MP; float64 RGB copy "
          f"{image_gb:.2f} GB); torch threads {args.threads}; {time.strftime('%Y-%m-%d')}\n")
    print("| case | seconds | resident before, GB | peak before (making the capture), GB | "
          "peak, GB | peak growth, GB | growth per MP, GB | growth / float64 RGB copy |")
    print("|---|---|---|---|---|---|---|---|")
    for case in args.cases:
        result = run_case(case, cols, rows, args.threads)
        if "error" in result:
            print(f"| {case} | failed (rc {result['returncode']}): {result['error']} "
                  "| | | | | | |")
            continue
        growth = result["peak_gb"] - result["resident_before_gb"]
        print(f"| {case} | {result['seconds']:.0f} | {result['resident_before_gb']:.2f} | "
              f"{result['peak_before_gb']:.2f} | {result['peak_gb']:.2f} | {growth:.2f} | {growth / megapixels:.3f} | "
              f"{growth / image_gb:.1f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
