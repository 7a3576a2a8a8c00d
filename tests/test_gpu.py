"""GPU checks: CuPy and CUDA results against the CPU's, autocast precision, out-of-memory
fallbacks, batch planes and training on the GPU.

Every test here is marked ``gpu`` and skips cleanly without CuPy or a CUDA device; they run
on a lent device machine through ``make device-check`` (its "tests" stage).

Tolerances of the dequantizer are in units of each pixel's quantization step (the width of
its interval, ``Quantization.interval_width``), the scale on which the network works: its
residual is a fraction of a step, whatever the bit depth.  CUDA inference runs under bfloat16
autocast (8 bits of mantissa); on the CPU, the same autocast on the shipped models and
natural 8/12/16-bit captures stayed within 0.01 step for 99 % of the pixels and 0.3 step for
all, and within 63 dB PSNR of fp32 (2026-11-26).  The limits below keep a margin of about
three over that and still catch a wrong tile, plane, channel or precision (errors of a step
or more).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

import napari_lowlight as nl
from napari_lowlight import data
from napari_lowlight._backend import box_mean, box_sum, gpu_available, window_counts
from napari_lowlight.compensation import laic, laic_objective, local_signs, rank_preservation


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


needs_cupy = pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA device")
needs_cuda = pytest.mark.skipif(not _cuda_available(), reason="needs torch with a CUDA device")
pytestmark = pytest.mark.gpu

#: (PSNR against fp32 in dB, 99th percentile and maximum of the error in steps).
BF16_LIMITS = (55.0, 0.25, 1.0)
FP16_LIMITS = (70.0, 0.05, 0.25)
#: CUDA fp32 (TF32 off) against the CPU: the same arithmetic in another order.
FP32_LIMITS = (90.0, 1e-3, 1e-2)


# -- helpers ---------------------------------------------------------------------------------


def _scene(shape, seed=0):
    """A smooth lit scene with texture, float in [0, 1]; leading axes are planes."""
    rng = np.random.default_rng(seed)
    rows, cols = shape[-2:]
    yy, xx = np.mgrid[0:rows, 0:cols] / max(rows, cols)
    offsets = np.arange(int(np.prod(shape[:-2], dtype=int))).reshape(shape[:-2] + (1, 1))
    return np.clip(0.5 + 0.35 * np.sin(5 * xx + 2 * yy + offsets)
                   + 0.03 * rng.standard_normal(shape), 0, 1)


def _dark(shape, *, bits=8, seed=0):
    """A dark, unevenly lit capture of ``_scene`` (float, multiples of 1 / (2**bits - 1))."""
    return nl.degrade(_scene(shape, seed), k=0.1, dimming="vignette", bits=bits, seed=seed).dark


def _natural_capture(bits, shape=(160, 208), seed=0):
    """A dark capture of the bundled photograph's green channel at ``bits`` bits."""
    photo = data.coffee()[100:100 + shape[0], 150:150 + shape[1], 1] / 255.0
    return nl.degrade(photo, k=1 / 30, r=1.3, sigma=0.25, bits=bits, dimming="vignette",
                      seed=seed)


