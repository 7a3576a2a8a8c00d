"""Data safety and faithful file reading (issue 14): every case gives the right result or a
clear error before any work or file is written, and nothing the user did not name is
overwritten."""

import functools
import json
import os
import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_lowlight import data
from napari_lowlight.cli import main
from napari_lowlight.io import load_image, read_image, write_image
from napari_lowlight.outputs import Output, OutputError, plan_outputs


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(data.coffee()[:40, :48]).save(path)
    return path


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


# -- 2. one output-planning step ----------------------------------------------------------
@pytest.mark.parametrize("command", ["degrade", "laic"])
def test_two_outputs_into_one_file_are_refused_before_work(photo, tmp_path, capsys, command):
    (tmp_path / "o").mkdir()
    target = tmp_path / "o" / ("x.png" if command == "degrade" else "z.tif")
    option = "--reexposed" if command == "degrade" else "--gain"
    before = listing(tmp_path / "o")
    code, err = run(capsys, command, photo, target, option, target)
    assert code == 2 and "same file" in err and option in err
    assert listing(tmp_path / "o") == before  # nothing written
    # the same file through another name (a symbolic link to the folder) too
    (tmp_path / "alias").symlink_to(tmp_path / "o")
    code, err = run(capsys, command, photo, target, option, tmp_path / "alias" / target.name)
    assert code == 2 and "same file" in err
    assert listing(tmp_path / "o") == before


def test_a_hard_link_to_the_input_is_never_overwritten(photo, tmp_path, capsys):
    link = tmp_path / "link.png"
    os.link(photo, link)
    before = photo.read_bytes()
    code, err = run(capsys, "degrade", photo, link, "--overwrite")
    assert code == 2 and "same file as the input" in err
    assert photo.read_bytes() == before
    # a hard link between the two outputs, each existing
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"keep")
    os.link(a, b)
    code, err = run(capsys, "degrade", photo, a, "--reexposed", b, "--overwrite")
    assert code == 2 and "same file" in err and a.read_bytes() == b"keep"


def test_output_is_input_is_refused_even_without_overwrite(photo, capsys):
    code, err = run(capsys, "degrade", photo, photo)
    assert code == 2 and "is the input file" in err and "--overwrite" not in err


@pytest.mark.parametrize(("argv", "words"), [
    (["degrade", "{photo}", "{tmp}/folder"], "is a directory"),
    (["degrade", "{photo}", "{tmp}/rgb16.png", "--bits", "16"], "16-bit colour"),
    (["degrade", "{photo}", "{tmp}/nowhere/x.png"], "does not exist"),
    (["degrade", "{photo}", "{tmp}/x.webp"], "unsupported output format"),
    (["laic", "{photo}", "{tmp}/e.tif", "--gain", "{tmp}/g.png"], "written as TIFF"),
    (["degrade", "{photo}", "{tmp}/d.tif", "--reexposed", "{tmp}/bright.jpg"], None),
])
def test_unwritable_outputs_are_refused_before_computing(photo, tmp_path, capsys, monkeypatch,
                                                         argv, words):
    import napari_lowlight.formation as formation

    (tmp_path / "folder").mkdir()
    calls = []
    real = formation.degrade
    # wraps: the spy keeps degrade's signature, from which the CLI reads its defaults
    monkeypatch.setattr(formation, "degrade", functools.wraps(real)(
        lambda *a, **k: calls.append(1) or real(*a, **k)))
    before = listing(tmp_path)
    code, err = run(capsys, *[a.format(photo=photo, tmp=tmp_path) for a in argv])
    if words is None:  # a display image may be JPEG: this one works
        assert code == 0
        return
    assert code == 2 and words in err, err
    assert calls == [] and listing(tmp_path) == before


def test_read_only_folder_is_refused(photo, tmp_path, capsys, monkeypatch):
    import napari_lowlight.outputs as outputs

    folder = tmp_path / "ro"
    folder.mkdir()
    real_access = os.access
    # as a non-root user with chmod 0o500; root writes anywhere, so ask the check directly
    monkeypatch.setattr(outputs.os, "access",
                        lambda path, mode: False if os.fspath(path) == os.fspath(folder)
                        else real_access(path, mode))
    code, err = run(capsys, "degrade", photo, folder / "x.png")
    assert code == 2 and "not writable" in err
    assert list(folder.iterdir()) == []


