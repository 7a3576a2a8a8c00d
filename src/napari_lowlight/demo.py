"""The demo behind ``make demo``: the pipeline on a bundled sample, with measured numbers.

The bundled photograph is captured in the paper's global and local (uneven) low light
(:data:`napari_lowlight.methods.SETTINGS`), re-exposed, and compared with the original.
LAIC then compensates the uneven capture and a real dim image (a crop of the Hubble
deep field), compared with a uniform gain.  Finally the shipped dequantizer restores
the global capture (against the classic smooth + project baseline) and the full
pipeline (LAIC, then the network) runs on the uneven capture.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import data
from .compensation import laic
from .compensation._problem import laic_objective
from .formation import degrade
from .io import write_image
from .methods import SETTINGS  # the paper's two settings; also importable from here
from .metrics import interval_consistency, psnr, ssim

__all__ = ["SETTINGS", "banding_crop", "run_demo"]


def banding_crop(image: np.ndarray) -> tuple[slice, slice]:
    """A window (96x96, smaller on small images) in the smoothest bright area.

    The figures of ``make demo`` and ``napari-lowlight evaluate`` zoom into it: banding
    (false contours from too few levels) shows where the original is smooth.

    Parameters
    ----------
    image : ndarray
        The normally exposed original, float in [0, 1]; gray (2-D) or colour with the
        channels last.

    Returns
    -------
    rows, cols : slice
        The window, away from the image's borders; ``image[rows, cols]`` is the zoom.
    """
    from scipy.ndimage import uniform_filter

    gray = image.mean(axis=-1) if image.ndim == 3 else image
    local_var = uniform_filter(gray**2, 31) - uniform_filter(gray, 31) ** 2
    # Prefer smooth (low variance), mid-bright regions away from the borders.
    score = local_var + 0.02 * np.abs(gray - 0.6)
    half = max(1, min(48, min(gray.shape) // 4))
    score[:half, :] = score[-half:, :] = np.inf
    score[:, :half] = score[:, -half:] = np.inf
    y, x = np.unravel_index(np.argmin(score), score.shape)
    return slice(y - half, y + half), slice(x - half, x + half)


def _figure(path: Path, original: np.ndarray, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    crop = banding_crop(original)
    fig, axes = plt.subplots(len(results), 5, figsize=(17, 3.4 * len(results)), squeeze=False)
    for row, (name, (result, numbers)) in enumerate(results.items()):
        panels = [
            ("original", original),
            (f"dark capture ({name}), as recorded", result.dark),
            ("re-exposed (Eq. 7)\n"
             f"PSNR {numbers['psnr_reexposed_db']:.2f} dB", result.reexposed),
            ("original, zoom", original[crop]),
            ("re-exposed, zoom: banding", result.reexposed[crop]),
        ]
        for ax, (title, img) in zip(axes[row], panels):
            ax.imshow(np.clip(img, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.set_axis_off()
        for ax in axes[row][:3:2]:
            ys, xs = crop
            ax.add_patch(Rectangle((xs.start, ys.start), xs.stop - xs.start, ys.stop - ys.start,
                                   fill=False, ec="red", lw=1))
    fig.suptitle("napari-lowlight demo: synthetic low-light captures of the bundled photograph")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _laic_part(out_dir: Path, original: np.ndarray, capture) -> dict:
    """LAIC on the uneven capture and on the real dim sample; figure laic.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numbers = {}
    rows = []
    for name, dark, reference in (
        ("local capture of the photograph", capture.dark, original),
        ("real dim image (Hubble deep field crop)", data.deep_field(), None),
    ):
        result = laic(dark, channel_axis=-1)
        values = dark / 255.0 if dark.dtype == np.uint8 else dark
        luminance = values.max(axis=-1)
        uniform_gain = min(1.0 / luminance.max(), 64.0)
        uniform = np.clip(values * uniform_gain, 0, 1)
        lam = 1.0 / luminance.max()
        entry = {
            "method": result.method,
            "objective": round(result.objective, 3),
            "objective_uniform_gain": round(laic_objective(
                np.full(luminance.shape, uniform_gain), luminance, radius=2, weight=lam), 3),
            "rank_preserved": result.rank_preserved,
            "gain_min": round(float(result.gain.min()), 3),
            "gain_max": round(float(result.gain.max()), 3),
        }
        if reference is not None:
            entry["psnr_uniform_gain_db"] = round(psnr(reference, uniform), 3)
            entry["psnr_laic_db"] = round(psnr(reference, result.enhanced), 3)
        numbers[name] = entry
        rows.append((name, dark, uniform, result))
        stem = "laic_local" if reference is not None else "laic_deep_field"
        write_image(out_dir / f"{stem}.png", result.enhanced)
    fig, axes = plt.subplots(len(rows), 4, figsize=(15, 3.8 * len(rows)), squeeze=False)
    for row, (name, dark, uniform, result) in enumerate(rows):
        panels = [(f"{name}: as recorded", dark, None), ("uniform gain", uniform, None),
                  (f"LAIC ({result.method})", result.enhanced, None),
                  (f"gain map {float(result.gain.min()):.2f}-{float(result.gain.max()):.2f}",
                   result.gain, "magma")]
        for ax, (title, img, cmap) in zip(axes[row], panels):
            shown = ax.imshow(img, cmap=cmap, interpolation="nearest")
            if cmap:
                fig.colorbar(shown, ax=ax, fraction=0.04)
            ax.set_title(title, fontsize=9)
            ax.set_axis_off()
    fig.suptitle("LAIC: locally adaptive illumination compensation (HiGHS LP)")
    fig.tight_layout()
    fig.savefig(out_dir / "laic.png", dpi=80)
    plt.close(fig)
    return numbers


