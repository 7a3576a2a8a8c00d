"""Baselines, LOE, the classic dequantizer and the evaluate command."""


import numpy as np
import pytest

from napari_lowlight import degrade, metrics
from napari_lowlight.baselines import BASELINES, clahe, lime, octm, smooth_project, srie
from napari_lowlight.baselines.octm import octm_tone_curve
from napari_lowlight.cli import main


def scene(rows=48, cols=64, colour=False):
    yy, xx = np.mgrid[0:rows, 0:cols] / 64.0
    base = 0.5 + 0.35 * np.sin(6 * xx) * np.cos(5 * yy) + 0.1 * (xx > 0.5)
    if not colour:
        return np.clip(base, 0, 1)
    return np.clip(np.stack([base, base * 0.8 + 0.1, 1.0 - base * 0.7], axis=-1), 0, 1)


@pytest.mark.parametrize("name", list(BASELINES))
@pytest.mark.parametrize("colour", [False, True])
def test_baseline_brightens_keeps_shape_range_and_input(name, colour):
    dark = degrade(scene(colour=colour), k=1 / 10, r=1.0, sigma=0.0,
                   channel_axis=-1 if colour else None).dark
    before = dark.copy()
    out = BASELINES[name](dark, channel_axis=-1 if colour else None)
    assert out.shape == dark.shape and out.dtype == np.float64
    assert np.all(np.isfinite(out)) and out.min() >= 0.0 and out.max() <= 1.0
    assert out.mean() > 2 * dark.mean(), f"{name} did not brighten"
    np.testing.assert_array_equal(dark, before)
    assert not np.shares_memory(out, dark)


def test_colour_baselines_keep_hue():
    dark = degrade(scene(colour=True), k=1 / 10, r=1.0, sigma=0.0, channel_axis=-1).dark
    for name, function in BASELINES.items():
        out = function(dark, channel_axis=-1)
        bright = dark.max(axis=-1) > 0.02
        # every channel scaled by the same ratio: channel ratios are unchanged
        ratio_in = dark[..., 0][bright] / dark.max(axis=-1)[bright]
        ratio_out = out[..., 0][bright] / np.maximum(out.max(axis=-1)[bright], 1e-12)
        peak = out.max(axis=-1)[bright]
        ok = (peak < 0.999) & (peak > 1e-9)  # neither clipped nor mapped to black
        np.testing.assert_allclose(ratio_out[ok], ratio_in[ok], atol=1e-6, err_msg=name)


def test_channel_axis_first_matches_last():
    dark = degrade(scene(colour=True), k=1 / 10, r=1.0, sigma=0.0, channel_axis=-1).dark
    for name, function in BASELINES.items():
        last = function(dark, channel_axis=-1)
        first = function(np.moveaxis(dark, -1, 0), channel_axis=0)
        np.testing.assert_allclose(np.moveaxis(first, 0, -1), last, atol=1e-7, err_msg=name)


def test_octm_lp_feasible_and_monotone():
    rng = np.random.default_rng(0)
    histogram = np.bincount(rng.integers(0, 12, 5000), minlength=256)  # a dark histogram
    for d in (1, 2, 3, 8):
        curve = octm_tone_curve(histogram, d=d)
        steps = np.diff(curve)
        assert np.all(steps >= -1e-9), "tone curve must be non-decreasing"
        assert curve[0] == 0 and curve[-1] <= 255 + 1e-6
        # tone continuity: every d consecutive steps add up to at least one level
        windows = np.convolve(steps, np.ones(d), mode="valid")
        assert np.all(windows >= 1 - 1e-7)
    # populated levels get the contrast: the output spreads them far apart
    curve = octm_tone_curve(histogram, d=3)
    assert curve[11] - curve[0] > 100


def test_lime_illumination_bounds_and_smoothness():
    from napari_lowlight.baselines.lime import lime_illumination

    value = scene() * 0.1
    refined = lime_illumination(value)
    # a smoothed version of the max channel: close to it, smoother than it
    assert np.abs(refined - value).mean() < 0.01
    assert np.abs(np.diff(refined, axis=1)).sum() < np.abs(np.diff(value, axis=1)).sum()