def test_plan_outputs_api(tmp_path):
    image = tmp_path / "in.tif"
    tifffile.imwrite(image, np.zeros((4, 4), np.uint8))
    inputs = tmp_path / "frames"
    inputs.mkdir()
    resolved = plan_outputs([Output(tmp_path / "a.tif"), None,
                             Output(tmp_path / "b.png", "--b", shape=(4, 4), bits=8)],
                            inputs=[image])
    assert resolved == [(tmp_path / "a.tif").resolve(), (tmp_path / "b.png").resolve()]
    with pytest.raises(OutputError, match="inside the input folder"):
        plan_outputs([Output(inputs / "out.zarr", "--out", kind="zarr")], inputs=[inputs])
    with pytest.raises(OutputError, match="inside the output"):
        plan_outputs([Output(tmp_path, "--out", kind="folder")], inputs=[image])
    with pytest.raises(OutputError, match="cannot be stored in one PNG"):
        plan_outputs([Output(tmp_path / "s.png", shape=(3, 4, 4))])
    with pytest.raises(OutputError, match="alpha"):
        plan_outputs([Output(tmp_path / "s.jpg", shape=(4, 4, 3), alpha=True)])
    with pytest.raises(OutputError, match="is a file"):
        plan_outputs([Output(image, "--out", kind="zarr")])
    # folders may be new with new parents; files need their folder
    plan_outputs([Output(tmp_path / "new" / "deeper", "--out", kind="folder")])
    # writing goes through a temporary file: the old file is replaced, never written through
    target = tmp_path / "t.png"
    target.write_bytes(b"old")
    twin = tmp_path / "twin.png"
    os.link(target, twin)
    write_image(target, np.zeros((2, 2)))
    assert twin.read_bytes() == b"old" and read_image(target).shape == (2, 2)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# -- 3. export never writes into the package; user models are found by name ---------------
def fake_run(folder, *, nan=False, depth=1):
    """A run folder as `train` leaves it, without the training."""
    import torch

    from napari_lowlight.dequantizer.networks import Generator
    from napari_lowlight.dequantizer.weights import save_generator

    folder.mkdir(parents=True)
    torch.manual_seed(0)
    generator = Generator(depth=depth, width=8)
    if nan:
        with torch.no_grad():
            generator.tail.bias.fill_(float("nan"))
    save_generator(generator, folder / "generator.safetensors")
    (folder / "config.json").write_text(json.dumps({
        "batch": 2, "steps": 4, "pretrain_steps": 2, "learning_rate": 2e-4, "linf_weight": 0.1,
        "adversarial_weight": 1e-3, "pixel": "l1", "seed": 0, "pairs": {"crop": 32}}))
    return folder


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    folder = tmp_path / "my-models"
    monkeypatch.setenv("NAPARI_LOWLIGHT_MODELS", str(folder))
    return folder


def shipped_digest():
    from napari_lowlight.dequantizer.weights import shipped_weights_dir, sha256_of

    folder = shipped_weights_dir()
    return {p.name: sha256_of(p) for p in sorted(folder.iterdir()) if p.is_file()}


