"""Which noise allowance should ``dequantize(noise=...)`` project with?  (issue 13)

The network's raw output is computed once per image and setting, then projected into the
quantization intervals widened by each candidate allowance (in steps, as
``Quantization.project(noise=...)``):

- ``raw``: no projection (``project=False``);
- ``strict``: 0;  ``judged``: ``judge_noise(..., floor=0)`` (``noise="auto"`` until
  ``AUTO_NOISE_FLOOR``);
- fixed 0.25, 0.5, 1;  ``floor-0.25`` (today's ``noise="auto"``), ``floor-0.5``:
  max(judged, 0.25 or 0.5).

Settings: those of ``eval_validation.py`` (noise 0.25 steps) plus ``global-clean`` and
``fluo12-clean``, the same captures without noise, where the strict projection is right.

``--images training`` takes every ``--every``-th training image (never a validation
image): the set a rule is chosen on.  ``--images validation`` reports on the validation
set.  Prints PSNR differences to the classic dequantizer (mean, and the worst image's
difference to Jt) per rule and setting, as Markdown.

Run:  .venv/bin/python benchmarks/noise_allowance.py --images training --max-size 512
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from _machine import machine_line
from eval_validation import DEFAULT_DATA, SETTINGS, capture, find_validation_images, prepare

import napari_lowlight as nl
from napari_lowlight.dequantizer import smooth_project
from napari_lowlight.dequantizer.inference import PROJECTION_MARGIN, judge_noise
from napari_lowlight.dequantizer.pairs import is_validation_image, load_images
from napari_lowlight.dequantizer.weights import load_generator
from napari_lowlight.metrics import psnr

# added to eval_validation.SETTINGS itself, where its capture() looks them up
SETTINGS["global-clean"] = dict(SETTINGS["global"], sigma=0.0)
SETTINGS["fluo12-clean"] = dict(SETTINGS["fluo12"], sigma=0.0)
RULES = {
    "raw": None,
    "strict": lambda judged: 0.0,
    "judged": lambda judged: judged,
    "0.25": lambda judged: 0.25,
    "0.5": lambda judged: 0.5,
    "1": lambda judged: 1.0,
    "floor-0.25": lambda judged: max(judged, 0.25),
    "floor-0.5": lambda judged: max(judged, 0.5),
}


def training_images(folders, every: int) -> dict:
    """short name -> loader of every ``every``-th training image (validation ones left out)."""
    images = {name: image for name, image in load_images(folders).items()
              if not is_validation_image(name)}
    chosen = sorted(images)[::every]
    return {name.rsplit("/", 1)[-1]: (lambda a=images[name]: a) for name in chosen}


def rows_for(setting, name, image, generator) -> dict:
    axis = -1 if image.ndim == 3 else None
    reference, jt, quant = capture(setting, image, axis)
    raw = nl.dequantize(jt, quantization=quant, model=generator, device="cpu", project=False,
                        channel_axis=axis).astype(np.float64)
    judged = judge_noise(raw, quant, channel_axis=axis, floor=0.0)  # the bare judgement
    row = {"setting": setting, "image": name, "jt": psnr(reference, jt), "allowance": judged,
           "classic": psnr(reference, smooth_project(jt, quant, channel_axis=axis))}
    for rule, allowance in RULES.items():
        out = raw if allowance is None else quant.project(
            raw, margin=PROJECTION_MARGIN, noise=allowance(judged))
        row[rule] = psnr(reference, out)
    return row


def table(rows, settings) -> list[str]:
    lines = ["| setting | images | judged (steps) | " + " | ".join(
        f"{rule} − classic (worst − Jt)" for rule in RULES) + " |",
        "|---|---|---|" + "---|" * len(RULES)]
    for setting in settings:
        # a flat image has no error to measure (infinite PSNR): left out
        chosen = [row for row in rows if row["setting"] == setting
                  and all(np.isfinite(row[key]) for key in ("jt", "classic", *RULES))]
        classic = np.array([row["classic"] for row in chosen])
        jt = np.array([row["jt"] for row in chosen])
        cells = []
        for rule in RULES:
            value = np.array([row[rule] for row in chosen])
            cells.append(f"{(value - classic).mean():+.2f} ({(value - jt).min():+.2f})")
        judged = np.mean([row["allowance"] for row in chosen])
        lines.append(f"| {setting} | {len(chosen)} | {judged:.2f} | " + " | ".join(cells) + " |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", choices=("training", "validation"), default="training")
    parser.add_argument("--data", nargs="*", default=DEFAULT_DATA)
    parser.add_argument("--every", type=int, default=6, help="training: every N-th image")
    parser.add_argument("--model", default="default")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--max-size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = (training_images(args.data, args.every) if args.images == "training"
              else find_validation_images(args.data))
    generator = load_generator(args.model).eval()
    started = time.perf_counter()
    rows = []
    for name, load in images.items():
        image = prepare(load(), args.max_size)
        for setting in args.settings:
            rows.append(rows_for(setting, name, image, generator))
        print(f"{name}: done", file=sys.stderr, flush=True)
    print(machine_line() + f", torch {torch.__version__} ({args.threads} threads), model {args.model}, {args.images} images "
          f"({len(images)}), longer side {args.max_size} px, "
          f"{time.perf_counter() - started:.0f} s\n")
    print("\n".join(table(rows, args.settings)))


if __name__ == "__main__":
    main()
