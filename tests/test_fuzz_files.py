"""Random image files through the command line (issue 14): every file is either read
faithfully — light by its photometric interpretation, palette and planar configuration,
alpha kept aside and written back — or refused with a message, with no output written.

A file is drawn with its dtype, bit depth, alpha, series, photometric interpretation,
planar configuration and size, written with tifffile or Pillow, and the *expected* light
and alpha are computed from what was drawn, independently of the reader.  ``degrade``
with k = 1, r = 1 and no noise then writes the capture exactly on the input's levels, so
the output must equal the expected light.
"""

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture,
                                                        HealthCheck.too_slow]}
DTYPE_BITS = {"uint8": 8, "uint16": 16, "float32": 16}


@st.composite
def tiff_files(draw):
    photometric = draw(st.sampled_from(["minisblack", "miniswhite", "rgb", "palette"]))
    dtype = "uint8" if photometric == "palette" else draw(st.sampled_from(list(DTYPE_BITS)))
    alpha = photometric in ("minisblack", "rgb") and draw(st.booleans())
    planar = photometric == "rgb" and draw(st.booleans())
    rows, cols = draw(st.integers(2, 9)), draw(st.integers(2, 9))
    planes = draw(st.sampled_from([None, 1, 2]))
    series = draw(st.sampled_from([1, 1, 1, 2]))
    seed = draw(st.integers(0, 2**16))
    return {"format": "tiff", "photometric": photometric, "dtype": dtype, "alpha": alpha,
            "planar": planar, "shape": (rows, cols), "planes": planes, "series": series,
            "seed": seed, "palette16": draw(st.booleans())}


@st.composite
def png_files(draw):
    mode = draw(st.sampled_from(["L", "LA", "RGB", "RGBA", "P", "I;16", "1"]))
    rows, cols = draw(st.integers(2, 9)), draw(st.integers(2, 9))
    return {"format": "png", "mode": mode, "shape": (rows, cols), "series": 1,
            "seed": draw(st.integers(0, 2**16))}


def _values(rng, dtype, shape):
    if dtype == "float32":
        return rng.random(shape).astype(np.float32)
    top = np.iinfo(dtype).max
    return rng.integers(0, top + 1, shape, dtype=np.int64).astype(dtype)