def test_srie_decomposition_reconstructs():
    from napari_lowlight.baselines.srie import srie_decompose

    value = scene() * 0.3 + 0.05
    reflectance, illumination = srie_decompose(value)
    assert np.all(illumination >= value - 1e-12)  # L >= S
    assert reflectance.min() >= 0 and reflectance.max() <= 1
    assert np.abs(reflectance * illumination - value).mean() < 0.02


def test_loe_self_is_zero_and_order_reversal_is_large(rng):
    image = rng.random((40, 40))
    assert metrics.lightness_order_error(image, image) == 0.0
    assert metrics.lightness_order_error(image, image**2) == 0.0  # monotone map keeps order
    reversed_ = metrics.lightness_order_error(image, 1 - image)
    assert reversed_ > 0.9 * image.size  # nearly every pair flips
    rgb = rng.random((30, 30, 3))
    assert metrics.lightness_order_error(rgb, rgb, channel_axis=-1) == 0.0


def test_smooth_project_is_consistent_and_smoother():
    capture = degrade(scene(), k=1 / 30, r=1.3, sigma=0.25, seed=0)
    out = smooth_project(capture.reexposed, capture.quantization)
    assert metrics.interval_consistency(out, capture.quantization) == 1.0
    assert metrics.psnr(scene(), out) > metrics.psnr(scene(), capture.reexposed) + 2


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: clahe(np.full((8, 8), np.nan)), ValueError, "NaN"),
        (lambda: lime(np.zeros((0, 4))), ValueError, "empty"),
        (lambda: octm(np.full((8, 8, 3), 0.2), channel_axis=3), ValueError, "does not fit"),
        (lambda: srie(np.full((8, 8), 2.0)), ValueError, "[0, 1]"),
        (lambda: lime(np.full((8, 8), 0.2), gamma=0.0), ValueError, "gamma"),
        (lambda: octm(np.full((8, 8), 0.2), d=0), ValueError, "d must be"),
        (lambda: srie(np.full((8, 8), 0.2), iterations=0), ValueError, "iterations"),
        (lambda: clahe("image.png"), TypeError, "array"),
        (lambda: smooth_project(np.zeros((4, 4)), None), TypeError, "Quantization"),
    ],
)
def test_bad_input(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)


def test_evaluate_command_on_two_tiny_images(tmp_path):
    import imageio.v3 as iio

    folder = tmp_path / "images"
    folder.mkdir()
    iio.imwrite(folder / "gray.png", (scene() * 255).astype(np.uint8))
    iio.imwrite(folder / "colour.png", (scene(colour=True) * 255).astype(np.uint8))
    out = tmp_path / "eval"
    code = main(["evaluate", "--images", str(folder), "--setting", "both",
                 "--methods", "reexposed,smooth_project,clahe,octm,laic", "--out", str(out)])
    assert code == 0
    table = (out / "results.md").read_text()
    assert "| global | smooth_project |" in table and "| local | laic |" in table
    import csv

    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 2 * 5
    for row in rows:
        assert float(row["psnr_db"]) > 5 and 0 <= float(row["ssim"]) <= 1
        if row["method"] in ("reexposed", "smooth_project", "laic"):
            assert float(row["interval_consistency"]) == 1.0
    # the classic dequantizer beats the bare re-exposure at the paper's global setting
    by = {(r["image"], r["setting"], r["method"]): float(r["psnr_db"]) for r in rows}
    for image in ("gray", "colour"):
        assert by[(image, "global", "smooth_project")] > by[(image, "global", "reexposed")]
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "colour_global.png", "colour_local.png", "gray_global.png", "gray_local.png"]


def test_evaluate_command_errors(tmp_path, capsys):
    assert main(["evaluate", "--out", str(tmp_path / "e")]) == 2
    assert "no images" in capsys.readouterr().err
    assert main(["evaluate", "--test-set", "--methods", "magic", "--out",
                 str(tmp_path / "e")]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert main(["evaluate", "--images", str(tmp_path / "nothing")]) == 2
    assert "no such image folder" in capsys.readouterr().err
