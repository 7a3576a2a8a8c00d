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
stacks (read page by page through tifffile's zarr view, interpreted by the file's own
tags: every series, photometric, planar configuration, alpha; ``io.tiff_layouts``) and
zarr arrays.  Leading axes (z, t, channels of a fluorescence stack) are planes of their
own; a trailing axis of 3 is RGB colour and, in zarr arrays (which carry no such
metadata), a trailing axis of 4 is RGB plus alpha.  Alpha is never processed: it is
copied into the output as its last channel.

Data safety:

- **Run identity.**  The output records what made it: every input (resolved path,
  kind, series, shape, dtype, and a fingerprint of its files' sizes and contents —
  sha256 for the first GiB of files, size and modification time beyond), the steps,
  every option, the model's name and sha256, the package version and each input's bit
  depth.  Resuming with a different identity is refused with what changed; ``restart``
  (``--restart``) discards the old planes and starts over.
- **Lock.**  A run holds an exclusive lock (``fcntl.flock`` on ``OUT/.lowlight-lock``,
  which names its pid and host) for its whole duration: a second run into the same
  output is refused at once; a lock left by a killed run is released by the system.
- **Before any work.**  The output is planned (``outputs.plan_outputs``: not an input,
  not inside an input folder, its folder writable), the resume checked, and a remote
  scheduler's address probed (a few seconds) before the zarr store is created.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._validation import check_int
from .intensity import to_intensity
from .io import IMAGE_SUFFIXES, list_image_files

__all__ = ["STEPS", "BatchSource", "open_source", "open_sources", "plane_result", "run_batch",
           "source_bits"]

