"""The ``napari-lowlight`` command line.

Subcommands
-----------
degrade IN OUT [options]
    Simulate a low-light capture of an image file.
laic IN OUT [options]
    Compensate uneven low light with a locally adaptive gain.
enhance IN OUT [options]
    LAIC, then the dequantizer: the one-click restoration of a dark image file.
dequantize IN OUT [options]
    Restore the detail a quantized image lost, with the trained network.
evaluate [--images DIR...] [--test-set] [options]
    Compare every method on synthetic captures of your images.
train --out RUN [options]
    Train (or resume) the dequantizer.
export RUN [options]
    Make a trained run's generator a named model.
demo [--out DIR]
    Run the pipeline on a bundled sample and write images and a comparison figure.
batch IN... --out OUT.zarr [options]
    Process image stacks plane by plane on a dask cluster into zarr.

Each subcommand has a function that adds its parser (``_add_<command>``) and one that
runs it (``_run_<command>``), which the parser's ``func`` default names.  Where an
option's default is a core function's, it is read from that function
(:func:`_default`), so that the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from .dequantizer.pairs import VALIDATION_IMAGES, is_validation_image

__all__ = ["main"]


def _fraction(text: str) -> float:
    """Parse ``0.0333`` or ``1/30``."""
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a number or fraction: {text!r}") from None


def _channel_axis(text: str):
    if text in ("auto", "none"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"channel axis must be 'auto', 'none' or an integer, got {text!r}"
        ) from None


def _noise_value(text: str):
    """``--noise``: "auto" or a number of levels in 0..8."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a number of levels, got {text!r}")
    if not 0.0 <= value <= 8.0:
        raise argparse.ArgumentTypeError(f"noise must be in 0..8 levels, got {value}")
    return value


def _default(function, parameter: str):
    """The default of ``function``'s ``parameter`` (the core states it once; the CLI reads it)."""
    from ._validation import parameter_default

    return parameter_default(function, parameter)


