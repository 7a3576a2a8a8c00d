"""Scale benchmark of ``napari-lowlight batch``: a >= 4 GB zarr stack, peak memory, 1 vs 2 workers.

1. Generates (once) a uint16 zarr stack of dark, unevenly lit planes of at least
   ``--gigabytes`` GB, written plane by plane so generating it needs little memory.
2. Scaling: the same ``--subset`` planes through ``batch`` on a LocalCluster of 1
   and of 2 worker processes (one thread each), the cluster started before the
   clock (its start is reported apart); also for the full pipeline
   (laic,dequantize) on a smaller stack of 1024x1024 planes.
3. The whole stack through ``batch --steps laic`` with 2 workers while a sampler
   sums the resident memory (RSS, and the proportional PSS that counts shared
   pages once) of this process and all its children every 0.2 s.

Run:  .venv/bin/python benchmarks/bench_scale.py [--gigabytes 4.1] [--folder runs/bench-scale]
"""

from __future__ import annotations

import argparse
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from _machine import machine_line

from napari_lowlight.batch import run_batch


def dark_plane(index: int, size: int) -> np.ndarray:
    """A dark 12-bit-like capture in uint16: structure, a moving light spot, noise."""
    rng = np.random.default_rng(index)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    cx, cy = 0.3 + 0.4 * ((index * 0.37) % 1), 0.3 + 0.4 * ((index * 0.61) % 1)
    light = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) * 4).astype(np.float32)
    scene = 0.5 + 0.4 * np.sin(40 * x + 25 * y + index) * np.sin(30 * y)
    counts = 4095 * 0.08 * light * scene + rng.normal(0, 3, (size, size)).astype(np.float32)
    return (np.clip(np.rint(counts), 0, 4095) * 16).astype(np.uint16)  # 12 bits in uint16


def make_stack(path: Path, planes: int, size: int) -> None:
    import zarr

    if path.exists():
        existing = zarr.open_array(str(path), mode="r")
        if existing.shape == (planes, size, size):
            return
        shutil.rmtree(path)
    array = zarr.create_array(str(path), shape=(planes, size, size), chunks=(1, size, size),
                              dtype="uint16")
    for index in range(planes):
        array[index] = dark_plane(index, size)


class MemorySampler:
    """Peak RSS and PSS summed over this process and its descendants."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak_rss, self.peak_pss = interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            rss = pss = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    info = process.memory_full_info()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def timed_batch(source: Path, out: Path, workers: int, steps) -> tuple[float, float, dict]:
    """(seconds for the batch, seconds to start the cluster, summary), cluster warmed first."""
    from distributed import Client, LocalCluster

    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    with Client(cluster) as client:
        # import the package (and torch) on every worker before the clock starts
        client.run(lambda: __import__("napari_lowlight.batch") and None)
        if "dequantize" in steps:
            client.run(lambda: __import__("torch") and None)
        started = time.perf_counter() - start
        start = time.perf_counter()
        summary = run_batch([source], out, steps=steps, client=client)
        seconds = time.perf_counter() - start
    cluster.close()
    return seconds, started, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=4.1, help="size of the big stack")
    parser.add_argument("--size", type=int, default=2048, help="plane side, pixels")
    parser.add_argument("--subset", type=int, default=24, help="planes in the scaling runs")
    parser.add_argument("--folder", type=Path, default=Path("runs/bench-scale"))
    parser.add_argument("--skip-full", action="store_true", help="only the scaling runs")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    print(machine_line())
    plane_bytes = args.size**2 * 2
    planes = int(np.ceil(args.gigabytes * 1e9 / plane_bytes))
    big, subset, small = (args.folder / "stack.zarr", args.folder / "subset.zarr",
                          args.folder / "small.zarr")
    start = time.perf_counter()
    make_stack(subset, args.subset, args.size)
    make_stack(small, 8, 1024)
    if not args.skip_full:
        make_stack(big, planes, args.size)
    print(f"stacks ready in {time.perf_counter() - start:.0f} s: {planes} planes of "
          f"{args.size}x{args.size} uint16 = {planes * plane_bytes / 1e9:.2f} GB")

    print("\n| steps | stack | workers | seconds | MP/s | speed-up | cluster start s |")
    print("|---|---|---|---|---|---|---|")
    for steps, source, count, side in ((["laic"], subset, args.subset, args.size),
                                       (["laic", "dequantize"], small, 8, 1024)):
        base = None
        for workers in (1, 2):
            seconds, started, _ = timed_batch(source, args.folder / "scaling-out.zarr",
                                              workers, steps)
            megapixels = count * side**2 / 1e6
            base = base or seconds
            print(f"| {','.join(steps)} | {count} x {side}^2 | {workers} | {seconds:.1f} | "
                  f"{megapixels / seconds:.2f} | {base / seconds:.2f}x | {started:.1f} |",
                  flush=True)

    if args.skip_full:
        return
    out = args.folder / "stack-out.zarr"
    shutil.rmtree(out, ignore_errors=True)
    with MemorySampler() as memory:
        start = time.perf_counter()
        summary = run_batch([big], out, steps=["laic"], workers=2)
        seconds = time.perf_counter() - start
    print(f"\nfull stack: {summary['planes']} planes, {planes * plane_bytes / 1e9:.2f} GB in, "
          f"laic with 2 workers (cluster start included): {seconds:.0f} s, "
          f"{planes * args.size**2 / 1e6 / seconds:.2f} MP/s, "
          f"{planes * plane_bytes / 1e6 / seconds:.1f} MB/s; peak memory of the whole run: "
          f"RSS {memory.peak_rss / 1e9:.2f} GB, PSS {memory.peak_pss / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
