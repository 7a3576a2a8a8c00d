#!/usr/bin/env python3
"""One prepared accelerator run: GPU tests, benchmarks and a training chunk, within a budget.

On a lent device machine (an NVIDIA H100/H200 with torch and CuPy but without highspy,
dask, distributed, zarr, napari or a package registry)::

    make device-check                    # = python3 scripts/device_check.py

and here, on the CPU, with tiny sizes, so that a broken script shows up before a device
session spends its minutes on it (``tests/test_device_check.py`` runs it)::

    make device-check DRY_RUN=1          # = .venv/bin/python scripts/device_check.py --dry-run

Stages, in this order, each in a process of its own with its own time budget, all under one
global deadline (``--budget``, 540 s on a device), so that the whole run ends in time even
when a stage hangs (its process group is killed at its timeout) and a stage that fails
does not stop the next:

``install``
    the project staged from ``src/`` and ``weights/`` into a private folder (no build
    backend or registry needed), and the carried wheels (``make device-wheels``) installed
    into another one; both go first on the stages' ``PYTHONPATH``.
``environment``
    versions, where each module comes from, the GPU as ``nvidia-smi`` sees it.
``tests``
    ``pytest -m gpu`` over the test files that hold GPU tests (``--tests``: chosen ones).
``bench_dequantizer``
    the bf16 matrix-product peak and copy bandwidth, then each shipped model's network in
    MP/s at fp32, bf16/fp16 autocast, channels_last and bf16 weights, against that peak;
    ``dequantize()`` end to end on the GPU and on the CPU.
``bench_laic``
    LAIC's per-pixel work (box means, local signs, gain application) and ``laic()`` end to
    end, CuPy against NumPy.
``bench_compile``
    ``torch.compile`` of the fastest eager variant: compile time, MP/s, agreement.
``train``
    continues a training run for the minutes left: from ``--resume`` (a folder holding a
    previous run's ``checkpoint.pt`` and ``report.json``) or from the shipped model.

Writes into ``$OUT`` (default ``out/device-check``), at most six files, each far below
16 MiB: ``report.json``, ``report.md``, ``log.txt`` and the training chunk's
``checkpoint.pt``, ``generator.safetensors`` and ``history.jsonl``.  Copy them into
``device-run/`` to continue the training in the next session.  Exit status 0 when every
stage is "ok".
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "out" / "device-check"
DEFAULT_WHEELS = REPO / "device-wheels"
DEFAULT_RESUME = REPO / "device-run"

#: What the project imports and the device image lacks (see ../shared/NOTES.md, GPU), with
#: what those need in turn, pinned to the versions the project's own environment tests.
#: napari is left out on purpose: nothing on the device runs the plugin.
DEVICE_WHEELS = {
    "highspy": "1.16.0",        # LAIC's linear programs
    "dask": "2026.8.0",         # lazy arrays
    "distributed": "2026.8.0",  # batch on a cluster
    "zarr": "3.1.6",            # batch output
    "numcodecs": "0.16.6",
    "donfig": "0.8.1.post1",
    "google-crc32c": "1.9.0",
    "partd": "1.4.2",
    "locket": "1.0.0",
    "zict": "3.0.0",
    "tornado": "6.6.1",
    "tblib": "3.2.2",
}
#: The device's Python and platform (KINDS.md: Python 3.12, x86-64); pip matches each
#: manylinux tag exactly, so every one a pinned wheel uses is listed.
WHEEL_PYTHON = "3.12"
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64",
                   "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_5_x86_64",
                   "manylinux1_x86_64")

#: The training crops carried to the device (scripts/make_training_pack.py), when present.
DEFAULT_PACK = REPO / "device-pack" / "pairs-source.npz"
#: The files a run leaves in $OUT (the device tool brings back at most 8, each <= 16 MiB).
RUN_FILES = ("checkpoint.pt", "generator.safetensors", "history.jsonl")
OUT_FILES = ("report.json", "report.md", "log.txt") + RUN_FILES
OUT_FILE_LIMIT = 16 * 2**20

#: Stage name -> (budget on a device, budget in a dry run), seconds; "train" takes the rest.
STAGE_BUDGETS = {
    "install": (60.0, 30.0),
    "environment": (30.0, 15.0),
    # measured on an H100 (2026-11-26): 41 GPU tests in 145 s, benchmarks 36 / 18 / 36 s
    "tests": (210.0, 60.0),
    "bench_dequantizer": (60.0, 45.0),
    "bench_laic": (30.0, 30.0),
    "bench_compile": (60.0, 45.0),
    "train": (None, 45.0),
}
STAGES = tuple(STAGE_BUDGETS)
#: A stage is not started with less than this many seconds left (device, dry run).
MIN_STAGE_SECONDS = (10.0, 2.0)
#: Kept free at the end for copying the run's files and writing the report.
FINISH_RESERVE = (10.0, 2.0)
#: Seconds of a training stage spent outside training (start-up, data, final checkpoint).
TRAIN_OVERHEAD = (40.0, 12.0)

#: Problem sizes: real ones on a device, tiny ones in a dry run (seconds on two CPU cores).
SIZES = {
    "device": {
        "matmul": 8192, "copy_mib": 1024, "net_batch": 4, "net_side": 1024,
        "net_seconds": 1.0, "net_warmup": 3, "e2e_side": 2048, "e2e_cpu_side": 1024,
        "laic_side": 4096, "laic_e2e_side": 1024, "repeats": 3,
        "compile_backend": "inductor",
    },
    "dry": {
        "matmul": 256, "copy_mib": 16, "net_batch": 1, "net_side": 16,
        "net_seconds": 0.0, "net_warmup": 0, "e2e_side": 40, "e2e_cpu_side": 40,
        "laic_side": 64, "laic_e2e_side": 40, "repeats": 1,
        # dynamo's graph capture without inductor's C++/Triton build, which takes a minute
        # of two busy cores: the stage's code runs, the speed number means nothing
        "compile_backend": "eager",
    },
}

#: Network variants: autocast dtype, channels_last, weight dtype.  "bf16-autocast" is what
#: dequantize() runs on CUDA.
VARIANTS = {
    "fp32": (None, False, None),
    "bf16-autocast": ("bfloat16", False, None),
    "fp16-autocast": ("float16", False, None),
    "bf16-autocast-channels_last": ("bfloat16", True, None),
    "bf16-weights-channels_last": (None, True, "bfloat16"),
}
COMPILED_VARIANT = "bf16-autocast-channels_last"


# ----------------------------------------------------------------------------------------
# small helpers


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _finite(value) -> bool:
    """A real, finite number (not a bool, not None)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def _source_digest() -> str:
    """sha256 over src/ and weights/: names the code a report came from (.git may not travel)."""
    digest = hashlib.sha256()
    for folder in ("src", "weights"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
                digest.update(str(path.relative_to(REPO)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def _git_commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


class Recorder:
    """A stage's results, rewritten to disk after every measurement.

    A stage killed at its timeout so still leaves what it measured before.
    """

    def __init__(self, path: Path, deadline: float):
        self.path = Path(path)
        self.deadline = deadline
        self.data: dict = {"errors": []}

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        tmp.replace(self.path)

    def time_left(self) -> float:
        return self.deadline - time.time()

    def error(self, where: str, exc: BaseException) -> None:
        """Record a failed item; the stage goes on with the next one."""
        self.data["errors"].append({"where": where, "error": _error_text(exc)})
        print(f"[{where}] failed: {_error_text(exc)}", flush=True)
        traceback.print_exc()
        self.save()


# ----------------------------------------------------------------------------------------
# wheels (make device-wheels)


def download_wheels(folder: Path) -> int:
    """Download DEVICE_WHEELS for the device's Python into ``folder``; drop other versions."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {_normalise(name): version for name, version in DEVICE_WHEELS.items()}
    for wheel in folder.glob("*.whl"):
        name, version = wheel.name.split("-")[:2]
        if wanted.get(_normalise(name)) != version:
            # two versions of one package stop the whole install on the device
            print(f"removing {wheel.name} (not a pinned version)")
            wheel.unlink()
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--python-version", WHEEL_PYTHON, "--implementation", "cp",
               "--disable-pip-version-check", "-d", str(folder)]
    for tag in WHEEL_PLATFORMS:
        command += ["--platform", tag]
    command += [f"{name}=={version}" for name, version in DEVICE_WHEELS.items()]
    result = subprocess.run(command)
    total = sum(wheel.stat().st_size for wheel in folder.glob("*.whl"))
    print(f"{len(list(folder.glob('*.whl')))} wheels, {total / 2**20:.1f} MiB in {folder} "
          "(they travel with the working tree: 64 MiB in all)")
    return result.returncode


def _pick_wheels(folder: Path) -> tuple[list[Path], list[str], list[str]]:
    """The pinned wheels found in ``folder``, the pinned names missing, the files ignored."""
    found, ignored = {}, []
    wanted = {_normalise(name): version for name, version in DEVICE_WHEELS.items()}
    for wheel in sorted(folder.glob("*.whl")) if folder.is_dir() else []:
        name, version = wheel.name.split("-")[:2]
        key = _normalise(name)
        if wanted.get(key) == version and key not in found:
            found[key] = wheel
        else:
            ignored.append(wheel.name)
    missing = [name for name in DEVICE_WHEELS if _normalise(name) not in found]
    return list(found.values()), missing, ignored


# ----------------------------------------------------------------------------------------
# the orchestrator


class Orchestrator:
    """Runs the stages under one deadline and writes the report."""

    def __init__(self, args):
        self.args = args
        self.dry = bool(args.dry_run)
        self.mode = 0 if not self.dry else 1  # index into the (device, dry run) pairs
        self.started = time.time()
        budget = args.budget if args.budget is not None else (540.0 if not self.dry else 120.0)
        self.deadline = self.started + budget
        self.budgets = dict(args.stage_budget or {})
        self.out = Path(args.out or os.environ.get("OUT") or DEFAULT_OUT).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        for name in OUT_FILES:  # a reused folder must not mix two runs' files
            (self.out / name).unlink(missing_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="device-check-"))
        self.log_path = self.out / "log.txt"
        self.log = open(self.log_path, "a", buffering=1)
        self.run_dir = self.work / "run"
        self.resume = self._resume_folder()
        self.env = dict(os.environ)
        if self.dry:
            # a dry run is the CPU path, also on a machine with a GPU (the test asserts it)
            self.env["CUDA_VISIBLE_DEVICES"] = ""
        self.report = {
            "schema": 1,
            "dry_run": self.dry,
            "started": _now_iso(),
            "budget_s": budget,
            "out": str(self.out),
            "command": " ".join([Path(sys.executable).name] + sys.argv),
            "project": {"git_commit": _git_commit(), "source_sha256": _source_digest()},
            "host": {"python": platform.python_version(), "platform": platform.platform(),
                     "cpu_count": os.cpu_count(), "executable": sys.executable},
            "stages": {},
        }

    # -- plumbing --------------------------------------------------------------------

    def say(self, message: str) -> None:
        line = f"[{time.time() - self.started:7.1f} s] {message}"
        print(line, flush=True)
        self.log.write(line + "\n")

    def _resume_folder(self) -> Path | None:
        if self.args.resume:
            return Path(self.args.resume).resolve()
        # a dry run never picks up a device run's checkpoint by itself (GPU-sized config)
        if not self.dry and (DEFAULT_RESUME / "checkpoint.pt").is_file():
            return DEFAULT_RESUME
        return None

    def seconds_left(self) -> float:
        return self.deadline - FINISH_RESERVE[self.mode] - time.time()

    def stage_timeout(self, name: str) -> float | None:
        """This stage's timeout, or None when too little time is left to start it."""
        left = self.seconds_left()
        if left < MIN_STAGE_SECONDS[self.mode]:
            return None
        budget = self.budgets.get(name, STAGE_BUDGETS[name][self.mode])
        return left if budget is None else min(budget, left)

    def wanted(self, name: str) -> bool:
        return not self.args.only or name in self.args.only or name == "install"

    # -- stages run here -------------------------------------------------------------

    def install(self) -> None:
        """Stage the project and install the carried wheels (no registry, no build backend)."""
        start = time.time()
        result: dict = {}
        status, error = "ok", None
        timeout = self.stage_timeout("install") or 1.0
        paths: list[str] = []
        try:
            site = self.work / "site"
            package = site / "napari_lowlight"
            # pyproject maps weights/ to napari_lowlight.weights: mirror that mapping, so
            # the shipped models load exactly as from an installed package
            shutil.copytree(REPO / "src" / "napari_lowlight", package,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            shutil.copytree(REPO / "weights", package / "weights",
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            paths.append(str(site))
            result["project"] = str(package)
            wheels_dir = Path(self.args.wheels).resolve()
            wheels, missing, ignored = _pick_wheels(wheels_dir)
            result.update(wheels_dir=str(wheels_dir), wheels=[w.name for w in wheels],
                          wheels_missing=missing, wheels_ignored=ignored,
                          wheels_mib=round(sum(w.stat().st_size for w in wheels) / 2**20, 2))
            if self.dry:
                # The wheels are for the device's Python 3.12; here the environment already
                # holds these packages (the environment stage says which).
                result["wheels_installed"] = False
                result["note"] = "dry run: wheels not installed, the local environment is used"
            elif wheels:
                target = self.work / "wheels-site"
                command = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps",
                           "--no-compile", "--no-cache-dir", "--disable-pip-version-check",
                           "--quiet", "--target", str(target)] + [str(w) for w in wheels]
                self.say("installing " + ", ".join(w.name for w in wheels))
                done = subprocess.run(command, stdout=self.log, stderr=subprocess.STDOUT,
                                      timeout=timeout)
                result["wheels_installed"] = done.returncode == 0
                if done.returncode == 0:
                    paths.append(str(target))
                else:
                    status, error = "failed", f"pip install exited with {done.returncode}"
            else:
                result["wheels_installed"] = False
                result["note"] = (f"no wheels in {wheels_dir}: run `make device-wheels` here and "
                                  "carry device-wheels/; LAIC and batch tests will skip")
            if missing and not self.dry and status == "ok":
                status, error = "partial", "wheels missing: " + ", ".join(missing)
        except subprocess.TimeoutExpired:
            status, error = "timeout", f"pip install ran past {timeout:.0f} s"
        except Exception as exc:  # noqa: BLE001 - recorded; the stages still run
            status, error = "failed", _error_text(exc)
        finally:
            # whatever got ready goes first on the stages' path, even after a failure
            old = self.env.get("PYTHONPATH")
            self.env.update(
                PYTHONPATH=os.pathsep.join(paths + ([old] if old else [])),
                PYTHONUNBUFFERED="1",
                MPLBACKEND="Agg",
                TORCHINDUCTOR_CACHE_DIR=str(self.work / "inductor"),
            )
        self.record("install", status, time.time() - start, timeout, error, result)

    def record(self, name, status, seconds, timeout, error, result) -> None:
        self.report["stages"][name] = {
            "status": status, "seconds": round(seconds, 2),
            "timeout_s": None if timeout is None else round(timeout, 1),
            "error": error, "result": result,
        }
        self.say(f"{name}: {status} in {seconds:.1f} s" + (f" ({error})" if error else ""))

    # -- stages run in their own process ---------------------------------------------

    def run_stage(self, name: str, extra: dict | None = None) -> None:
        timeout = self.stage_timeout(name)
        if timeout is None:
            self.record(name, "skipped", 0.0, None, "no time left before the deadline", {})
            return
        settings = {
            "stage": name, "dry_run": self.dry, "repo": str(REPO), "work": str(self.work),
            "sizes": SIZES["dry" if self.dry else "device"],
            # the stage's own deadline, a little before its kill, to end measurements cleanly
            "deadline": time.time() + max(0.5 * timeout, timeout - 5.0),
            "timeout": timeout, "hang": name in (self.args.hang or ()), **(extra or {}),
        }
        settings_path = self.work / f"{name}.settings.json"
        settings_path.write_text(json.dumps(settings, indent=1))
        result_path = self.work / f"{name}.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--stage", name,
                   "--settings", str(settings_path), "--result", str(result_path)]
        self.say(f"{name}: starting, {timeout:.0f} s budget")
        self.log.write(f"===== stage {name} =====\n")
        self.log.flush()
        offset = self.log_path.stat().st_size
        start = time.time()
        # a session of its own: at the timeout the whole group goes (pytest's dask workers,
        # inductor's compile workers), and nothing else
        process = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=self.log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        status, error = "ok", None
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill_group(process)
            code, status, error = None, "timeout", f"killed after {timeout:.0f} s"
        seconds = time.time() - start
        result = {}
        if result_path.is_file():
            try:
                result = json.loads(result_path.read_text())
            except json.JSONDecodeError as exc:
                result = {"errors": [{"where": "result file", "error": _error_text(exc)}]}
        if code is not None and code != 0:
            status = "failed"
            error = result.pop("fatal", None) or f"exited with {code}: " + self._log_tail(offset)
        elif code == 0:
            status = result.pop("status", "ok")
            error = result.pop("status_detail", None)
            if status == "ok" and result.get("errors"):
                status = "partial"
                error = f"{len(result['errors'])} item(s) failed, first: " + \
                    result["errors"][0]["error"][:300]
        self.record(name, status, seconds, timeout, error, result)

    def _kill_group(self, process) -> None:
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def _log_tail(self, offset: int, chars: int = 1500) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(offset)
                text = handle.read().decode(errors="replace")
        except OSError:
            return ""
        return text[-chars:].strip()

    # -- training: resume in, files out ----------------------------------------------

    def prepare_training(self) -> dict:
        """Copy a previous run's checkpoint into the run folder; the config it was made with."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        extra: dict = {"run_dir": str(self.run_dir), "resume": None, "config": None}
        if self.args.train_config:
            extra["new_config"] = json.loads(Path(self.args.train_config).read_text())
        pack = self.args.train_pack or (DEFAULT_PACK if DEFAULT_PACK.is_file() else None)
        if pack:
            extra["pack"] = str(Path(pack).resolve())
        workers = self.args.workers
        extra["workers"] = (0 if self.dry else max(0, (os.cpu_count() or 2) - 2)) \
            if workers is None else workers
        if self.resume is None:
            return extra
        extra["resume"] = str(self.resume)
        report = self.resume / "report.json"
        if report.is_file():
            try:
                stored = json.loads(report.read_text())["stages"]["train"]["result"]
                extra["config"] = stored.get("config")
            except (KeyError, TypeError, json.JSONDecodeError):
                pass
        for name in ("checkpoint.pt", "history.jsonl"):
            if (self.resume / name).is_file():
                shutil.copy2(self.resume / name, self.run_dir / name)
        if not (self.run_dir / "checkpoint.pt").is_file() and (
                self.resume / "generator.safetensors").is_file():
            extra["init_from"] = str(self.resume / "generator.safetensors")
        return extra

    def collect_training(self) -> None:
        copied = []
        for name in RUN_FILES:
            source = self.run_dir / name
            if source.is_file():
                shutil.copy2(source, self.out / name)
                copied.append(name)
        stage = self.report["stages"].get("train")
        if stage is not None:
            stage["result"]["files"] = copied

    # -- the whole run ---------------------------------------------------------------

    def test_workers(self) -> int:
        """pytest-xdist processes for the GPU tests: ``--test-workers``, else 4 on a device
        with 16 cores (each test spends seconds starting CUDA/CuPy kernels, little on the
        GPU: four at once cut the stage from about 200 s), none in a dry run."""
        if self.args.test_workers is not None:
            return max(0, int(self.args.test_workers))
        return 0 if self.dry else min(4, (os.cpu_count() or 1) // 4)

    def run(self) -> int:
        self.say(f"device check ({'dry run, CPU' if self.dry else 'device'}): budget "
                 f"{self.deadline - self.started:.0f} s, out {self.out}")
        self.install()
        for name in STAGES[1:]:
            if not self.wanted(name):
                continue
            if name == "train":
                extra = self.prepare_training()
                extra["train_seconds"] = self.args.train_seconds
                self.run_stage(name, extra)
                self.collect_training()
            elif name == "tests":
                self.run_stage(name, {"test_ids": self.args.tests,
                                      "test_workers": self.test_workers()})
            else:
                self.run_stage(name)
        return self.finish()

    def finish(self) -> int:
        self.report["finished"] = _now_iso()
        self.report["elapsed_s"] = round(time.time() - self.started, 2)
        self.report["summary"] = summarise(self.report)
        (self.out / "report.json").write_text(json.dumps(self.report, indent=1, default=str))
        (self.out / "report.md").write_text(render_markdown(self.report))
        too_big = [p.name for p in self.out.iterdir()
                   if p.name in OUT_FILES and p.stat().st_size > OUT_FILE_LIMIT]
        if too_big:
            self.say("over the 16 MiB a file may have to come back: " + ", ".join(too_big))
        statuses = {name: stage["status"] for name, stage in self.report["stages"].items()}
        self.say(f"done in {self.report['elapsed_s']:.1f} s: {statuses}; report "
                 f"{self.out / 'report.md'}")
        self.log.close()
        if not self.args.keep_work:
            shutil.rmtree(self.work, ignore_errors=True)
        return 0 if all(status == "ok" for status in statuses.values()) else 1


# ----------------------------------------------------------------------------------------
# the report


def summarise(report: dict) -> dict:
    """The headline numbers, for a quick look and for docs/performance.md."""
    stages = report["stages"]
    summary: dict = {"statuses": {name: stage["status"] for name, stage in stages.items()}}
    tests = stages.get("tests", {}).get("result", {}).get("counts")
    if tests:
        summary["tests"] = tests
    bench = stages.get("bench_dequantizer", {}).get("result", {})
    if bench.get("device"):
        summary["device"] = bench["device"].get("name")
    if bench.get("peak"):
        summary["matmul_peak_tflops"] = bench["peak"].get("tflops")
    best = {}
    for model, entry in bench.get("models", {}).items():
        rates = {variant: item["mp_per_s"] for variant, item in entry.get("variants", {}).items()
                 if _finite(item.get("mp_per_s"))}
        if rates:
            variant = max(rates, key=rates.get)
            best[model] = {"variant": variant, "mp_per_s": rates[variant]}
    if best:
        summary["best_network_mp_per_s"] = best
    train = stages.get("train", {}).get("result", {})
    if "steps_done" in train:
        summary["training"] = {key: train.get(key) for key in
                               ("start_step", "end_step", "steps_done", "steps_per_s")}
    return summary


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def render_markdown(report: dict) -> str:
    """report.json as a page to read."""
    stages = report["stages"]
    lines = [f"# Device check {'(dry run, CPU, tiny sizes)' if report['dry_run'] else ''}".strip(),
             "",
             f"Started {report['started']}, {report.get('elapsed_s', 0):.0f} s of a "
             f"{report['budget_s']:.0f} s budget. Command: `{report['command']}`. Source "
             f"sha256 {report['project']['source_sha256'][:12]}, git "
             f"{(report['project']['git_commit'] or 'unknown')[:12]}.", ""]
    env = stages.get("environment", {}).get("result", {})
    if env:
        packages = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items() if v)
        lines += [f"Machine: {env.get('cpu', '?')}, {env.get('cpu_count', '?')} cores, Python "
                  f"{env.get('python', '?')}. GPU: {env.get('gpu') or 'none'}.", "",
                  f"Packages: {packages}.", ""]
    lines += ["## Stages", "", "| stage | status | seconds | timeout s | error |",
              "|---|---|---|---|---|"]
    for name, stage in stages.items():
        error = (stage.get("error") or "").replace("\n", " ").replace("|", "/")[:200]
        lines.append(f"| {name} | {stage['status']} | {stage['seconds']:.1f} | "
                     f"{_fmt(stage.get('timeout_s'))} | {error} |")
    lines.append("")

    tests = stages.get("tests", {}).get("result", {})
    if tests.get("counts"):
        counts = tests["counts"]
        lines += ["## GPU tests (`pytest -m gpu`)", "",
                  ", ".join(f"{key} {value}" for key, value in counts.items()) +
                  f" — files: {', '.join(tests.get('files', []))}", ""]
        bad = [t for t in tests.get("tests", []) if t["outcome"] in ("failed", "error")]
        skipped = [t for t in tests.get("tests", []) if t["outcome"] == "skipped"]
        if bad:
            lines += ["| failed test | message |", "|---|---|"]
            lines += [f"| {t['name']} | {(t.get('message') or '')[:200].replace('|', '/')} |"
                      for t in bad]
            lines.append("")
        reasons = sorted({(t.get("message") or "")[:120] for t in skipped})
        if reasons:
            lines += ["Skip reasons: " + "; ".join(reasons), ""]

    bench = stages.get("bench_dequantizer", {}).get("result", {})
    if bench:
        device = bench.get("device", {})
        peak = bench.get("peak", {})
        lines += ["## Dequantizer network", "",
                  f"Device: {device.get('name', '?')} (torch {bench.get('torch', '?')}, CUDA "
                  f"{device.get('cuda', '—')}, cuDNN {device.get('cudnn', '—')}). "
                  f"{peak.get('dtype', '?')} matmul {peak.get('size', '?')}^3: "
                  f"{_fmt(peak.get('tflops'))} TFLOP/s; copy "
                  f"{_fmt(bench.get('copy', {}).get('gb_per_s'))} GB/s (read + write). "
                  f"Input {bench.get('input_shape', '?')}, {bench.get('flags', {})}.", "",
                  "| model | variant | MP/s | TFLOP/s | % of matmul peak | vs fp32 |",
                  "|---|---|---|---|---|---|"]
        for model, entry in bench.get("models", {}).items():
            for variant, item in entry.get("variants", {}).items():
                if "error" in item:
                    lines.append(f"| {model} | {variant} | error: "
                                 f"{item['error'][:80].replace('|', '/')} | | | |")
                    continue
                lines.append(f"| {model} | {variant} | {_fmt(item.get('mp_per_s'))} | "
                             f"{_fmt(item.get('tflops'))} | {_fmt(item.get('percent_of_peak'))} | "
                             f"{_fmt(item.get('speedup_vs_fp32'))}x |")
        compiled = stages.get("bench_compile", {}).get("result", {}).get("models", {})
        for model, item in compiled.items():
            if "error" in item:
                lines.append(f"| {model} | compiled | error: "
                             f"{item['error'][:80].replace('|', '/')} | | | |")
                continue
            lines.append(f"| {model} | {COMPILED_VARIANT} + torch.compile "
                         f"({item.get('backend')}, compile {_fmt(item.get('compile_s'))} s) | "
                         f"{_fmt(item.get('mp_per_s'))} | {_fmt(item.get('tflops'))} | "
                         f"{_fmt(item.get('percent_of_peak'))} | "
                         f"{_fmt(item.get('speedup_vs_fp32'))}x |")
        lines.append("")
        e2e = bench.get("end_to_end", [])
        if e2e:
            lines += ["`dequantize()` end to end (tiling, host copies, projection):", "",
                      "| model | device | image | seconds | MP/s |", "|---|---|---|---|---|"]
            lines += [f"| {r['model']} | {r['device']} | {r['side']}^2 | {_fmt(r.get('seconds'))} "
                      f"| {_fmt(r.get('mp_per_s'))} |" for r in e2e if "error" not in r]
            lines.append("")

    laic = stages.get("bench_laic", {}).get("result", {})
    if laic.get("rows"):
        lines += ["## LAIC per-pixel work, CuPy against NumPy", "",
                  f"CuPy: {laic.get('cupy', '?')}.", "",
                  "| operation | image | NumPy MP/s | CuPy MP/s | speed-up |",
                  "|---|---|---|---|---|"]
        for row in laic["rows"]:
            lines.append(f"| {row['operation']} | {row['shape']} | "
                         f"{_fmt(row.get('numpy_mp_per_s'))} | {_fmt(row.get('cupy_mp_per_s'))} | "
                         f"{_fmt(row.get('speedup'))} |")
        lines.append("")

    train = stages.get("train", {}).get("result", {})
    if train:
        lines += ["## Training chunk", "",
                  f"Device {train.get('device', '?')}; {train.get('origin', '?')}; steps "
                  f"{train.get('start_step', '?')} -> {train.get('end_step', '?')} "
                  f"({train.get('steps_done', '?')} in {_fmt(train.get('train_seconds'))} s, "
                  f"{_fmt(train.get('steps_per_s'))} steps/s, "
                  f"{_fmt(train.get('pairs_per_s'))} pairs/s). Files: "
                  f"{', '.join(train.get('files', [])) or 'none'}.", ""]
        if train.get("metrics"):
            lines += ["Last validation: " + ", ".join(
                f"{k} {_fmt(v, 4)}" for k, v in train["metrics"].items()), ""]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------
# stage bodies (each runs in its own process)


def stage_environment(settings: dict, rec: Recorder) -> None:
    import importlib.metadata
    import importlib.util

    data = rec.data
    data["python"] = platform.python_version()
    data["cpu_count"] = os.cpu_count()
    try:
        with open("/proc/cpuinfo") as info:
            data["cpu"] = next((line.split(":", 1)[1].strip() for line in info
                                if line.startswith("model name")), platform.machine())
    except OSError:
        data["cpu"] = platform.machine()
    names = ["numpy", "scipy", "scikit-image", "torch", "cupy-cuda13x", "cupy-cuda12x",
             "tifffile", "safetensors", "highspy", "dask", "distributed", "zarr", "pytest",
             "hypothesis", "triton", "napari-lowlight"]
    packages = {}
    for name in names:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    data["packages"] = packages
    modules = {}
    for name in ("napari_lowlight", "torch", "cupy", "highspy", "dask", "distributed", "zarr"):
        spec = importlib.util.find_spec(name)
        modules[name] = None if spec is None else str(spec.origin)
    data["modules"] = modules
    # the staged copy must win over an installed one, or the run tests other code
    staged = str(Path(settings["work"]) / "site")
    if modules["napari_lowlight"] is None or not modules["napari_lowlight"].startswith(staged):
        rec.error("napari_lowlight origin",
                  RuntimeError(f"napari_lowlight comes from {modules['napari_lowlight']}, "
                               f"not the staged copy under {staged}"))
    smi = shutil.which("nvidia-smi")
    data["gpu"] = None
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version,"
                                  "clocks.max.sm", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20)
            data["gpu"] = out.stdout.strip() or out.stderr.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            rec.error("nvidia-smi", exc)
    rec.save()


def stage_tests(settings: dict, rec: Recorder) -> None:
    """``pytest -m gpu`` over the files that hold GPU tests; outcomes from its JUnit XML."""
    repo = Path(settings["repo"])
    files = sorted(str(path.relative_to(repo)) for path in (repo / "tests").glob("test_*.py")
                   if "mark.gpu" in path.read_text())
    rec.data["files"] = files
    junit = Path(settings["work"]) / "junit.xml"
    timeout = max(5.0, settings["deadline"] - time.time())
    command = _pytest_command(settings, rec, junit, timeout, files)
    output = _run_pytest(command, repo, timeout, rec)
    tests = _junit_outcomes(junit)
    if not tests and rec.data.get("exit_code") is None:
        # pytest-xdist writes an empty JUnit file when interrupted: the -v lines still say
        # how every test that ran ended
        tests = _logged_outcomes(output)
    counts = dict.fromkeys(("passed", "failed", "error", "skipped", "xfailed"), 0)
    for test in tests:
        counts[test["outcome"]] += 1
    counts["total"] = len(tests)
    selected = _selected_count(output)
    if selected is not None:
        counts["selected"] = selected
        counts["not_reached"] = max(0, selected - len(tests))
    rec.data["counts"] = counts
    rec.data["tests"] = tests
    status = _tests_status(counts, rec.data.get("exit_code"))
    if status is not None:
        rec.data["status"], rec.data["status_detail"] = status
    rec.save()


def _tests_status(counts: dict, code: int | None) -> tuple[str, str] | None:
    """The tests stage's (status, detail) when not "ok"; ``code`` None: stopped at the budget."""
    if counts["failed"] or counts["error"] or code not in (0, 5, None):
        return "failed", (f"{counts['failed']} failed, {counts['error']} errors "
                          f"(pytest exit code {code})")
    if code is None:
        # stopped at the stage's budget with nothing failed: say so, not "failed"
        selected = counts.get("selected")
        ran = f"{counts['total']} of {selected}" if selected is not None else f"{counts['total']}"
        left = f"; {counts['not_reached']} not reached" if selected is not None else ""
        return "incomplete", f"stopped at the budget: {ran} tests ran, none failed{left}"
    return None


#: pytest's count of the tests it will run: "4 workers [76 items]" (pytest-xdist), "76
#: selected" (a -m filter deselected others), else "collected 76 items".
_SELECTED_PATTERNS = (re.compile(r"\bworkers? \[(\d+) items?\]"),
                      re.compile(r"\b(\d+) selected\b"),
                      re.compile(r"\bcollected (\d+) items?\b"))


def _selected_count(lines: list[str]) -> int | None:
    """How many tests pytest set out to run, read from its header lines (None if unsaid)."""
    for pattern in _SELECTED_PATTERNS:
        for line in lines:
            match = pattern.search(line)
            if match:
                return int(match.group(1))
    return None


def _pytest_command(settings: dict, rec: Recorder, junit: Path, timeout: float,
                    files: list[str]) -> list[str]:
    import importlib.util

    # --tests: only these (e.g. the failures of the last run), still only GPU-marked ones
    selected = list(settings.get("test_ids") or ()) or files
    # no cache folder in the checkout; none of the napari/Qt plugins (they import napari at
    # start-up, seconds for nothing: no GPU test opens a viewer, and the device has no napari)
    # -v: every test's name and outcome in log.txt, also when the budget cuts the run short
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-v", "-rfEs",
               "-p", "no:cacheprovider", "-p", "no:pytest-qt", "-p", "no:napari",
               "-p", "no:napari-plugin-engine", "-p", "no:npe2", f"--junitxml={junit}"]
    if importlib.util.find_spec("pytest_timeout") is not None:
        # one hung test fails on its own and the JUnit file (every outcome) is still written
        command.append(f"--timeout={max(10, int(timeout / 2))}")
    workers = int(settings.get("test_workers") or 0)
    if workers > 1 and importlib.util.find_spec("xdist") is not None:
        command += ["-n", str(workers)]
        rec.data["workers"] = workers
    command += selected
    rec.data["command"] = " ".join(command[1:])
    rec.save()
    return command


def _run_pytest(command: list[str], repo: Path, timeout: float, rec: Recorder) -> list[str]:
    """Run pytest, its output copied into the log line by line; returns the lines."""
    import threading

    process = subprocess.Popen(command, cwd=repo, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, errors="replace")
    lines: list[str] = []

    def copy():
        for line in process.stdout:
            lines.append(line)
            sys.stdout.write(line)
            sys.stdout.flush()

    reader = threading.Thread(target=copy, daemon=True)
    reader.start()
    try:
        rec.data["exit_code"] = process.wait(timeout=max(1.0, timeout - 10.0))
    except subprocess.TimeoutExpired:
        # Ctrl-C, as a person would: pytest ends the session and still writes the JUnit
        # file with every test that ran (a kill left "0 passed" in the first device run)
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=8.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        rec.data["exit_code"] = None
        rec.error("pytest", TimeoutError(f"pytest ran past {timeout - 10.0:.0f} s"))
    reader.join(timeout=5.0)
    return lines


def _junit_outcomes(junit: Path) -> list[dict]:
    import xml.etree.ElementTree as ElementTree

    tests = []
    if not junit.is_file():
        return tests
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        outcome, message = "passed", None
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                message = child.get("message") or (child.text or "")[:500]
                if child.tag == "skipped" and child.get("type") == "pytest.xfail":
                    outcome = "xfailed"
                break
        tests.append({"name": f"{case.get('classname')}::{case.get('name')}",
                      "outcome": outcome, "seconds": float(case.get("time") or 0.0),
                      "message": message})
    return tests


#: pytest -v's outcome lines, plain (``tests/x.py::t PASSED [ 5%]``) and under pytest-xdist
#: (``[gw0] [  5%] PASSED tests/x.py::t``).
_VERBOSE_LINE = re.compile(r"^(?:(?P<id1>tests/\S+::\S+) (?P<out1>[A-Z]+)|\[gw\d+\] \[ *\d+%\] "
                           r"(?P<out2>[A-Z]+) (?P<id2>tests/\S+::\S+))")
_VERBOSE_OUTCOMES = {"PASSED": "passed", "FAILED": "failed", "ERROR": "error",
                     "SKIPPED": "skipped", "XFAIL": "xfailed", "XPASS": "passed"}


def _logged_outcomes(lines: list[str]) -> list[dict]:
    """Outcomes from pytest -v's lines (no seconds, no messages), the last word per test."""
    found: dict[str, str] = {}
    for line in lines:
        match = _VERBOSE_LINE.match(line.strip())
        if match:
            name = match.group("id1") or match.group("id2")
            word = match.group("out1") or match.group("out2")
            if word in _VERBOSE_OUTCOMES:
                found[name] = _VERBOSE_OUTCOMES[word]
    return [{"name": name, "outcome": outcome, "seconds": 0.0, "message": "from the log"}
            for name, outcome in found.items()]


def _torch_device(settings: dict):
    import torch

    if settings["dry_run"]:
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    raise RuntimeError("torch sees no CUDA device: nothing to measure on a device run")


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _rate(run, device, seconds: float, warmup: int, max_calls: int = 500) -> tuple[float, int]:
    """Seconds per call of ``run``: ``warmup`` calls, one timed probe, then enough calls to
    fill ``seconds`` (at least one), all synchronised with the device."""
    for _ in range(warmup):
        run()
    _sync(device)
    start = time.perf_counter()
    run()
    _sync(device)
    probe = time.perf_counter() - start
    calls = int(min(max_calls, max(1, seconds / max(probe, 1e-9))))
    if calls <= 1 and seconds <= 0:
        return probe, 1
    start = time.perf_counter()
    for _ in range(calls):
        run()
    _sync(device)
    return (time.perf_counter() - start) / calls, calls


def _variant_model(generator, variant: str, device):
    """The generator set up for ``variant`` (a copy) and a function making its inputs."""
    import torch

    autocast, channels_last, weights = VARIANTS[variant]
    model = copy.deepcopy(generator).to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if weights:
        model = model.to(getattr(torch, weights))
    dtype = getattr(torch, weights) if weights else torch.float32

    def inputs(batch, side):
        image = torch.rand(batch, 1, side, side, device=device, dtype=dtype) * 0.5
        step = torch.full_like(image, 1 / 255)
        if channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
            step = step.contiguous(memory_format=torch.channels_last)
        return image, step

    def context():
        if autocast is None:
            return torch.autocast(device.type, enabled=False)
        return torch.autocast(device.type, dtype=getattr(torch, autocast))

    return model, inputs, context


def _peak(settings, device, rec) -> float:
    import torch

    size = settings["sizes"]["matmul"]
    # the GPU's tensor-core rate in the network's own precision; fp32 on a dry-run CPU,
    # where bf16 products are emulated and say nothing
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    seconds, calls = _rate(lambda: a @ b, device, 1.0 if device.type == "cuda" else 0.05,
                           warmup=3 if device.type == "cuda" else 1)
    tflops = 2 * size**3 / seconds / 1e12
    rec.data["peak"] = {"dtype": str(dtype).replace("torch.", ""), "size": size,
                        "tflops": tflops, "calls": calls}
    nbytes = settings["sizes"]["copy_mib"] * 2**20
    source = torch.empty(nbytes, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    seconds, calls = _rate(lambda: target.copy_(source), device,
                           0.5 if device.type == "cuda" else 0.02, warmup=2)
    rec.data["copy"] = {"mib": settings["sizes"]["copy_mib"],
                        "gb_per_s": 2 * nbytes / seconds / 1e9}
    rec.save()
    return tflops


def _forward_call(model, image, step, context):
    """A call of ``model`` on these inputs (bound now), for timing."""
    import torch

    def forward():
        with torch.inference_mode(), context():
            return model(image, step)

    return forward


def _device_info(device) -> dict:
    import torch

    if device.type != "cuda":
        return {"name": f"CPU ({torch.get_num_threads()} threads)", "type": "cpu"}
    props = torch.cuda.get_device_properties(device)
    return {"name": props.name, "type": "cuda", "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
            "memory_gib": round(props.total_memory / 2**30, 1), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version()}


def stage_bench_dequantizer(settings: dict, rec: Recorder) -> None:
    import numpy as np
    import torch

    import napari_lowlight as nl
    from napari_lowlight.dequantizer.networks import flops_per_pixel
    from napari_lowlight.dequantizer.weights import available_models, load_generator

    sizes = settings["sizes"]
    device = _torch_device(settings)
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    rec.data.update(torch=torch.__version__, device=_device_info(device), models={},
                    flags={"cudnn.benchmark": True,
                           "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
                           "matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32},
                    input_shape=[sizes["net_batch"], 1, sizes["net_side"], sizes["net_side"]])
    rec.save()
    peak = _peak(settings, device, rec)
    batch, side = sizes["net_batch"], sizes["net_side"]
    megapixels = batch * side * side / 1e6
    for name in available_models():
        generator = load_generator(name)
        per_pixel = flops_per_pixel(generator)
        entry = rec.data["models"][name] = {
            "config": generator.config(), "flops_per_pixel": per_pixel,
            "parameters": sum(p.numel() for p in generator.parameters()), "variants": {}}
        for variant in VARIANTS:
            if rec.time_left() < 5:
                entry["variants"][variant] = {"error": "not run: stage deadline"}
                continue
            try:
                model, inputs, context = _variant_model(generator, variant, device)
                forward = _forward_call(model, *inputs(batch, side), context)
                seconds, calls = _rate(forward, device, sizes["net_seconds"],
                                       sizes["net_warmup"])
                rate = megapixels / seconds
                entry["variants"][variant] = {
                    "mp_per_s": rate, "seconds_per_call": seconds, "calls": calls,
                    "tflops": rate * 1e6 * per_pixel / 1e12,
                    "percent_of_peak": 100 * rate * 1e6 * per_pixel / 1e12 / peak}
            except Exception as exc:  # noqa: BLE001 - one variant failing spares the others
                entry["variants"][variant] = {"error": _error_text(exc)}
                rec.error(f"{name} {variant}", exc)
            print(f"{name} {variant}: {entry['variants'][variant]}", flush=True)
            rec.save()
        fp32 = entry["variants"].get("fp32", {}).get("mp_per_s")
        for item in entry["variants"].values():
            if _finite(fp32) and _finite(item.get("mp_per_s")):
                item["speedup_vs_fp32"] = item["mp_per_s"] / fp32
        rec.save()
        if device.type == "cuda":
            torch.cuda.empty_cache()

    # dequantize() itself: tiles with halos, host copies, the projection
    rec.data["end_to_end"] = []
    runs = [(device.type, sizes["e2e_side"])]
    if device.type == "cuda":
        runs.append(("cpu", sizes["e2e_cpu_side"]))
    for name in available_models():
        for where, side in runs:
            if rec.time_left() < 10:
                break
            try:
                rng = np.random.default_rng(0)
                scene = np.clip(0.5 + 0.4 * np.sin(np.linspace(0, 20, side))[None, :]
                                * np.cos(np.linspace(0, 15, side))[:, None]
                                + 0.02 * rng.standard_normal((side, side)), 0, 1)
                capture = nl.degrade(scene, k=1 / 30, bits=8, seed=0)
                warm = nl.degrade(scene[:64, :64], k=1 / 30, bits=8, seed=0)
                generator = load_generator(name)
                nl.dequantize(warm.reexposed, quantization=warm.quantization, model=generator,
                              device=where)  # warm-up: cuDNN's kernels, the allocator
                start = time.perf_counter()
                nl.dequantize(capture.reexposed, quantization=capture.quantization,
                              model=generator, device=where)
                seconds = time.perf_counter() - start
                rec.data["end_to_end"].append({"model": name, "device": where, "side": side,
                                               "seconds": seconds,
                                               "mp_per_s": side * side / 1e6 / seconds})
            except Exception as exc:  # noqa: BLE001
                rec.data["end_to_end"].append({"model": name, "device": where, "side": side,
                                               "error": _error_text(exc)})
                rec.error(f"end to end {name} {where}", exc)
            rec.save()


def stage_bench_compile(settings: dict, rec: Recorder) -> None:
    import torch

    from napari_lowlight.dequantizer.networks import flops_per_pixel
    from napari_lowlight.dequantizer.weights import available_models, load_generator

    sizes = settings["sizes"]
    device = _torch_device(settings)
    torch.backends.cudnn.benchmark = True
    backend = sizes["compile_backend"]
    rec.data.update(torch=torch.__version__, backend=backend, variant=COMPILED_VARIANT,
                    models={})
    batch, side = sizes["net_batch"], sizes["net_side"]
    megapixels = batch * side * side / 1e6
    # the same peak as bench_dequantizer's, measured again: this stage stands on its own
    peak = _peak(settings, device, rec)
    for name in available_models():
        if rec.time_left() < 10:
            rec.data["models"][name] = {"error": "not run: stage deadline"}
            continue
        try:
            generator = load_generator(name)
            per_pixel = flops_per_pixel(generator)
            model, inputs, context = _variant_model(generator, COMPILED_VARIANT, device)
            image, step = inputs(batch, side)
            with torch.inference_mode(), context():
                eager = model(image, step).float()
            fp32_model, _, fp32_context = _variant_model(generator, "fp32", device)
            fp32_forward = _forward_call(fp32_model, image.contiguous(), step.contiguous(),
                                         fp32_context)
            fp32_seconds, _ = _rate(fp32_forward, device, sizes["net_seconds"],
                                    sizes["net_warmup"])
            compiled = torch.compile(model, backend=backend, dynamic=False)
            start = time.perf_counter()
            with torch.inference_mode(), context():
                first = compiled(image, step).float()
            _sync(device)
            compile_seconds = time.perf_counter() - start
            seconds, calls = _rate(_forward_call(compiled, image, step, context), device,
                                   sizes["net_seconds"], sizes["net_warmup"])
            rate = megapixels / seconds
            rec.data["models"][name] = {
                "backend": backend, "compile_s": compile_seconds, "mp_per_s": rate,
                "calls": calls, "tflops": rate * 1e6 * per_pixel / 1e12,
                "percent_of_peak": 100 * rate * 1e6 * per_pixel / 1e12 / peak,
                "speedup_vs_fp32": fp32_seconds / seconds,
                # in units of the quantization step the inputs carry (1/255)
                "max_diff_vs_eager_steps": float((first - eager).abs().max()) * 255,
            }
        except Exception as exc:  # noqa: BLE001
            rec.data["models"][name] = {"error": _error_text(exc)}
            rec.error(f"compile {name}", exc)
        print(f"{name} compiled: {rec.data['models'][name]}", flush=True)
        rec.save()


def stage_bench_laic(settings: dict, rec: Recorder) -> None:
    import numpy as np

    from napari_lowlight._backend import box_mean, gpu_available
    from napari_lowlight.compensation import laic, local_signs

    sizes = settings["sizes"]
    repeats = sizes["repeats"]
    backends = {"numpy": np}
    if gpu_available():
        import cupy

        backends["cupy"] = cupy
        rec.data["cupy"] = f"{cupy.__version__}, {cupy.cuda.runtime.getDeviceCount()} device(s)"
    else:
        rec.data["cupy"] = "unavailable (no CuPy or no CUDA device): NumPy only"
        if not settings["dry_run"]:
            rec.error("cupy", RuntimeError("CuPy or its CUDA device is missing on the device"))

    def sync(xp):
        if xp is not np:
            xp.cuda.Stream.null.synchronize()

    def best_time(xp, run):
        run()  # warm-up: CuPy compiles its kernels at the first call
        sync(xp)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            sync(xp)
            times.append(time.perf_counter() - start)
        return min(times)

    side = sizes["laic_side"]
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side] / side
    # a dark 8-bit capture: a few dozen levels, smooth light, texture
    dark = np.rint(np.clip(40 * (0.5 + 0.4 * np.sin(6 * xx) * np.cos(4 * yy))
                           + 2 * rng.standard_normal((side, side)), 0, 255)) / 255.0
    gain = 1.0 + 3.0 * xx * yy
    colour = np.repeat(dark[..., None], 3, axis=-1)
    operations = [
        ("box mean, radius 2", lambda xp, d: box_mean(d["dark"], 2), dark.size),
        ("box mean, radius 7", lambda xp, d: box_mean(d["dark"], 7), dark.size),
        ("local signs, radius 2", lambda xp, d: local_signs(d["dark"], 2), dark.size),
        ("gain applied to RGB, clipped, float32",
         lambda xp, d: xp.clip(d["colour"] * d["gain"][..., None], 0.0, 1.0).astype(xp.float32),
         dark.size),
    ]
    rows = rec.data["rows"] = []
    for label, run, pixels in operations:
        row = {"operation": label, "shape": f"{side}x{side}"}
        for name, xp in backends.items():
            if rec.time_left() < 5:
                break
            try:
                data = {"dark": xp.asarray(dark), "gain": xp.asarray(gain),
                        "colour": xp.asarray(colour)}
                seconds = best_time(xp, functools.partial(run, xp, data))
                row[f"{name}_seconds"] = seconds
                row[f"{name}_mp_per_s"] = pixels / 1e6 / seconds
            except Exception as exc:  # noqa: BLE001
                row[f"{name}_error"] = _error_text(exc)
                rec.error(f"{label} {name}", exc)
        _finish_row(row, rows, rec)
    if "cupy" in backends:
        cupy = backends["cupy"]
        try:
            start = time.perf_counter()
            on_device = cupy.asarray(dark)
            back = cupy.asnumpy(on_device)
            sync(cupy)
            seconds = time.perf_counter() - start
            rec.data["host_device_round_trip"] = {"mib": dark.nbytes / 2**20, "seconds": seconds,
                                                  "equal": bool(np.array_equal(back, dark))}
        except Exception as exc:  # noqa: BLE001
            rec.error("host-device copy", exc)
    # laic() end to end: the LP runs on the CPU whatever the input; CuPy only moves the
    # per-pixel work.  Needs highspy.
    e2e = sizes["laic_e2e_side"]
    small = np.ascontiguousarray(dark[:e2e, :e2e])
    row = {"operation": "laic(method='fast') end to end", "shape": f"{e2e}x{e2e}"}
    reference = None
    for name, xp in backends.items():
        if rec.time_left() < 10:
            break
        try:
            data = xp.asarray(small)
            start = time.perf_counter()
            result = laic(data, method="fast")
            sync(xp)
            seconds = time.perf_counter() - start
            row[f"{name}_seconds"] = seconds
            row[f"{name}_mp_per_s"] = small.size / 1e6 / seconds
            gain_host = result.gain if xp is np else result.gain.get()
            if reference is None:
                reference = gain_host
            else:
                row["max_gain_difference"] = float(np.abs(gain_host - reference).max())
        except Exception as exc:  # noqa: BLE001
            row[f"{name}_error"] = _error_text(exc)
            rec.error(f"laic end to end {name}", exc)
    _finish_row(row, rows, rec)


def _finish_row(row: dict, rows: list, rec) -> None:
    """A CuPy-vs-NumPy benchmark row: its speed-up, then into the report (saved at once)."""
    if _finite(row.get("numpy_seconds")) and _finite(row.get("cupy_seconds")):
        row["speedup"] = row["numpy_seconds"] / row["cupy_seconds"]
    rows.append(row)
    print(row, flush=True)
    rec.save()


def _train_config(settings: dict):
    """The run's TrainConfig: a resumed run's own, else the shipped default's settings.

    Only fields this version of TrainConfig has are set, so the script keeps working while
    the training code grows new options.
    """
    import dataclasses

    from napari_lowlight.dequantizer.pairs import PairSettings
    from napari_lowlight.dequantizer.training import TrainConfig
    from napari_lowlight.dequantizer.weights import available_models

    if settings.get("config"):
        return TrainConfig.from_json(settings["config"]), "resumed configuration"
    if settings.get("new_config"):
        config = TrainConfig.from_json(settings["new_config"])
        if settings["dry_run"]:
            # the same network and data path at toy sizes: every step validated and saved
            config = dataclasses.replace(
                config, batch=2, validate_every=1, checkpoint_every=1, validation_pairs=2,
                pairs=dataclasses.replace(config.pairs, crop=32))
        return config, "new run from --train-config"
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    entry = available_models().get("default", {})
    architecture = dict(entry.get("architecture", {}))
    training = dict(entry.get("training", {}))
    pairs = dict(entry.get("pairs", {}))
    values = {
        "architecture": architecture.get("architecture", "residual"),
        "depth": architecture.get("depth", 6), "width": architecture.get("width", 32),
        "conditioned": architecture.get("conditioned", True),
        "context_sigmas": tuple(architecture.get("context_sigmas", ())),
        "learning_rate": training.get("learning_rate", 2e-4),
        "linf_weight": training.get("linf_weight", 0.1),
        "adversarial_weight": training.get("adversarial_weight", 1e-3),
        "pixel": training.get("pixel", "l1"),
        # a new seed: the shipped model has seen seed 0's sequence of pairs
        "seed": int(training.get("seed", 0)) + 1,
        # stopped by time, chunk after chunk; pixel losses only (as the shipped default)
        "steps": 1_000_000, "pretrain_steps": 1_000_000,
    }
    if settings["dry_run"]:
        # every step validated and checkpointed: a one-step chunk still writes every file
        values.update(batch=2, validate_every=1, checkpoint_every=1, validation_pairs=2)
        pairs["crop"] = 32
    else:
        values.update(batch=int(training.get("batch", 16)), validate_every=500,
                      checkpoint_every=500, validation_pairs=64)
    origin = "new run"
    if "init_from" in fields:
        values["init_from"] = settings.get("init_from") or "default"
        origin = f"new run from {values['init_from']}"
    pair_fields = {f.name for f in dataclasses.fields(PairSettings)}
    pairs = {key: tuple(value) if isinstance(value, list) else value
             for key, value in pairs.items() if key in pair_fields}
    values = {key: value for key, value in values.items() if key in fields}
    return TrainConfig(**values, pairs=PairSettings(**pairs)), origin


def _skimage_images(names: list[str]) -> dict:
    """A few of ``test_set_images()``'s images, scaled the same way, without loading all 18."""
    import numpy as np
    from skimage import data as skdata

    images = {}
    for name in names:
        array = np.asarray(getattr(skdata, name.split(":", 1)[1])())
        scale = np.iinfo(array.dtype).max if array.dtype.kind in "iu" else 1.0
        images[name] = np.clip(array.astype(np.float32) / scale, 0, 1)
    return images


def stage_train(settings: dict, rec: Recorder) -> None:
    import torch

    from napari_lowlight.dequantizer.pairs import test_set_images
    from napari_lowlight.dequantizer.training import train
    from napari_lowlight.dequantizer.weights import available_models

    device = _torch_device(settings)
    run_dir = Path(settings["run_dir"])
    config, origin = _train_config(settings)
    checkpoint = run_dir / "checkpoint.pt"
    start_step = 0
    if checkpoint.is_file():
        start_step = int(torch.load(checkpoint, weights_only=True, map_location="cpu")["step"])
        origin = f"resumed {settings.get('resume')} at step {start_step}"
    # the stored config decides a resumed run: write it, train() checks it against ours
    (run_dir / "config.json").write_text(json.dumps(config.to_json(), indent=2))
    rec.data.update(device=str(device), origin=origin, start_step=start_step,
                    config=config.to_json(), end_step=start_step, steps_done=0)
    rec.save()

    data = available_models().get("default", {}).get("data", {})
    if settings.get("pack"):
        import numpy as np

        with np.load(settings["pack"], allow_pickle=False) as pack:
            keys = [k for k in pack.files if k.startswith("train/")]
            held = [k for k in pack.files if k.startswith("validation/")]
            if settings["dry_run"]:
                keys, held = keys[:4], held[:2]
            training = [pack[k] for k in keys]
            validation = [pack[k] for k in held]
        rec.data.update(pack=settings["pack"], training_images=len(training),
                        validation_images=len(validation))
    elif settings["dry_run"]:
        training_names, validation_names = ["skimage:coins", "skimage:moon"], ["skimage:camera"]
        images = _skimage_images(training_names + validation_names)
    else:
        images = test_set_images()
        validation_names = data.get("validation") or ["skimage:camera", "skimage:astronaut",
                                                       "skimage:coffee", "skimage:chelsea"]
        training_names = [name for name in images if name not in validation_names]
    if not settings.get("pack"):
        training = [images[name] for name in training_names if name in images]
        validation = [images[name] for name in validation_names if name in images]
        rec.data.update(training_images=training_names, validation_images=validation_names)

    budget = settings["timeout"] - TRAIN_OVERHEAD[1 if settings["dry_run"] else 0]
    seconds = settings.get("train_seconds")
    if seconds is None:
        seconds = 2.0 if settings["dry_run"] else budget
    seconds = max(1.0, min(seconds, budget - (time.time() - settings["started"])))
    rec.data["max_seconds"] = seconds
    progress_state = {"last_save": time.time(), "first": None, "last": None}

    def progress(step, total, loss):
        now = time.time()
        if progress_state["first"] is None:
            progress_state["first"] = (now, step)
        progress_state["last"] = (now, step)
        rec.data.update(end_step=step, steps_done=step - start_step, last_loss=loss)
        if now - progress_state["last_save"] > 10:
            progress_state["last_save"] = now
            rec.save()

    def log(message):
        print(message, flush=True)

    started = time.time()
    workers = int(settings.get("workers") or 0) if config.per_step_seeds else 0
    rec.data["workers"] = workers
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: pick the fastest kernels
    metrics = train(training, validation, run_dir, config=config, device=device,
                    max_seconds=seconds, progress=progress, log=log, workers=workers)
    elapsed = time.time() - started
    steps = rec.data["steps_done"]
    # the rate between the first and the last step: start-up (weights, validation pairs) and
    # the final checkpoint are not training speed
    first, last = progress_state["first"], progress_state["last"]
    if first and last and last[1] > first[1] and last[0] > first[0]:
        rate = (last[1] - first[1]) / (last[0] - first[0])
    else:
        rate = steps / elapsed if elapsed > 0 else None
    rec.data.update(train_seconds=elapsed, metrics=metrics, steps_per_s=rate,
                    pairs_per_s=None if rate is None else rate * config.batch,
                    seconds_to_first_step=None if first is None else first[0] - started)
    if steps == 0:
        rec.data["status"] = "failed"
        rec.data["status_detail"] = "no training step ran"
    rec.save()


STAGE_FUNCTIONS = {
    "environment": stage_environment,
    "tests": stage_tests,
    "bench_dequantizer": stage_bench_dequantizer,
    "bench_laic": stage_bench_laic,
    "bench_compile": stage_bench_compile,
    "train": stage_train,
}


def run_child(settings_path: Path, result_path: Path) -> int:
    settings = json.loads(Path(settings_path).read_text())
    settings["started"] = time.time()
    rec = Recorder(result_path, settings["deadline"])
    rec.save()
    if settings.get("hang"):  # --hang: a stage that never ends, to test the timeouts
        time.sleep(10 * settings["timeout"] + 60)
    try:
        STAGE_FUNCTIONS[settings["stage"]](settings, rec)
    except Exception as exc:  # noqa: BLE001 - the orchestrator reports it and goes on
        traceback.print_exc()
        rec.data["fatal"] = _error_text(exc)
        rec.save()
        return 1
    rec.save()
    return 0


# ----------------------------------------------------------------------------------------


def _stage_budget(text: str) -> tuple[str, float]:
    name, _, seconds = text.partition("=")
    if name not in STAGES or not seconds:
        raise argparse.ArgumentTypeError(f"expected STAGE=SECONDS with STAGE one of {STAGES}")
    return name, float(seconds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU, tiny sizes, seconds: checks that every stage still runs")
    parser.add_argument("--out", default=None,
                        help="report folder (default: $OUT, else out/device-check)")
    parser.add_argument("--budget", type=float, default=None,
                        help="global deadline, seconds (default 540; 120 in a dry run)")
    parser.add_argument("--wheels", default=str(DEFAULT_WHEELS),
                        help="folder of carried wheels (default device-wheels/)")
    parser.add_argument("--resume", default=None,
                        help="folder of a previous run's report.json + checkpoint.pt "
                        "(default on a device: device-run/ when it holds a checkpoint)")
    parser.add_argument("--train-seconds", type=float, default=None,
                        help="training time (default: what the deadline leaves; 2 in a dry run)")
    parser.add_argument("--train-config", default=None, metavar="JSON",
                        help="TrainConfig of a new training run (default: the shipped "
                        "default's settings); a resumed run keeps its own")
    parser.add_argument("--train-pack", default=None, metavar="NPZ",
                        help="training crops from scripts/make_training_pack.py (default "
                        "device-pack/pairs-source.npz when present, else scikit-image's images)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes making training pairs (default: CPUs - 2 on a device; "
                        "runs with per-step seeds only)")
    parser.add_argument("--tests", nargs="+", default=None, metavar="NODEID",
                        help="pytest node ids or files for the tests stage (default: every "
                        "test file holding GPU tests), e.g. the failures of the last run")
    parser.add_argument("--test-workers", type=int, default=None, metavar="N",
                        help="pytest-xdist processes for the tests stage, where installed "
                        "(default 4 on a 16-core device, none in a dry run)")
    parser.add_argument("--only", nargs="+", choices=STAGES[1:], default=None,
                        help="run only these stages (install always runs)")
    parser.add_argument("--stage-budget", type=_stage_budget, action="append", default=None,
                        metavar="STAGE=SECONDS",
                        help="another time budget for a stage (repeatable), e.g. tests=240")
    parser.add_argument("--keep-work", action="store_true",
                        help="keep the temporary work folder (staged code, stage results)")
    parser.add_argument("--download-wheels", metavar="DIR", default=None,
                        help="download the device's missing wheels into DIR and stop")
    parser.add_argument("--hang", nargs="+", choices=STAGES[1:], help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.download_wheels:
        return download_wheels(Path(args.download_wheels))
    if args.stage:
        return run_child(Path(args.settings), Path(args.result))
    return Orchestrator(args).run()


if __name__ == "__main__":
    sys.exit(main())