def _psnr(actual, expected) -> float:
    mse = float(np.mean((np.asarray(actual, np.float64) - np.asarray(expected, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def _assert_close_in_steps(actual, expected, step, limits, what=""):
    """``actual`` within ``limits`` = (PSNR dB, q99 steps, max steps) of ``expected``."""
    psnr, q99, most = limits
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    assert np.isfinite(actual).all(), f"{what}: non-finite values"
    reachable = step > 0  # unreachable pixels have an empty interval (lo = hi = 1)
    error = np.abs(actual - expected)[reachable] / step[reachable]
    assert np.quantile(error, 0.99) <= q99, \
        f"{what}: 99 % of pixels within {np.quantile(error, 0.99):.3g} steps (limit {q99})"
    assert error.max() <= most, f"{what}: worst pixel {error.max():.3g} steps (limit {most})"
    assert _psnr(actual, expected) >= psnr, f"{what}: PSNR {_psnr(actual, expected):.1f} dB"


@contextlib.contextmanager
def _exact_fp32():
    """fp32 convolutions and products without TF32 (cuDNN's default rounds to 10 bits)."""
    import torch

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@contextlib.contextmanager
def _gpu_memory_limit(nbytes: int):
    """Make torch's CUDA allocator refuse to reserve more than ``nbytes`` in all."""
    import torch

    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(max(nbytes / total, 1e-9))
    try:
        yield
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()


def _reserved_peak(run) -> int:
    """Bytes the CUDA allocator reserved at most while ``run()`` ran (cache emptied first)."""
    import torch

    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    run()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_reserved()


def _models():
    from napari_lowlight.dequantizer.weights import available_models

    return list(available_models())


def _network(generator, capture, device, autocast=None):
    """The raw network's residual for a 2-D capture, as float64 NumPy."""
    import torch

    image = torch.from_numpy(capture.reexposed.astype(np.float32))[None, None].to(device)
    step = torch.from_numpy(capture.quantization.interval_width.astype(np.float32))[
        None, None].to(device)
    generator = generator.to(device).eval()
    context = (torch.autocast(device.type, dtype=autocast) if autocast is not None
               else contextlib.nullcontext())
    with torch.no_grad(), context:
        residual = generator(image, step)
    return residual.float().cpu().numpy()[0, 0].astype(np.float64)


# -- LAIC on CuPy ------------------------------------------------------------------------------


@needs_cupy
@pytest.mark.parametrize("shape", [(37, 53), (3, 20, 29)])
@pytest.mark.parametrize("radius", [1, 2, 7, 15])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cupy_box_filters_match_scipy(shape, radius, dtype):
    import cupy

    rng = np.random.default_rng(radius)
    image = (np.rint(rng.random(shape) * 40) / 255).astype(dtype)  # a quantized dark image
    on_gpu = cupy.asarray(image)
    tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12,
                                                                            atol=1e-12)
    for function in (box_sum, box_mean):
        expected = function(image, radius)
        result = function(on_gpu, radius)
        assert isinstance(result, cupy.ndarray)
        assert result.dtype == expected.dtype, function.__name__
        np.testing.assert_allclose(result.get(), expected, err_msg=function.__name__,
                                   **tolerance)
    np.testing.assert_array_equal(window_counts(shape, radius, xp=cupy).get(),
                                  window_counts(shape, radius))
    if dtype == np.float64:
        # the signs decide LAIC's rank constraints: they must agree pixel for pixel
        np.testing.assert_array_equal(local_signs(on_gpu, radius).get(),
                                      local_signs(image, radius))


@needs_cupy
def test_cupy_objective_and_rank_preservation_match_numpy():
    import cupy

    luminance = _dark((2, 48, 40))
    gain = 1.0 / luminance.max() * (1 + 0.5 * _scene((48, 40), seed=3))
    for radius in (1, 2, 5):
        expected = laic_objective(gain, luminance, radius=radius, weight=0.7)
        result = laic_objective(cupy.asarray(gain), cupy.asarray(luminance), radius=radius,
                                weight=0.7)
        assert result == pytest.approx(expected, rel=1e-10, abs=1e-10)
        assert rank_preservation(cupy.asarray(gain), cupy.asarray(luminance), radius=radius) \
            == rank_preservation(gain, luminance, radius=radius)


def _laic_cases():
    rgb = nl.degrade(data.coffee()[100:164, 200:296] / 255.0, k=0.08, dimming="vignette",
                     seed=1, channel_axis=-1).dark
    rgb8 = np.rint(rgb * 255).astype(np.uint8)
    return {
        "gray-fast": (_dark((80, 96)), dict(method="fast")),
        "gray-exact-12bit": (_dark((32, 40), bits=12), dict(method="exact", bits=12)),
        "uint16-fast": (np.rint(_dark((64, 72), bits=16) * 65535).astype(np.uint16),
                        dict(method="fast")),
        "rgb-uint8": (rgb8, dict(method="fast", channel_axis=-1)),
        "rgb-channel-first": (np.moveaxis(rgb8, -1, 0), dict(method="fast", channel_axis=0)),
        "stack-shared-gain-float32": (_dark((3, 40, 48)).astype(np.float32),
                                      dict(method="fast", shared_gain=True)),
        "stack-per-plane": (_dark((2, 40, 48)), dict(method="auto", window_radius=3)),
    }


@needs_cupy
@pytest.mark.parametrize("case", list(_laic_cases()))
def test_cupy_laic_matches_numpy(case):
    """The LP runs on the host from the same numbers: CuPy must give the NumPy result."""
    pytest.importorskip("highspy")
    import cupy

    image, options = _laic_cases()[case]
    on_cpu = laic(image, **options)
    on_gpu = laic(cupy.asarray(image), **options)
    assert isinstance(on_gpu.enhanced, cupy.ndarray) and isinstance(on_gpu.gain, cupy.ndarray)
    assert on_gpu.enhanced.dtype == on_cpu.enhanced.dtype
    assert on_gpu.enhanced.shape == on_cpu.enhanced.shape == image.shape
    assert on_gpu.gain.shape == on_cpu.gain.shape
    np.testing.assert_allclose(on_gpu.gain.get(), on_cpu.gain, rtol=0, atol=1e-12)
    atol = 1e-12 if on_cpu.enhanced.dtype == np.float64 else 1e-7
    np.testing.assert_allclose(on_gpu.enhanced.get(), on_cpu.enhanced, rtol=0, atol=atol)
    assert on_gpu.objective == pytest.approx(on_cpu.objective, rel=1e-12, abs=1e-12)
    assert on_gpu.rank_preserved == on_cpu.rank_preserved
    assert on_gpu.method == on_cpu.method
    assert on_gpu.quantization.bits == on_cpu.quantization.bits
    np.testing.assert_array_equal(on_gpu.quantization.levels, on_cpu.quantization.levels)
    np.testing.assert_allclose(on_gpu.quantization.k, on_cpu.quantization.k, rtol=1e-12)


@needs_cupy
@needs_cuda
def test_enhance_accepts_cupy_input():
    # laic() returns CuPy arrays for CuPy input; dequantize() used to call np.asarray on
    # them, which CuPy refuses (found by this test before any GPU was lent)
    pytest.importorskip("highspy")
    import cupy

    dark = _dark((64, 80))
    expected = nl.enhance(dark, device="cuda")
    result = nl.enhance(cupy.asarray(dark), device="cuda")
    result = result.get() if isinstance(result, cupy.ndarray) else np.asarray(result)
    np.testing.assert_allclose(result, expected, atol=1e-6)


# -- the dequantizer on CUDA -------------------------------------------------------------------


@needs_cuda
@pytest.mark.parametrize("bits", [8, 12, 16])
@pytest.mark.parametrize("model", _models())
def test_cuda_dequantize_matches_cpu(model, bits):
    capture = _natural_capture(bits)
    quant = capture.quantization
    step = quant.interval_width
    on_cpu = nl.dequantize(capture.reexposed, quantization=quant, model=model, device="cpu",
                           project=False)
    # 64-pixel tiles: seams between tiles on the GPU; None: one 1024-pixel tile
    for tile in (64, None):
        on_gpu = nl.dequantize(capture.reexposed, quantization=quant, model=model,
                               device="cuda", project=False, tile=tile)
        assert on_gpu.dtype == np.float32
        _assert_close_in_steps(on_gpu, on_cpu, step, BF16_LIMITS, f"{model} {bits} bits {tile}")
    # noise=0: the strict projection (the default, noise="auto", widens the intervals by the
    # noise it judges, so its output may leave them on purpose)
    projected = nl.dequantize(capture.reexposed, quantization=quant, model=model,
                              device="cuda", noise=0)
    # not 1.0: at 16 bits a few intervals near 1 are narrower than float32's spacing there
    # (1e-7), so the float32 output cannot always land inside them (the CPU's neither)
    assert nl.metrics.interval_consistency(projected, quant) >= 0.9999


@needs_cuda
def test_cuda_dequantize_of_a_colour_stack_matches_cpu():
    photo = data.coffee()[100:196, 150:278] / 255.0
    stack = np.stack([photo, photo[::-1]])  # (2, rows, cols, 3): planes and channels
    capture = nl.degrade(stack, k=1 / 20, bits=10, seed=2, channel_axis=-1)
    quant = capture.quantization
    on_cpu = nl.dequantize(capture.reexposed, quantization=quant, device="cpu",
                           channel_axis=-1, project=False)
    on_gpu = nl.dequantize(capture.reexposed, quantization=quant, device="cuda",
                           channel_axis=-1, project=False)
    _assert_close_in_steps(on_gpu, on_cpu, quant.interval_width, BF16_LIMITS, "colour stack")


@needs_cuda
@pytest.mark.parametrize("model", _models())
def test_cuda_fp32_network_matches_cpu(model):
    """Without autocast and TF32 the GPU computes what the CPU computes."""
    import torch

    from napari_lowlight.dequantizer.weights import load_generator

    for bits in (8, 16):
        capture = _natural_capture(bits, shape=(96, 128), seed=bits)
        expected = _network(load_generator(model), capture, torch.device("cpu"))
        with _exact_fp32():
            result = _network(load_generator(model), capture, torch.device("cuda"))
        _assert_close_in_steps(capture.reexposed + result, capture.reexposed + expected,
                               capture.quantization.interval_width, FP32_LIMITS,
                               f"{model} {bits} bits")


@needs_cuda
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
@pytest.mark.parametrize("model", _models())
def test_autocast_stays_close_to_fp32(model, precision):
    """bf16 autocast (what dequantize() runs on CUDA) and fp16 against exact fp32, on the GPU,
    at every bit depth: the residual is a fraction of a step, however small the step."""
    import torch

    from napari_lowlight.dequantizer.weights import load_generator

    limits = BF16_LIMITS if precision == "bfloat16" else FP16_LIMITS
    generator = load_generator(model)
    cuda = torch.device("cuda")
    for bits in (8, 12, 16):
        capture = _natural_capture(bits, seed=bits)
        with _exact_fp32():
            reference = _network(generator, capture, cuda)
        result = _network(generator, capture, cuda, autocast=getattr(torch, precision))
        restored = np.clip(capture.reexposed + result, 0, 1)
        expected = np.clip(capture.reexposed + reference, 0, 1)
        _assert_close_in_steps(restored, expected, capture.quantization.interval_width, limits,
                               f"{model} {precision} {bits} bits")


@needs_cuda
def test_cuda_out_of_memory_halves_the_tile_and_gives_the_same_result():
    """A real CUDA out-of-memory error (the allocator capped between what one whole plane and
    what 128-pixel tiles need): smaller tiles on the GPU, the same numbers."""
    import torch

    from napari_lowlight.dequantizer.weights import load_generator

    # 2048 pixels: the U-Net's halo is 352 pixels a side, so only on a plane this large do
    # 256-pixel tiles (960-pixel windows) need much less memory than the whole plane
    capture = nl.degrade(_scene((2048, 2048)), k=1 / 30, bits=8, seed=0)
    quant = capture.quantization
    generator = load_generator("default").to("cuda")

    def run(tile=None):
        return nl.dequantize(capture.reexposed, quantization=quant, model=generator,
                             device="cuda", project=False, tile=tile)

    whole = _reserved_peak(lambda: run(2048))
    tiled = _reserved_peak(lambda: run(256))
    assert whole > 2 * tiled, f"a whole plane needs {whole} B, 256-pixel tiles {tiled} B"
    expected = run()
    with _gpu_memory_limit((whole + tiled) // 2), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = run()
    messages = [str(w.message) for w in seen if issubclass(w.category, RuntimeWarning)]
    assert any("out of memory on cuda; retrying with" in m for m in messages), messages
    assert not any("continuing on the CPU" in m for m in messages), messages
    assert next(generator.parameters()).device.type == "cuda"
    _assert_close_in_steps(result, expected, quant.interval_width, BF16_LIMITS, "halved tiles")
    assert torch.cuda.is_available()  # the device is still usable after the errors
    _assert_close_in_steps(run(), expected, quant.interval_width, BF16_LIMITS, "after")


@needs_cuda
def test_cuda_out_of_memory_at_every_tile_continues_on_the_cpu():
    """Nothing more fits on the GPU: down to 64-pixel tiles, then the CPU, same numbers."""
    import torch

    from napari_lowlight.dequantizer.networks import Generator

    torch.manual_seed(0)
    # Wide layers: each weight (38 MB) fills a segment of its own, so no cached block is
    # left where a 64-pixel tile's activations (18 MB) could go: every tile needs memory
    # from the capped allocator.
    generator = Generator(1, depth=1, width=1024, conditioned=True)
    torch.nn.init.normal_(generator.tail.weight, std=0.01)  # a residual that is not zero
    generator.eval()
    capture = nl.degrade(_scene((96, 112)), k=1 / 30, bits=8, seed=0)
    quant = capture.quantization
    expected = nl.dequantize(capture.reexposed, quantization=quant, model=generator,
                             device="cpu", project=False)
    assert np.abs(expected - capture.reexposed).max() > 0
    generator.to("cuda")
    with _gpu_memory_limit(0), pytest.warns(RuntimeWarning, match="continuing on the CPU"):
        result = nl.dequantize(capture.reexposed, quantization=quant, model=generator,
                               device="cuda", project=False)
    np.testing.assert_allclose(result, expected, atol=1e-6)


@needs_cuda
def test_cuda_dequantize_of_a_dask_array_matches_in_memory():
    da = pytest.importorskip("dask.array")
    capture = _natural_capture(12, shape=(192, 256))
    quant = capture.quantization
    expected = nl.dequantize(capture.reexposed, quantization=quant, device="cuda")
    lazy = nl.dequantize(da.from_array(capture.reexposed, chunks=(96, 128)), quantization=quant,
                         device="cuda")
    assert isinstance(lazy, da.Array)
    _assert_close_in_steps(lazy.compute(), expected, quant.interval_width, BF16_LIMITS, "dask")


# -- batch planes on the GPU -------------------------------------------------------------------


def _dark_uint8_stack(planes=2, shape=(48, 64)):
    return np.rint(_dark((planes, *shape)) * 255).astype(np.uint8)


@needs_cuda
def test_batch_plane_on_cuda_matches_cpu():
    pytest.importorskip("highspy")
    from napari_lowlight.batch import plane_result
    from napari_lowlight.dequantizer.inference import AUTO_NOISE_FLOOR

    # 48 x 64: LAIC's exact LP in about a second (this scene at 96 x 112 took the fast
    # method 20 s, three times over, on the first device run of this test)
    plane = _dark_uint8_stack(1)[0]
    options = dict(steps=("laic", "dequantize"), colour=False, laic_options={},
                   model="default", bits=None)
    on_cpu = plane_result(plane, device="cpu", **options)
    on_gpu = plane_result(plane, device="cuda", **options)
    quant = laic(plane).quantization
    assert on_gpu.dtype == np.float32 and on_gpu.shape == plane.shape
    _assert_close_in_steps(on_gpu, on_cpu, quant.interval_width, BF16_LIMITS, "batch plane")
    # batch projects with noise="auto" (intervals widened by the noise it judges, at least
    # AUTO_NOISE_FLOOR steps a side), so not all of the output lies in the strict intervals:
    # the GPU's output as much as the CPU's
    consistency = [nl.metrics.interval_consistency(values, quant, noise=AUTO_NOISE_FLOOR)
                   for values in (on_gpu, on_cpu)]
    assert consistency[0] >= consistency[1] - 0.01


@needs_cuda
def test_run_batch_with_cuda_workers(tmp_path):
    pytest.importorskip("highspy")
    pytest.importorskip("distributed")
    zarr = pytest.importorskip("zarr")
    tifffile = pytest.importorskip("tifffile")
    from napari_lowlight.batch import plane_result, run_batch

    stack = _dark_uint8_stack(2)
    source = tmp_path / "stack.tif"
    tifffile.imwrite(source, stack)
    summary = run_batch([source], tmp_path / "out.zarr", steps=("laic", "dequantize"),
                        workers=1, device="cuda")
    assert summary["computed"] == 2
    result = zarr.open_group(tmp_path / "out.zarr", mode="r")["stack"]
    for index in range(2):
        expected = plane_result(stack[index], steps=("laic", "dequantize"), colour=False,
                                laic_options={}, model="default", device="cpu", bits=None)
        _assert_close_in_steps(result[index], expected,
                               laic(stack[index]).quantization.interval_width, BF16_LIMITS,
                               f"plane {index}")


# -- training on the GPU -----------------------------------------------------------------------


@needs_cuda
def test_training_on_cuda_resumes_to_the_uninterrupted_result(tmp_path):
    """A run cut into two chunks on CUDA (the checkpoint read back onto the GPU) gives the
    weights of one uninterrupted run; adversarial steps included."""
    import torch
    from safetensors.torch import load_file

    from napari_lowlight.dequantizer.pairs import PairSettings
    from napari_lowlight.dequantizer.training import TrainConfig, train

    images = [_scene((80, 96), seed=seed).astype(np.float32) for seed in range(3)]
    config = TrainConfig(depth=1, width=8, batch=2, steps=4, pretrain_steps=2,
                         validate_every=2, checkpoint_every=2, validation_pairs=2,
                         pairs=PairSettings(crop=32))
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        def quiet(*args):
            pass

        whole = train(images[:2], images[2:], tmp_path / "whole", config=config, device="cuda",
                      log=quiet)
        train(images[:2], images[2:], tmp_path / "chunks", config=config, device="cuda",
              max_steps=2, log=quiet)
        chunks = train(images[:2], images[2:], tmp_path / "chunks", config=config,
                       device="cuda", log=quiet)
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved
    assert whole["step"] == chunks["step"] == 4
    a = load_file(str(tmp_path / "whole" / "generator.safetensors"))
    b = load_file(str(tmp_path / "chunks" / "generator.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.isfinite(a[name].float()).all()
        torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-6, msg=name)
