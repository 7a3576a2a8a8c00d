"""Real dim captures, every method side by side: brightness, clipping, LOE, halo, speckle.

Inputs (whatever is present; none is used for training or tuning the dequantizer):

- the bundled deep-field crop (a real dim 8-bit photograph, RGB);
- spotiflow's TERRA frame (a real dim 16-bit fluorescence frame: values 89-312 of 65535)
  and one telomere time-lapse frame (values 91-167), from ``make training-data``
  (data/microscopy/, scripts/fetch_microscopy_images.sh);
- the bundled cell sample captured in the paper's global low light (k = 1/30, r = 1.3).

Methods: uniform gain (bright end to 1), CLAHE, LIME, LAIC, LAIC + dequantizer
(``enhance``), LAIC with ``refine_edges=True``, ``enhance`` with the Enhance preset for the data (photograph for the deep
field, microscope for the rest), and with ``--before PATH`` the same LAIC / enhance from another source
tree (e.g. a ``git worktree`` of the commit before a change) for before/after numbers.

Metrics (``reference`` = the uniform gain, the capture only brightened):

- **bright end**: 99.5th percentile of the result (1 = full scale);
- **clipped**: fraction of pixels at full scale (>= 0.999) that were below the capture's
  top level;
- **LOE**: lightness-order error against the reference (Wang et al. 2013);
- **halo**: 1 - median(result / reference) in a 4-px band around the bright objects
  (Otsu on the reference) over the same median in the rest of the background: > 0 is a
  dark ring around bright objects;
- **speckle**: fraction of pixels whose ``result / reference`` is below 0.8 x the median
  of its 5x5 neighbourhood (isolated dark pixels).

Run:  .venv/bin/python benchmarks/real_dim_data.py [--figure docs/images/real_dim.png]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _machine import machine_line
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

import napari_lowlight as nl
from napari_lowlight.baselines import clahe, lime
from napari_lowlight.intensity import to_intensity
from napari_lowlight.metrics import lightness_order_error

ROOT = Path(__file__).resolve().parent.parent
MICROSCOPY = ROOT / "data" / "microscopy" / "unpacked" / "spotiflow" / "spotiflow" / "sample_data"


def inputs() -> dict:
    from napari_lowlight.io import read_image

    data = ROOT / "src" / "napari_lowlight" / "data"
    found = {"deep field (8-bit RGB)": (read_image(data / "deep_field.png"), -1, "photograph")}
    for name, label in (("img_terra_2d.tif", "TERRA fluorescence (16-bit)"),
                        ("timelapse_telomeres_2d_100.tif", "telomeres (16-bit)")):
        path = MICROSCOPY / "images" / name
        if path.exists():
            found[label] = (read_image(path), None, "microscope-16bit")
    cell = read_image(data / "cell.png").astype(np.float64) / 255.0
    found["cell, k=1/30 capture"] = (nl.degrade(cell, k=1 / 30, r=1.3, seed=0).dark, None,
                                     "microscope-12bit")
    return found


def luminance(image, channel_axis):
    return image if channel_axis is None else np.max(image, axis=channel_axis)


def halo(result, reference, band: int = 4) -> float:
    objects = reference > threshold_otsu(reference)
    objects = ndi.binary_opening(objects, iterations=1)
    ring = ndi.binary_dilation(objects, iterations=band) & ~objects
    rest = ~ndi.binary_dilation(objects, iterations=3 * band) & (reference > 0)
    if ring.sum() < 10 or rest.sum() < 10:
        return float("nan")
    ratio = result / np.maximum(reference, 1e-9)
    return float(1.0 - np.median(ratio[ring & (reference > 0)]) / np.median(ratio[rest]))


def speckle(result, reference) -> float:
    valid = reference > 0
    ratio = np.where(valid, result / np.maximum(reference, 1e-9), np.nan)
    local = ndi.median_filter(np.nan_to_num(ratio, nan=0.0), size=5, mode="nearest")
    return float(np.mean(valid & (ratio < 0.8 * local)))


def metrics(result, reference, top_level_mask) -> dict:
    clipped = (result >= 0.999) & ~top_level_mask
    return {"bright_end": float(np.percentile(result, 99.5)), "clipped": float(clipped.mean()),
            "loe": float(lightness_order_error(reference, result)),
            "halo": halo(result, reference), "speckle": speckle(result, reference)}


BEFORE_SNIPPET = """
import json, sys, numpy as np
sys.path.insert(0, sys.argv[1])
import napari_lowlight as nl
data = np.load(sys.argv[2])
image, axis = data["image"], (None if int(data["axis"]) < 0 else -1)
scaled = image.astype(np.float64) / float(data["scale"]) if image.dtype.kind in "iu" else image
out = {}
r = nl.laic(scaled, channel_axis=axis)
out["laic"] = np.asarray(r.enhanced, dtype=np.float32)
out["laic+dequantizer"] = nl.dequantize(r.enhanced, quantization=r.quantization,
                                        channel_axis=axis).astype(np.float32)
