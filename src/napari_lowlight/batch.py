"""Batch processing of image stacks on a dask.distributed cluster, into a chunked zarr store.

The unit of work is a 2-D plane (with its colour channels): LAIC is global over a
plane and the dequantizer needs its halo, so a plane is the smallest piece that
gives the same numbers as the in-memory functions.  Each task reads its plane from
the input file itself (nothing large travels through the scheduler), runs the
steps, writes the plane into the output zarr array and then drops a marker file;
a restarted run skips the planes whose marker exists, and a task lost with a
killed worker is rerun by the scheduler on another one (every step is
deterministic, so the result is the same).

Inputs: folders of images of one shape (one plane each), multi-page TIFF / OME-TIFF
stacks (read page by page through tifffile's zarr view) and zarr arrays.  Leading
axes (z, t, channels of a fluorescence stack) are planes of their own; a trailing
axis of 3 or 4 is RGB(A) colour.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._validation import as_float_image

__all__ = ["STEPS", "BatchSource", "open_source", "plane_result", "run_batch"]

#: Steps ``batch`` knows, in the order they run.
STEPS = ("laic", "dequantize")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
DONE_FOLDER = ".lowlight-done"


@dataclass(frozen=True)
class BatchSource:
    """One input: where it lives, its shape and dtype, and how to read one plane."""

    name: str
    kind: str  # "files", "tiff" or "zarr"
    paths: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    colour: bool  # trailing RGB(A) axis
    signature: tuple = ()  # (mtime_ns, size, token) at opening: each run reads files afresh

    @property
    def plane_shape(self) -> tuple[int, ...]:
        return self.shape[-3:] if self.colour else self.shape[-2:]

    @property
    def planes(self) -> int:
        return int(np.prod(self.shape[: len(self.shape) - len(self.plane_shape)], dtype=int))

    def plane_index(self, index: int) -> tuple[int, ...]:
        leading = self.shape[: len(self.shape) - len(self.plane_shape)]
        return tuple(int(i) for i in np.unravel_index(index, leading)) if leading else ()

    def read_plane(self, index: int) -> np.ndarray:
        if self.kind == "files":
            from .io import read_image

            plane = read_image(self.paths[index])
        else:
            plane = _open_array(self.kind, self.paths[0], self.signature)[
                self.plane_index(index)]
        plane = np.asarray(plane)
        if plane.shape != self.plane_shape:
            raise ValueError(f"{self.name}: plane {index} has shape {plane.shape}, "
                             f"expected {self.plane_shape}")
        return plane


def _signature(path) -> tuple:
    # File times tick at the kernel's coarse clock (a few ms): two writes of the same size
    # can look alike, so every opening (one per run) also gets its own token.
    stat = Path(path).stat()
    return (stat.st_mtime_ns, stat.st_size, uuid.uuid4().hex)


@functools.lru_cache(maxsize=8)
def _open_array(kind: str, path: str, signature: tuple = ()):
    """The opened array, kept open for the next planes; ``signature`` (the file's mtime
    and size, or a zarr folder's metadata file's) makes a rewritten input open afresh."""
    import zarr

    if kind == "tiff":
        import tifffile

        return zarr.open(tifffile.imread(path, aszarr=True), mode="r")
    return zarr.open_array(path, mode="r")


def _is_colour(shape) -> bool:
    return len(shape) >= 3 and shape[-1] in (3, 4)


def open_source(path) -> BatchSource:
    """Describe one input path (a folder of images, a TIFF stack or a zarr array)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such input: {path}")
    if path.is_dir() and not _looks_like_zarr(path):
        files = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        from .io import read_image

        first = read_image(files[0])
        return BatchSource(path.name, "files", tuple(files), (len(files), *first.shape),
                           str(first.dtype), _is_colour(first.shape))
    if _looks_like_zarr(path):
        meta = next((path / name for name in ("zarr.json", ".zarray")
                     if (path / name).exists()), path)
        signature = _signature(meta)
        try:
            array = _open_array("zarr", str(path), signature)
        except Exception as exc:  # zarr raises several kinds for "not an array"
            raise ValueError(f"{path} is not a zarr array: {exc}") from None
        kind = "zarr"
    elif path.suffix.lower() in (".tif", ".tiff"):
        signature = _signature(path)
        try:
            array = _open_array("tiff", str(path), signature)
        except Exception as exc:
            raise ValueError(f"cannot read TIFF {path}: {exc}") from None
        kind = "tiff"
    else:
        raise ValueError(f"unsupported input {path}: give a folder of images, a TIFF stack "
                         "or a zarr array")
    shape, dtype = tuple(array.shape), np.dtype(array.dtype)
    if len(shape) < 2:
        raise ValueError(f"{path} has shape {shape}: an image needs at least 2 dimensions")
    if 0 in shape:
        raise ValueError(f"{path} is empty (shape {shape})")
    name = path.name.split(".")[0] or "image"
    return BatchSource(name, kind, (str(path),), shape, str(dtype), _is_colour(shape),
                       signature)


