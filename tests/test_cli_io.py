"""The napari-lowlight command, file IO and the demo."""

import json
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_lowlight import data
from napari_lowlight.cli import main
from napari_lowlight.io import read_image, write_image


@pytest.fixture
def photo_png(tmp_path):
    path = tmp_path / "photo.png"
    iio.imwrite(path, data.coffee()[:60, :80])
    return path


def test_degrade_png_to_png(photo_png, tmp_path):
    out = tmp_path / "dark.png"
    reexposed = tmp_path / "bright.png"
    before = photo_png.read_bytes()
    code = main(["degrade", str(photo_png), str(out), "--k", "1/30", "--seed", "0",
                 "--reexposed", str(reexposed)])
    assert code == 0
    assert photo_png.read_bytes() == before  # input file untouched
    dark = read_image(out)
    assert dark.dtype == np.uint8 and dark.shape == (60, 80, 3)
    # exactly the levels the library computes
    from napari_lowlight import degrade

    expected = degrade(data.coffee()[:60, :80], k=1 / 30, seed=0, channel_axis=-1)
    np.testing.assert_array_equal(dark, expected.quantization.levels)
    assert read_image(reexposed).shape == (60, 80, 3)


def test_degrade_12_bit_tiff_keeps_levels_and_parameters(photo_png, tmp_path):
    out = tmp_path / "dark.tif"
    assert main(["degrade", str(photo_png), str(out), "--bits", "12", "--k", "0.1",
                 "--dimming", "vignette", "--seed", "2"]) == 0
    with tifffile.TiffFile(out) as tif:
        dark = tif.asarray()
        meta = json.loads(tif.pages[0].description)
    assert dark.dtype == np.float32
    levels = dark.astype(np.float64) * 4095
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)
    assert meta["bits"] == 12 and meta["k"] == pytest.approx(0.1) and meta["dimming"] == "vignette"


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--k", "2"], "k must be <= 1"),
        (["--bits", "12"], "cannot be stored exactly"),
        (["--channel-axis", "5"], "does not fit"),
    ],
)
def test_degrade_errors_are_reported_not_raised(photo_png, tmp_path, capsys, extra, words):
    code = main(["degrade", str(photo_png), str(tmp_path / "dark.png"), *extra])
    assert code == 2
    assert words in capsys.readouterr().err


def test_degrade_refuses_to_overwrite(photo_png, tmp_path, capsys):
    assert main(["degrade", str(photo_png), str(photo_png), "--overwrite"]) == 2
    assert "is the input file" in capsys.readouterr().err
    out = tmp_path / "dark.png"
    out.write_bytes(b"keep me")
    assert main(["degrade", str(photo_png), str(out)]) == 2
    assert out.read_bytes() == b"keep me"
    assert main(["degrade", str(photo_png), str(out), "--overwrite"]) == 0


