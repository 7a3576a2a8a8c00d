"""Synthetic training pairs made on the fly from ordinary images (METHOD.md section 2).

Each pair: a random crop of a normal image ``J`` (gray; colour images give one
channel at random, since the model restores each channel on its own), flipped and
rotated, captured with random light (``k`` log-uniform), gamma ratio, noise, bit
depth and, half of the time, an uneven dimming field.  The network sees the
re-exposed image and its per-pixel quantization step; the losses also need the
dark levels, ``k``, ``r``, the noise and ``q``.  A share of the pairs
(``PairSettings.laic_probability``) goes through LAIC instead of the re-exposure: the
input is LAIC's output with its intervals, as inside ``enhance``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._validation import check_int
from ..dimming import smooth_random_field, vignette
from ..formation import degrade

__all__ = ["VALIDATION_IMAGES", "PairSettings", "add_reference_noise", "is_validation_image",
           "load_images", "make_batch", "make_pair", "over_black", "test_set_images"]

#: Images never trained on: the validation set (photographs from the wallpaper packages,
#: scikit-image and matplotlib/mahotas; microscopy from scikit-image and the packages of
#: ``make training-data``).  Files are matched by name, scikit-image's
#: images as ``skimage:NAME``.  The evaluation-only sources (the ``stardist`` package, the
#: ``plasma-workspace-wallpapers`` and ``lomiri-wallpapers`` Debian packages) are never read.
VALIDATION_IMAGES = (
    "skimage:camera", "skimage:astronaut", "skimage:coffee", "skimage:chelsea",
    "skimage:cell", "skimage:immunohistochemistry",
    "Garden.jpg", "Storm.jpg", "LadyBird.jpg", "RainDrops.jpg", "Dune.jpg",
    "goldfish.png", "city.png", "calla.png", "the-mouse.jpg", "desert.png",
    # scripts/fetch_microscopy_images.sh: whole samples held out (z-planes and frames of one
    # sample are near-duplicates, so a sample is either all training or all validation)
    "nuclear.png", "img_terra_2d.tif", "skin.tif", "target_image.png",
    "20P1_POS0005_D_1UL.tif", "20P1_POS0007_D_1UL.tif", "20P1_POS0008_D_1UL.tif",
    "20P1_POS0010_D_1UL.tif", "20P1_POS0011_D_1UL.tif",
    "data_015.tif", "data_020.tif", "data_025.tif", "data_030.tif", "data_035.tif",
    "DepartmentStore.jpg", "grace_hopper.jpg",
)


def is_validation_image(name: str, held_out=VALIDATION_IMAGES) -> bool:
    """True when ``name`` (a path or ``skimage:NAME``) is one of ``held_out``."""
    return name in held_out or Path(name).name in held_out


@dataclass(frozen=True)
class PairSettings:
    """Ranges the training pairs are drawn from."""

    #: Side of each crop, px: 48, what the shipped residual models were trained on and what
    #: ``napari-lowlight train`` has always used (its --crop reads this default).
    crop: int = 48
    k_range: tuple[float, float] = (1 / 64, 1 / 2)
    r_range: tuple[float, float] = (1.0, 1.8)
    sigma_range: tuple[float, float] = (0.0, 1.0)
    bits_choices: tuple[int, ...] = (8, 8, 8, 10, 12, 14, 16)  # 8 bits half the time
    dimming_probability: float = 0.5
    #: Share of pairs whose input is LAIC's output (``laic`` run on the dark capture):
    #: intervals of step ``q * gain`` that jump between LAIC's gain regions, as the
    #: dequantizer meets them after LAIC in ``enhance``.  LAIC costs about 0.4 s per
    #: 256-px crop (one core), so these pairs are worth making in worker processes.
    laic_probability: float = 0.0
    #: Each LAIC-made pair fills this many places of its batch, the others as its rotations
    #: and flips (LAIC is the cost of these pairs: 2 halves it), the LAIC share of the pairs
    #: staying ``laic_probability``.  1: every pair its own capture.
    laic_reuse: int = 1
    #: Share of crops given the sensor noise of a real, well-exposed image before the capture
    #: is simulated (:func:`add_reference_noise`): the *target* then carries pixel-scale
    #: noise, as a real microscopy frame does, which no dequantizer should smooth away.  0
    #: (the default, and every shipped network's setting) draws nothing extra, so seeds
    #: make the same pairs as before.
    reference_noise_probability: float = 0.0
    #: Range of the noise's signal-dependent variance per unit intensity (shot noise),
    #: drawn log-uniformly; intensities in [0, 1].
    reference_noise_gain_range: tuple[float, float] = (1e-5, 1e-2)
    #: Range of its signal-independent standard deviation (read noise), drawn
    #: log-uniformly; intensities in [0, 1].
    reference_noise_floor_range: tuple[float, float] = (1e-3, 3e-2)

    def __post_init__(self):
        # 8 = the identity and the seven other rotations/flips of a square crop
        check_int(self.laic_reuse, "laic_reuse", low=1, high=8)
        if not 0.0 <= float(self.reference_noise_probability) <= 1.0:
            raise ValueError("reference_noise_probability must lie in [0, 1], got "
                             f"{self.reference_noise_probability!r}")
        for name in ("reference_noise_gain_range", "reference_noise_floor_range"):
            low, high = getattr(self, name)
            if not 0.0 < float(low) <= float(high):
                raise ValueError(f"{name} must be (low, high) with 0 < low <= high, got "
                                 f"{getattr(self, name)!r}")


def over_black(light: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """``light`` composited over black by its unassociated ``alpha`` (same dtype), or
    ``light`` itself without alpha.

    Some wallpapers keep their whole design in the alpha channel over constant colour
    (MATE's Silk, Spring, Waves, Stripes): without alpha they are blank white, and as
    training images they taught nothing.  Over black they are what a dark desktop shows.
    """
    if alpha is None:
        return light
    alpha = np.asarray(alpha)
    if light.ndim == alpha.ndim + 1:
        alpha = alpha[..., None]
    if alpha.dtype.kind in "ui" and light.dtype.kind in "ui":
        # integer arithmetic, rounded to nearest: no float copy of a 4K wallpaper
        full = int(np.iinfo(alpha.dtype).max)
        blended = (light.astype(np.uint32) * alpha.astype(np.uint32) + full // 2) // full
        return blended.astype(light.dtype)
    from ..io import alpha_as_float

    blended = light * alpha_as_float(alpha)
    return (np.rint(blended) if light.dtype.kind in "ui" else blended).astype(light.dtype)


def load_images(folders, *, min_side: int = 64) -> dict[str, np.ndarray]:
    """Every PNG/JPEG/TIFF in ``folders`` and their subfolders, in its stored dtype.

    Integer images stay integers (a 4K wallpaper is 25 MB as uint8, 100 MB as
    float32); each crop is scaled to [0, 1] when a pair is made.  Colour images keep
    their channels (a channel is picked per pair); an image with an alpha channel is
    composited over black (:func:`over_black`); images smaller than ``min_side`` are
    skipped.
    """
    from ..io import list_image_files, load_image

    images = {}
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            raise FileNotFoundError(f"no such data folder: {folder}")
        files = [folder] if folder.is_file() else list_image_files(folder, recursive=True)
        for path in files:
            try:
                loaded = load_image(path)
            except ValueError:
                continue  # not an image after all (or corrupt): skip, do not stop training
            array = over_black(loaded.image, loaded.alpha)
            if array.ndim not in (2, 3) or min(array.shape[:2]) < min_side:
                continue
            if array.dtype.kind == "f":
                array = np.clip(array.astype(np.float32), 0, 1)
            elif array.dtype.kind not in "u":
                continue  # signed or boolean data are not photographs
            elif array.dtype.itemsize > 1 and array.max() < np.iinfo(array.dtype).max // 2:
                # A scientific frame stored dimly (12-bit counts in uint16, a few hundred
                # counts of 65535): as a *normal* image it is its own range, so stretch it
                # to [0, 1]; the pairs then dim it as the settings say.
                array = (array.astype(np.float32) / max(float(array.max()), 1.0))
            images[str(path)] = array
    return images


def test_set_images() -> dict[str, np.ndarray]:
    """scikit-image's bundled natural images (no download), float32 in [0, 1]."""
    from skimage import data as skdata

    from ..io import drop_alpha

    names = ["astronaut", "camera", "coffee", "chelsea", "coins", "moon", "page", "text",
             "rocket", "brick", "grass", "gravel", "immunohistochemistry",
             "hubble_deep_field", "retina", "cell", "logo", "colorwheel"]
    images = {}
    for name in names:
        array = drop_alpha(np.asarray(getattr(skdata, name)()))
        scale = np.iinfo(array.dtype).max if array.dtype.kind in "iu" else 1.0
        images[f"skimage:{name}"] = np.clip(array.astype(np.float32) / scale, 0, 1)
    return images


def add_reference_noise(image: np.ndarray, rng: np.random.Generator, *,
                        gain_range=(1e-5, 1e-2), floor_range=(1e-3, 3e-2)) -> np.ndarray:
    """``image`` with the noise of a well-exposed sensor frame: a new float64 array.

    Gaussian noise of variance ``gain * image + floor**2`` (the usual Poisson-Gaussian
    sensor model), ``gain`` and ``floor`` drawn log-uniformly from their ranges, the
    result clipped to [0, 1].  Used on training crops, so that the targets carry the
    pixel-scale noise real microscopy references have.

    Parameters
    ----------
    image : ndarray
        Intensities in [0, 1].
    rng : numpy.random.Generator
    gain_range : (float, float)
        Signal-dependent variance per unit intensity, > 0.
    floor_range : (float, float)
        Signal-independent standard deviation, intensity units, > 0.
    """
    gain = float(np.exp(rng.uniform(np.log(gain_range[0]), np.log(gain_range[1]))))
    floor = float(np.exp(rng.uniform(np.log(floor_range[0]), np.log(floor_range[1]))))
    image = np.asarray(image, dtype=np.float64)
    sigma = np.sqrt(gain * np.clip(image, 0.0, 1.0) + floor**2)
    return np.clip(image + sigma * rng.standard_normal(image.shape), 0.0, 1.0)


def make_pair(image: np.ndarray, rng: np.random.Generator, settings: PairSettings) -> dict:
    """One training pair from ``image`` (gray or colour; float in [0, 1] or unsigned integers)."""
    return _draw_pair(image, rng, settings)[0]


def _draw_pair(image: np.ndarray, rng: np.random.Generator,
               settings: PairSettings) -> tuple[dict, bool]:
    """``make_pair``'s pair and whether it went through LAIC."""
    size = settings.crop
    rows, cols = image.shape[:2]
    if min(rows, cols) < size:
        raise ValueError(f"an image of {rows}x{cols} px is smaller than the {size}-px crop")
    y = int(rng.integers(0, rows - size + 1))
    x = int(rng.integers(0, cols - size + 1))
    crop = image[y:y + size, x:x + size]
    if crop.ndim == 3:
        crop = crop[..., int(rng.integers(0, crop.shape[-1]))]
    crop = np.rot90(crop, int(rng.integers(0, 4)))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    scale = float(np.iinfo(crop.dtype).max) if crop.dtype.kind in "iu" else 1.0
    crop = np.ascontiguousarray(crop, dtype=np.float64) / scale
    if settings.reference_noise_probability and rng.random() < settings.reference_noise_probability:
        crop = add_reference_noise(crop, rng, gain_range=settings.reference_noise_gain_range,
                                   floor_range=settings.reference_noise_floor_range)
    k = float(np.exp(rng.uniform(np.log(settings.k_range[0]), np.log(settings.k_range[1]))))
    r = float(rng.uniform(*settings.r_range))
    sigma = float(rng.uniform(*settings.sigma_range))
    bits = int(rng.choice(settings.bits_choices))
    dimming = None
    if rng.random() < settings.dimming_probability:
        if rng.random() < 0.5:
            dimming = smooth_random_field((size, size), darkest=float(rng.uniform(0.2, 0.9)),
                                          seed=rng)
        else:
            centre = (float(rng.uniform(0, size)), float(rng.uniform(0, size)))
            dimming = vignette((size, size), darkest=float(rng.uniform(0.2, 0.9)),
                               center=centre)
    capture = degrade(crop, k=k, r=r, sigma=sigma, bits=bits, dimming=dimming, seed=rng,
                      return_noise=True)
    if settings.laic_probability and rng.random() < _fresh_laic_probability(settings) \
            and capture.quantization.levels.any():  # an all-black capture has no light for LAIC
        return _laic_pair(crop, capture, rng), True
    quant = capture.quantization
    k_map = np.broadcast_to(quant.k, crop.shape)
    return {
        "input": capture.reexposed.astype(np.float32),
        "step": quant.interval_width.astype(np.float32),
        "target": crop.astype(np.float32),
        "dark": capture.dark.astype(np.float32),
        "k": k_map.astype(np.float32),
        "r": np.float32(r),
        "noise": (np.zeros_like(crop) if capture.noise is None else capture.noise).astype(
            np.float32),
        "q": np.float32(capture.q),
        "lower": quant.bounds()[0].astype(np.float32),
        "upper": quant.bounds()[1].astype(np.float32),
    }, False


#: Pixels per LAIC gain region in the LAIC-made pairs, drawn log-uniformly: from LAIC's
#: default on a 512-px image (1536 regions, ~170 px each) to its default on a 2 MP image
#: (~1400 px each), the sizes the dequantizer meets after ``enhance``.
LAIC_REGION_PIXELS = (170, 1400)


def _laic_pair(crop: np.ndarray, capture, rng: np.random.Generator) -> dict:
    """The pair of ``capture`` compensated by LAIC: the input is LAIC's output, the target
    ``gain * k * J**r`` (the clean dark image brightened by the same gain), the intervals
    LAIC's (``k = 1 / gain``, ``r = 1``), the dark levels and noise the capture's.

    A crop stands for part of a larger image, so LAIC gets the region budget it would
    spend on that part (:data:`LAIC_REGION_PIXELS`), not the larger one of a small image.
    """
    from ..compensation import laic

    region = np.exp(rng.uniform(*np.log(LAIC_REGION_PIXELS)))
    result = laic(capture.dark, bits=capture.bits,
                  max_regions=max(16, int(crop.size / region)))
    quant = result.quantization
    clean_dark = capture.quantization.k * crop**capture.r
    target = np.clip(result.gain * clean_dark, 0.0, 1.0)
    lower, upper = quant.bounds()
    return {
        "input": np.asarray(result.enhanced, dtype=np.float32),
        "step": quant.interval_width.astype(np.float32),
        "target": target.astype(np.float32),
        "dark": capture.dark.astype(np.float32),
        "k": np.broadcast_to(quant.k, crop.shape).astype(np.float32),
        "r": np.float32(1.0),
        "noise": (np.zeros_like(crop) if capture.noise is None else capture.noise).astype(
            np.float32),
        "q": np.float32(capture.q),
        "lower": lower.astype(np.float32),
        "upper": upper.astype(np.float32),
    }


def _fresh_laic_probability(settings: PairSettings) -> float:
    """Chance that a newly drawn pair goes through LAIC: with each one filling ``laic_reuse``
    places, ``p / (reuse (1 - p) + p)`` keeps the LAIC share of all places at ``p``."""
    p, reuse = settings.laic_probability, max(1, int(settings.laic_reuse))
    return p / (reuse * (1.0 - p) + p) if reuse > 1 else p


def _dihedral(pair: dict, turns: int, flip: bool) -> dict:
    """``pair`` rotated by ``turns`` quarter turns and mirrored: a pair of the same kind."""
    def move(value):
        if np.ndim(value) < 2:
            return value
        value = np.rot90(value, turns)
        return np.ascontiguousarray(value[:, ::-1] if flip else value)

    return {key: move(value) for key, value in pair.items()}


def make_batch(images: list[np.ndarray], rng: np.random.Generator, size: int,
               settings: PairSettings) -> dict:
    """``size`` pairs stacked into arrays of shape (size, 1, crop, crop) (scalars: (size,))."""
    pairs = []
    while len(pairs) < size:
        pair, through_laic = _draw_pair(images[int(rng.integers(0, len(images)))], rng,
                                        settings)
        pairs.append(pair)
        if through_laic and settings.laic_reuse > 1:
            # the other places: distinct rotations/flips of the same LAIC result
            for variant in rng.permutation(7)[:settings.laic_reuse - 1] + 1:
                if len(pairs) == size:
                    break
                pairs.append(_dihedral(pair, int(variant) % 4, bool(variant >= 4)))
    batch = {}
    for key in pairs[0]:
        stacked = np.stack([pair[key] for pair in pairs])
        batch[key] = stacked[:, None] if stacked.ndim == 3 else stacked
    return batch