#: Steps ``batch`` knows, in the order they run.
STEPS = ("laic", "dequantize")
DONE_FOLDER = ".lowlight-done"
LOCK_NAME = ".lowlight-lock"
#: Inputs are hashed (sha256) up to this many bytes in all; beyond, size and mtime identify them.
HASH_BUDGET = 1 << 30
#: Seconds to wait when probing a remote scheduler's address.
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class BatchSource:
    """One input: where it lives, its shape and dtype, and how to read one plane.

    ``shape``/``dtype`` are the light's (alpha removed, palette expanded, samples last);
    ``alpha``: an alpha channel comes with every plane (copied to the output).
    """

    name: str
    kind: str  # "files", "tiff" or "zarr"
    paths: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    colour: bool  # trailing RGB axis
    signature: tuple = ()  # (mtime_ns, size, token) at opening: each run reads files afresh
    series: int = 0  # TIFF series
    alpha: bool = False
    layout: object = field(default=None, compare=False, hash=False, repr=False)  # TiffLayout

    @property
    def plane_shape(self) -> tuple[int, ...]:
        return self.shape[-3:] if self.colour else self.shape[-2:]

    @property
    def planes(self) -> int:
        return int(np.prod(self.shape[: len(self.shape) - len(self.plane_shape)], dtype=int))

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of the output array: the light, plus a last alpha channel when there is one."""
        if not self.alpha:
            return self.shape
        return self.shape[:-1] + (4,) if self.colour else self.shape + (2,)

    def plane_index(self, index: int) -> tuple[int, ...]:
        leading = self.shape[: len(self.shape) - len(self.plane_shape)]
        return tuple(int(i) for i in np.unravel_index(index, leading)) if leading else ()

    def read_parts(self, index: int):
        """(light, alpha) of plane ``index``; alpha is None without an alpha channel."""
        if self.kind == "files":
            from .io import load_image

            loaded = load_image(self.paths[index])
            light, alpha = loaded.image, loaded.alpha
        elif self.kind == "tiff":
            array = _open_array("tiff", self.paths[0], self.signature, self.series)
            raw = array[self.layout.raw_index(self.plane_index(index))]
            light, alpha = self.layout.interpret(raw, self.layout.plane_axes())
        else:
            plane = np.asarray(_open_array("zarr", self.paths[0], self.signature)[
                self.plane_index(index)])
            light, alpha = (plane[..., :3], plane[..., 3]) if self.alpha else (plane, None)
        light = np.asarray(light)
        if light.shape != self.plane_shape:
            raise ValueError(f"{self.name}: plane {index} has shape {light.shape}, "
                             f"expected {self.plane_shape}")
        if self.alpha and alpha is None:
            raise ValueError(f"{self.name}: plane {index} has no alpha channel, the first has")
        return light, (alpha if self.alpha else None)

    def read_plane(self, index: int) -> np.ndarray:
        """The light of plane ``index`` (what the steps process)."""
        return self.read_parts(index)[0]


def _signature(path) -> tuple:
    # File times tick at the kernel's coarse clock (a few ms): two writes of the same size
    # can look alike, so every opening (one per run) also gets its own token.
    stat = Path(path).stat()
    return (stat.st_mtime_ns, stat.st_size, uuid.uuid4().hex)


@functools.lru_cache(maxsize=8)
def _open_array(kind: str, path: str, signature: tuple = (), series: int = 0):
    """The opened array, kept open for the next planes; ``signature`` (the file's mtime
    and size, or a zarr folder's metadata file's) makes a rewritten input open afresh."""
    import zarr

    if kind == "tiff":
        import tifffile

        return zarr.open(tifffile.imread(path, aszarr=True, series=series, level=0), mode="r")
    return zarr.open_array(path, mode="r")


def _is_colour(shape) -> bool:
    return len(shape) >= 3 and shape[-1] in (3, 4)


def _check_shape(path, shape) -> None:
    if len(shape) < 2:
        raise ValueError(f"{path} has shape {shape}: an image needs at least 2 dimensions")
    if 0 in shape:
        raise ValueError(f"{path} is empty (shape {shape})")


def open_sources(path) -> list[BatchSource]:
    """Describe one input path: a folder of images, a TIFF file (one source per series)
    or a zarr array.  Only headers are read; anything that cannot be read faithfully is
    refused here, before any work."""
    from .io import probe_image, tiff_layouts

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such input: {path}")
    name = path.name.split(".")[0] or "image"
    if path.is_dir() and not _looks_like_zarr(path):
        files = [str(file) for file in list_image_files(path)]
        if not files:
            raise ValueError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        first = probe_image(files[0])
        for other in files[1:]:  # headers only: a mismatch is found before any work
            info = probe_image(other)
            if (info.shape, info.dtype, info.colour, info.alpha) != (
                    first.shape, first.dtype, first.colour, first.alpha):
                raise ValueError(
                    f"folder {path}: {Path(other).name} is {_describe(info)}, but "
                    f"{Path(files[0]).name} is {_describe(first)}; a folder is one stack of "
                    "alike images")
        return [BatchSource(path.name, "files", tuple(files), (len(files), *first.shape),
                            first.dtype, first.colour, alpha=first.alpha)]
    if _looks_like_zarr(path):
        meta = next((path / name for name in ("zarr.json", ".zarray")
                     if (path / name).exists()), path)
        signature = _signature(meta)
        try:
            array = _open_array("zarr", str(path), signature)
        except Exception as exc:  # zarr raises several kinds for "not an array"
            raise ValueError(f"{path} is not a zarr array: {exc}") from None
        shape, dtype = tuple(array.shape), np.dtype(array.dtype)
        _check_shape(path, shape)
        colour, alpha = _is_colour(shape), _is_colour(shape) and shape[-1] == 4
        light = shape[:-1] + (3,) if alpha else shape
        return [BatchSource(name, "zarr", (str(path),), light, str(dtype), colour, signature,
                            alpha=alpha)]
    if path.suffix.lower() in (".tif", ".tiff"):
        layouts = tiff_layouts(path)
        signature = _signature(path)
        sources = []
        for layout in layouts:
            _check_shape(path, layout.light_shape)
            sources.append(BatchSource(
                name if len(layouts) == 1 else f"{name}_series{layout.series}", "tiff",
                (str(path),), layout.light_shape, layout.light_dtype, layout.colour, signature,
                series=layout.series, alpha=layout.alpha_sample is not None, layout=layout))
        return sources
    raise ValueError(f"unsupported input {path}: give a folder of images, a TIFF stack "
                     "or a zarr array")


def open_source(path) -> BatchSource:
    """Describe one input path that holds one image series (see :func:`open_sources`)."""
    sources = open_sources(path)
    if len(sources) > 1:
        raise ValueError(f"{path} holds {len(sources)} series; use open_sources")
    return sources[0]


def _describe(info) -> str:
    extra = " with alpha" if info.alpha else ""
    return f"{'x'.join(map(str, info.shape))} {info.dtype}{extra}"


def source_bits(source: BatchSource, bits) -> int:
    """The bit depth of a whole input: ``bits`` checked, or inferred from every plane's
    maximum (integers; one read pass) or from the first plane's grid (floats)."""
    from .intensity import check_bits_or_none, effective_bits, grid_bits, sample_positions

    bits = check_bits_or_none(bits)
    if np.dtype(source.dtype).kind not in "iu":
        if bits is not None:
            return bits
        # the same sample positions over the whole stack as for an in-memory array
        positions = sample_positions(int(np.prod(source.shape)))
        plane_size = int(np.prod(source.plane_shape))
        sample = [source.read_plane(index).ravel()[
            positions[(positions >= index * plane_size) & (positions < (index + 1) * plane_size)]
            - index * plane_size] for index in range(source.planes)]
        return grid_bits(np.concatenate(sample))
    maximum = max(int(source.read_plane(index).max()) for index in range(source.planes))
    return effective_bits(np.array([maximum], dtype=np.int64), bits)[0]


