"""What the texture guard does per capture setting, on every training image (issue 13).

Why ``dequantize``'s default guards by bit depth (``guard="auto"``: captures of
``GUARD_AUTO_BITS`` = 12 bits and more): for each image the networks were *trained* on
(``make training-data`` and scikit-image's training samples; never the validation images nor
the evaluation-only sources), its central 512-px square at full resolution and the whole
image shrunk to 512 px (one channel), in ``eval_validation.py``'s settings ``fluo12``
(12 bit), ``local`` and ``global`` (8 bit): ``dequantize`` unguarded (``guard=False``; the
cases of ``calibrate_guard.py``) and that result through the shipped guard (what
``guard=True`` adds), each against the plain re-exposure ``Jt``.  Images that are
one flat colour are left out (no level to restore).

Run:  .venv/bin/python benchmarks/guard_by_setting.py [--threads 2] [--model NAME]
      [--out docs/evaluation/guard-by-setting.md]   (about 3 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _machine import machine_line
from calibrate_guard import SETTINGS, TOLERANCE_DB, restored_cases
from eval_validation import SETTINGS as CAPTURES
from eval_validation import set_capture_noise

from napari_lowlight.dequantizer.guard import texture_guard
from napari_lowlight.dequantizer.pairs import is_validation_image, load_images, test_set_images
from napari_lowlight.metrics import psnr

ROOT = Path(__file__).resolve().parents[1]
DATA = [ROOT / "data/wallpapers/unpacked", ROOT / "data/microscopy/unpacked"]


def training_arrays() -> dict:
    """name -> every training image present (``make training-data`` and scikit-image's
    training samples; never the validation images), colour kept, sorted by name."""
    images = {}
    for folder in DATA:
        if folder.exists():
            images.update(load_images([folder], min_side=128))
    images.update(test_set_images())
    return {name: array for name, array in sorted(images.items())
            if not is_validation_image(name)}


def training_images() -> dict:
    """short name -> one 2-D plane of every training image present."""
    planes = {}
    for name, array in training_arrays().items():
        plane = array[..., 1] if array.ndim == 3 else array
        if np.ptp(plane) == 0 or min(plane.shape) < 128:
            continue  # one flat colour (nothing to restore), or too small
        planes[name.rsplit("/", 1)[-1]] = plane
    return planes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="default")
    parser.add_argument("--sigma", type=float, default=None,
                        help="capture noise in steps for every setting (eval_validation.py "
                        "--sigma; 0: noise-free captures)")
    parser.add_argument("--noise", default="auto",
                        help="dequantize(noise=...): 'auto' (the default) or a number of steps "
                        "(0: the capture declared noise-free)")
    parser.add_argument("--out", type=Path, default=None, help="Markdown report file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    if args.sigma is not None:
        set_capture_noise(args.sigma)
    noise = args.noise if args.noise == "auto" else float(args.noise)
    planes = training_images()
    rows = []  # (setting, name, size, unguarded dB over Jt, guarded dB over Jt)
    exact = 0  # image-settings whose Jt is the reference itself, left out
    for label, reference, jt, step, plain in restored_cases(args.model, planes=planes,
                                                            noise=noise):
        name, size, setting = label.rsplit(" ", 2)
        base = psnr(reference, jt)
        if not np.isfinite(base):
            # a noise-free capture of flat or synthetic content re-exposes exactly: no dB
            # over Jt to measure (classic_floor.py counts these)
            exact += 1
            continue
        # the guard as dequantize(guard=True) applies it to the unguarded result
        guarded = texture_guard(jt, plain, step)
        rows.append((setting, name, size, psnr(reference, plain) - base,
                     psnr(reference, guarded) - base))
    lines = [f"{machine_line()}, torch {torch.__version__} ({args.threads} threads); model "
             f"{args.model}; {len(planes)} training images, central 512-px square and shrunk "
             f"to 512 px"
             + (f"; capture noise {args.sigma:g} step" if args.sigma is not None else "")
             + (f"; dequantize(noise={args.noise})" if args.noise != "auto" else "")
             + (f"; {exact} image-settings left out (Jt exact)" if exact else "")
             + f"; {time.perf_counter() - started:.0f} s", "",
             "| setting | bits | image-settings | unguarded dB over Jt | guarded | guard gain "
             "(mean) | worst guard gain | below Jt unguarded | below Jt guarded |",
             "|---|---|---|---|---|---|---|---|---|"]
    for setting in SETTINGS:
        chosen = [row for row in rows if row[0] == setting]
        plain = np.array([row[3] for row in chosen])
        guarded = np.array([row[4] for row in chosen])
        lines.append(f"| {setting} | {CAPTURES[setting]['bits']} | {len(chosen)} | "
                     f"{plain.mean():+.3f} | {guarded.mean():+.3f} | "
                     f"{(guarded - plain).mean():+.3f} | {(guarded - plain).min():+.2f} | "
                     f"{int((plain < -TOLERANCE_DB).sum())} | "
                     f"{int((guarded < -TOLERANCE_DB).sum())} |")
    lines += ["", f"below Jt: by more than {TOLERANCE_DB} dB.", "",
              "| setting | image | size | unguarded dB over Jt | guarded |",
              "|---|---|---|---|---|"]
    lines += [f"| {s} | {n} | {z} | {a:+.2f} | {b:+.2f} |" for s, n, z, a, b in rows]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text("# The texture guard per capture setting (training images only)\n\n"
                            "Command: `.venv/bin/python benchmarks/guard_by_setting.py "
                            f"--threads {args.threads}"
                            + (f" --model {args.model}" if args.model != "default" else "")
                            + (f" --sigma {args.sigma:g}" if args.sigma is not None else "")
                            + (f" --noise {args.noise}" if args.noise != "auto" else "")
                            + f" --out {args.out}`.\n\n" + report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