def test_export_goes_to_the_user_folder_and_is_found_by_name(tmp_path, user_models, capsys):
    import napari_lowlight as nl
    from napari_lowlight.dequantizer.weights import available_models, load_generator

    before = shipped_digest()
    run = fake_run(tmp_path / "runs" / "mine")
    assert main(["export", str(run)]) == 0  # name: the run folder's
    assert (user_models / "mine.safetensors").is_file()
    assert load_generator("mine").depth == 1
    models = available_models()
    assert models["mine"]["origin"] == "user" and models["default"]["origin"] == "shipped"
    capture = nl.degrade(np.full((16, 16), 0.5), seed=0)
    restored = nl.dequantize(capture.reexposed, quantization=capture.quantization, model="mine",
                             device="cpu")
    assert restored.shape == (16, 16)
    capsys.readouterr()
    assert main(["export", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "mine\tuser" in listed and "default\tshipped" in listed
    # never replaced without --overwrite, never under a shipped name
    code, err = run_(capsys, "export", run)
    assert code == 2 and "already holds model 'mine'" in err
    assert main(["export", str(run), "--overwrite"]) == 0
    code, err = run_(capsys, "export", run, "--name", "default")
    assert code == 2 and "shipped model's name" in err
    code, err = run_(capsys, "export", run, "--name", "../escape")
    assert code == 2 and "model name" in err
    # the shipped folder (the repository's weights/ in an editable install): only explicitly
    from napari_lowlight.dequantizer.weights import shipped_weights_dir

    code, err = run_(capsys, "export", run, "--name", "default", "--weights-dir",
                     shipped_weights_dir())
    assert code == 2 and "--overwrite" in err
    assert shipped_digest() == before


def run_(capsys, *argv):
    return run(capsys, *argv)


def test_export_never_writes_into_an_installed_package(tmp_path, monkeypatch):
    from napari_lowlight.dequantizer import export

    installed = tmp_path / "lib" / "site-packages" / "napari_lowlight" / "weights"
    installed.mkdir(parents=True)
    checkout = tmp_path / "repo" / "weights"
    checkout.mkdir(parents=True)
    (tmp_path / "repo" / "pyproject.toml").write_text("")
    run = fake_run(tmp_path / "run")
    monkeypatch.setattr(export, "shipped_weights_dir", lambda: installed)
    with pytest.raises(ValueError, match="installed package"):
        export.export_run(run, installed, name="x", overwrite=True)
    assert list(installed.iterdir()) == []
    monkeypatch.setattr(export, "shipped_weights_dir", lambda: checkout)
    with pytest.raises(ValueError, match="--overwrite"):
        export.export_run(run, checkout, name="x")
    export.export_run(run, checkout, name="x", overwrite=True)  # shipping a model: explicit
    assert (checkout / "x.safetensors").is_file()


# -- 5. limits before allocation ------------------------------------------------------------
def test_weights_declaring_a_huge_network_are_refused_before_building(tmp_path):
    from safetensors.torch import load_file, save_file

    from napari_lowlight.dequantizer.weights import WeightsError, load_generator

    run = fake_run(tmp_path / "run")
    tensors = load_file(str(run / "generator.safetensors"))
    for config, words in (({"channels": 1, "depth": 5000, "width": 32, "conditioned": True},
                           "depth 5000"),
                          ({"channels": 1, "depth": 1, "width": 8, "conditioned": True,
                            "context_sigmas": [1.0] * 100}, "context_sigmas"),
                          ({"channels": 1, "depth": 1, "width": 9, "conditioned": True},
                           "does not fit"),
                          ({"channels": "1"}, "integer"), ([1, 2], "JSON object")):
        path = tmp_path / "bad.safetensors"
        save_file(tensors, str(path), metadata={"config": json.dumps(config)})
        with pytest.raises(WeightsError, match=words):
            load_generator(path)


def test_non_finite_weights_are_a_weights_error(tmp_path, capsys):
    import napari_lowlight as nl
    from napari_lowlight.dequantizer.weights import WeightsError

    run = fake_run(tmp_path / "run", nan=True)
    with pytest.raises(WeightsError, match="non-finite"):
        capture = nl.degrade(np.full((8, 8), 0.5), seed=0)
        nl.dequantize(capture.reexposed, quantization=capture.quantization,
                      model=str(run / "generator.safetensors"), device="cpu")
    code, err = run_(capsys, "export", run, "--weights-dir", tmp_path / "w")
    assert code == 2 and "non-finite" in err and not (tmp_path / "w").exists()


def tiff_declaring(path, rows, cols):
    """A small TIFF whose header declares rows x cols pixels (the data is not there)."""
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8), photometric="minisblack")
    raw = bytearray(path.read_bytes())
    offset = struct.unpack_from("<I", raw, 4)[0]
    for entry in range(struct.unpack_from("<H", raw, offset)[0]):
        at = offset + 2 + 12 * entry
        tag, kind = struct.unpack_from("<HH", raw, at)
        if tag in (256, 257):
            value = cols if tag == 256 else rows
            struct.pack_into("<I" if kind == 4 else "<H", raw, at + 8, value)
    path.write_bytes(bytes(raw))


def png_declaring(path, rows, cols, *, depth=8, colour_type=0):
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", cols, rows, depth, colour_type,
                                                  0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("kind", ["tiff", "png"])