def _looks_like_zarr(path: Path) -> bool:
    return path.suffix == ".zarr" or (path / "zarr.json").exists() or (path / ".zarray").exists()


@functools.lru_cache(maxsize=4)
def _generator(model):
    from .dequantizer.weights import load_generator

    return load_generator(model)


@functools.lru_cache(maxsize=4)
def _refiner(model):
    """The refiner ``dequantize(model=NAME)`` would use (the network goes in loaded, so
    ``refine="auto"`` cannot find it by name), else False."""
    from .dequantizer.refiner import refiner_for

    return refiner_for(model) or False


def plane_result(plane: np.ndarray, *, steps, colour: bool, laic_options: dict,
                 model, device, bits) -> np.ndarray:
    """Run ``steps`` on one plane (the in-memory functions); float32 in [0, 1]."""
    from .compensation import laic
    from .quantization import implied_quantization

    channel_axis = -1 if colour else None
    floats, intensity = to_intensity(plane, bits=bits)
    if float(floats.max(initial=0.0)) < 0.5 / (2**intensity.bits - 1):
        # A black frame (shutter closed, an empty slice) has no light to restore; in a long
        # batch it passes through as black instead of stopping the run.
        return np.zeros(plane.shape, dtype=np.float32)
    values, quantization = plane, None
    if "laic" in steps:
        result = laic(plane, channel_axis=channel_axis, bits=bits, **laic_options)
        values, quantization = result.enhanced, result.quantization
    if "dequantize" in steps:
        from .dequantizer import dequantize

        if quantization is None:  # the plane is the capture itself: r = 1, k = 1
            quantization = implied_quantization(floats, bits=intensity.bits)
            values = floats
        values = dequantize(values, quantization=quantization, model=_generator(model),
                            device=device, channel_axis=channel_axis,
                            refine=_refiner(model))
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
    light, alpha = source.read_parts(index)
    result = plane_result(light, steps=steps, colour=source.colour,
                          laic_options=laic_options, model=model, device=device, bits=bits)
    if alpha is not None:  # never processed: copied back as the last channel
        from .io import alpha_as_float

        result = np.concatenate([result if source.colour else result[..., None],
                                 alpha_as_float(alpha).astype(np.float32)[..., None]], axis=-1)
    array = zarr.open_array(str(Path(out) / source.name), mode="r+")
    array[source.plane_index(index)] = result
    marker = Path(out) / DONE_FOLDER / source.name / str(index)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()  # only after the write: a killed task leaves no marker
    return index