np.savez(sys.argv[3], **out)
"""


def run_before(source_tree: str, image, scale: float, axis) -> dict:
    """LAIC and enhance from another source tree, on the same (already scaled) input."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/in.npz", image=image, axis=-1 if axis is None else 1, scale=scale)
        subprocess.run([sys.executable, "-c", BEFORE_SNIPPET, f"{source_tree}/src",
                        f"{tmp}/in.npz", f"{tmp}/out.npz"], check=True)
        with np.load(f"{tmp}/out.npz") as saved:
            return {f"before: {key}": saved[key] for key in saved.files}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=None, metavar="TREE",
                        help="a source tree (git worktree) to compare LAIC/enhance against")
    parser.add_argument("--figure", default=None, help="write a side-by-side PNG here")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    print(machine_line())
    print("\n| image | method | bright end | clipped | LOE | halo | speckle | s |")
    print("|---|---|---|---|---|---|---|---|")
    rows, panels = [], []
    for label, (raw, axis, preset) in inputs().items():
        values, intensity = to_intensity(raw)
        lum = luminance(values, axis)
        top = lum >= lum.max() - 0.5 / (2**intensity.bits - 1)
        reference = np.clip(lum / lum.max(), 0, 1)
        results, seconds = {}, {}

        def timed(name, function):
            start = time.perf_counter()
            results[name] = np.asarray(function(), dtype=np.float64)
            seconds[name] = time.perf_counter() - start

        timed("uniform", lambda: np.clip(values / lum.max(), 0, 1))
        timed("CLAHE", lambda: clahe(values, channel_axis=axis))
        timed("LIME", lambda: lime(values, channel_axis=axis))
        timed("LAIC", lambda: nl.laic(raw, channel_axis=axis).enhanced)
        timed("LAIC + dequantizer", lambda: nl.enhance(raw, channel_axis=axis))
        timed("LAIC, refine_edges", lambda: nl.laic(raw, channel_axis=axis,
                                                     refine_edges=True).enhanced)
        # the Enhance widget's preset for this kind of data (bits from the data here)
        timed(f"Enhance ({preset})",
              lambda: nl.enhance(raw, channel_axis=axis, preset=preset, bits=None))
        if args.before:
            # the old code scaled integers by the dtype's maximum; give it this scale instead
            # so only the algorithm differs
            scale = 2**intensity.bits - 1 if raw.dtype.kind in "iu" else 1.0
            for key, value in run_before(args.before, raw, scale, axis).items():
                results[key] = value.astype(np.float64)
                seconds[key] = float("nan")
        for name, result in results.items():
            m = metrics(luminance(result, axis), reference, top)
            rows.append({"image": label, "method": name, **m, "seconds": seconds[name]})
            print(f"| {label} | {name} | {m['bright_end']:.2f} | {100 * m['clipped']:.2f} % | "
                  f"{m['loe']:.0f} | {m['halo']:+.3f} | {100 * m['speckle']:.2f} % | "
                  f"{seconds[name]:.1f} |", flush=True)
        panels.append((label, results))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if args.figure:
        figure(panels, args.figure)


def figure(panels, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(panels[0][1])
    fig, axes = plt.subplots(len(panels), len(methods),
                             figsize=(2.2 * len(methods), 2.2 * len(panels)), squeeze=False)
    for row, (label, results) in enumerate(panels):
        for col, name in enumerate(methods):
            ax = axes[row][col]
            image = results.get(name)
            if image is not None:
                ax.imshow(np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=8)
            if col == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
