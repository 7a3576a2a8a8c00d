"""The network's step input at the range's cut top level (issue 13; an experiment, not shipped).

The dequantizer network is conditioned on each pixel's interval width (``log2(step)`` as an
input, its residual scaled by the step).  The brightest reachable level's interval is cut
at 1.0: in the 12-bit setting (k = 1/64) level 64's interval is [0.9924, 1.0], under half of
a step, while ``Jt`` there is 1.0, the level's own value.  Where the capture's noise flips
pixels between levels 63 and 64 (a highlight just below saturation: calla.png's red
petals), the truth lies near that edge and the local mean of ``Jt`` finds it, but the
network, seeing a step map that halves from pixel to pixel, leaves the level-64 pixels near
1.0 and the level-63 ones low (``Jt`` biased by +0.37 / -0.41 steps, the network +0.35 /
-0.23, the classic dequantizer +0.08 / -0.11).

The experiment: the same shipped pipeline (network, projection with the judged noise,
refiner, guard by bit depth), but the network is shown the level's *uncut* width
(``((m + 1/2) q / k) ** (1/r) - lo``) where the cut interval still holds ``Jt`` at its level's
value (the clip at 1.0 moved it by under a tenth of a step, so ``Jt`` is the centre the
network expects); the refiner, guard and projection keep the exact intervals.  Levels whose
value lies beyond 1.0 (the global setting's level 9: [1, 1]) keep their cut width.

Two sets, kept apart: every *training* image (the decision set, as in
``guard_by_setting.py``, in colour; central 512-px square at full resolution and the whole
image shrunk to 512 px) and the 32 *validation* images (shrunk to 512 px; reported, not
used to decide).  Settings as ``eval_validation.py``'s ``fluo12``, ``local``, ``global``
(seed 0).

Run:  .venv/bin/python benchmarks/top_level_conditioning.py [--threads 2]
      [--sets training validation] [--diagnose calla.png]   (about 15 minutes on 2 cores;
      ``--sets --diagnose calla.png`` for the bias table alone, a minute)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _machine import machine_line
from eval_validation import DEFAULT_DATA, capture, find_validation_images, prepare
from guard_by_setting import training_arrays

from napari_lowlight.dequantizer import inference
from napari_lowlight.dequantizer.guard import guard_applies
from napari_lowlight.dequantizer.refiner import refiner_for
from napari_lowlight.dequantizer.weights import load_generator
from napari_lowlight.metrics import psnr
from napari_lowlight.quantization import Quantization

SETTINGS = ("fluo12", "local", "global")
#: The clip at 1.0 may move ``Jt`` by at most this share of the uncut width.
CENTRE_TOLERANCE = 0.1


def uncut_step(quant: Quantization, tolerance: float = CENTRE_TOLERANCE) -> np.ndarray:
    """The interval widths, with the brightest reachable level's uncut width where the
    range's end at 1.0 cut it and ``Jt`` still sits at the level's value (the clip moved it
    by at most ``tolerance`` of the uncut width).  ``tolerance=inf``: at every reachable
    level the range's end cut, the empty one at exactly 1.0 (``[1, 1]``) included."""
    lo, hi = quant.bounds()
    width = hi - lo
    m = quant.levels.astype(np.float64)
    nominal = (m * quant.q / quant.k) ** (1.0 / quant.r)
    uncut_hi = ((m + 0.5) * quant.q / quant.k) ** (1.0 / quant.r)
    uncut = uncut_hi - lo
    some = (width > 0) if np.isfinite(tolerance) else quant.reachable
    cut = (some & (uncut_hi > hi) & (quant.levels < quant.max_level)
           & (nominal - hi <= tolerance * uncut))
    return np.where(cut, uncut, width)


class _Steps:
    """What ``inference._restore_planes`` reads of a quantization: the network's step."""

    def __init__(self, step):
        self.interval_width = step


def restored(generator, refiner, jt, quant: Quantization, step, axis) -> np.ndarray:
    """``dequantize``'s result (noise judged, refiner, guard by bit depth), the network
    conditioned on ``step``."""
    values = np.asarray(jt)
    raw = inference._restore_planes(values, _Steps(step), generator, device=torch.device("cpu"),
                                    tile=None, channel_axis=axis, progress=None)
    noise = inference.judge_noise(raw, quant, channel_axis=axis)
    out = quant.project(raw.astype(np.float32), margin=inference.PROJECTION_MARGIN, noise=noise)
    out = inference.refine_projected(refiner, values, out, quant, noise=noise, channel_axis=axis)
    if guard_applies("auto", quant.bits):
        out = inference.guard_projected(values, out, quant, noise=noise, channel_axis=axis)
    return out


def training_images() -> dict:
    """short name -> a function returning the training image (colour kept); flat ones out."""
    return {name.rsplit("/", 1)[-1]: (lambda a=array: a)
            for name, array in training_arrays().items() if np.ptp(array) > 0}


def compare(images: dict, crops, generator, refiner) -> list:
    rows = []
    for name, load in images.items():
        array = load()
        for crop in crops:
            image = prepare(array, 512, crop=crop)
            axis = -1 if image.ndim == 3 else None
            for setting in SETTINGS:
                reference, jt, quant = capture(setting, image, axis)
                shipped, uncut = quant.interval_width, uncut_step(quant)
                changed = float(np.mean(uncut != shipped))
                if changed == 0:
                    continue  # no cut top level: the same result
                before = psnr(reference, restored(generator, refiner, jt, quant, shipped, axis))
                after = psnr(reference, restored(generator, refiner, jt, quant, uncut, axis))
                rows.append((name, "crop" if crop else "shrunk", setting, changed, before, after,
                             psnr(reference, np.asarray(jt))))
    return rows


