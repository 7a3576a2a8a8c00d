"""Draw the plugin's icon (src/napari_lowlight/plugin/icon.png, 256 x 256).

The product in one picture: on the left a dim capture brightened as is, in five bands, on the
right the same smooth light restored; a diagonal divides them.  Drawn from arithmetic,
so it is reproducible and carries no third-party artwork.

Run:  .venv/bin/python scripts/make_icon.py
"""

from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 256


def icon() -> np.ndarray:
    y, x = np.mgrid[0:SIDE, 0:SIDE] / (SIDE - 1)
    # a soft light from the top right: a smooth radial falloff
    light = np.clip(1.15 - 1.1 * np.hypot(x - 0.85, y - 0.2), 0, 1) ** 1.4
    dark = np.floor(light * 5) / 5 * 0.85  # a dim capture brightened: five bands
    restored = light
    left = x + y < 1.0
    value = np.where(left, dark, restored)
    # warm tint for the restored half, cold for the dark one
    rgb = np.stack([value * np.where(left, 0.55, 1.0),
                    value * np.where(left, 0.65, 0.93),
                    value * np.where(left, 0.95, 0.70)], axis=-1)
    border = np.abs(x + y - 1.0) < 0.012
    rgb[border] = 1.0
    alpha = np.ones_like(value)
    # rounded corners
    corner = 0.12
    cx = np.clip(x, corner, 1 - corner)
    cy = np.clip(y, corner, 1 - corner)
    alpha[np.hypot(x - cx, y - cy) > corner] = 0
    return (np.dstack([rgb, alpha]) * 255).round().astype(np.uint8)


def main() -> None:
    out = Path(__file__).resolve().parent.parent / "src/napari_lowlight/plugin/icon.png"
    Image.fromarray(icon(), "RGBA").save(out, optimize=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