def _add_file_options(parser: argparse.ArgumentParser) -> None:
    """--channel-axis and --overwrite, shared by the commands that turn a file into a file."""
    parser.add_argument(
        "--channel-axis", type=_channel_axis, default="auto",
        help="colour axis: 'auto' (last axis of size 3/4), 'none' or an integer",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _add_camera_options(parser: argparse.ArgumentParser) -> None:
    """--bits and --black-level: how the camera's integers become light (intensity.py)."""
    parser.add_argument("--bits", type=int, default=None,
                        help="the camera's bit depth, 1..16: integers are divided by "
                        "2**bits - 1 (default: inferred, the smallest of 8/10/12/14/16 bits "
                        "holding the maximum)")
    parser.add_argument("--black-level", type=float, default=None, metavar="COUNTS",
                        help="the camera's offset, in the file's units (counts), subtracted "
                        "first (default none)")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """--model, --device, --noise, --no-refine and --guard / --no-guard: the dequantizer's
    options (``dequantizer.dequantize``)."""
    from .dequantizer import dequantize

    parser.add_argument("--model", default=_default(dequantize, "model"),
                        help="dequantizer model name or .safetensors file (default: default)")
    device = _default(dequantize, "device")
    parser.add_argument("--device", default=device,
                        help=f"auto (CUDA when present), cpu, cuda, ... (default {device})")
    parser.add_argument("--noise", type=_noise_value, default=_default(dequantize, "noise"),
                        metavar="LEVELS",
                        help="the capture's sensor noise in its own levels: the projection "
                        "lets each pixel lie that far outside its quantization interval; "
                        "0: every pixel consistent with its level; auto (default): judged "
                        "from the network's output")
    parser.add_argument("--no-refine", dest="refine", action="store_const", const=False,
                        default="auto",
                        help="skip the model's refiner (its learned blend of the projected "
                        "output with light smoothings of it and the input; the default "
                        "model ships one)")
    guard = parser.add_mutually_exclusive_group()
    guard.add_argument("--guard", dest="guard", action="store_const", const=True,
                       default=_default(dequantize, "guard"),
                       help="blend the result toward the plain re-exposure where the scene "
                       "itself scatters by a level or more from pixel to pixel (noisy "
                       "fluorescence frames; costs about 1 dB on 8-bit photographs); "
                       "default: on for captures of 12 bits and more")
    guard.add_argument("--no-guard", dest="guard", action="store_const", const=False,
                       help="never guard, whatever the bit depth")


def _check_outputs(inputs: list[Path], outputs: list, overwrite: bool) -> None:
    """Every output checked before any work (``outputs.plan_outputs``: paths or ``Output``)."""
    from .outputs import plan_outputs

    plan_outputs(outputs, inputs=inputs, overwrite=overwrite)


def _resolve_channel_axis(choice, image, colour: bool | None = None):
    """``colour``: the file's own colour flag (``io.load_image``), else guessed from the shape."""
    from .io import guess_channel_axis

    if choice == "auto":
        return guess_channel_axis(image) if colour is None else (-1 if colour else None)
    return None if choice == "none" else choice


def _write_restored(path: Path, image, quantization, metadata: dict, alpha) -> None:
    """TIFF: the image with its quantization (reopens exactly); other formats: display."""
    from .io import write_image
    from .quantized_tiff import write_quantized_tiff

    if path.suffix.lower() in (".tif", ".tiff") and alpha is None:
        write_quantized_tiff(path, image, quantization, metadata=metadata)
    else:
        write_image(path, image, metadata=metadata, alpha=alpha)


def _add_degrade(sub) -> None:
    from .formation import degrade

    deg = sub.add_parser(
        "degrade",
        help="simulate a low-light capture of an image file",
        description="Simulate a dark capture (Eq. 6) of IN and write it to OUT; optionally "
        "write the re-exposed image (Eq. 7) too. TIFF, PNG and JPEG inputs.",
    )
    deg.add_argument("input", type=Path, metavar="IN", help="normally exposed image file")
    deg.add_argument("output", type=Path, metavar="OUT", help="dark capture (.tif or .png)")
    deg.add_argument("--k", type=_fraction, default=_default(degrade, "k"),
                     help="dimming factor in (0, 1], e.g. 1/30 (default)")
    r, sigma, bits = (_default(degrade, name) for name in ("r", "sigma", "bits"))
    deg.add_argument("--r", type=float, default=r, help=f"gamma ratio g2/g1 > 0 (default {r:g})")
    deg.add_argument("--sigma", type=float, default=sigma,
                     help=f"noise std in quantization steps (default {sigma:g})")
    deg.add_argument("--bits", type=int, default=bits,
                     help=f"bit depth of the capture, 1..16 (default {bits})")
    deg.add_argument(
        "--dimming", choices=("none", "vignette", "random"), default="none",
        help="uneven light pattern (default none)",
    )
    deg.add_argument("--seed", type=int, default=None, help="random seed (default: fresh)")
    deg.add_argument("--reexposed", type=Path, default=None, metavar="PATH",
                     help="also write the re-exposed image here")
    _add_file_options(deg)
    deg.set_defaults(func=_run_degrade)


def _run_degrade(args) -> int:
    from .formation import degrade
    from .io import check_memory, load_image, probe_image, write_image
    from .outputs import Output

    info = probe_image(args.input)  # the header: nothing decoded yet
    check_memory(info.shape, what=str(args.input))
    _check_outputs([args.input], [
        Output(args.output, "OUT", shape=info.shape, bits=args.bits, alpha=info.alpha),
        args.reexposed and Output(args.reexposed, "--reexposed", shape=info.shape,
                                  alpha=info.alpha)], args.overwrite)
    loaded = load_image(args.input)
    image = loaded.image
    channel_axis = _resolve_channel_axis(args.channel_axis, image, loaded.colour)
    result = degrade(
        image,
        k=args.k,
        r=args.r,
        sigma=args.sigma,
        bits=args.bits,
        dimming=None if args.dimming == "none" else args.dimming,
        seed=args.seed,
        channel_axis=channel_axis,
    )
    metadata = {
        "napari_lowlight": "degrade",
        "source": str(args.input),
        "k": result.k,
        "r": result.r,
        "sigma": result.sigma,
        "bits": result.bits,
        "dimming": args.dimming,
        "seed": args.seed,
        "channel_axis": result.channel_axis,
    }
    write_image(args.output, result.dark, bits=result.bits, metadata=metadata,
                alpha=loaded.alpha)
    print(f"wrote dark capture {args.output}")
    if args.reexposed:
        write_image(args.reexposed, result.reexposed, metadata={**metadata, "image": "reexposed"},
                    alpha=loaded.alpha)
        print(f"wrote re-exposed image {args.reexposed}")
    return 0


def _add_laic(sub) -> None:
    from .compensation import LAIC_METHODS, laic

    comp = sub.add_parser(
        "laic",
        help="compensate uneven low light (LAIC) in an image file",
        description="Brighten a dark image with a locally adaptive gain (LAIC, a HiGHS linear "
        "program) and write the enhanced image to OUT (.tif: float32; .png: 8-bit display).",
    )
    comp.add_argument("input", type=Path, metavar="IN", help="dark image file")
    comp.add_argument("output", type=Path, metavar="OUT", help="enhanced image (.tif or .png)")
    comp.add_argument("--method", choices=LAIC_METHODS,
                      default=_default(laic, "method"),
                      help="exact LP, fast multilevel, or auto (exact up to 64x64; default)")
    weight = _default(laic, "contrast_weight")
    comp.add_argument("--contrast-weight", type=float, default=weight,
                      help="local-contrast reward on the uniformly brightened image "
                      f"(default {weight:g})")
    radius = _default(laic, "window_radius")
    comp.add_argument("--window-radius", type=int, default=radius,
                      help=f"local-mean window radius, px (default {radius})")
    comp.add_argument("--max-gain", type=float, default=_default(laic, "max_gain"),
                      help="largest gain (default: what takes the bright end to full scale, "
                      "up to 2x that in dark regions)")
    comp.add_argument("--shared-gain", action="store_true",
                      help="one gain for every plane of a stack")
    _add_camera_options(comp)
    shading = _default(laic, "shading")
    comp.add_argument("--shading", type=float, default=shading,
                      help="fraction of the estimated smooth illumination divided out first, "
                      f"0..1 (default {shading:g}: the paper's LAIC; 1 takes a vignette out)")
    comp.add_argument("--gain", type=Path, default=None, metavar="PATH",
                      help="also write the gain map (.tif)")
    _add_file_options(comp)
    comp.set_defaults(func=_run_laic)


def _run_laic(args) -> int:
    from .compensation import laic
    from .io import check_memory, load_image, probe_image, write_image
    from .outputs import Output

    if args.gain and args.gain.suffix.lower() not in (".tif", ".tiff"):
        raise ValueError(f"{args.gain}: the gain map is written as TIFF (.tif)")
    info = probe_image(args.input)  # the header: nothing decoded yet
    check_memory(info.shape, what=str(args.input))
    _check_outputs([args.input], [Output(args.output, "OUT", shape=info.shape, alpha=info.alpha),
                                  args.gain and Output(args.gain, "--gain")], args.overwrite)
    loaded = load_image(args.input)
    image = loaded.image
    channel_axis = _resolve_channel_axis(args.channel_axis, image, loaded.colour)
    result = laic(
        image,
        method=args.method,
        channel_axis=channel_axis,
        contrast_weight=args.contrast_weight,
        window_radius=args.window_radius,
        max_gain=args.max_gain,
        shared_gain=args.shared_gain,
        bits=args.bits,
        black_level=args.black_level,
        shading=args.shading,
    )
    metadata = {
        "napari_lowlight": "laic",
        "source": str(args.input),
        "method": result.method,
        "contrast_weight": args.contrast_weight,
        "window_radius": args.window_radius,
        "max_gain": args.max_gain,
        "shared_gain": args.shared_gain,
        "bits": result.quantization.bits,
        "intensity": result.intensity.as_dict() if result.intensity else None,
        "shading": args.shading,
        "objective": result.objective,
        "rank_preserved": result.rank_preserved,
    }
    write_image(args.output, result.enhanced, metadata=metadata, alpha=loaded.alpha)
    print(f"wrote enhanced image {args.output} ({result.method}; gain "
          f"{float(result.gain.min()):.2f}-{float(result.gain.max()):.2f}; "
          f"ranks kept {100 * result.rank_preserved:.1f} %)")
    if args.gain:
        write_image(args.gain, result.gain, metadata={**metadata, "image": "gain"})
        print(f"wrote gain map {args.gain}")
    return 0


def _add_enhance(sub) -> None:
    from .compensation import laic
    from .presets import PRESETS

    enh = sub.add_parser(
        "enhance",
        help="LAIC then the dequantizer on a dark image file (one click)",
        description="Brighten a dark capture with LAIC and restore the detail lost to "
        "quantization with the trained network. OUT .tif keeps the quantization (reopens in "
        "napari and in `dequantize` exactly); .png writes an 8-bit display image.",
    )
    enh.add_argument("input", type=Path, metavar="IN", help="dark image file (camera counts "
                     "or float)")
    enh.add_argument("output", type=Path, metavar="OUT", help="restored image (.tif or .png)")
    enh.add_argument("--preset", choices=tuple(PRESETS), default=None,
                     help="named settings (bits, shading, shared gain); explicit options win")
    _add_camera_options(enh)
    # None here means "the preset's, else LAIC's own default", which the help text states
    enh.add_argument("--shading", type=float, default=None,
                     help="fraction of the smooth illumination divided out, 0..1 (default: "
                     f"the preset's, else {_default(laic, 'shading'):g})")
    enh.add_argument("--contrast-weight", type=float, default=None,
                     help="LAIC's local-contrast reward "
                     f"(default {_default(laic, 'contrast_weight'):g})")
    enh.add_argument("--shared-gain", action="store_true",
                     help="one gain for every plane of a stack (time series)")
    _add_model_options(enh)
    enh.add_argument("--gain", type=Path, default=None, metavar="PATH",
                     help="also write the gain map (.tif)")
    _add_file_options(enh)
    enh.set_defaults(func=_run_enhance)


def _run_enhance(args) -> int:
    from .compensation import laic
    from .io import check_memory, load_image, probe_image, write_image
    from .outputs import Output
    from .dequantizer import dequantize
    from .presets import preset_options

    info = probe_image(args.input)  # the header: nothing decoded yet
    check_memory(info.shape, what=str(args.input))
    _check_outputs([args.input], [Output(args.output, "OUT", shape=info.shape, alpha=info.alpha),
                                  args.gain and Output(args.gain, "--gain",
                                                       suffixes=(".tif", ".tiff"))],
                   args.overwrite)
    options = preset_options(args.preset, bits=args.bits, black_level=args.black_level,
                             shading=args.shading, contrast_weight=args.contrast_weight,
                             shared_gain=args.shared_gain or None)
    loaded = load_image(args.input)
    channel_axis = _resolve_channel_axis(args.channel_axis, loaded.image, loaded.colour)
    compensated = laic(loaded.image, channel_axis=channel_axis, **options)
    restored = dequantize(compensated.enhanced, quantization=compensated.quantization,
                          model=args.model, device=args.device, channel_axis=channel_axis,
                          noise=args.noise, refine=args.refine, guard=args.guard)
    metadata = {"napari_lowlight": "enhance", "source": str(args.input),
                "preset": args.preset, **{k: v for k, v in options.items()},
                "intensity": compensated.intensity.as_dict(), "model": args.model or "default",
                "noise": args.noise, "refine": args.refine, "guard": args.guard,
                "rank_preserved": compensated.rank_preserved,
                "step": "enhance"}
    _write_restored(args.output, restored, compensated.quantization, metadata, loaded.alpha)
    print(f"wrote restored image {args.output} ({compensated.intensity.bits}-bit"
          f"{' inferred' if compensated.intensity.bits_inferred else ''}; gain "
          f"{float(compensated.gain.min()):.2f}-{float(compensated.gain.max()):.2f}; bright end "
          f"{float(np.percentile(restored, 99.5)):.2f})")
    if args.gain:
        write_image(args.gain, compensated.gain, metadata={**metadata, "image": "gain"})
        print(f"wrote gain map {args.gain}")
    return 0


def _add_dequantize(sub) -> None:
    deq = sub.add_parser(
        "dequantize",
        help="restore the detail a quantized image lost (the trained network)",
        description="Dequantize IN: a TIFF written by napari-lowlight (laic/enhance/napari) "
        "carries its quantization; any other image is taken as its own capture (its levels "
        "at --bits, k = 1, r = 1).",
    )
    deq.add_argument("input", type=Path, metavar="IN", help="image file")
    deq.add_argument("output", type=Path, metavar="OUT", help="restored image (.tif or .png)")
    _add_camera_options(deq)
    _add_model_options(deq)
    _add_file_options(deq)
    deq.set_defaults(func=_run_dequantize)


def _run_dequantize(args) -> int:
    from .intensity import to_intensity
    from .io import check_memory, load_image, probe_image
    from .outputs import Output
    from .dequantizer import dequantize
    from .quantization import Quantization
    from .quantized_tiff import is_quantized_tiff, read_quantized_tiff

    stored = is_quantized_tiff(args.input)
    if not stored:
        info = probe_image(args.input)
        check_memory(info.shape, what=str(args.input))
        shape, alpha = info.shape, info.alpha
    else:
        shape, alpha = None, False
    _check_outputs([args.input], [Output(args.output, "OUT", shape=shape, alpha=alpha)],
                   args.overwrite)
    alpha_plane = None
    if stored:
        if args.bits is not None or args.black_level is not None:
            raise ValueError(f"{args.input} carries its own quantization: --bits and "
                             "--black-level do not apply")
        image, quantization, stored_info = read_quantized_tiff(args.input)
        channel_axis = -1 if stored_info.get("rgb") or (
            image.ndim == 3 and image.shape[-1] == 3 and args.channel_axis == "auto") else None
        if quantization is None:
            raise ValueError(f"{args.input} holds no quantization to restore within")
        source = "stored quantization"
    else:
        loaded = load_image(args.input)
        alpha_plane = loaded.alpha
        channel_axis = _resolve_channel_axis(args.channel_axis, loaded.image, loaded.colour)
        image, intensity = to_intensity(loaded.image, bits=args.bits,
                                        black_level=args.black_level)
        levels = np.rint(image * (2**intensity.bits - 1)).astype(np.int64)
        quantization = Quantization(levels, k=1.0, r=1.0, bits=intensity.bits)
        source = f"its own {intensity.bits}-bit levels"
    restored = dequantize(image, quantization=quantization, model=args.model,
                          device=args.device, channel_axis=channel_axis, noise=args.noise,
                          refine=args.refine, guard=args.guard)
    metadata = {"napari_lowlight": "dequantize", "step": "dequantize",
                "source": str(args.input), "model": args.model or "default",
                "noise": args.noise, "refine": args.refine, "guard": args.guard,
                "quantization_from": source}
    _write_restored(args.output, restored, quantization, metadata, alpha_plane)
    print(f"wrote restored image {args.output} (within {source})")
    return 0


def _add_evaluate(sub) -> None:
    from .evaluation import evaluate
    from .methods import SETTINGS

    ev = sub.add_parser(
        "evaluate",
        help="compare every method on synthetic captures of your images",
        description="Capture each image in the paper's global and/or local low light, run "
        "every method, and write results.csv, results.md and figures/ to OUT.",
    )
    ev.add_argument("--images", type=Path, nargs="*", default=[], metavar="DIR",
                    help="folders (or files) of normally exposed images")
    ev.add_argument("--test-set", action="store_true",
                    help="also use the bundled photograph and microscopy image and "
                    "scikit-image's camera, astronaut and chelsea (no download), and enhance "
                    "the bundled real dim image (Hubble deep field crop) with every method")
    ev.add_argument("--setting", choices=(*SETTINGS, "both"), default="both",
                    help="low-light setting of the synthetic captures: the paper's global "
                    "(uniform dimming), local (uneven dimming) or both (default)")
    ev.add_argument("--methods", default="all",
                    help="comma-separated methods or 'all' (default); see --list-methods")
    ev.add_argument("--list-methods", action="store_true", help="print the methods and exit")
    ev.add_argument("--max-size", type=int, default=256,
                    help="resize images so the longer side is at most this (default 256)")
    seed = _default(evaluate, "seed")
    ev.add_argument("--seed", type=int, default=seed, help=f"noise seed (default {seed})")
    ev.add_argument("--out", type=Path, default=Path("evaluation"), help="output folder")
    ev.set_defaults(func=_run_evaluate)


def _collect_images(args) -> dict:
    from .io import drop_alpha, guess_channel_axis, list_image_files, read_image

    paths = []
    for entry in args.images:
        if entry.is_dir():
            paths += list_image_files(entry)
        elif entry.is_file():
            paths.append(entry)
        else:
            raise FileNotFoundError(f"no such image folder or file: {entry}")
    images = {}
    for path in paths:
        array = drop_alpha(read_image(path))
        images[path.stem] = (array, guess_channel_axis(array))
    if args.test_set:
        from skimage import data as skdata

        from . import data

        images.update({"coffee": (data.coffee(), -1), "cell": (data.cell(), None),
                       "camera": (skdata.camera(), None), "astronaut": (skdata.astronaut(), -1),
                       "chelsea": (skdata.chelsea(), -1)})
    if not images:
        raise ValueError("no images: give --images DIR... and/or --test-set")
    return images


def _fit(image, axis, max_size):
    from skimage.transform import resize

    from ._validation import as_float_image

    spatial = image.shape[:2]
    if len(spatial) < 2 or min(spatial) == 0:
        raise ValueError(f"an image of shape {image.shape} cannot be evaluated: it needs two "
                         "non-empty spatial axes")
    scale = max_size / max(spatial)
    if scale >= 1:
        return image
    shape = tuple(max(8, int(round(s * scale))) for s in spatial) + image.shape[2:]
    return resize(as_float_image(image), shape, anti_aliasing=True)


def _run_evaluate(args) -> int:
    from tqdm import tqdm

    from .evaluation import evaluate
    from .methods import METHODS, SETTINGS

    if args.list_methods:
        print("\n".join(METHODS))
        return 0
    methods = list(METHODS) if args.methods == "all" else [
        m.strip() for m in args.methods.split(",") if m.strip()]
    settings = tuple(SETTINGS) if args.setting == "both" else (args.setting,)
    if args.max_size < 16:
        raise ValueError(f"--max-size must be at least 16, got {args.max_size}")
    from .outputs import Output

    _check_outputs(args.images, [Output(args.out, "--out", kind="folder")], overwrite=True)
    images = {name: (_fit(image, axis, args.max_size), axis)
              for name, (image, axis) in _collect_images(args).items()}
    with tqdm(total=len(images) * len(settings) * len(methods), desc="evaluate",
              unit="run") as bar:
        evaluate(images, settings=settings, methods=methods, out_dir=args.out, seed=args.seed,
                 progress=lambda done, total: bar.update(done - bar.n))
    if args.test_set:
        from . import data
        from .evaluation import enhance_real

        real = {"deep_field": (data.deep_field(), -1)}
        with tqdm(total=len(real) * len(methods), desc="real dim images", unit="run") as bar:
            rows = enhance_real(real, methods=methods, out_dir=args.out,
                                progress=lambda done, total: bar.update(done - bar.n))
        lines = ["| image | method | seconds | mean brightness |", "|---|---|---|---|"]
        lines += [f"| {r['image']} | {r['method']} | {r['seconds']:.3f} | "
                  f"{r['mean_brightness']:.3f} |" for r in rows]
        (args.out / "real.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / 'results.csv'}, {args.out / 'results.md'} and "
          f"{args.out / 'figures'}/")
    return 0


def _add_train(sub) -> None:
    from dataclasses import fields

    from .dequantizer.config import TrainConfig  # torch-free, unlike dequantizer.training
    from .dequantizer.pairs import PairSettings

    # The defaults are TrainConfig's and PairSettings' (depth 6, width 32, crop 48, ...), read
    # here so that they cannot drift apart.  Two are the command line's own, on purpose:
    # --steps 3000 (TrainConfig: 2000) and --pretrain-steps 5/6 of --steps (TrainConfig:
    # 1500, i.e. 3/4), the command's choices since it was written (README, docs/usage.md).
    config = {option.name: option.default for option in fields(TrainConfig)}
    pairs = {option.name: option.default for option in fields(PairSettings)}
    tr = sub.add_parser(
        "train",
        help="train the dequantizer on synthetic pairs (resumable)",
        description="Train (or resume) the dequantizer in RUN on pairs made on the fly from "
        "ordinary images. Re-running the same command continues from the last checkpoint.",
    )
    tr.add_argument("--data", type=Path, nargs="*", default=[], metavar="DIR",
                    help="folders of ordinary images (PNG/JPEG/TIFF, searched recursively)")
    tr.add_argument("--test-set", action="store_true",
                    help="add scikit-image's bundled natural images (no download)")
    tr.add_argument("--validation", default=",".join(VALIDATION_IMAGES),
                    help="comma-separated image names (scikit-image names as skimage:NAME, "
                    "files by their name) held out for validation (default: the project's "
                    "validation set, docs/dequantizer.md)")
    tr.add_argument("--out", type=Path, required=True, metavar="RUN", help="run folder")
    tr.add_argument("--steps", type=int, default=3000,
                    help="total training steps, fine-tuning included (default 3000)")
    tr.add_argument("--pretrain-steps", type=int, default=None,
                    help="adversarial fine-tuning starts here (default: 5/6 of --steps)")
    tr.add_argument("--depth", type=int, default=config["depth"],
                    help="residual units (paper: 16)")
    tr.add_argument("--width", type=int, default=config["width"],
                    help="feature channels (usual: 64)")
    tr.add_argument("--context-sigmas", type=float, nargs="*",
                    default=list(config["context_sigmas"]), metavar="PX",
                    help="Gaussian scales (px) of the wide-context inputs of a v2 network "
                    "(default none: the v1 network)")
    tr.add_argument("--init-from", default=None, metavar="MODEL",
                    help="start from these weights (a shipped model's name or a .safetensors "
                    "file; a v1 model can seed a v2 network of the same depth and width)")
    tr.add_argument("--learning-rate", type=float, default=config["learning_rate"],
                    help="Adam step size")
    tr.add_argument("--batch", type=int, default=config["batch"], help="pairs per step")
    tr.add_argument("--crop", type=int, default=pairs["crop"],
                    help="side of each training crop, px")
    tr.add_argument("--seed", type=int, default=config["seed"],
                    help="seed of the weights' initialisation and the training pairs "
                    f"(default {config['seed']})")
    tr.add_argument("--config", type=Path, default=None, metavar="JSON",
                    help="a whole training configuration (a run's config.json, e.g. "
                    "scripts/train-configs/unet-v2.json); replaces --steps, --depth, --width, "
                    "--learning-rate, --batch, --crop, --seed and --context-sigmas")
    tr.add_argument("--workers", type=int, default=0,
                    help="processes making the training pairs (runs whose configuration has "
                    "per_step_seeds; default 0: in this process)")
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    tr.add_argument("--max-minutes", type=float, default=None,
                    help="stop (checkpointed) after this long; run again to continue")
    tr.set_defaults(func=_run_train)


def _run_train(args) -> int:
    import torch
    from tqdm import tqdm

    from .dequantizer.pairs import PairSettings, load_images, test_set_images
    from .dequantizer.inference import resolve_device
    from .dequantizer.training import TrainConfig, train
    from .outputs import Output

    _check_outputs(args.data, [Output(args.out, "--out", kind="folder")], overwrite=True)
    images = load_images(args.data) if args.data else {}
    if args.test_set:
        images.update(test_set_images())
    config = TrainConfig(
        depth=args.depth, width=args.width, batch=args.batch, steps=args.steps,
        context_sigmas=tuple(args.context_sigmas), init_from=args.init_from,
        learning_rate=args.learning_rate,
        pretrain_steps=args.pretrain_steps if args.pretrain_steps is not None
        else args.steps * 5 // 6,
        seed=args.seed, pairs=PairSettings(crop=args.crop))
    if args.config is not None:
        config = TrainConfig.from_json(json.loads(args.config.read_text()))
    if args.workers < 0:
        raise ValueError(f"--workers must be 0 or more, got {args.workers}")
    crop = config.pairs.crop
    small = sorted(name for name, image in images.items() if min(image.shape[:2]) < crop)
    if small:
        print(f"skipping {len(small)} image(s) smaller than the {crop}-px crop: "
              f"{', '.join(small)}", file=sys.stderr)
        images = {name: image for name, image in images.items() if name not in small}
    held_out = {name.strip() for name in args.validation.split(",") if name.strip()}
    is_held_out = {name: is_validation_image(name, held_out) for name in images}
    val = [image for name, image in images.items() if is_held_out[name]]
    training = [image for name, image in images.items() if not is_held_out[name]]
    if not training or not val:
        raise ValueError(f"need training and validation images: found {len(training)} training "
                         f"and {len(val)} validation (held out: {sorted(held_out)})")
    device = resolve_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, torch.get_num_threads()))
    (args.out).mkdir(parents=True, exist_ok=True)
    (args.out / "data.json").write_text(json.dumps(
        {"training": sorted(n for n in images if not is_held_out[n]),
         "validation": sorted(n for n in images if is_held_out[n])}, indent=2))
    with tqdm(total=config.steps, desc="train", unit="step") as bar:
        def progress(step, total, loss):
            bar.n = step
            bar.set_postfix(loss=f"{loss:.4f}")
            bar.refresh()

        metrics = train(training, val, args.out, config=config, device=device,
                        max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
                        progress=progress, log=tqdm.write,
                        workers=args.workers if config.per_step_seeds else 0)
    print(json.dumps(metrics, indent=2))
    return 0