def _looks_like_zarr(path: Path) -> bool:
    return path.suffix == ".zarr" or (path / "zarr.json").exists() or (path / ".zarray").exists()


@functools.lru_cache(maxsize=4)
def _generator(model):
    from .dequantizer.weights import load_generator

    return load_generator(model)


def plane_result(plane: np.ndarray, *, steps, colour: bool, laic_options: dict,
                 model, device, bits) -> np.ndarray:
    """Run ``steps`` on one plane (the in-memory functions); float32 in [0, 1]."""
    from .compensation import laic
    from .quantization import Quantization

    channel_axis = -1 if colour else None
    floats = as_float_image(plane)
    if not floats.any():
        # A black frame (shutter closed, an empty slice) has no light to restore; in a long
        # batch it passes through as black instead of stopping the run.
        return np.zeros(plane.shape, dtype=np.float32)
    values, quantization = plane, None
    if "laic" in steps:
        result = laic(plane, channel_axis=channel_axis, bits=bits, **laic_options)
        values, quantization = result.enhanced, result.quantization
    if "dequantize" in steps:
        from .dequantizer.inference import dequantize

        if quantization is None:  # the plane is the capture itself: r = 1, k = 1
            from .compensation._api import _infer_bits

            depth = _infer_bits(floats, plane.dtype, bits)
            quantization = Quantization(np.rint(floats * (2**depth - 1)).astype(np.int64),
                                        k=1.0, r=1.0, bits=depth)
            values = floats
        values = dequantize(values, quantization=quantization, model=_generator(model),
                            device=device, channel_axis=channel_axis)
    return np.asarray(values, dtype=np.float32)


def _process(source: BatchSource, index: int, *, out: str, steps, laic_options, model,
             device, bits) -> int:
    """One task: read, process, write, mark done.  Runs on a worker."""
    import zarr

    try:  # one thread per task slot: the cluster gives the parallelism
        from distributed import get_worker

        threads = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        threads = None
    if threads:
        import torch

        torch.set_num_threads(threads)
    result = plane_result(source.read_plane(index), steps=steps, colour=source.colour,
                          laic_options=laic_options, model=model, device=device, bits=bits)
    array = zarr.open_array(str(Path(out) / source.name), mode="r+")
    array[source.plane_index(index)] = result
    marker = Path(out) / DONE_FOLDER / source.name / str(index)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()  # only after the write: a killed task leaves no marker
    return index


def _prepare_output(out: Path, sources, attrs: dict) -> None:
    import zarr

    group = zarr.open_group(str(out), mode="a")
    previous = group.attrs.get("napari_lowlight")
    if previous is not None and previous.get("steps") != attrs["steps"]:
        raise ValueError(f"{out} holds a run with steps {previous.get('steps')}; use another "
                         "output or the same settings")
    for source in sources:
        chunks = (1,) * (len(source.shape) - len(source.plane_shape)) + source.plane_shape
        if source.name in group:
            existing = group[source.name]
            if tuple(existing.shape) != source.shape:
                raise ValueError(f"{out}/{source.name} has shape {existing.shape}, the input "
                                 f"{source.shape}")
            continue
        array = group.create_array(source.name, shape=source.shape, chunks=chunks,
                                   dtype="float32", fill_value=float("nan"))
        array.attrs["source"] = list(source.paths[:1]) + (
            [f"... {len(source.paths)} files"] if len(source.paths) > 1 else [])
    group.attrs["napari_lowlight"] = attrs