def test_declared_size_beyond_memory_is_refused_at_once(tmp_path, capsys, monkeypatch, kind):
    import time

    import napari_lowlight.io as io

    monkeypatch.setattr(io, "available_memory", lambda: 4 * 10**9)
    if kind == "tiff":
        source = tmp_path / "huge.tif"
        tiff_declaring(source, 30000, 30000)
        words = "30000 x 30000"
    else:
        source = tmp_path / "huge.png"
        png_declaring(source, 10000, 10000)
        words = "10000 x 10000"
    assert source.stat().st_size < 10_000
    start = time.monotonic()
    for command in ("degrade", "laic"):
        code, err = run(capsys, command, source, tmp_path / "out.tif")
        assert code == 2 and words in err and "memory" in err and "GB" in err, err
    assert time.monotonic() - start < 10
    assert not (tmp_path / "out.tif").exists()
    with pytest.raises(io.ImageTooLargeError):
        monkeypatch.setattr(io, "available_memory", lambda: 10**6)
        load_image(source)


def test_batch_refuses_a_plane_beyond_memory(tmp_path, monkeypatch):
    import napari_lowlight.io as io
    from napari_lowlight.batch import run_batch

    source = tmp_path / "huge.tif"
    tiff_declaring(source, 30000, 30000)
    monkeypatch.setattr(io, "available_memory", lambda: 4 * 10**9)
    with pytest.raises(io.ImageTooLargeError, match="30000 x 30000"):
        run_batch([source], tmp_path / "out.zarr", steps=["laic"])
    assert not (tmp_path / "out.zarr").exists()


# -- 4. reading through the files' own metadata ----------------------------------------------
def rgba_png(path, alpha_value=255):
    rgba = np.concatenate([(data.coffee()[:32, :40] // 6),
                           np.full((32, 40, 1), alpha_value, np.uint8)], axis=-1)
    Image.fromarray(rgba, mode="RGBA").save(path)
    return rgba


def test_alpha_is_never_compensated_and_comes_back(tmp_path, capsys):
    import napari_lowlight as nl

    rgba = rgba_png(tmp_path / "in.png", alpha_value=255)
    rgba[5:9, 5:9, 3] = 0  # a transparent hole
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "in.png")
    code = main(["laic", str(tmp_path / "in.png"), str(tmp_path / "out.png"),
                 "--method", "fast"])
    assert code == 0
    assert "gain 1.00-1.00" not in capsys.readouterr().out
    written = np.asarray(Image.open(tmp_path / "out.png"))
    assert written.shape == (32, 40, 4)
    np.testing.assert_array_equal(written[..., 3], rgba[..., 3])  # alpha as it was
    expected = nl.laic(rgba[..., :3], channel_axis=-1, method="fast").enhanced
    np.testing.assert_allclose(written[..., :3] / 255, expected, atol=1 / 255 + 1e-9)
    # degrade keeps the capture opaque where the input was
    assert main(["degrade", str(tmp_path / "in.png"), str(tmp_path / "dark.png"), "--seed", "0",
                 "--reexposed", str(tmp_path / "bright.tif")]) == 0
    dark = np.asarray(Image.open(tmp_path / "dark.png"))
    np.testing.assert_array_equal(dark[..., 3], rgba[..., 3])
    bright = tifffile.imread(tmp_path / "bright.tif")
    assert bright.shape == (32, 40, 4)
    np.testing.assert_allclose(bright[..., 3], rgba[..., 3] / 255)
    with tifffile.TiffFile(tmp_path / "bright.tif") as tif:
        assert tif.pages[0].extrasamples == (2,)  # unassociated alpha