def _add_export(sub) -> None:
    ex = sub.add_parser("export", help="make a trained run's generator a named model",
                        description="Copy RUN's generator into your model folder (or "
                        "--weights-dir) as NAME, record its sha256 in models.json and write "
                        "its model card; dequantize(model=NAME) then finds it. --list shows "
                        "the shipped and your models.")
    ex.add_argument("run", type=Path, metavar="RUN", nargs="?",
                    help="the run folder of `train --out` (not needed with --list)")
    ex.add_argument("--name", default=None, help="model name (default: RUN's folder name)")
    ex.add_argument("--weights-dir", type=Path, default=None,
                    help="default: your model folder ($NAPARI_LOWLIGHT_MODELS, else the "
                    "platform's data folder); the repository's weights/ needs --overwrite")
    ex.add_argument("--overwrite", action="store_true", help="replace a model of that name")
    ex.add_argument("--list", action="store_true", help="list the models and exit")
    # "final" is export_run's default too; not read from it, as that would import torch
    ex.add_argument("--phase", choices=("final", "pretrained"), default="final",
                    help="the fine-tuned generator (default) or the one before fine-tuning")
    ex.set_defaults(func=_run_export)


def _run_export(args) -> int:
    from .dequantizer.export import export_run

    if args.list:
        from .dequantizer.weights import available_models, user_models_dir

        for name, entry in available_models().items():
            arch = entry.get("architecture", {})
            print(f"{name}\t{entry['origin']}\t{arch.get('depth', '?')}x{arch.get('width', '?')}"
                  f"\t{entry['folder']}")
        print(f"(your models: {user_models_dir()})")
        return 0
    if args.run is None:
        raise ValueError("give the run folder to export (or --list)")
    path = export_run(args.run, args.weights_dir, name=args.name, phase=args.phase,
                      overwrite=args.overwrite)
    print(f"wrote {path} and its model card; registered as {path.stem!r}")
    return 0


