"""How much uneven light LAIC takes out: residual shading, halos and speckle.

For each image (scikit-image photographs and microscopy, resized so the longer side
is ``--size`` px) and each paper setting (global k = 1/30, r = 1.3; local k = 1/5,
r = 1.5; 8 bits, sigma = 0.25 q) captured under a vignette (``degrade``'s
``dimming="vignette"``) and under a smooth random dimming field, reports:

- **corner/centre**: (mean of the result in the four corner patches / mean in the
  central patch) divided by the same ratio of the undimmed scene ``J**r``; 1.0 is
  full compensation, the dimming map's own ratio is no compensation at all.
- **shading spread**: the 5th/95th percentile ratio of ``G(result) / G(J**r)``
  (Gaussian of 1/16 of the side): 1.0 when the remaining illumination is flat.
- **halo**: mean relative drop of the result's gain-normalised brightness in a band
  of ``--band`` px around the brightest objects (Otsu on the scene) against the
  flat-field result (dimming divided out): 0 is no halo.
- **speckle**: fraction of pixels in flat areas that are isolated dark pixels (below
  every neighbour by more than 2 levels of the enhanced step) — the Eq. 19
  pixel-level artefact.
- **ranks**: LAIC's rank preservation (must stay 1.0).

Methods: ``uniform`` (one gain to full scale), ``flat-field`` (division by the known
dimming map, then one gain: the microscopy standard where the illumination is
known), and LAIC with each ``--weights`` contrast weight and its ``shading`` option.

Run:  .venv/bin/python benchmarks/bench_laic_uneven.py [--size 256] [--weights 1 4 16]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _machine import machine_line
from scipy import ndimage as ndi
from skimage import data as skdata
from skimage.filters import threshold_otsu
from skimage.transform import resize

import napari_lowlight as nl
from napari_lowlight.dimming import smooth_random_field

IMAGES = ["astronaut", "coffee", "chelsea", "camera", "cell", "immunohistochemistry"]
SETTINGS = {"global": dict(k=1 / 30, r=1.3), "local": dict(k=1 / 5, r=1.5)}


def load(name: str, size: int) -> np.ndarray:
    image = np.asarray(getattr(skdata, name)()).astype(np.float64) / 255.0
    if image.ndim == 3:
        image = image[..., :3].max(axis=-1)  # LAIC's luminance: the value channel
    scale = size / max(image.shape)
    shape = tuple(max(8, int(round(s * scale))) for s in image.shape)
    return np.clip(resize(image, shape, anti_aliasing=True), 0, 1)


def patches(shape):
    rows, cols = shape
    h, w = max(2, rows // 8), max(2, cols // 8)
    corners = [(slice(0, h), slice(0, w)), (slice(0, h), slice(cols - w, cols)),
               (slice(rows - h, rows), slice(0, w)), (slice(rows - h, rows), slice(cols - w, cols))]
    centre = (slice(rows // 2 - h // 2, rows // 2 + h // 2 + 1),
              slice(cols // 2 - w // 2, cols // 2 + w // 2 + 1))
    return corners, centre


def corner_centre(result, scene):
    corners, centre = patches(result.shape)

    def ratio(x):
        return np.mean([x[c].mean() for c in corners]) / max(x[centre].mean(), 1e-12)

    return ratio(result) / max(ratio(scene), 1e-12)


def shading_spread(result, scene):
    sigma = max(result.shape) / 16
    ratio = ndi.gaussian_filter(result, sigma) / np.maximum(ndi.gaussian_filter(scene, sigma),
                                                            1e-6)
    low, high = np.percentile(ratio, [5, 95])
    return float(low / max(high, 1e-12))


def halo(result, reference, scene, band: int):
    """Mean relative drop of ``result`` against ``reference`` (both normalised to their
    median ratio) in a band around the bright objects of ``scene``."""
    bright = scene > threshold_otsu(scene)
    bright = ndi.binary_opening(bright, iterations=1)
    ring = ndi.binary_dilation(bright, iterations=band) & ~bright
    if ring.sum() < 10:
        return float("nan")
    ratio = result / np.maximum(reference, 1e-6)
    norm = np.median(ratio[(reference > 0.05) & ~ring]) if np.any((reference > 0.05) & ~ring) \
        else np.median(ratio)
    drop = 1.0 - ratio[ring & (reference > 0.02)] / max(norm, 1e-12)
    return float(np.mean(drop)) if drop.size else float("nan")


def speckle(result, step):
    """Isolated dark pixels: below all 8 neighbours by more than 2 steps."""
    padded = np.pad(result, 1, mode="edge")
    neighbours = np.stack([padded[1 + dy:1 + dy + result.shape[0], 1 + dx:1 + dx + result.shape[1]]
                           for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
    isolated = np.all(neighbours - result > 2 * step, axis=0)
    return float(isolated.mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="longer side, px")
    parser.add_argument("--weights", type=float, nargs="*", default=[1.0],
                        help="LAIC contrast weights to compare")
    parser.add_argument("--shading", type=float, nargs="*", default=[0.0],
                        help="LAIC shading strengths to compare (0 = the paper's LAIC)")
    parser.add_argument("--images", nargs="*", default=IMAGES)
    parser.add_argument("--band", type=int, default=4, help="halo band width, px")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()
    print(machine_line())
    print(f"size {args.size}, images {args.images}\n")
    print("| setting | dimming | method | corner/centre | shading spread | halo | speckle | "
          "ranks | s/image |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for setting, params in SETTINGS.items():
        for dimming in ("vignette", "random"):
            table = {}
            for name in args.images:
                scene_full = load(name, args.size)
                dim_map = ("vignette" if dimming == "vignette" else
                           smooth_random_field(scene_full.shape, darkest=0.3, seed=1))
                capture = nl.degrade(scene_full, sigma=0.25, bits=8, dimming=dim_map, seed=0,
                                     **params)
                scene = scene_full ** params["r"]  # what a uniform gain would restore
                dark = capture.dark
                light = capture.dimming if capture.dimming is not None else 1.0  # k_eff = k * map
                methods = {"uniform": (dark / dark.max(), None, 1.0)}
                flat = dark / light
                methods["flat-field"] = (np.clip(flat / flat.max(), 0, 1), None, 1.0)
                for weight in args.weights:
                    for shading in args.shading:
                        label = f"laic w={weight:g}" + ("" if shading == 0
                                                        else f" shading={shading:g}")
                        start = time.perf_counter()
                        result = nl.laic(dark, contrast_weight=weight, bits=8, shading=shading)
                        seconds = time.perf_counter() - start
                        methods[label] = (result.enhanced.astype(np.float64), result, seconds)
                reference = methods["flat-field"][0]
                for label, (out, result, seconds) in methods.items():
                    step = (1 / 255) / max(dark.max(), 1e-12)
                    row = {
                        "corner_centre": corner_centre(out, scene),
                        "shading_spread": shading_spread(out, scene),
                        "halo": halo(out, reference, scene, args.band),
                        "speckle": speckle(out, step),
                        "ranks": 1.0 if result is None else float(result.rank_preserved),
                        "seconds": seconds if result is not None else 0.0,
                    }
                    table.setdefault(label, []).append(row)
                    rows.append({"setting": setting, "dimming": dimming, "image": name,
                                 "method": label, **row})
            for label, values in table.items():
                mean = {key: np.nanmean([v[key] for v in values]) for key in values[0]}
                worst_cc = min(v["corner_centre"] for v in values)
                print(f"| {setting} | {dimming} | {label} | {mean['corner_centre']:.2f} "
                      f"(min {worst_cc:.2f}) | {mean['shading_spread']:.2f} | "
                      f"{mean['halo']:+.3f} | {100 * mean['speckle']:.2f} % | "
                      f"{min(v['ranks'] for v in values):.4f} | {mean['seconds']:.2f} |",
                      flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