def _prepare_output(out: Path, sources, attrs: dict) -> None:
    import zarr

    group = zarr.open_group(str(out), mode="a")
    for source in sources:
        shape = source.out_shape
        plane_dims = len(source.plane_shape) + (1 if source.alpha and not source.colour else 0)
        chunks = (1,) * (len(shape) - plane_dims) + shape[len(shape) - plane_dims:]
        if source.name in group:
            existing = group[source.name]
            if tuple(existing.shape) != shape:
                raise ValueError(f"{out}/{source.name} has shape {existing.shape}, the input "
                                 f"{shape}")
            continue
        array = group.create_array(source.name, shape=shape, chunks=chunks,
                                   dtype="float32", fill_value=float("nan"))
        array.attrs["source"] = list(source.paths[:1]) + (
            [f"... {len(source.paths)} files"] if len(source.paths) > 1 else [])
        if source.kind == "tiff":
            array.attrs["series"] = source.series
        if source.alpha:
            array.attrs["alpha"] = "last channel: the input's alpha, copied unprocessed"
    group.attrs["napari_lowlight"] = attrs


# -- run identity -------------------------------------------------------------------------
def _file_records(root: Path, files, budget: list) -> list:
    """(name, size, sha256 or mtime) of each file: contents while ``budget`` bytes last."""
    records = []
    for file in files:
        file = Path(file)
        stat = file.stat()
        name = str(file.relative_to(root)) if root in file.parents else file.name
        if stat.st_size <= budget[0]:
            budget[0] -= stat.st_size
            digest = hashlib.sha256()
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            records.append([name, stat.st_size, "sha256:" + digest.hexdigest()])
        else:
            records.append([name, stat.st_size, f"mtime_ns:{stat.st_mtime_ns}"])
    return records


