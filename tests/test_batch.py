"""`napari-lowlight batch`: stacks through a dask.distributed cluster into zarr (issue 8)."""

import hashlib
import os
import signal
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")
tifffile = pytest.importorskip("tifffile")

import napari_lowlight as nl  # noqa: E402
from napari_lowlight.batch import DONE_FOLDER, batch_summary, open_source, run_batch  # noqa: E402
from napari_lowlight.cli import main  # noqa: E402


def dark_stack(planes=6, shape=(48, 64), seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:shape[0], 0:shape[1]] / shape[1]
    scenes = np.clip(0.5 + 0.3 * np.sin(5 * x + 2 * y + np.arange(planes)[:, None, None])
                     + 0.03 * rng.standard_normal((planes, *shape)), 0, 1)
    dark = nl.degrade(scenes, k=0.12, dimming="vignette", seed=seed).dark
    return np.rint(dark * 255).astype(np.uint8)


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def client():
    """A LocalCluster with 2 worker processes, shared by the tests of this module."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


def test_batch_on_tiff_stack_equals_in_memory_pipeline(tmp_path, client):
    stack = dark_stack()
    source = tmp_path / "cells.ome.tif"
    tifffile.imwrite(source, stack, ome=True, metadata={"axes": "ZYX"})
    before = digest(source)
    seen = []
    summary = run_batch([source], tmp_path / "out.zarr", client=client,
                        progress=lambda done, total: seen.append((done, total)))
    assert summary == {"planes": 6, "computed": 6, "skipped": 0,
                       "out": str(tmp_path / "out.zarr")}
    assert seen[0] == (0, 6) and seen[-1] == (6, 6)
    result = zarr.open_group(tmp_path / "out.zarr", mode="r")["cells"]
    assert result.shape == stack.shape and result.dtype == np.float32
    assert result.chunks == (1, 48, 64)
    for index in range(6):
        np.testing.assert_allclose(result[index], nl.enhance(stack[index], device="cpu"),
                                   atol=1e-5)
    attrs = batch_summary(tmp_path / "out.zarr")["napari_lowlight"]
    assert attrs["steps"] == ["laic", "dequantize"]
    default = nl.dequantizer.weights.available_models()["default"]
    assert attrs["model_sha256"] == default["sha256"]
    # the refiner is part of the result, so of the run's identity too
    assert attrs["refiner_sha256"] == default["refiner"]["sha256"]
    assert attrs["identity"]["refiner_sha256"] == default["refiner"]["sha256"]
    assert digest(source) == before  # the input is never modified


def test_restart_skips_finished_planes(tmp_path, client):
    stack = dark_stack(planes=4)
    source = tmp_path / "stack.tif"
    tifffile.imwrite(source, stack, photometric="minisblack")
    out = tmp_path / "out.zarr"
    run_batch([source], out, steps=["laic"], client=client)
    first = zarr.open_group(out, mode="r")["stack"][:]
    # as if the run had died before plane 2 was finished: no marker, garbage data
    (out / DONE_FOLDER / "stack" / "2").unlink()
    zarr.open_group(out, mode="r+")["stack"][2] = 0.5
    chunks = out / "stack" / "c"
    chunk_times = {p: p.stat().st_mtime_ns for p in chunks.rglob("*") if p.is_file()}
    assert len(chunk_times) == 4
    time.sleep(0.05)
    summary = run_batch([source], out, steps=["laic"], client=client)
    assert (summary["computed"], summary["skipped"]) == (1, 3)
    np.testing.assert_array_equal(zarr.open_group(out, mode="r")["stack"][:], first)
    changed = [p.relative_to(chunks).parts[0] for p, t in chunk_times.items()
               if p.stat().st_mtime_ns != t]
    assert changed == ["2"]  # only the unfinished plane was written again
    with pytest.raises(ValueError, match="steps"):
        run_batch([source], out, steps=["laic", "dequantize"], client=client)


def test_folder_and_zarr_inputs_and_colour(tmp_path, client):
    from napari_lowlight.io import write_image

    rgb = np.stack([dark_stack(planes=2, seed=s) for s in range(3)], axis=-1)
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in enumerate(rgb):
        write_image(folder / f"frame{index}.png", frame / 255.0, bits=8)
    gray = dark_stack(planes=3).astype(np.uint16) * 257
    zarr.save_array(str(tmp_path / "gray.zarr"), gray)
    out = tmp_path / "out.zarr"
    summary = run_batch([folder, tmp_path / "gray.zarr"], out, steps=["laic"], client=client)
    assert summary["planes"] == 5
    group = zarr.open_group(out, mode="r")
    np.testing.assert_allclose(group["frames"][1],
                               nl.laic(rgb[1], channel_axis=-1).enhanced, atol=1e-5)
    np.testing.assert_allclose(group["gray"][2], nl.laic(gray[2]).enhanced, atol=1e-5)
    assert open_source(folder).colour and not open_source(tmp_path / "gray.zarr").colour


def test_bad_batch_requests_are_refused(tmp_path, capsys):
    stack = dark_stack(planes=2)
    source = tmp_path / "a.tif"
    tifffile.imwrite(source, stack, photometric="minisblack")
    with pytest.raises(ValueError, match="steps"):
        run_batch([source], tmp_path / "o.zarr", steps=["sharpen"])
    with pytest.raises(ValueError, match="same name"):
        run_batch([source, source], tmp_path / "o.zarr", steps=["laic"])
    with pytest.raises(FileNotFoundError):
        run_batch([tmp_path / "missing.tif"], tmp_path / "o.zarr")
    with pytest.raises(ValueError, match="unsupported"):
        (tmp_path / "notes.txt").write_text("hello")
        run_batch([tmp_path / "notes.txt"], tmp_path / "o.zarr")
    with pytest.raises(ValueError, match="workers"):
        run_batch([source], tmp_path / "o.zarr", workers=0)
    assert main(["batch", str(tmp_path / "missing.tif"), "--out", str(tmp_path / "o.zarr")]) == 2
    assert "no such input" in capsys.readouterr().err


def test_killed_worker_mid_run_gives_the_complete_identical_result(tmp_path):
    stack = dark_stack(planes=12, shape=(96, 96))
    source = tmp_path / "stack.tif"
    tifffile.imwrite(source, stack, photometric="minisblack")
    out = tmp_path / "out.zarr"
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    try:
        with distributed.Client(cluster) as client:
            pids = client.run(os.getpid)
            outcome = []
            runner = threading.Thread(target=lambda: outcome.append(
                run_batch([source], out, steps=["laic", "dequantize"], client=client)))
            runner.start()
            markers = out / DONE_FOLDER / "stack"
            deadline = time.monotonic() + 120
            while not (markers.exists() and any(markers.iterdir())):
                assert time.monotonic() < deadline, "no plane finished in time"
                time.sleep(0.05)
            finished_before_kill = len(list(markers.iterdir()))
            os.kill(next(iter(pids.values())), signal.SIGKILL)
            runner.join(timeout=300)
            assert not runner.is_alive()
    finally:
        cluster.close()
    assert finished_before_kill < 12  # the kill happened in the middle of the run
    assert outcome and outcome[0]["computed"] == 12
    result = zarr.open_group(out, mode="r")["stack"][:]
    expected = np.stack([nl.enhance(plane, device="cpu") for plane in stack])
    np.testing.assert_allclose(result, expected, atol=1e-5)


def test_a_rewritten_input_is_read_afresh(tmp_path, client):
    """The open file is cached per (path, mtime, size): new content at the same path is
    never served from the cache (found by fuzzing)."""
    source = tmp_path / "frame.tif"
    for seed in (1, 2):
        stack = dark_stack(planes=2, seed=seed)
        tifffile.imwrite(source, stack, photometric="minisblack")
        out = tmp_path / f"out{seed}.zarr"
        run_batch([source], out, steps=["laic"], client=client)
        np.testing.assert_allclose(zarr.open_group(out, mode="r")["frame"][1],
                                   nl.laic(stack[1]).enhanced, atol=1e-5)


def test_black_planes_pass_through_without_stopping_the_run(tmp_path, client):
    stack = dark_stack(planes=3)
    stack[1] = 0  # shutter closed
    source = tmp_path / "gaps.tif"
    tifffile.imwrite(source, stack, photometric="minisblack")
    summary = run_batch([source], tmp_path / "out.zarr", client=client)
    result = zarr.open_group(tmp_path / "out.zarr", mode="r")["gaps"][:]
    assert summary["computed"] == 3
    assert not result[1].any()
    np.testing.assert_allclose(result[2], nl.enhance(stack[2], device="cpu"), atol=1e-5)


def test_runs_on_one_client_never_share_results(tmp_path, client):
    """Same input name, same plane indices, one long-lived client (as in a notebook): each run
    computes its own planes (found by fuzzing: task keys used to repeat across runs)."""
    for seed in (3, 4):
        folder = tmp_path / f"run{seed}"
        folder.mkdir()
        stack = dark_stack(planes=2, seed=seed)
        tifffile.imwrite(folder / "same.tif", stack, photometric="minisblack")
        run_batch([folder / "same.tif"], folder / "out.zarr", steps=["laic"], client=client)
        np.testing.assert_allclose(zarr.open_group(folder / "out.zarr", mode="r")["same"][0],
                                   nl.laic(stack[0]).enhanced, atol=1e-5)


# -- issue 14: run identity, lock, planning before work ------------------------------------
def test_resume_with_another_identity_is_refused_and_restart_starts_over(tmp_path, client,
                                                                         capsys):
    stack = dark_stack(planes=2, shape=(32, 40))
    source = tmp_path / "cells.tif"
    tifffile.imwrite(source, stack, photometric="minisblack")
    out = tmp_path / "out.zarr"
    run_batch([source], out, steps=["laic"], client=client)
    first = zarr.open_group(out, mode="r")["cells"][:]
    identity = batch_summary(out)["napari_lowlight"]["identity"]
    assert identity["inputs"][0]["content"].startswith("sha256:")
    assert identity["package_version"] == nl.__version__
    for options, words in ((dict(bits=12), "--bits"),
                           (dict(laic_options={"contrast_weight": 2.0}), "LAIC options"),
                           (dict(steps=["laic", "dequantize"]), "steps")):
        options = {"steps": ["laic"], **options}
        with pytest.raises(ValueError, match=words) as refused:
            run_batch([source], out, client=client, **options)
        assert "--restart" in str(refused.value)
    # a different input file of the same name
    other = tmp_path / "elsewhere"
    other.mkdir()
    tifffile.imwrite(other / "cells.tif", stack[::-1], photometric="minisblack")
    with pytest.raises(ValueError, match="is now"):
        run_batch([other / "cells.tif"], out, steps=["laic"], client=client)
    # the input rewritten in place (same size, same name)
    tifffile.imwrite(source, stack[::-1], photometric="minisblack")
    with pytest.raises(ValueError, match="rewritten"):
        run_batch([source], out, steps=["laic"], client=client)
    np.testing.assert_array_equal(zarr.open_group(out, mode="r")["cells"][:], first)
    # --restart: the old planes are discarded, the new input processed in full
    assert main(["batch", str(source), "--out", str(out), "--steps", "laic", "--restart",
                 "--workers", "1"]) == 0
    capsys.readouterr()
    np.testing.assert_allclose(zarr.open_group(out, mode="r")["cells"][0],
                               nl.laic(stack[1]).enhanced, atol=1e-5)


def test_a_model_change_is_refused(tmp_path, client):
    import shutil

    from napari_lowlight.dequantizer.weights import shipped_weights_dir

    stack = dark_stack(planes=1, shape=(24, 24))
    source = tmp_path / "s.tif"
    tifffile.imwrite(source, stack, photometric="minisblack")
    out = tmp_path / "out.zarr"
    run_batch([source], out, steps=["dequantize"], client=client)
    copy = tmp_path / "copy.safetensors"
    shutil.copy(shipped_weights_dir() / "default.safetensors", copy)
    with pytest.raises(ValueError, match="model"):
        run_batch([source], out, steps=["dequantize"], model=str(copy), client=client)


def test_one_output_one_run_at_a_time(tmp_path, client):
    from napari_lowlight.batch import LOCK_NAME, _output_lock

    source = tmp_path / "s.tif"
    tifffile.imwrite(source, dark_stack(planes=2, shape=(24, 24)), photometric="minisblack")
    out = tmp_path / "out.zarr"
    with _output_lock(out):  # another run holds it
        with pytest.raises(RuntimeError, match="in use by another batch run"):
            run_batch([source], out, steps=["laic"], client=client)
    assert not out.exists()  # the lock's folder went with it: nothing was written
    # a lock file left behind by a killed run holds no lock: the next run goes ahead
    out.mkdir()
    (out / LOCK_NAME).write_text('{"pid": 999999, "host": "gone", "started": 0}')
    assert run_batch([source], out, steps=["laic"], client=client)["computed"] == 2
    assert not (out / LOCK_NAME).exists()


def test_batch_refuses_before_creating_anything(tmp_path, capsys):
    source = tmp_path / "frames"
    source.mkdir()
    tifffile.imwrite(source / "a.tif", dark_stack(planes=1)[0], photometric="minisblack")
    # the output inside an input folder
    assert main(["batch", str(source), "--out", str(source / "out.zarr")]) == 2
    assert "inside the input folder" in capsys.readouterr().err
    # an unreachable scheduler: found in seconds, before the zarr is created
    start = time.monotonic()
    assert main(["batch", str(source), "--out", str(tmp_path / "o.zarr"), "--steps", "laic",
                 "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert "cannot reach the dask scheduler" in capsys.readouterr().err
    assert time.monotonic() - start < 20 and not (tmp_path / "o.zarr").exists()
    # a folder of the user's that is not a batch output is never written into or cleared
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    for extra in ([], ["--restart"]):
        assert main(["batch", str(source), "--out", str(mine), "--steps", "laic", *extra]) == 2
        assert "not a napari-lowlight batch output" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_every_series_alpha_planar_palette_miniswhite(tmp_path, client):
    """TIFF read by its tags, page by page: every series, alpha copied, not compensated."""
    from napari_lowlight.io import load_image

    stack = dark_stack(planes=2, shape=(24, 32))
    rgb = np.stack([dark_stack(planes=2, shape=(24, 32), seed=s) for s in range(3)], axis=-1)
    alpha = np.full((2, 24, 32), 200, np.uint8)
    files = {
        "multi": [(stack, {"photometric": "minisblack"}),
                  (rgb[0], {"photometric": "rgb"})],
        "rgba": [(np.concatenate([rgb, alpha[..., None]], axis=-1),
                  {"photometric": "rgb", "extrasamples": ["unassalpha"]})],
        "planar": [(np.moveaxis(rgb[0], -1, 0), {"photometric": "rgb",
                                                  "planarconfig": "separate"})],
        "inverted": [(255 - stack, {"photometric": "miniswhite"})],
    }
    for name, series in files.items():
        for index, (array, options) in enumerate(series):
            tifffile.imwrite(tmp_path / f"{name}.tif", array, append=index > 0, **options)
    out = tmp_path / "out.zarr"
    run_batch([tmp_path / f"{name}.tif" for name in files], out, steps=["laic"],
              client=client)
    group = zarr.open_group(out, mode="r")
    assert sorted(group.array_keys()) == ["inverted", "multi_series0", "multi_series1",
                                          "planar", "rgba"]
    np.testing.assert_allclose(group["multi_series1"][:], nl.laic(rgb[0], channel_axis=-1)
                               .enhanced, atol=1e-5)
    np.testing.assert_allclose(group["planar"][:], nl.laic(rgb[0], channel_axis=-1).enhanced,
                               atol=1e-5)
    np.testing.assert_allclose(group["inverted"][1], nl.laic(stack[1]).enhanced, atol=1e-5)
    assert group["rgba"].shape == (2, 24, 32, 4)
    np.testing.assert_allclose(group["rgba"][1][..., :3],
                               nl.laic(rgb[1], channel_axis=-1).enhanced, atol=1e-5)
    np.testing.assert_allclose(group["rgba"][1][..., 3], 200 / 255, atol=1e-6)
    assert load_image(tmp_path / "inverted.tif").image.max() == stack.max()
