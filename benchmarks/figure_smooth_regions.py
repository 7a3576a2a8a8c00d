"""Figure: smooth regions, where quantization contours show, restored by each model.

For held-out images at the paper's global setting (k = 1/30, r = 1.3, sigma = 0.25 q,
8 bits) it crops the smoothest window (lowest local variance of the original) and
shows the original, the re-exposed Jt (contours), the classic smoothing + projection
and every shipped model (with projection), each with the crop's PSNR.  Written to
docs/images/smooth_regions.png.

Run:  .venv/bin/python benchmarks/figure_smooth_regions.py [--models default,default-adversarial]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.ndimage import uniform_filter  # noqa: E402
from skimage import data as skdata  # noqa: E402
from skimage.transform import resize  # noqa: E402

import napari_lowlight as nl  # noqa: E402
from napari_lowlight.dequantizer import smooth_project  # noqa: E402
from napari_lowlight.metrics import psnr  # noqa: E402


def smoothest_window(image: np.ndarray, size: int) -> tuple[slice, slice]:
    mean = uniform_filter(image, size)
    variance = uniform_filter(image**2, size) - mean**2
    half = size // 2
    inner = variance[half:-half, half:-half]
    y, x = np.unravel_index(np.argmin(inner), inner.shape)
    return slice(y, y + size), slice(x, x + size)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="default,default-adversarial")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("docs/images/smooth_regions.png"))
    args = parser.parse_args()
    models = args.models.split(",")
    names = ["camera", "astronaut", "coffee", "chelsea"]
    columns = ["original", "Jt (re-exposed)", "classic smooth+project", *models]
    figure, axes = plt.subplots(len(names), len(columns),
                                figsize=(2.2 * len(columns), 2.3 * len(names)))
    for row, name in enumerate(names):
        image = np.asarray(getattr(skdata, name)()) / 255.0
        if image.ndim == 3:
            image = image.mean(axis=-1)
        scale = args.size / max(image.shape)
        image = resize(image, tuple(round(s * scale) for s in image.shape), anti_aliasing=True)
        capture = nl.degrade(image, k=1 / 30, r=1.3, sigma=0.25, bits=8, seed=0)
        quant = capture.quantization
        panels = [image, capture.reexposed, smooth_project(capture.reexposed, quant)]
        panels += [nl.dequantize(capture.reexposed, quantization=quant, model=model,
                                 device="cpu") for model in models]
        window = smoothest_window(image, args.crop)
        for col, (title, panel) in enumerate(zip(columns, panels)):
            ax = axes[row, col]
            crop = panel[window]
            low, high = np.percentile(image[window], [1, 99])
            ax.imshow(crop, cmap="gray", vmin=low - 0.02, vmax=high + 0.02,
                      interpolation="nearest")
            label = title if col == 0 else f"{title}\n{psnr(image[window], crop):.2f} dB"
            ax.set_title(label if row == 0 or col > 0 else "", fontsize=7)
            if col == 0:
                ax.set_ylabel(name, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    figure.suptitle("Smoothest 64x64 window of each held-out image, global low light "
                    "(contrast stretched to the window)", fontsize=9)
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