def _input_identity(sources) -> list[dict]:
    budget, by_path, identity = [HASH_BUDGET], {}, []
    for source in sources:
        if source.kind == "files":
            root = Path(source.paths[0]).parent
            files = source.paths
        elif source.kind == "zarr":
            root = Path(source.paths[0])
            files = sorted(p for p in root.rglob("*") if p.is_file())
        else:
            root = Path(source.paths[0])
            files = [root]
        key = (str(root), len(files))
        if key not in by_path:
            zarr_budget = [0] if source.kind == "zarr" else budget  # chunks: size and mtime
            by_path[key] = _file_records(root.parent if source.kind == "tiff" else root,
                                         files, zarr_budget)
        records = by_path[key]
        entry = {"name": source.name, "path": str(root.resolve()), "kind": source.kind,
                 "series": source.series, "shape": list(source.shape), "dtype": source.dtype,
                 "alpha": source.alpha, "files": len(records),
                 "fingerprint": hashlib.sha256(json.dumps(records).encode()).hexdigest()}
        if source.kind == "tiff":
            entry["size"], entry["content"] = records[0][1], records[0][2]
        identity.append(entry)
    return identity


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _identity_changes(old: dict, new: dict) -> list[str]:
    """What differs between two run identities, in words."""
    changes = []
    for key, label in (("steps", "steps"), ("bits", "--bits"), ("laic_options", "LAIC options"),
                       ("device", "--device"), ("package_version", "package version")):
        if old.get(key) != new.get(key) and (key != "device" or None not in (
                old.get(key), new.get(key))):  # no device without dequantize: steps say it
            changes.append(f"{label} {_short(old.get(key))} -> {_short(new.get(key))}")
    if None in (old.get("model"), new.get("model")):
        pass  # the steps changed: already said
    elif old.get("model") != new.get("model"):
        changes.append(f"model {_short(old.get('model'))} -> {_short(new.get('model'))}")
    elif old.get("model_sha256") != new.get("model_sha256"):
        changes.append(f"model {old.get('model')!r} has other weights (sha256 "
                       f"{str(old.get('model_sha256'))[:12]}... -> "
                       f"{str(new.get('model_sha256'))[:12]}...)")
    old_inputs = {i["name"]: i for i in old.get("inputs", [])}
    new_inputs = {i["name"]: i for i in new.get("inputs", [])}
    for name in old_inputs.keys() - new_inputs.keys():
        changes.append(f"input {name!r} ({old_inputs[name]['path']}) is no longer given")
    for name in new_inputs.keys() - old_inputs.keys():
        changes.append(f"new input {name!r} ({new_inputs[name]['path']})")
    for name in sorted(old_inputs.keys() & new_inputs.keys()):
        a, b = old_inputs[name], new_inputs[name]
        if a["path"] != b["path"]:
            changes.append(f"input {name!r} is now {b['path']}, was {a['path']}")
            continue
        described = False
        for key in ("kind", "series", "shape", "dtype", "alpha", "files"):
            if a.get(key) != b.get(key):
                changes.append(f"input {name!r} ({b['path']}): {key} {_short(a.get(key))} -> "
                               f"{_short(b.get(key))}")
                described = True
        if not described and a.get("fingerprint") != b.get("fingerprint"):
            how = (f"size {a['size']} -> {b['size']} bytes" if a.get("size") != b.get("size")
                   else "its content changed" if str(b.get("content", "")).startswith("sha256")
                   else "its files' sizes, dates or contents changed")
            changes.append(f"input {name!r} ({b['path']}) was rewritten since ({how})")
        elif a.get("fingerprint") == b.get("fingerprint"):
            old_bits = old.get("bits_by_input", {}).get(name)
            new_bits = new.get("bits_by_input", {}).get(name)
            if old_bits != new_bits and old.get("bits") == new.get("bits"):
                changes.append(f"bit depth of input {name!r} {old_bits} -> {new_bits}")
    return changes


def _existing_run(out: Path):
    """The attributes of the batch run in ``out``; None when ``out`` is absent or empty."""
    import zarr

    if not out.exists():
        return None
    if not any(p.name != LOCK_NAME for p in out.iterdir()):
        return None
    try:
        attrs = dict(zarr.open_group(str(out), mode="r").attrs)
    except Exception:  # noqa: BLE001 - zarr raises several kinds for "not a group"
        raise ValueError(f"{out} exists and is not a napari-lowlight batch output (a zarr "
                         "group); choose another output") from None
    previous = attrs.get("napari_lowlight")
    if not isinstance(previous, dict):
        raise ValueError(f"{out} is a zarr group that napari-lowlight batch did not write; "
                         "choose another output")
    return previous


def _check_resume(out: Path, previous, identity: dict) -> None:
    if previous is None:
        return
    old = previous.get("identity")
    if old is None:
        raise ValueError(f"{out} holds a run (steps {previous.get('steps')}) from a version "
                         "that recorded no run identity: it cannot be resumed safely; use "
                         "another output or pass --restart (restart=True) to start over")
    changes = _identity_changes(old, identity)
    if changes:
        raise ValueError(f"{out} holds a different run: {'; '.join(changes)}. Resuming would "
                         "mix planes of two runs: use another output, or pass --restart "
                         "(restart=True) to discard it and start over")


def _clear_output(out: Path) -> None:
    """Remove a previous run's arrays and markers (``out`` is known to be a batch output)."""
    for entry in out.iterdir():
        if entry.name == LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