def run_batch(inputs, out, *, steps=("laic", "dequantize"), scheduler="local",
              workers: int = 2, threads_per_worker: int = 1, model="default", device="auto",
              bits: int | None = None, laic_options: dict | None = None, progress=None,
              client=None) -> dict:
    """Process every plane of ``inputs`` into the zarr group ``out`` on a dask cluster.

    Parameters
    ----------
    inputs : list of path
        Folders of images, TIFF / OME-TIFF stacks, zarr arrays.
    out : path
        Output zarr group; one float32 array per input, chunked by plane, with the
        steps, parameters and model sha256 in its attributes.  Rerunning the same
        command skips finished planes.
    steps : sequence of "laic", "dequantize"
    scheduler : "local" or an address such as "tcp://10.0.0.5:8786"
        "local" starts a ``LocalCluster`` of ``workers`` processes; an address uses
        that running scheduler (its workers must see the input and output paths).
    workers, threads_per_worker : int
        Size of the local cluster.
    model, device, bits, laic_options
        As for :func:`napari_lowlight.enhance`; ``device="auto"`` lets each worker
        use its GPU when it has one.
    progress : callable, optional
        ``progress(done, total)`` after each plane (skipped planes count as done).
    client : distributed.Client, optional
        Use this client (and its cluster) instead of ``scheduler``.

    Returns
    -------
    dict
        ``planes`` (total), ``computed``, ``skipped`` and ``out``.
    """
    steps = tuple(steps)
    unknown = [step for step in steps if step not in STEPS]
    if not steps or unknown:
        raise ValueError(f"steps must be a non-empty subset of {STEPS}, got {list(steps)}")
    steps = tuple(step for step in STEPS if step in steps)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    sources = [open_source(path) for path in inputs]
    if not sources:
        raise ValueError("no inputs given")
    names = [source.name for source in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"two inputs have the same name: {names}")
    out = Path(out)
    if out.resolve() in {Path(p).resolve() for s in sources for p in s.paths}:
        raise ValueError("the output must not be one of the inputs")
    laic_options = dict(laic_options or {})
    attrs = {"steps": list(steps), "laic_options": laic_options, "bits": bits,
             "inputs": [str(Path(p)) for p in inputs], "package_version": _version()}
    if "dequantize" in steps:
        from .dequantizer.weights import available_models, sha256_of

        registry = available_models()
        attrs["model"] = str(model)
        attrs["model_sha256"] = (registry[model]["sha256"] if model in registry
                                 else sha256_of(model))
        _generator(model)  # a missing or altered weights file fails here, not on a worker
    _prepare_output(out, sources, attrs)
    done_dir = out / DONE_FOLDER
    todo, total = [], 0
    for source in sources:
        total += source.planes
        for index in range(source.planes):
            if not (done_dir / source.name / str(index)).exists():
                todo.append((source, index))
    skipped = total - len(todo)
    if progress is not None:
        progress(skipped, total)
    if todo:
        _run_tasks(todo, out=out, steps=steps, laic_options=laic_options, model=model,
                   device=device, bits=bits, scheduler=scheduler, workers=workers,
                   threads_per_worker=threads_per_worker, client=client,
                   progress=None if progress is None else
                   (lambda done: progress(skipped + done, total)))
    return {"planes": total, "computed": len(todo), "skipped": skipped, "out": str(out)}


def _run_tasks(todo, *, out, steps, laic_options, model, device, bits, scheduler, workers,
               threads_per_worker, client, progress):
    from distributed import Client, LocalCluster, as_completed

    own_cluster = own_client = None
    if client is None:
        if scheduler == "local":
            # Worker processes with one BLAS/torch thread each: parallel over planes.
            own_cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                                       processes=True, dashboard_address=None)
            own_client = client = Client(own_cluster)
        else:
            own_client = client = Client(scheduler)
    try:
        # Keys unique to this run: a long-lived client would otherwise hand back the result
        # (or error) of an earlier run's task with the same key instead of running it.
        run = uuid.uuid4().hex[:12]
        futures = [client.submit(_process, source, index, out=str(out), steps=steps,
                                 laic_options=laic_options, model=model, device=device,
                                 bits=bits, key=f"lowlight-{source.name}-{index}-{run}",
                                 pure=False, retries=2)
                   for source, index in todo]
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                future.result()  # raises the worker's error here, with its message
                if progress is not None:
                    progress(done)
        except BaseException:
            # stop what has not started; a plane already running still finishes (and is
            # marked done, correctly: same settings, same output)
            client.cancel(futures)
            raise
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()


def _version() -> str:
    from . import __version__

    return __version__


def batch_summary(out) -> dict:
    """The attributes ``run_batch`` stored in ``out`` (for reports and tests)."""
    import zarr

    return json.loads(json.dumps(dict(zarr.open_group(str(out), mode="r").attrs)))

