"""The paper's comparison made measurable: degrade, enhance with every method, score, plot.

``evaluate()`` is what ``napari-lowlight evaluate`` runs.  Each image is captured in
the paper's settings (:data:`napari_lowlight.methods.SETTINGS`: global and local low
light), then every method of :data:`napari_lowlight.methods.METHODS` runs:

- baselines (CLAHE, LIME, OCTM, SRIE) on the dark capture, as the paper runs them;
- ``reexposed``: Eq. 7 by itself; ``smooth_project``: the classic dequantizer on it;
- the project's own: ``dequantizer`` (the shipped network on the re-exposed image, the
  paper's answer to the global setting), ``laic``, and ``laic+dequantizer`` (the paper's
  pipeline for real and uneven light; ``laic+smooth_project`` with the classic step).

Scores against the normally exposed original: PSNR, SSIM, lightness-order error, and
interval consistency where the output has a quantization to be consistent with.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from ._validation import as_float_image
from .formation import DegradedImage, degrade
from .methods import DARK_METHODS, METHODS, SETTINGS
from .metrics import interval_consistency, lightness_order_error, psnr, ssim

__all__ = ["METHODS", "REAL_METHODS", "SETTINGS", "enhance_real", "evaluate", "run_method"]

# SETTINGS (the paper's low-light settings) and METHODS (name -> Method, callable as
# ``METHODS[name](capture, channel_axis, cache) -> (output, Quantization or None)``) are
# the registry's own objects (napari_lowlight.methods), also importable from here.

#: Methods that need only the dark image (no synthetic capture): used on real dim images.
REAL_METHODS = DARK_METHODS


def run_method(name: str, capture: DegradedImage, channel_axis=None, cache=None):
    """Run one method on a capture; returns ``(output, quantization or None, seconds)``."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    start = time.perf_counter()
    output, quantization = METHODS[name](capture, channel_axis, {} if cache is None else cache)
    return output, quantization, time.perf_counter() - start


def _score(original, output, quantization, axis) -> dict:
    return {
        "psnr_db": psnr(original, output),
        "ssim": ssim(original, output, channel_axis=axis),
        "loe": lightness_order_error(original, output, channel_axis=axis),
        "interval_consistency": (interval_consistency(output, quantization)
                                 if quantization is not None else float("nan")),
    }


def evaluate(images: dict, *, settings=tuple(SETTINGS), methods=None, out_dir,
             seed: int = 0, progress=None) -> list[dict]:
    """Degrade each image, run each method, score, and write CSV, Markdown and figures.

    Parameters
    ----------
    images : dict of name -> (image array, channel_axis)
        Normally exposed images (float in [0, 1] or integers).
    settings : sequence of str
        Names from :data:`SETTINGS` ("global", "local"); both by default.
    methods : sequence of str, optional
        Names from :data:`METHODS`; all by default.
    out_dir : path
        Receives ``results.csv``, ``results.md`` and ``figures/*.png``.
    seed : int
        Noise seed of the captures.
    progress : callable, optional
        ``progress(done, total)`` after each method run.

    Returns
    -------
    list of dict
        One row per image, setting and method.
    """
    methods = list(METHODS) if methods is None else list(methods)
    if not methods:
        raise ValueError(f"no methods chosen; choose from {', '.join(METHODS)}")
    for name in methods:
        if name not in METHODS:
            raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    for setting in settings:
        if setting not in SETTINGS:
            raise ValueError(f"unknown setting {setting!r}; choose from {', '.join(SETTINGS)}")
    if not images:
        raise ValueError("no images to evaluate")
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    total = len(images) * len(settings) * len(methods)
    done = 0
    for image_name, (image, axis) in images.items():
        reference = as_float_image(image)
        for setting in settings:
            capture = degrade(image, seed=seed, channel_axis=axis, **SETTINGS[setting])
            outputs, cache = {}, {}
            for method in methods:
                output, quantization, seconds = run_method(method, capture, axis, cache)
                outputs[method] = output
                rows.append({"image": image_name, "setting": setting, "method": method,
                             **_score(reference, output, quantization, axis),
                             "seconds": seconds})
                done += 1
                if progress is not None:
                    progress(done, total)
            _figure(out_dir / "figures" / f"{image_name}_{setting}.png", reference,
                    capture.dark, outputs, f"{image_name}, {setting} low light")
    _write_csv(out_dir / "results.csv", rows)
    (out_dir / "results.md").write_text(markdown_table(rows))
    return rows


