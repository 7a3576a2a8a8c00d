"""Train the refiner of a registered model and ship it beside the model's weights.

The refiner (``napari_lowlight.dequantizer.refiner``) learns, on synthetic pairs of the
training crops, a per-pixel convex blend of the model's projected output, light smoothings
of it and ``Jt``.  It belongs to one network (it corrects that network's habits), so it is
registered in that model's ``models.json`` entry as ``"refiner": {"file", "sha256", ...}``;
re-exporting the model under the same name drops it.

Usage (the shipped ``default``'s refiner, about 12 minutes on 2 CPU cores)::

    python scripts/make_training_pack.py --data data --out device-pack --crops 700
    OMP_NUM_THREADS=2 python scripts/train_refiner.py --pack device-pack/pairs-source.npz \\
        --model default --weights-dir weights

The pack holds crops of the training images only under ``train/`` (the validation images'
crops, under ``validation/``, are never read here).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from napari_lowlight.dequantizer.pairs import PairSettings
from napari_lowlight.dequantizer.refiner import (
    refiner_training_data,
    save_refiner,
    train_refiner,
)
from napari_lowlight.dequantizer.weights import (
    available_models,
    load_generator,
    write_registry,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", required=True, help="scripts/make_training_pack.py's .npz")
    parser.add_argument("--model", default="default", help="registered model name")
    parser.add_argument("--weights-dir", required=True,
                        help="the folder holding the model and its models.json")
    parser.add_argument("--pairs", type=int, default=800)
    parser.add_argument("--iterations", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=16, help="the CNN's features")
    parser.add_argument("--input-sigmas", type=float, nargs="*", default=[],
                        help="Gaussians (px) of Jt as extra candidates (1.5: the classic "
                        "dequantizer's filter); default none")
    parser.add_argument("--reference-noise", type=float, default=None, metavar="P",
                        help="share of crops given a well-exposed sensor's noise before the "
                        "capture is simulated (PairSettings.reference_noise_probability), "
                        "so that targets carry real pixel-scale noise; default: the "
                        "model's own pair settings")
    parser.add_argument("--texture-sigma", type=float, default=None, metavar="PX",
                        help="give the refiner the capture's local texture too, averaged over "
                        "a Gaussian window of PX pixels (Refiner(texture_sigma=...)); "
                        "default: no texture input")
    parser.add_argument("--dilations", type=int, nargs="+", default=None, metavar="D",
                        help="dilation of each hidden 3x3 layer (Refiner(dilations=...)); "
                        "default 1 2 4 (7 px of reach each side)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    folder = Path(args.weights_dir)
    registry_path = folder / "models.json"
    registry = json.loads(registry_path.read_text())
    if args.model not in registry:
        parser.error(f"{args.model!r} is not registered in {registry_path}")
    entry = registry[args.model]
    generator = load_generator(args.model, folder=folder)
    pairs = dict(entry.get("pairs") or available_models(folder)[args.model].get("pairs", {}))
    pairs["laic_reuse"] = 1  # each pair drawn afresh: no batch places to fill
    if args.reference_noise is not None:
        pairs["reference_noise_probability"] = args.reference_noise
    settings = PairSettings(**{key: tuple(value) if isinstance(value, list) else value
                               for key, value in pairs.items()})
    with np.load(args.pack, allow_pickle=False) as pack:
        images = [pack[key] for key in pack.files if key.startswith("train/")]
    if not images:
        parser.error(f"{args.pack} holds no train/ crops")

    started = time.time()
    candidates, steps, targets = refiner_training_data(
        generator, images, settings, pairs=args.pairs, seed=123 + args.seed,
        input_sigmas=tuple(args.input_sigmas),
        progress=lambda done, total: print(f"pairs {done}/{total} "
                                           f"{time.time() - started:.0f} s", flush=True))
    made = time.time() - started
    refiner = train_refiner(
        candidates, steps, targets, iterations=args.iterations, seed=args.seed,
        width=args.width, input_sigmas=tuple(args.input_sigmas),
        texture_sigma=args.texture_sigma,
        **({} if args.dilations is None else {"dilations": tuple(args.dilations)}),
        progress=lambda it, gain: print(f"iteration {it}: running gain {gain:+.3f} dB",
                                        flush=True))
    trained = time.time() - started - made
    file = f"{args.model}-refiner.safetensors"
    card = {"pairs": args.pairs, "iterations": args.iterations, "seed": args.seed,
            "pack": os.path.basename(args.pack), "training_crops": len(images),
            "seconds": round(made + trained, 1), "sigmas": list(refiner.sigmas),
            "input_sigmas": list(refiner.input_sigmas), "width": refiner.width,
            "texture_sigma": refiner.texture_sigma, "dilations": list(refiner.dilations),
            "reference_noise_probability": settings.reference_noise_probability}
    sha = save_refiner(refiner, folder / file, extra=card)
    entry["refiner"] = {"file": file, "sha256": sha, **card}
    write_registry(folder, registry)
    print(f"wrote {folder / file} ({made:.0f} s of pairs, {trained:.0f} s of training); "
          f"registered with {args.model!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