# -- exclusive lock -----------------------------------------------------------------------
def _lock_holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"pid {holder.get('pid')} on {holder.get('host')}, since {started}"


@contextlib.contextmanager
def _output_lock(out: Path):
    """Hold ``out/.lowlight-lock`` exclusively for the block (refused at once if held)."""
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                         "started": time.time()})
    try:
        handle = _acquire_lock(out, path, record)
        try:
            yield
        finally:
            _release_lock(handle, path)
    finally:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only when the run left it empty (it failed before writing)


def _acquire_lock(out: Path, path: Path, record: str):
    """Lock ``path`` for this run and write ``record`` (pid, host, start); the open handle."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): an O_EXCL file, stale when its pid is gone
        fcntl = None
    for _ in range(5):
        handle = _open_exclusive(out, path) if fcntl is None else _open_flocked(out, path, fcntl)
        if handle is None:
            continue  # the lock file was removed or replaced meanwhile: try again
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(record)
            handle.flush()
        except BaseException:
            _release_lock(handle, path)  # ours now: remove it as the end of the run would
            raise
        return handle
    raise RuntimeError(f"could not lock {out}: the lock file keeps changing")


def _open_exclusive(out: Path, path: Path):
    """Create the lock file with O_EXCL; None when a dead run's stale file was removed."""
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        import psutil

        holder = json.loads(path.read_text() or "{}")
        if holder.get("host") == socket.gethostname() and not psutil.pid_exists(
                int(holder.get("pid", -1))):
            path.unlink(missing_ok=True)  # left by a dead run
            return None
        raise RuntimeError(f"{out} is in use by another batch run "
                           f"({_lock_holder(path)}); wait for it to finish") from None
    return os.fdopen(descriptor, "w")


def _open_flocked(out: Path, path: Path, fcntl):
    """Open and ``flock`` the lock file; None when it was replaced before the lock took."""
    handle = open(path, "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise RuntimeError(
            f"{out} is in use by another batch run ({_lock_holder(path)}); wait "
            f"for it to finish (a killed run's lock is released by the system)"
        ) from None
    try:  # the file may have been removed by the holder just before we locked it
        same = os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except FileNotFoundError:
        same = False
    except BaseException:
        _release_lock(handle, path)  # locked by us: let go of it as the end of a run does
        raise
    if not same:
        handle.close()
        return None
    return handle


def _release_lock(handle, path: Path) -> None:
    """Remove the lock file, then close it (closing releases the flock)."""
    with contextlib.suppress(OSError):
        path.unlink()
    handle.close()


