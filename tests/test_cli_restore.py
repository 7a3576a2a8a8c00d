"""`napari-lowlight enhance` and `dequantize` on single files (issue 18)."""

import numpy as np
import pytest
import tifffile

from napari_lowlight.cli import main
from napari_lowlight.quantized_tiff import is_quantized_tiff, read_quantized_tiff


def _camera_frame(path, *, bits=12, black=100, peak=235):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :56]
    scene = np.exp(-((yy - 20) ** 2 + (xx - 30) ** 2) / 150.0) + 0.2 * rng.random((48, 56))
    counts = (black + np.rint(peak * scene / scene.max())).astype(np.uint16)
    assert counts.max() < 2**bits
    tifffile.imwrite(path, counts)
    return counts


def test_enhance_brightens_a_dim_12bit_camera_file(tmp_path, capsys):
    source = tmp_path / "frame.tif"
    counts = _camera_frame(source)
    out = tmp_path / "restored.tif"
    assert main(["enhance", str(source), str(out), "--preset", "microscope-12bit",
                 "--black-level", "100", "--gain", str(tmp_path / "gain.tif")]) == 0
    assert "12-bit" in capsys.readouterr().out
    assert is_quantized_tiff(out)
    image, quantization, info = read_quantized_tiff(out)
    assert np.percentile(image, 99.5) >= 0.5 and np.mean(image >= 0.999) <= 0.01
    assert quantization.bits == 12 and info["black_level"] == 100
    assert info["intensity"]["bits"] == 12
    assert quantization.is_consistent(image).mean() == 1.0
    np.testing.assert_array_equal(tifffile.imread(source), counts)  # input untouched
    assert tifffile.imread(tmp_path / "gain.tif").shape == counts.shape
    # the saved result dequantizes again within the same intervals (strictly: by default
    # the projection allows for the judged noise, and the refiner may use that allowance)
    again = tmp_path / "again.tif"
    assert main(["dequantize", str(out), str(again), "--noise", "0"]) == 0
    image2, quantization2, _ = read_quantized_tiff(again)
    np.testing.assert_array_equal(quantization2.levels, quantization.levels)
    assert quantization2.is_consistent(image2).mean() == 1.0


def test_enhance_refuses_before_work(tmp_path):
    source = tmp_path / "frame.tif"
    _camera_frame(source, peak=3000)
    out = tmp_path / "out.tif"
    with pytest.raises(SystemExit):
        main(["enhance", str(source), str(out), "--preset", "nope"])
    # 12-bit counts declared as 8 bits: a clear error, no file written
    assert main(["enhance", str(source), str(out), "--bits", "8"]) != 0
    assert not out.exists()
    # the output is the input
    assert main(["enhance", str(source), str(source), "--overwrite"]) != 0


def test_dequantize_a_plain_capture_file(tmp_path):
    source = tmp_path / "capture.tif"
    counts = _camera_frame(source, black=0, peak=4000)
    out = tmp_path / "restored.tif"
    assert main(["dequantize", str(source), str(out), "--bits", "12"]) == 0
    image, quantization, info = read_quantized_tiff(out)
    assert quantization.bits == 12 and quantization.k == 1.0
    np.testing.assert_array_equal(quantization.levels, counts)
    assert np.abs(image - counts / 4095).max() <= 0.5 / 4095 + 1e-6  # stays in its intervals


def test_dequantize_no_refine_gives_the_projected_network_output(tmp_path):
    import napari_lowlight as nl
    from napari_lowlight.quantization import Quantization

    source = tmp_path / "capture.tif"
    counts = _camera_frame(source, black=0, peak=4000)
    plain, refined = tmp_path / "plain.tif", tmp_path / "refined.tif"
    assert main(["dequantize", str(source), str(plain), "--bits", "12", "--no-refine"]) == 0
    assert main(["dequantize", str(source), str(refined), "--bits", "12"]) == 0
    image, _, info = read_quantized_tiff(plain)
    assert info["refine"] is False and read_quantized_tiff(refined)[2]["refine"] == "auto"
    quantization = Quantization(counts.astype(np.int64), k=1.0, r=1.0, bits=12)
    expected = nl.dequantize(counts / 4095, quantization=quantization, refine=False)
    np.testing.assert_allclose(image, expected, atol=1e-6)
    assert not np.array_equal(image, read_quantized_tiff(refined)[0])


def test_dequantize_guard_option_is_dequantize_guard_true(tmp_path):
    import napari_lowlight as nl
    from napari_lowlight.quantization import Quantization

    source = tmp_path / "capture.tif"
    counts = _camera_frame(source, black=0, peak=4000)  # scatters by many levels per pixel
    guarded, default = tmp_path / "guarded.tif", tmp_path / "default.tif"
    unguarded = tmp_path / "unguarded.tif"
    assert main(["dequantize", str(source), str(guarded), "--bits", "12", "--guard"]) == 0
    assert main(["dequantize", str(source), str(default), "--bits", "12"]) == 0
    assert main(["dequantize", str(source), str(unguarded), "--bits", "12", "--no-guard"]) == 0
    image, _, info = read_quantized_tiff(guarded)
    assert info["guard"] is True and read_quantized_tiff(default)[2]["guard"] == "auto"
    assert read_quantized_tiff(unguarded)[2]["guard"] is False
    # 12 bits: "auto" (the default) is the guarded result
    np.testing.assert_allclose(read_quantized_tiff(default)[0], image, atol=1e-6)
    quantization = Quantization(counts.astype(np.int64), k=1.0, r=1.0, bits=12)
    expected = nl.dequantize(counts / 4095, quantization=quantization, guard=True)
    np.testing.assert_allclose(image, expected, atol=1e-6)
    # pulled toward the plain levels, which this noise-dominated frame's pixels are
    plain = counts / 4095
    assert np.abs(image - plain).mean() < np.abs(read_quantized_tiff(unguarded)[0] - plain).mean()
