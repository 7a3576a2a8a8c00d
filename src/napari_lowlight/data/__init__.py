"""Sample images bundled with the package (no download), and a dark capture made from one.

Each loader returns a new array; see ``README.md`` in this folder for sources
and licences.
"""

from __future__ import annotations

from importlib.resources import files

import imageio.v3 as iio
import numpy as np

from ..formation import DegradedImage, degrade

__all__ = ["cell", "coffee", "dark_coffee", "deep_field"]


def _load(name: str) -> np.ndarray:
    return np.asarray(iio.imread(files(__package__).joinpath(name).read_bytes()))


def coffee() -> np.ndarray:
    """Photograph of a cup of coffee: (400, 600, 3) uint8 RGB (CC0)."""
    return _load("coffee.png")


def cell() -> np.ndarray:
    """Microscopy image of a cell: (660, 550) uint8 gray (CC0)."""
    return _load("cell.png")


def deep_field() -> np.ndarray:
    """A real dim image: a crop of the Hubble deep field, (320, 320, 3) uint8 (public domain)."""
    return _load("deep_field.png")


def dark_coffee(*, seed: int = 0) -> DegradedImage:
    """The coffee photograph captured in the paper's global low light.

    ``k = 1/30``, ``r = 1.3``, ``sigma = 0.25`` q, 8 bits, seeded, so the sample
    is the same on every machine.
    """
    return degrade(coffee(), k=1 / 30, r=1.3, sigma=0.25, bits=8, seed=seed, channel_axis=-1)
