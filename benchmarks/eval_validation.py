"""Dequantizer v2 validation benchmark (issue 13): every held-out image, four settings.

The validation images are the files under ``--data`` (default: the wallpaper and
microscopy packages of ``make training-data``) and scikit-image's bundled images
whose names ``napari_lowlight.dequantizer.pairs.is_validation_image`` accepts, i.e.
the images no model is trained on.  They are read as for training
(``load_images``: 16-bit frames stored dimly are stretched to [0, 1] by their own
maximum), shrunk so that the longer side is at most ``--max-size`` pixels (no crop),
or with ``--crop`` cut to their central ``--max-size`` square at full resolution (no
resampling: a real frame keeps its pixel-scale noise, which shrinking averages away),
and restored as the product restores them: colour images as colour images
(``channel_axis=-1``, each channel by the network on its own).

Settings, each image captured with seed 0:

- ``global``: k = 1/30, r = 1.3, sigma = 0.25 q, 8 bits;
- ``local``: k = 1/5, r = 1.5, sigma = 0.25 q, 8 bits, vignette dimming;
- ``fluo12``: k = 1/64, r = 1.0, sigma = 0.25 q, 12 bits (fluorescence-like);
- ``laic-global``: the global capture's dark image through ``laic(dark, bits=8)``
  (exposure unknown); the reference is ``clip(gain * k * J**r, 0, 1)``, the input
  LAIC's ``.enhanced`` with its ``.quantization``.

``--sigma S`` gives every setting S steps of capture noise instead (``--sigma 0``: noise-free
captures, where the clean image is consistent with every interval and a raw-consistency
target applies as stated).

Methods: ``Jt`` (the re-exposed image, or the LAIC output), ``classic``
(``smooth_project`` with its defaults) and every ``--models`` entry with projection
(what ``dequantize(..., project=True)`` returns: the raw output projected by
``Quantization.project``, computed once from the raw output, which is identical);
a model registered with a refiner is also reported as ``NAME+refiner``: the same projected
output finished by its refiner (what ``dequantize(..., refine="auto")``, the default,
returns for it; ``--no-refiner`` leaves those rows out);
the raw output (``project=False``) gives the interval consistency only: exact, and within
the intervals widened by 2 sigma of the capture's noise (``interval_consistency(...,
noise=0.5)``), each beside the clean reference's own (with sigma = 0.25 step the reference
is about 80 % consistent with the exact intervals and >= 95 % within 2 sigma).

Reports PSNR and SSIM against the reference, a summary table per setting and model
and a per-image table, as Markdown (stdout, ``--out``) and CSV (``--csv``).

Run:  .venv/bin/python benchmarks/eval_validation.py [--models default] [--max-size 384] [--crop]
      quick check: ... --limit 2 --max-size 96
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _machine import machine_line
from skimage.transform import resize
from skimage.util import img_as_float

import napari_lowlight as nl
from napari_lowlight.dequantizer import smooth_project
from napari_lowlight.dequantizer.pairs import (
    VALIDATION_IMAGES,
    is_validation_image,
    load_images,
    test_set_images,
)
from napari_lowlight.dequantizer.inference import (
    PROJECTION_MARGIN,
    guard_projected,
    judge_noise,
    refine_projected,
)
from napari_lowlight.dequantizer.guard import guard_applies
from napari_lowlight.dequantizer.refiner import refiner_for
from napari_lowlight.dequantizer.weights import load_generator
from napari_lowlight.metrics import interval_consistency, psnr, ssim

SETTINGS = {
    "global": dict(k=1 / 30, r=1.3, sigma=0.25, bits=8),
    "local": dict(k=1 / 5, r=1.5, sigma=0.25, bits=8, dimming="vignette"),
    "fluo12": dict(k=1 / 64, r=1.0, sigma=0.25, bits=12),
    "laic-global": None,  # the global capture, compensated by LAIC
}
DEFAULT_DATA = ["data/wallpapers/unpacked", "data/microscopy/unpacked"]
SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")  # as load_images reads


def set_capture_noise(sigma: float) -> None:
    """Give every setting ``sigma`` steps of capture noise (``--sigma``; 0: noise-free)
    instead of its own; ``capture`` and ``setting_sigma`` read :data:`SETTINGS`."""
    if not 0.0 <= sigma <= 4.0:
        raise ValueError(f"capture noise must be 0-4 steps, got {sigma}")
    for values in SETTINGS.values():
        if values is not None:  # laic-global: the global capture's
            values["sigma"] = float(sigma)


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def short_name(name: str) -> str:
    return name if name.startswith("skimage:") else Path(name).name


def find_validation_images(folders) -> dict:
    """short name -> a function loading the image (files read only when used)."""
    found = {}
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            note(f"note: data folder {folder} is missing: skipped")
            continue
        files = [folder] if folder.is_file() else sorted(
            p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES)
        for path in files:
            if not is_validation_image(str(path)):
                continue
            name = path.name
            if name in found:
                name = str(path)  # the same file name twice: tell them apart by path
            found[name] = (lambda p=path: next(iter(load_images([p]).values()), None))
    bundled = {short_name(name): array for name, array in test_set_images().items()
               if is_validation_image(name)}
    for name, array in bundled.items():
        found[name] = (lambda a=array: a)
    order = {short_name(name): i for i, name in enumerate(VALIDATION_IMAGES)}
    return dict(sorted(found.items(), key=lambda item: (order.get(item[0], len(order)),
                                                        item[0])))


def prepare(array: np.ndarray, max_size: int, crop: bool = False) -> np.ndarray:
    """Float64 in [0, 1], the longer side shrunk to at most ``max_size`` (no crop), or with
    ``crop`` the central square of side ``max_size`` (shorter sides kept) at full
    resolution."""
    if crop:
        top, left = ((side - min(side, max_size)) // 2 for side in array.shape[:2])
        array = array[top:top + max_size, left:left + max_size]
        return np.clip(img_as_float(array).astype(np.float64), 0.0, 1.0)
    scale = max_size / max(array.shape[:2])
    if scale < 1:
        shape = tuple(max(1, int(round(s * scale))) for s in array.shape[:2]) + array.shape[2:]
        array = resize(array, shape, anti_aliasing=True)  # integers: scaled by the dtype max
    return np.clip(img_as_float(array).astype(np.float64), 0.0, 1.0)


def per_image_arguments(parser, *, images=None, images_help="all") -> argparse.Namespace:
    """Parse the options the per-image studies share (``refiner_choice.py``,
    ``guard_texture_channels.py``): model, setting, images, size, crop, threads; sets
    torch's threads."""
    parser.add_argument("--model", default="default")
    parser.add_argument("--setting", default="fluo12", choices=sorted(SETTINGS))
    parser.add_argument("--images", nargs="*", default=images,
                        help=f"parts of the validation images' names (default: {images_help})")
    parser.add_argument("--max-size", type=int, default=512)
    parser.add_argument("--crop", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args


def capture(setting: str, image: np.ndarray, axis):
    """(reference, input Jt, its quantization) of one setting."""
    if setting == "laic-global":
        dark = nl.degrade(image, seed=0, channel_axis=axis, **SETTINGS["global"])
        result = nl.laic(dark.dark, bits=dark.bits, channel_axis=axis)
        gain = result.gain if axis is None else np.expand_dims(result.gain, axis)
        reference = np.clip(gain * dark.k * image**dark.r, 0.0, 1.0)
        return reference, result.enhanced, result.quantization
    degraded = nl.degrade(image, seed=0, channel_axis=axis, **SETTINGS[setting])
    return image, degraded.reexposed, degraded.quantization


def load_models(entries, refiners: bool = True) -> dict:
    """label -> Generator (names as given, paths by their file stem), and after a model
    registered with a refiner ``label+refiner`` -> (its label, the Refiner)."""
    models = {}
    for entry in entries:
        label = Path(entry).stem if entry.endswith(".safetensors") else entry
        while label in models:
            label += "'"
        models[label] = load_generator(entry).eval()
        refiner = refiner_for(entry) if refiners else None
        if refiner is not None:
            models[f"{label}+refiner"] = (label, refiner)
    return models


def setting_sigma(setting: str) -> float:
    """The capture's noise, steps (after LAIC: the global capture's)."""
    return float(SETTINGS["global" if setting == "laic-global" else setting]["sigma"])


def noise_allowance(setting: str, noise, raw, quant, axis) -> float:
    """The projection's noise allowance for ``setting``: a number, "known" (the capture's
    own sigma; after LAIC the global capture's) or "auto" (judged from the raw output
    as ``dequantize(noise="auto")`` judges it)."""
    if noise == "auto":
        return judge_noise(raw, quant, channel_axis=axis)
    if noise != "known":
        return float(noise)
    return setting_sigma(setting)


#: ``--guard`` mode -> the suffix of its rows' labels
GUARD_SUFFIX = {"on": "+guard", "auto": "+auto-guard"}


def evaluate_one(setting, name, image, models, device, noise=0.0, guard=None) -> dict:
    axis = -1 if image.ndim == 3 else None
    reference, jt, quant = capture(setting, image, axis)
    classic = smooth_project(jt, quant, channel_axis=axis)
    row = {"setting": setting, "image": name, "shape": "x".join(map(str, image.shape)),
           "psnr_jt": psnr(reference, jt), "psnr_classic": psnr(reference, classic),
           "ssim_jt": ssim(reference, jt, channel_axis=axis),
           "ssim_classic": ssim(reference, classic, channel_axis=axis),
           # the clean reference is not consistent with a noisy capture's exact intervals
           # everywhere; within 2 sigma of noise it is at >= 95 % of pixels (|noise| <= 2
           # sigma there), the fair bar for a restoration's raw output
           "consistency_reference": interval_consistency(reference, quant),
           "consistency2s_reference": interval_consistency(reference, quant,
                                                           noise=2 * setting_sigma(setting))}
    done = {}
    for label, generator in models.items():
        if isinstance(generator, tuple):  # a refiner on its model's projected output
            base, refiner = generator
            raw, allowance, projected = done[base]
            projected = refine_projected(refiner, np.asarray(jt), projected, quant,
                                         noise=allowance, channel_axis=axis)
        else:
            raw = nl.dequantize(jt, quantization=quant, model=generator, device=device,
                                project=False, channel_axis=axis)
            # = nl.dequantize(..., project=True, noise=..., refine=False), without running
            # the network twice
            allowance = noise_allowance(setting, noise, raw, quant, axis)
            projected = quant.project(raw.astype(np.float64), margin=PROJECTION_MARGIN,
                                      noise=allowance).astype(np.float32)
            done[label] = raw, allowance, projected
        row[f"psnr_{label}"] = psnr(reference, projected)
        row[f"ssim_{label}"] = ssim(reference, projected, channel_axis=axis)
        row[f"consistency_{label}"] = interval_consistency(raw, quant)
        row[f"consistency2s_{label}"] = interval_consistency(raw, quant,
                                                            noise=2 * setting_sigma(setting))
        row[f"noise_{label}"] = allowance
        if guard:
            # the texture guard on this row's output: dequantize(..., guard=True); "auto":
            # only where dequantize's default guards (captures of 12 bits and more)
            applies = guard_applies(guard if guard == "auto" else True, quant.bits)
            guarded = guard_projected(np.asarray(jt), projected, quant, noise=allowance,
                                      channel_axis=axis) if applies else projected
            suffix = GUARD_SUFFIX[guard]
            row[f"psnr_{label}{suffix}"] = psnr(reference, guarded)
            row[f"ssim_{label}{suffix}"] = ssim(reference, guarded, channel_axis=axis)
            for key in ("consistency", "consistency2s", "noise"):
                row[f"{key}_{label}{suffix}"] = row[f"{key}_{label}"]
    return row


def summary_table(rows, settings, labels) -> list[str]:
    lines = [
        "| setting | model | images | Jt dB | classic dB | model dB | model − classic dB | "
        "model − Jt dB | min model − Jt dB | min model − classic dB | Jt SSIM | classic SSIM "
        "| model SSIM | SSIM ≥ classic | raw consistency | reference consistency "
        "| raw / reference within 2σ | noise allowance (steps) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for setting in settings:
        chosen = [row for row in rows if row["setting"] == setting]
        if not chosen:
            continue
        jt = np.array([row["psnr_jt"] for row in chosen])
        classic = np.array([row["psnr_classic"] for row in chosen])
        ssim_jt = np.array([row["ssim_jt"] for row in chosen])
        ssim_classic = np.array([row["ssim_classic"] for row in chosen])
        reference = np.array([row["consistency_reference"] for row in chosen])
        reference2s = np.array([row["consistency2s_reference"] for row in chosen])
        for label in labels:
            model = np.array([row[f"psnr_{label}"] for row in chosen])
            ssim_model = np.array([row[f"ssim_{label}"] for row in chosen])
            consistency = np.array([row[f"consistency_{label}"] for row in chosen])
            allowance = np.array([row[f"noise_{label}"] for row in chosen])
            consistency2s = np.array([row[f"consistency2s_{label}"] for row in chosen])
            lines.append(
                f"| {setting} | {label} | {len(chosen)} | {jt.mean():.2f} | "
                f"{classic.mean():.2f} | {model.mean():.2f} | "
                f"{(model - classic).mean():+.2f} | {(model - jt).mean():+.2f} | "
                f"{(model - jt).min():+.2f} | {(model - classic).min():+.2f} | "
                f"{ssim_jt.mean():.4f} | {ssim_classic.mean():.4f} | {ssim_model.mean():.4f} | "
                f"{np.mean(ssim_model >= ssim_classic) * 100:.0f} % | "
                f"{consistency.mean() * 100:.1f} % | {reference.mean() * 100:.1f} % | "
                f"{consistency2s.mean() * 100:.1f} % / {reference2s.mean() * 100:.1f} % | "
                f"{allowance.mean():.3f} |")
    return lines


def image_table(rows, labels) -> list[str]:
    head = (["setting", "image", "Jt dB", "classic dB"] + [f"{m} dB" for m in labels]
            + ["Jt SSIM", "classic SSIM"] + [f"{m} SSIM" for m in labels]
            + [f"{m} raw consistency" for m in labels])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = ([row["setting"], row["image"], f"{row['psnr_jt']:.2f}",
                  f"{row['psnr_classic']:.2f}"]
                 + [f"{row[f'psnr_{m}']:.2f}" for m in labels]
                 + [f"{row['ssim_jt']:.4f}", f"{row['ssim_classic']:.4f}"]
                 + [f"{row[f'ssim_{m}']:.4f}" for m in labels]
                 + [f"{row[f'consistency_{m}'] * 100:.1f} %" for m in labels])
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="*", default=DEFAULT_DATA,
                        help="folders (or files) searched for the validation images")
    parser.add_argument("--models", nargs="+", default=["default"],
                        help="shipped model names or .safetensors paths")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--max-size", type=int, default=384, help="longer side, pixels")
    parser.add_argument("--crop", action="store_true",
                        help="the central --max-size square at full resolution instead of "
                        "the whole image shrunk")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--noise", default="auto",
                        help="the models' projection allowance in steps (dequantize(noise=)): "
                        "a number, 'known' for each setting's own sigma, or 'auto' "
                        "(judged from the output, dequantize's default; the default here too)")
    parser.add_argument("--sigma", type=float, default=None,
                        help="the captures' noise in steps for every setting instead of each "
                        "setting's own (0.25): 0 for noise-free captures, where the clean "
                        "image is 100 %% consistent with the intervals")
    parser.add_argument("--no-refiner", action="store_true",
                        help="leave out the NAME+refiner rows")
    parser.add_argument("--guard", nargs="?", const="on", choices=list(GUARD_SUFFIX),
                        default=None,
                        help="also report every model's output through the texture guard: "
                        "'on' (the default when given bare; NAME+guard rows: "
                        "dequantize(..., guard=True)) or 'auto' (NAME+auto-guard rows: "
                        "guarded where dequantize's default guards, 12 bits and more)")
    parser.add_argument("--out", type=Path, default=None, help="Markdown report file")
    parser.add_argument("--csv", type=Path, default=None, help="per-image rows as CSV")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    if args.sigma is not None:
        try:
            set_capture_noise(args.sigma)
        except ValueError as exc:
            parser.error(str(exc))

    models = load_models(args.models, refiners=not args.no_refiner)
    labels = list(models)
    if args.guard:
        labels = [name for label in labels
                  for name in (label, f"{label}{GUARD_SUFFIX[args.guard]}")]
    found = find_validation_images(args.data)
    if args.limit is not None:
        found = dict(list(found.items())[:args.limit])
    images = {}
    for name, load in found.items():
        array = load()
        if array is None:
            note(f"note: {name} is not usable (too small, not an image): skipped")
            continue
        images[name] = prepare(array, args.max_size, crop=args.crop)
    if not images:
        sys.exit("no validation images found")

    header = [f"{machine_line()}, torch {torch.__version__} ({args.threads} threads, "
              f"{args.device}), models {', '.join(args.models)}, projection noise "
              f"allowance {args.noise} (margin {PROJECTION_MARGIN})"
              + (f", texture guard rows: {args.guard}" if args.guard else "")
              + (f", capture noise {args.sigma} step in every setting"
                 if args.sigma is not None else ""),
              "",
              f"{len(images)} validation images, "
              + (f"central {args.max_size}-px squares at full resolution: " if args.crop
                 else f"longer side at most {args.max_size} px: ")
              + ", ".join(images)]
    print("\n".join(header), flush=True)

    rows = []
    for name, image in images.items():
        for setting in args.settings:
            tick = time.perf_counter()
            try:
                row = evaluate_one(setting, name, image, models, args.device, args.noise,
                                   guard=args.guard)
            except ValueError as exc:  # e.g. LAIC on a capture that came out all black
                note(f"note: {setting} / {name} skipped: {exc}")
                continue
            rows.append(row)
            note(f"{setting:>11} {name} {row['shape']}: Jt {row['psnr_jt']:.2f}, classic "
                 f"{row['psnr_classic']:.2f}, " + ", ".join(
                     f"{m} {row[f'psnr_{m}']:.2f}" for m in labels)
                 + f" dB ({time.perf_counter() - tick:.1f} s)")
    rows.sort(key=lambda row: args.settings.index(row["setting"]))
    elapsed = time.perf_counter() - started

    report = header + ["", f"took {elapsed:.0f} s", "",
                       "## Summary (means over images; PSNR in dB)", ""]
    report += summary_table(rows, args.settings, labels)
    report += ["", "## Per image", ""] + image_table(rows, labels)
    text = "\n".join(report[len(header):])
    print(text, flush=True)
    if args.out is not None:
        args.out.write_text("\n".join(report) + "\n")
        note(f"wrote {args.out}")
    if args.csv is not None:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        note(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