# -- the cluster --------------------------------------------------------------------------
def check_scheduler(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Refuse a scheduler address that is malformed or does not answer within ``timeout`` s."""
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    from distributed.comm.registry import backends

    def malformed(reason):
        return ValueError(f"--scheduler {address!r} is not 'local' or an address such as "
                          f"tcp://10.0.0.5:8786 ({reason})")

    try:
        scheme, location = parse_address(address)
    except (ValueError, TypeError) as exc:
        raise malformed(exc) from None
    if scheme not in backends:
        raise malformed(f"unknown protocol {scheme!r}; known: {', '.join(sorted(backends))}")
    if scheme not in ("tcp", "tls"):
        return  # inproc, ucx, ws: the client's own connect reports problems
    try:
        host, port = parse_host_port(location, default_port=8786)
        port = int(port)
    except (ValueError, TypeError) as exc:
        raise malformed(exc) from None
    if not host or any(c.isspace() for c in host):
        raise malformed("no host")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise RuntimeError(f"cannot reach the dask scheduler at {address} within {timeout:g} s "
                           f"({exc}); start it, check the address and firewall, or use "
                           "--scheduler local") from None


@contextlib.contextmanager
def _connected(client, scheduler, workers, threads_per_worker):
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    if scheduler == "local":
        # Worker processes with one BLAS/torch thread each: parallel over planes.
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                               processes=True, dashboard_address=None)
        try:
            with Client(cluster) as own:
                yield own
        finally:
            cluster.close()
        return
    try:
        own = Client(scheduler, timeout=2 * CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise RuntimeError(f"cannot connect to the dask scheduler at {scheduler}: {exc}") from None
    try:
        yield own
    finally:
        own.close()


def run_batch(inputs, out, *, steps=("laic", "dequantize"), scheduler="local",
              workers: int = 2, threads_per_worker: int = 1, model="default", device="auto",
              bits: int | None = None, laic_options: dict | None = None, progress=None,
              client=None, restart: bool = False) -> dict:
    """Process every plane of ``inputs`` into the zarr group ``out`` on a dask cluster.

    Parameters
    ----------
    inputs : list of path
        Folders of images, TIFF / OME-TIFF stacks (every series), zarr arrays.
    out : path
        Output zarr group; one float32 array per input (per series), chunked by plane,
        with the run's identity (inputs, steps, options, model sha256, package version)
        in its attributes.  Rerunning the same command skips finished planes; a run with
        another identity is refused unless ``restart``.
    steps : sequence of "laic", "dequantize"
    scheduler : "local" or an address such as "tcp://10.0.0.5:8786"
        "local" starts a ``LocalCluster`` of ``workers`` processes; an address uses
        that running scheduler (its workers must see the input and output paths); it is
        probed before anything is written.
    workers, threads_per_worker : int
        Size of the local cluster.
    model, device, bits, laic_options
        As for :func:`napari_lowlight.enhance`; ``device="auto"`` lets each worker
        use its GPU when it has one.
    progress : callable, optional
        ``progress(done, total)`` after each plane (skipped planes count as done).
    client : distributed.Client, optional
        Use this client (and its cluster) instead of ``scheduler``.
    restart : bool
        Discard what ``out`` holds from an earlier run (only a batch output) and start over.

    Returns
    -------
    dict
        ``planes`` (total), ``computed``, ``skipped`` and ``out``.
    """
    steps = _check_steps(steps)
    workers = check_int(workers, "workers", low=1)
    threads_per_worker = check_int(threads_per_worker, "threads_per_worker", low=1)
    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise ValueError("no inputs given")
    out = Path(out)
    slots = workers * threads_per_worker if client is None and scheduler == "local" else 1
    sources = _planned_sources(inputs, out, slots)
    laic_options = dict(laic_options or {})
    # One bit depth per input, by the package's one rule over the whole input (as for an
    # in-memory or dask array), not per plane: planes of one stack must be scaled alike.
    depths = {source.name: source_bits(source, bits) for source in sources}
    attrs = _run_attributes(inputs, sources, steps=steps, bits=bits, depths=depths,
                            laic_options=laic_options, model=model, device=device)
    identity = attrs["identity"]
    if not restart:
        _check_resume(out, _existing_run(out), identity)
    elif out.exists():
        _existing_run(out)  # refuses to clear anything that is not a batch output
    if client is None and scheduler != "local":
        check_scheduler(scheduler)  # before the zarr store is created
    with _output_lock(out):
        previous = _existing_run(out)  # again, under the lock: a run may have ended since
        if restart and previous is not None:
            _clear_output(out)
        elif not restart:
            _check_resume(out, previous, identity)
        todo, total = _planes_to_do(out, sources)
        skipped = total - len(todo)
        if progress is not None:
            progress(skipped, total)
        if todo:
            with _connected(client, scheduler, workers, threads_per_worker) as active:
                _prepare_output(out, sources, attrs)
                _run_tasks(todo, client=active, out=out, steps=steps,
                           laic_options=laic_options, model=model, device=device, bits=depths,
                           progress=None if progress is None else
                           (lambda done: progress(skipped + done, total)))
    return {"planes": total, "computed": len(todo), "skipped": skipped, "out": str(out)}


def _check_steps(steps) -> tuple:
    """``steps`` checked and put in the order they run (``STEPS``)."""
    steps = tuple(steps)
    unknown = [step for step in steps if step not in STEPS]
    if not steps or unknown:
        raise ValueError(f"steps must be a non-empty subset of {STEPS}, got {list(steps)}")
    return tuple(step for step in STEPS if step in steps)


def _planned_sources(inputs: list, out: Path, slots: int) -> list:
    """Plan ``out``, open every input's sources and check that ``slots`` planes fit memory."""
    from .io import WORKING_COPIES, check_memory
    from .outputs import Output, plan_outputs

    # the output is checked before any input is opened: a bad --out is refused at once
    plan_outputs([Output(out, "--out", kind="zarr")], inputs=inputs)
    sources = [source for path in inputs for source in open_sources(path)]
    names = [source.name for source in sources]
    if len(set(names)) != len(names):  # one output array per name: they must differ
        raise ValueError(f"two inputs have the same name: {names}")
    for source in sources:
        check_memory(source.plane_shape, what=f"{source.name} (one plane, {slots} at a time)",
                     copies=WORKING_COPIES * slots)
    return sources


def _run_attributes(inputs, sources, *, steps, bits, depths, laic_options, model,
                    device) -> dict:
    """The attributes the output records, with the run ``identity`` that a resume must match."""
    attrs = {"steps": list(steps), "laic_options": laic_options, "bits": bits,
             "bits_by_input": depths,
             "inputs": [str(Path(p)) for p in inputs], "package_version": _version()}
    if "dequantize" in steps:
        from .dequantizer.weights import available_models, sha256_of

        registry = available_models()
        attrs["model"] = str(model)
        attrs["model_sha256"] = (registry[model]["sha256"] if model in registry
                                 else sha256_of(model))
        # the refiner changes the result as much as the weights do: a resume must match it
        refiner = registry.get(model, {}).get("refiner") if model in registry else None
        attrs["refiner_sha256"] = refiner.get("sha256") if isinstance(refiner, dict) else None
        _generator(model)  # a missing or altered weights file fails here, not on a worker
        _refiner(model)
    # through JSON: compared with what a previous run stored (tuples read back as lists)
    attrs["identity"] = json.loads(json.dumps({
        "steps": list(steps), "bits": bits, "bits_by_input": depths,
        "laic_options": laic_options, "device": str(device) if "dequantize" in steps else None,
        "model": attrs.get("model"), "model_sha256": attrs.get("model_sha256"),
        "refiner_sha256": attrs.get("refiner_sha256"),
        "package_version": attrs["package_version"], "inputs": _input_identity(sources)}))
    return attrs


def _planes_to_do(out: Path, sources) -> tuple[list, int]:
    """The (source, plane index) pairs without a done marker in ``out``, and the plane count."""
    done_dir = out / DONE_FOLDER
    todo, total = [], 0
    for source in sources:
        total += source.planes
        for index in range(source.planes):
            if not (done_dir / source.name / str(index)).exists():
                todo.append((source, index))
    return todo, total


def _run_tasks(todo, *, client, out, steps, laic_options, model, device, bits, progress):
    from distributed import as_completed

    # Keys unique to this run: a long-lived client would otherwise hand back the result
    # (or error) of an earlier run's task with the same key instead of running it.
    run = uuid.uuid4().hex[:12]
    futures = [client.submit(_process, source, index, out=str(out), steps=steps,
                             laic_options=laic_options, model=model, device=device,
                             bits=bits[source.name] if isinstance(bits, dict) else bits,
                             key=f"lowlight-{source.name}-{index}-{run}",
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


def _version() -> str:
    from . import __version__

    return __version__


def batch_summary(out) -> dict:
    """The attributes ``run_batch`` stored in ``out`` (for reports and tests)."""
    import zarr

    return json.loads(json.dumps(dict(zarr.open_group(str(out), mode="r").attrs)))
