"""Training images as ``load_images`` reads them: alpha composited over black."""

import numpy as np
import pytest

pytest.importorskip("torch")  # the dequantizer package imports torch

from PIL import Image  # noqa: E402

from napari_lowlight.dequantizer.pairs import load_images, over_black  # noqa: E402


def test_design_kept_in_alpha_is_not_lost(tmp_path):
    # MATE's Silk.png: constant white colour, the whole design in the alpha channel
    rows, cols = 80, 96
    alpha = (np.linspace(0, 255, cols)[None, :] * np.ones((rows, 1))).astype(np.uint8)
    rgba = np.dstack([np.full((rows, cols, 3), 255, np.uint8), alpha])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "silk.png")
    Image.fromarray(rgba[..., :3], "RGB").save(tmp_path / "opaque.png")
    images = load_images([tmp_path])
    silk = images[str(tmp_path / "silk.png")]
    assert silk.shape == (rows, cols, 3) and silk.dtype == np.uint8
    np.testing.assert_array_equal(silk[..., 0], alpha)  # 255 * a / 255
    assert silk.std() > 50  # not the blank white it was read as before
    np.testing.assert_array_equal(images[str(tmp_path / "opaque.png")], rgba[..., :3])


def test_gray_alpha_and_sixteen_bit():
    light = np.full((4, 5), 65535, np.uint16)
    alpha = np.array([0, 1, 32768, 65534, 65535], np.uint16)[None, :].repeat(4, 0)
    np.testing.assert_array_equal(over_black(light, alpha), alpha)
    half = over_black(np.full((2, 2), 200, np.uint8), np.full((2, 2), 128, np.uint8))
    assert half.dtype == np.uint8 and (half == 100).all()  # 200 * 128 / 255 = 100.4
    floats = over_black(np.full((2, 2, 3), 0.5, np.float32), np.full((2, 2), 0.5, np.float32))
    assert floats.dtype == np.float32 and np.allclose(floats, 0.25)
    assert over_black(light, None) is light