def write_tiff(path, spec):
    """Write a drawn TIFF; return (expected light, expected alpha as [0, 1], bits)."""
    import tifffile

    rng = np.random.default_rng(spec["seed"])
    dtype, rows_cols = spec["dtype"], spec["shape"]
    lead = () if spec["planes"] is None else (spec["planes"],)
    photometric = spec["photometric"]
    top = 1.0 if dtype == "float32" else float(np.iinfo(dtype).max)
    options, alpha = {"photometric": photometric}, None
    if photometric in ("minisblack", "miniswhite"):
        stored = _values(rng, dtype, lead + rows_cols)
        light = stored if photometric == "minisblack" else (
            (1.0 - stored).astype(dtype) if dtype == "float32" else (top - stored).astype(dtype))
        if spec["alpha"]:
            alpha_values = _values(rng, dtype, lead + rows_cols)
            stored = np.stack([stored, alpha_values], axis=-1)
            options.update(extrasamples=["unassalpha"], planarconfig="contig")
            alpha = alpha_values / top
    elif photometric == "rgb":
        light = _values(rng, dtype, lead + rows_cols + (3,))
        stored = light
        if spec["alpha"]:
            alpha_values = _values(rng, dtype, lead + rows_cols)
            stored = np.concatenate([light, alpha_values[..., None]], axis=-1)
            options["extrasamples"] = ["unassalpha"]
            alpha = alpha_values / top
        if spec["planar"]:
            stored = np.moveaxis(stored, -1, -3)
            options["planarconfig"] = "separate"
        else:
            options["planarconfig"] = "contig"
    else:  # palette
        stored = _values(rng, "uint8", lead + rows_cols)
        if spec["palette16"]:
            colormap = rng.integers(0, 65536, (3, 256), dtype=np.int64).astype(np.uint16)
            light = np.moveaxis(colormap[:, stored], 0, -1)
        else:
            colormap = (rng.integers(0, 256, (3, 256)) * 257).astype(np.uint16)
            light = np.moveaxis(colormap[:, stored] // 257, 0, -1).astype(np.uint8)
        options["colormap"] = colormap
    tifffile.imwrite(path, stored, **options)
    for _ in range(spec["series"] - 1):
        tifffile.imwrite(path, stored, append=True, **options)
    bits = 16 if light.dtype != np.uint8 else 8
    return light, alpha, bits


def write_png(path, spec):
    from PIL import Image

    rng = np.random.default_rng(spec["seed"])
    shape, mode, alpha = spec["shape"], spec["mode"], None
    if mode == "I;16":
        light = _values(rng, "uint16", shape)
        Image.fromarray(light).save(path)
        return light, None, 16
    if mode == "1":
        bits = rng.random(shape) < 0.5
        Image.fromarray(bits).save(path)
        return bits.astype(np.uint8) * 255, None, 8
    if mode == "P":
        index = _values(rng, "uint8", shape)
        palette = _values(rng, "uint8", (256, 3))
        image = Image.fromarray(index, mode="P")
        image.putpalette(palette.tobytes())
        image.save(path)
        return palette[index], None, 8
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
    stored = _values(rng, "uint8", shape + ((channels,) if channels > 1 else ()))
    Image.fromarray(stored, mode=mode).save(path)
    if mode in ("LA", "RGBA"):
        light, alpha = stored[..., :-1], stored[..., -1] / 255
        light = light[..., 0] if mode == "LA" else light
    else:
        light = stored
    return light, alpha, 8


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("file-fuzz")


@settings(**SETTINGS)
@given(spec=st.one_of(tiff_files(), png_files()), out_suffix=st.sampled_from([".tif", ".png"]))
def test_random_files_through_the_cli(folder, spec, out_suffix, capsys):
    from napari_lowlight.cli import main
    from napari_lowlight.io import load_image

    source = folder / ("input.tif" if spec["format"] == "tiff" else "input.png")
    for stale in folder.iterdir():
        stale.unlink()
    writer = write_tiff if spec["format"] == "tiff" else write_png
    light, alpha, bits = writer(source, spec)
    before = source.read_bytes()
    output = folder / f"dark{out_suffix}"
    status = main(["degrade", str(source), str(output), "--k", "1", "--r", "1", "--sigma", "0",
                   "--bits", str(bits), "--seed", "0"])
    err = capsys.readouterr().err
    hypothesis.event(f"{spec['format']} -> {out_suffix}: status {status}")
    assert source.read_bytes() == before
    colour = light.ndim >= 3 and light.shape[-1] == 3
    expect_refusal = None
    if spec["series"] > 1:
        expect_refusal = "series"
    elif out_suffix == ".png" and light.ndim != (3 if colour else 2):
        expect_refusal = "cannot be stored in one PNG"
    elif out_suffix == ".png" and bits == 16 and (colour or alpha is not None):
        expect_refusal = "16-bit"
    if expect_refusal:
        assert status == 2 and expect_refusal in err, err
        assert not output.exists()
        return
    assert status == 0, err
    written = load_image(output)
    top = 2**bits - 1
    expected = light.astype(np.float64) / (1.0 if light.dtype.kind == "f" else top)
    got = written.image.astype(np.float64)
    if written.image.dtype.kind in "ui":
        got = got / np.iinfo(written.image.dtype).max
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=0.5 / top + 1e-6)
    if alpha is None:
        assert written.alpha is None
    else:
        got_alpha = written.alpha.astype(np.float64)
        if written.alpha.dtype.kind in "ui":
            got_alpha = got_alpha / np.iinfo(written.alpha.dtype).max
        np.testing.assert_allclose(got_alpha, alpha, atol=0.5 / 255 + 1e-6)


@settings(**SETTINGS)
@given(spec=st.one_of(tiff_files(), png_files()))
def test_random_files_through_laic_keep_alpha_and_shape(folder, spec, capsys):
    """LAIC never sees the alpha channel and writes it back unchanged."""
    from napari_lowlight.cli import main
    from napari_lowlight.io import load_image

    source = folder / ("laic-in.tif" if spec["format"] == "tiff" else "laic-in.png")
    for stale in folder.iterdir():
        stale.unlink()
    writer = write_tiff if spec["format"] == "tiff" else write_png
    light, alpha, _ = writer(source, spec)
    output = folder / "enhanced.tif"
    status = main(["laic", str(source), str(output), "--method", "fast"])
    err = capsys.readouterr().err
    if spec["series"] > 1:
        assert status == 2 and "series" in err and not output.exists()
        return
    if status == 2:  # a black image has no light to compensate: said, nothing written
        assert "entirely black" in err and not output.exists(), err
        return
    written = load_image(output)
    assert written.image.shape == light.shape
    if alpha is None:
        assert written.alpha is None
    else:
        np.testing.assert_allclose(written.alpha, alpha, atol=1e-6)