def enhance_real(images: dict, *, methods=None, out_dir, progress=None) -> list[dict]:
    """Run the methods that need no ground truth on real dim images; figures and timings.

    ``images``: name -> (image, channel_axis).  Writes ``figures/real_<name>.png``
    and returns one row (image, method, seconds, mean brightness) per run.  Each method
    runs through :meth:`napari_lowlight.methods.Method.on_dark` (the network on the CPU).
    """
    methods = REAL_METHODS if methods is None else [m for m in methods if m in REAL_METHODS]
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    rows, total, done = [], len(images) * len(methods), 0
    for name, (image, axis) in images.items():
        values = as_float_image(image)
        outputs, cache = {}, {}
        for method in methods:
            start = time.perf_counter()
            output, _ = METHODS[method].on_dark(image, channel_axis=axis, device="cpu",
                                                cache=cache)
            rows.append({"image": name, "method": method,
                         "seconds": time.perf_counter() - start,
                         "mean_brightness": float(np.mean(output))})
            outputs[method] = output
            done += 1
            if progress is not None:
                progress(done, total)
        _figure(out_dir / "figures" / f"real_{name}.png", values, None, outputs,
                f"{name} (real dim image)")
    return rows


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({key: (f"{value:.6g}" if isinstance(value, float) else value)
                             for key, value in row.items()})


def markdown_table(rows: list[dict]) -> str:
    """Mean scores per setting and method (over images), then every row."""
    lines = ["| setting | method | PSNR dB | SSIM | LOE | interval consistency | seconds |",
             "|---|---|---|---|---|---|---|"]
    keys = []
    for row in rows:
        key = (row["setting"], row["method"])
        if key not in keys:
            keys.append(key)
    for setting, method in keys:
        group = [r for r in rows if r["setting"] == setting and r["method"] == method]
        mean = {k: float(np.mean([r[k] for r in group])) for k in
                ("psnr_db", "ssim", "loe", "interval_consistency", "seconds")}
        consistency = ("" if np.isnan(mean["interval_consistency"])
                       else f"{100 * mean['interval_consistency']:.2f} %")
        lines.append(f"| {setting} | {method} | {mean['psnr_db']:.2f} | {mean['ssim']:.4f} | "
                     f"{mean['loe']:.1f} | {consistency} | {mean['seconds']:.3f} |")
    lines += ["", f"Means over {len({r['image'] for r in rows})} image(s). Per image:", "",
              "| image | setting | method | PSNR dB | SSIM | LOE | seconds |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['image']} | {r['setting']} | {r['method']} | {r['psnr_db']:.2f} | "
                     f"{r['ssim']:.4f} | {r['loe']:.1f} | {r['seconds']:.3f} |")
    return "\n".join(lines) + "\n"


def _figure(path: Path, original, dark, outputs: dict, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .demo import banding_crop

    panels = [("original", original)] if dark is None else [
        ("original", original), ("dark capture (as recorded)", dark)]
    panels += list(outputs.items())
    crop = banding_crop(original)
    fig, axes = plt.subplots(2, len(panels), figsize=(2.6 * len(panels), 5.6), squeeze=False)
    for column, (name, image) in enumerate(panels):
        for row, shown in enumerate((image, image[crop])):
            ax = axes[row][column]
            ax.imshow(np.clip(shown, 0, 1), cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_axis_off()
            if row == 0:
                ax.set_title(name, fontsize=8)
    fig.suptitle(f"{title} (bottom: zoom where banding shows)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=60)
    plt.close(fig)