def _dequantizer_part(out_dir: Path, original: np.ndarray, results: dict) -> dict:
    """The shipped network on the global capture (against the classic baseline), and the
    full pipeline (LAIC, then the network) on the uneven capture; figure pipeline.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .dequantizer import smooth_project
    from .dequantizer import dequantize
    from .pipeline import enhance

    capture = results["global"][0]
    quant = capture.quantization
    classic = smooth_project(capture.reexposed, quant, channel_axis=-1)
    restored = dequantize(capture.reexposed, quantization=quant, channel_axis=-1, device="cpu")
    local = results["local"][0]
    pipeline = enhance(local.dark, channel_axis=-1, device="cpu")
    numbers = {
        "global": {
            "psnr_reexposed_db": round(psnr(original, capture.reexposed), 3),
            "psnr_classic_db": round(psnr(original, classic), 3),
            "psnr_model_db": round(psnr(original, restored), 3),
            "ssim_classic": round(ssim(original, classic, channel_axis=-1), 4),
            "ssim_model": round(ssim(original, restored, channel_axis=-1), 4),
            "interval_consistency_model": interval_consistency(restored, quant),
        },
        "local_pipeline": {"psnr_laic_then_model_db": round(psnr(original, pipeline), 3)},
    }
    write_image(out_dir / "dequantized_global.png", restored)
    write_image(out_dir / "pipeline_local.png", pipeline)
    crop = banding_crop(original)
    panels = [("original", original), ("re-exposed (banding)", capture.reexposed),
              ("classic: smooth + project", classic), ("dequantizer network", restored)]
    fig, axes = plt.subplots(2, 4, figsize=(15, 6.5))
    for column, (title, image) in enumerate(panels):
        for row, shown in enumerate((image, image[crop])):
            axes[row][column].imshow(np.clip(shown, 0, 1), interpolation="nearest")
            axes[row][column].set_axis_off()
        value = psnr(original, image) if column else float("inf")
        axes[0][column].set_title(title + ("" if column == 0 else f"\n{value:.2f} dB"),
                                  fontsize=9)
    fig.suptitle("Dequantizer at the paper's global setting (k = 1/30): bottom, zoom")
    fig.tight_layout()
    fig.savefig(out_dir / "pipeline.png", dpi=80)
    plt.close(fig)
    return numbers


def run_demo(out_dir, *, seed: int = 0) -> dict:
    """Run the demo and write its files to ``out_dir`` (created if needed).

    Returns
    -------
    dict
        The measured numbers per setting, also written to ``summary.json``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    photo = data.coffee()
    original = photo.astype(np.float64) / 255.0
    write_image(out_dir / "original.png", original)
    summary: dict = {"image": "coffee (bundled, 400x600 RGB)", "seed": seed, "settings": {}}
    results = {}
    for name, setting in SETTINGS.items():
        result = degrade(photo, seed=seed, channel_axis=-1, **setting)
        numbers = {
            **{key: value for key, value in setting.items()},
            "dark_levels_used": int(np.unique(result.quantization.levels).size),
            "psnr_reexposed_db": round(psnr(original, result.reexposed), 3),
            "ssim_reexposed": round(ssim(original, result.reexposed, channel_axis=-1), 4),
            "interval_consistency_reexposed": round(
                interval_consistency(result.reexposed, result.quantization), 4
            ),
            "interval_consistency_original": round(
                interval_consistency(original, result.quantization), 4
            ),
        }
        write_image(out_dir / f"dark_{name}.png", result.dark, bits=8)
        write_image(out_dir / f"reexposed_{name}.png", result.reexposed)
        summary["settings"][name] = numbers
        results[name] = (result, numbers)
    _figure(out_dir / "comparison.png", original, results)
    summary["laic"] = _laic_part(out_dir, original, results["local"][0])
    summary["dequantizer"] = _dequantizer_part(out_dir, original, results)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