def test_degrade_refuses_jpeg_dark_and_unknown_input(photo_png, tmp_path, capsys):
    assert main(["degrade", str(photo_png), str(tmp_path / "dark.jpg")]) == 2
    assert "lossy" in capsys.readouterr().err
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello")
    assert main(["degrade", str(bogus), str(tmp_path / "d.png")]) == 2
    assert "unsupported image format" in capsys.readouterr().err
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG not really")
    assert main(["degrade", str(corrupt), str(tmp_path / "d2.png")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["degrade", str(tmp_path / "missing.png"), str(tmp_path / "d3.png")]) == 2
    assert "no such image file" in capsys.readouterr().err


def test_write_image_png16_is_exact(tmp_path):
    levels = np.arange(0, 65536, 7, dtype=np.uint16)[:4096].reshape(64, 64)
    write_image(tmp_path / "x.png", levels / 65535.0, bits=16)
    np.testing.assert_array_equal(read_image(tmp_path / "x.png"), levels)


def test_demo_writes_outputs_and_numbers(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    for name in ("comparison.png", "dark_global.png", "reexposed_global.png",
                 "dark_local.png", "reexposed_local.png", "original.png", "summary.json",
                 "laic.png", "laic_local.png", "laic_deep_field.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    glob = summary["settings"]["global"]
    # the paper's global setting leaves about k*255 = 8.5 levels: heavy banding
    assert 8 <= glob["dark_levels_used"] <= 12
    assert glob["interval_consistency_reexposed"] == 1.0
    assert 20 < glob["psnr_reexposed_db"] < summary["settings"]["local"]["psnr_reexposed_db"]
    local = summary["laic"]["local capture of the photograph"]
    # LAIC keeps every rank constraint and beats the uniform gain on its own objective
    assert local["rank_preserved"] == 1.0
    assert local["objective"] < local["objective_uniform_gain"]
    assert local["gain_min"] >= 1.0
    figure = iio.imread(out / "comparison.png")
    assert figure.shape[0] > 300 and figure.shape[1] > 1000


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "napari_lowlight.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "degrade" in result.stdout and "demo" in result.stdout


def test_laic_command(photo_png, tmp_path, capsys):
    dark = tmp_path / "dark.png"
    assert main(["degrade", str(photo_png), str(dark), "--k", "1/5", "--dimming", "vignette",
                 "--seed", "1"]) == 0
    out, gain = tmp_path / "enhanced.tif", tmp_path / "gain.tif"
    assert main(["laic", str(dark), str(out), "--gain", str(gain), "--method", "fast"]) == 0
    enhanced = read_image(out)
    gain_map = read_image(gain)
    assert enhanced.shape == (60, 80, 3) and gain_map.shape == (60, 80)
    dark_values = read_image(dark) / 255.0
    np.testing.assert_allclose(enhanced, np.clip(dark_values * gain_map[..., None], 0, 1),
                               atol=1e-6)
    assert enhanced.max() <= 1.0 and gain_map.min() >= 1.0
    with tifffile.TiffFile(out) as tif:
        meta = json.loads(tif.pages[0].description)
    assert meta["napari_lowlight"] == "laic" and meta["rank_preserved"] == 1.0
    assert "ranks kept 100.0 %" in capsys.readouterr().out


def test_laic_command_errors(photo_png, tmp_path, capsys):
    black = tmp_path / "black.png"
    iio.imwrite(black, np.zeros((20, 20), dtype=np.uint8))
    assert main(["laic", str(black), str(tmp_path / "e.tif")]) == 2
    assert "entirely black" in capsys.readouterr().err
    assert main(["laic", str(photo_png), str(tmp_path / "e.tif"), "--gain",
                 str(tmp_path / "g.png")]) == 2
    assert "written as TIFF" in capsys.readouterr().err
    assert not (tmp_path / "e.tif").exists()


def test_train_and_export_commands(tmp_path, capsys):
    """A few steps of the real trainer, resumed, then exported with a model card."""
    from napari_lowlight.dequantizer.weights import load_generator

    folder = tmp_path / "images"
    folder.mkdir()
    photo = data.coffee()
    for index in range(3):
        iio.imwrite(folder / f"img{index}.png", photo[index * 40: index * 40 + 120, :160])
    run = tmp_path / "run"
    args = ["train", "--data", str(folder), "--validation", str(folder / "img2.png"),
            "--out", str(run), "--steps", "4", "--pretrain-steps", "2", "--depth", "1",
            "--width", "8", "--batch", "2",
            "--crop", "32", "--device", "cpu"]
    assert main(args) == 0
    assert (run / "checkpoint.pt").is_file() and (run / "generator.safetensors").is_file()
    assert main(args) == 0  # already done: resumes at step 4 and stops
    captured = capsys.readouterr()
    assert "resumed" in captured.out + captured.err
    weights = tmp_path / "weights"
    assert main(["export", str(run), "--name", "tiny", "--weights-dir", str(weights)]) == 0
    registry = json.loads((weights / "models.json").read_text())
    assert registry["tiny"]["architecture"]["depth"] == 1
    assert "Validation curve" in (weights / "tiny.md").read_text()
    assert load_generator("tiny", folder=weights).depth == 1
    assert main(["export", str(run), "--name", "tiny-pre", "--phase", "pretrained",
                 "--weights-dir", str(weights)]) == 0
    registry = json.loads((weights / "models.json").read_text())
    assert registry["tiny-pre"]["phase"] == "pretrained" and "tiny" in registry