def test_gray_alpha_png_is_one_gray_image(tmp_path, capsys):
    gray = (np.add.outer(np.arange(128), np.arange(128)) // 8).astype(np.uint8)
    la = np.stack([gray, np.full_like(gray, 255)], axis=-1)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    loaded = load_image(tmp_path / "la.png")
    assert loaded.image.shape == (128, 128) and loaded.alpha.shape == (128, 128)
    assert main(["degrade", str(tmp_path / "la.png"), str(tmp_path / "d.png"), "--seed", "1",
                 "--k", "0.5"]) == 0
    out = Image.open(tmp_path / "d.png")
    assert out.mode == "LA" and out.size == (128, 128)


def test_tiff_photometric_planar_and_series(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 60, (12, 16, 3), dtype=np.uint8)
    gray = rng.integers(0, 60, (12, 16), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "white.tif", 255 - gray, photometric="miniswhite")
    np.testing.assert_array_equal(read_image(tmp_path / "white.tif"), gray)
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(rgb, -1, 0), photometric="rgb",
                     planarconfig="separate")
    np.testing.assert_array_equal(read_image(tmp_path / "planar.tif"), rgb)
    palette = np.zeros((3, 256), np.uint16)
    palette[:, :60] = (rng.integers(0, 256, (3, 60)) * 257).astype(np.uint16)
    tifffile.imwrite(tmp_path / "palette.tif", gray, photometric="palette", colormap=palette)
    expanded = read_image(tmp_path / "palette.tif")
    assert expanded.shape == (12, 16, 3) and expanded.dtype == np.uint8
    np.testing.assert_array_equal(expanded, (palette[:, gray] // 257).transpose(1, 2, 0))
    # a multichannel gray page (unspecified extra samples): channels are planes
    tifffile.imwrite(tmp_path / "channels.tif", np.stack([gray] * 5, axis=-1),
                     photometric="minisblack", planarconfig="contig")
    assert read_image(tmp_path / "channels.tif").shape == (5, 12, 16)
    # several series: refused with the list by the one-image commands, chosen in the library
    tifffile.imwrite(tmp_path / "two.tif", gray, photometric="minisblack")
    tifffile.imwrite(tmp_path / "two.tif", rgb, photometric="rgb", append=True)
    code, err = run(capsys, "laic", tmp_path / "two.tif", tmp_path / "o.tif")
    assert code == 2 and "2 image series" in err and "batch" in err
    assert not (tmp_path / "o.tif").exists()
    np.testing.assert_array_equal(read_image(tmp_path / "two.tif", series=1), rgb)
    # premultiplied alpha and CMYK are refused with a message, not misread
    tifffile.imwrite(tmp_path / "assoc.tif", np.dstack([rgb, gray]), photometric="rgb",
                     extrasamples=["assocalpha"])
    code, err = run(capsys, "degrade", tmp_path / "assoc.tif", tmp_path / "o.tif")
    assert code == 2 and "premultiplied" in err
    tifffile.imwrite(tmp_path / "cmyk.tif", np.dstack([rgb, gray]), photometric="separated")
    code, err = run(capsys, "degrade", tmp_path / "cmyk.tif", tmp_path / "o.tif")
    assert code == 2 and "not supported" in err


def test_png_bit_depths(tmp_path, capsys):
    # a 16-bit RGB PNG: Pillow would keep 8 bits of each channel: refused, not misread
    png_declaring(tmp_path / "rgb16.png", 4, 4, depth=16, colour_type=2)
    code, err = run(capsys, "degrade", tmp_path / "rgb16.png", tmp_path / "o.tif")
    assert code == 2 and "16-bit RGB PNG" in err
    # a 16-bit gray PNG is read exactly, and 16-bit colour output is refused before work
    levels = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    write_image(tmp_path / "g16.png", levels / 65535, bits=16)
    np.testing.assert_array_equal(read_image(tmp_path / "g16.png"), levels)
    code, err = run(capsys, "degrade", tmp_path / "g16.png", tmp_path / "d.png", "--bits", "16")
    assert code == 0
    # palette PNG with transparency: RGB light and its alpha
    paletted = Image.fromarray(data.coffee()[:16, :16]).convert("P")
    paletted.info["transparency"] = 0
    paletted.save(tmp_path / "p.png", transparency=0)
    loaded = load_image(tmp_path / "p.png")
    assert loaded.image.shape == (16, 16, 3) and loaded.alpha is not None


# -- 1. batch: an output without a run identity is not resumed ---------------------------------
def test_batch_output_of_an_older_version_needs_restart(tmp_path):
    import zarr

    from napari_lowlight.batch import run_batch

    source = tmp_path / "s.tif"
    tifffile.imwrite(source, np.full((2, 8, 8), 9, np.uint8), photometric="minisblack")
    out = tmp_path / "out.zarr"
    group = zarr.open_group(str(out), mode="w")
    group.attrs["napari_lowlight"] = {"steps": ["laic"]}
    with pytest.raises(ValueError, match="no run identity.*--restart"):
        run_batch([source], out, steps=["laic"])
    with pytest.raises(ValueError, match="not 'local' or an address"):
        run_batch([source], tmp_path / "o2.zarr", steps=["laic"], scheduler="nonsense://x y")
    assert not (tmp_path / "o2.zarr").exists()
