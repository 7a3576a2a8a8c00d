"""Pack random crops of the training images into one compressed file for a device run.

The accelerator machine has no package registry and takes at most 64 MiB of carried files,
so the 300 MB of ``make training-data`` cannot travel; a pack of gray crops can.  Each
training image gives crops in proportion to the square root of its area (a 4K wallpaper
is not worth fifty microscope fields); 8-bit sources stay uint8, deeper ones uint16 (their
fine levels are what 12- and 16-bit pairs need).  The validation images
(``VALIDATION_IMAGES``) give a separate, small set of crops; the evaluation-only sources
are never read (``make training-data`` does not fetch them).

Usage::

    python scripts/make_training_pack.py --data data --out device-pack --crops 700
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from napari_lowlight.dequantizer.pairs import (
    is_validation_image,
    load_images,
    test_set_images,
)


def _gray_crops(image: np.ndarray, count: int, side: int, rng) -> list[np.ndarray]:
    if image.dtype.kind == "f":
        image = np.round(np.clip(image, 0, 1) * 65535).astype(np.uint16)
    crops = []
    rows, cols = image.shape[:2]
    side_y, side_x = side, side
    for _ in range(count):
        y = int(rng.integers(0, rows - side_y + 1))
        x = int(rng.integers(0, cols - side_x + 1))
        crop = image[y:y + side_y, x:x + side_x]
        if crop.ndim == 3:
            crop = crop[..., int(rng.integers(0, crop.shape[-1]))]
        crops.append(np.ascontiguousarray(crop))
    return crops


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, nargs="*", default=[Path("data")],
                        help="image folders (default: data/, from make training-data)")
    parser.add_argument("--out", type=Path, default=Path("device-pack"), help="output folder")
    parser.add_argument("--side", type=int, default=256, help="crop side, px")
    parser.add_argument("--crops", type=int, default=900, help="training crops in all")
    parser.add_argument("--validation-crops", type=int, default=4,
                        help="crops per validation image")
    parser.add_argument("--seed", type=int, default=0, help="crop positions' seed")
    args = parser.parse_args(argv)

    images = load_images([d for d in args.data if d.exists()], min_side=args.side)
    images.update(test_set_images())
    # every crop has the training crop's side (pairs are cut at that size)
    images = {n: a for n, a in images.items() if min(a.shape[:2]) >= args.side}
    rng = np.random.default_rng(args.seed)
    training = {n: a for n, a in images.items() if not is_validation_image(n)}
    validation = {n: a for n, a in images.items() if is_validation_image(n)}
    weights = {n: np.sqrt(a.shape[0] * a.shape[1]) for n, a in training.items()}
    total = sum(weights.values())
    packed, sources = {}, {}
    for name, image in sorted(training.items()):
        count = max(1, int(round(args.crops * weights[name] / total)))
        for index, crop in enumerate(_gray_crops(image, count, args.side, rng)):
            key = f"train/{len(packed):05d}"
            packed[key] = crop
            sources[key] = name
    for name, image in sorted(validation.items()):
        for crop in _gray_crops(image, args.validation_crops, args.side, rng):
            key = f"validation/{len(packed):05d}"
            packed[key] = crop
            sources[key] = name
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "pairs-source.npz"
    np.savez_compressed(path, **packed)
    (args.out / "pack.json").write_text(json.dumps(
        {"side": args.side, "seed": args.seed, "sources": sources,
         "training_images": sorted(training), "validation_images": sorted(validation)},
        indent=1))
    size = path.stat().st_size / 2**20
    print(f"{path}: {sum(k.startswith('train/') for k in packed)} training and "
          f"{sum(k.startswith('validation/') for k in packed)} validation crops from "
          f"{len(training)} + {len(validation)} images, {size:.1f} MiB")
    return 0


def read_pack(path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(training crops, validation crops) of a pack, as stored (uint8/uint16)."""
    with np.load(path, allow_pickle=False) as pack:
        train = [pack[k] for k in pack.files if k.startswith("train/")]
        validation = [pack[k] for k in pack.files if k.startswith("validation/")]
    return train, validation


if __name__ == "__main__":
    raise SystemExit(main())