def _add_demo(sub) -> None:
    from .demo import run_demo

    demo = sub.add_parser(
        "demo",
        help="run the pipeline on a bundled sample",
        description="Degrade the bundled photograph in global and uneven low light and "
        "write the images, a comparison figure and the measured numbers.",
    )
    demo.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out/)")
    seed = _default(run_demo, "seed")
    demo.add_argument("--seed", type=int, default=seed, help=f"random seed (default {seed})")
    demo.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    from .demo import run_demo
    from .outputs import Output

    _check_outputs([], [Output(args.out, "--out", kind="folder")], overwrite=True)
    summary = run_demo(args.out, seed=args.seed)
    print(json.dumps(summary, indent=2))
    return 0


def _add_batch(sub) -> None:
    from .batch import run_batch

    batch = sub.add_parser(
        "batch",
        help="process image stacks plane by plane on a dask cluster into zarr",
        description="Run LAIC and/or the dequantizer on every plane of folders of images, "
        "TIFF/OME-TIFF stacks and zarr arrays, spread over a dask.distributed cluster, into a "
        "chunked zarr store. Rerunning the same command skips finished planes.",
    )
    batch.add_argument("inputs", type=Path, nargs="+", metavar="IN",
                       help="folder of images, TIFF stack or zarr array")
    batch.add_argument("--out", type=Path, required=True, metavar="OUT.zarr",
                       help="zarr store written (and resumed) plane by plane")
    batch.add_argument("--steps", default=",".join(_default(run_batch, "steps")),
                       help="comma-separated: laic, dequantize (default both)")
    scheduler = _default(run_batch, "scheduler")
    batch.add_argument("--scheduler", default=scheduler, metavar="ADDRESS|local",
                       help="'local' starts a LocalCluster; else a scheduler address, "
                       f"e.g. tcp://10.0.0.5:8786 (default {scheduler})")
    workers, threads = _default(run_batch, "workers"), _default(run_batch, "threads_per_worker")
    batch.add_argument("--workers", type=int, default=workers,
                       help=f"worker processes of the local cluster (default {workers})")
    batch.add_argument("--threads-per-worker", type=int, default=threads,
                       help=f"threads of each local worker (default {threads})")
    batch.add_argument("--model", default=_default(run_batch, "model"),
                       help="dequantizer model name or path")
    batch.add_argument("--device", default=_default(run_batch, "device"),
                       help="auto (a worker's GPU if any), cpu, cuda")
    batch.add_argument("--bits", type=int, default=_default(run_batch, "bits"),
                       help="bit depth of the captures (default: from the dtype)")
    batch.add_argument("--restart", action="store_true",
                       help="discard what OUT holds from an earlier run and start over (a "
                       "resume with other inputs or settings is refused without it)")
    batch.set_defaults(func=_run_batch)


def _run_batch(args) -> int:
    from tqdm import tqdm

    from .batch import run_batch

    steps = [step.strip() for step in args.steps.split(",") if step.strip()]
    with tqdm(desc="batch", unit="plane") as bar:
        def progress(done, total):
            bar.total = total
            bar.n = done
            bar.refresh()

        summary = run_batch(args.inputs, args.out, steps=steps, scheduler=args.scheduler,
                            workers=args.workers, threads_per_worker=args.threads_per_worker,
                            model=args.model, device=args.device, bits=args.bits,
                            progress=progress, restart=args.restart)
    print(json.dumps(summary, indent=2))
    return 0


#: The subcommands' parser builders, in the order ``--help`` lists them.
_COMMANDS = (_add_degrade, _add_laic, _add_enhance, _add_dequantize, _add_evaluate,
             _add_train, _add_export, _add_demo, _add_batch)


def _build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="napari-lowlight",
        description="Restore images taken in low or uneven light.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in _COMMANDS:
        add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``napari-lowlight`` command; returns the exit status."""
    args = _build_parser().parse_args(argv)
    try:
        return args.func(args)  # the subcommand's _run_<command> (set_defaults above)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        print(f"napari-lowlight {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