def report(title: str, rows: list, counted: int) -> None:
    print(f"\n### {title}\n")
    print("| setting | image-settings changed | mean change dB (all) | mean change dB "
          "(changed) | better by > 0.05 | worse by > 0.05 | worst | best |")
    print("|---|---|---|---|---|---|---|---|")
    for setting in SETTINGS:
        changes = np.array([after - before for _, _, s, _, before, after, _ in rows
                            if s == setting])
        if changes.size == 0:
            print(f"| {setting} | 0 | 0 | - | 0 | 0 | - | - |")
            continue
        print(f"| {setting} | {changes.size} | {changes.sum() / counted:+.4f} | "
              f"{changes.mean():+.4f} | {(changes > 0.05).sum()} | {(changes < -0.05).sum()} | "
              f"{changes.min():+.2f} | {changes.max():+.2f} |")
    print("\nlargest changes (dB, shipped -> uncut top level; share of pixels changed):\n")
    for name, size, setting, changed, before, after, _ in sorted(
            rows, key=lambda row: abs(row[5] - row[4]), reverse=True)[:10]:
        print(f"- {name} {size} {setting}: {before:.2f} -> {after:.2f} ({after - before:+.2f}; "
              f"{changed:.1%})")


def diagnose(name: str, generator, refiner) -> None:
    """For one validation image: the mean error, in steps, on the cut top level and the level
    below it (12-bit setting, the channel with most cut pixels) of ``Jt``, classic and the
    network's raw output with either step; then the global setting with every cut level
    shown uncut (no centre tolerance), channel by channel."""
    from napari_lowlight.dequantizer import smooth_project

    image = prepare(find_validation_images(DEFAULT_DATA)[name](), 512)
    axis = -1 if image.ndim == 3 else None
    reference, jt, quant = capture("fluo12", image, axis)
    shipped, uncut = quant.interval_width, uncut_step(quant)
    channels = np.moveaxis(uncut != shipped, -1, 0) if axis is not None else [uncut != shipped]
    channel = int(np.argmax([np.mean(c) for c in channels])) if axis is not None else None

    def plane(array):
        return np.asarray(array)[..., channel] if channel is not None else np.asarray(array)

    def raw(step):
        return inference._restore_planes(np.asarray(jt), _Steps(step), generator,
                                         device=torch.device("cpu"), tile=None,
                                         channel_axis=axis, progress=None)

    estimates = {"Jt": jt, "classic": smooth_project(jt, quant, channel_axis=axis),
                 "network, shipped step": raw(shipped), "network, uncut step": raw(uncut)}
    step = float(np.median(plane(shipped)[plane(shipped) > 0]))
    levels = plane(quant.levels).astype(int)
    top = int(levels[plane(uncut) != plane(shipped)].max())
    print(f"\n### {name}: mean error in steps near the cut top level (fluo12, channel "
          f"{channel}; {np.mean(plane(uncut) != plane(shipped)):.0%} of its pixels cut)\n")
    print("| level | pixels | " + " | ".join(estimates) + " |")
    print("|---" * (len(estimates) + 2) + "|")
    for level in (top, top - 1):
        where = levels == level
        print(f"| {level} | {int(where.sum())} | " + " | ".join(
            f"{np.mean((plane(e)[where] - plane(reference)[where]) / step):+.2f}"
            for e in estimates.values()) + " |")
    reference, jt, quant = capture("global", image, axis)
    before = restored(generator, refiner, jt, quant, quant.interval_width, axis)
    after = restored(generator, refiner, jt, quant, uncut_step(quant, np.inf), axis)
    print(f"\nglobal setting, every reachable cut level shown uncut (no centre tolerance: the "
          "level at exactly 1.0 too), PSNR dB per channel, shipped -> uncut:")
    for index in range(image.shape[-1] if axis is not None else 1):
        pick = (lambda a, i=index: np.asarray(a)[..., i]) if axis is not None else np.asarray
        print(f"- channel {index}: {psnr(pick(reference), pick(before)):.2f} -> "
              f"{psnr(pick(reference), pick(after)):.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="default")
    parser.add_argument("--sets", nargs="*", default=["training", "validation"],
                        choices=["training", "validation"])
    parser.add_argument("--diagnose", nargs="*", default=["calla.png"], metavar="IMAGE",
                        help="validation images to show the bias near the cut level of "
                             "(default: calla.png)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator, refiner = load_generator(args.model).eval(), refiner_for(args.model)
    print(f"{machine_line()}, torch {torch.__version__} ({args.threads} threads); model "
          f"{args.model} with its refiner, guard by bit depth; dB PSNR")
    for which in args.sets:
        started = time.perf_counter()
        if which == "training":
            images, crops = training_images(), (True, False)
        else:
            images, crops = find_validation_images(DEFAULT_DATA), (False,)
        rows = compare(images, crops, generator, refiner)
        counted = len(images) * len(crops)
        sizes = "cropped and shrunk" if len(crops) == 2 else "shrunk"
        report(f"{which} images ({len(images)}, {sizes} to 512 px; "
               f"{time.perf_counter() - started:.0f} s)", rows, counted)
    for name in args.diagnose:
        diagnose(name, generator, refiner)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
