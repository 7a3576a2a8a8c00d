"""``make device-check DRY_RUN=1``: the prepared accelerator run executes every stage on the
CPU with tiny sizes, so a broken script shows up here rather than in a device session."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "device_check.py"
STAGES = ["install", "environment", "tests", "bench_dequantizer", "bench_laic", "bench_compile",
          "train"]
RUN_FILES = ["checkpoint.pt", "generator.safetensors", "history.jsonl"]
OUT_FILES = ["report.json", "report.md", "log.txt"] + RUN_FILES


def _run(*args, timeout=600):
    env = {key: value for key, value in os.environ.items() if key != "OUT"}
    # an empty model folder: the stages list the shipped models, not ones this user exported
    env["NAPARI_LOWLIGHT_MODELS"] = tempfile.mkdtemp(prefix="no-user-models-")
    return subprocess.run([sys.executable, str(SCRIPT), "--dry-run", *map(str, args)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def _numbers(value, path="report"):
    """Every number in a JSON value, with where it sits."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (int, float)):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _numbers(item, f"{path}[{index}]")


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("device-check")
    result = _run("--out", out)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return out


def test_every_stage_runs_and_succeeds(dry_run):
    report = _report(dry_run)
    assert report["dry_run"] is True
    assert list(report["stages"]) == STAGES
    for name, stage in report["stages"].items():
        assert stage["status"] == "ok", (name, stage["error"])
        assert stage["seconds"] >= 0
    assert report["elapsed_s"] < report["budget_s"]
    assert report["summary"]["statuses"] == {name: "ok" for name in STAGES}


def test_every_number_in_the_report_is_finite(dry_run):
    numbers = list(_numbers(_report(dry_run)))
    assert len(numbers) > 50
    bad = [(path, value) for path, value in numbers if not math.isfinite(value)]
    assert not bad


def test_each_stage_measured_what_it_is_for(dry_run):
    stages = {name: stage["result"] for name, stage in _report(dry_run)["stages"].items()}
    models = list(json.loads((REPO / "weights" / "models.json").read_text()))

    install = stages["install"]
    assert Path(install["project"]).name == "napari_lowlight"
    assert stages["environment"]["modules"]["napari_lowlight"].startswith(
        str(Path(install["project"]).parent))  # the staged copy, not an installed one

    tests = stages["tests"]
    assert {"tests/test_gpu.py", "tests/test_laic.py"} <= set(tests["files"])
    counts = tests["counts"]
    assert counts["total"] >= 40 and counts["failed"] == counts["error"] == 0
    assert counts["skipped"] == counts["total"]  # no CUDA here: every GPU test skips
    assert all("CUDA" in (test["message"] or "") for test in tests["tests"])

    bench = stages["bench_dequantizer"]
    assert bench["peak"]["tflops"] > 0 and bench["copy"]["gb_per_s"] > 0
    assert list(bench["models"]) == models
    for model in models:
        entry = bench["models"][model]
        assert entry["flops_per_pixel"] > 1e4
        assert set(entry["variants"]) == {"fp32", "bf16-autocast", "fp16-autocast",
                                          "bf16-autocast-channels_last",
                                          "bf16-weights-channels_last"}
        for variant in entry["variants"].values():
            assert variant["mp_per_s"] > 0 and variant["percent_of_peak"] > 0
            assert variant["speedup_vs_fp32"] > 0
    assert {row["model"] for row in bench["end_to_end"]} == set(models)
    assert all(row["mp_per_s"] > 0 for row in bench["end_to_end"])

    compiled = stages["bench_compile"]
    assert compiled["backend"] == "eager"  # inductor only on a device
    for model in models:
        item = compiled["models"][model]
        assert item["mp_per_s"] > 0 and item["compile_s"] >= 0
        assert item["max_diff_vs_eager_steps"] < 0.5

    laic = stages["bench_laic"]
    assert "unavailable" in laic["cupy"]
    assert len(laic["rows"]) == 5
    assert all(row["numpy_mp_per_s"] > 0 for row in laic["rows"])

    train = stages["train"]
    assert train["origin"].startswith("new run") and train["start_step"] == 0
    assert train["steps_done"] >= 1 and train["end_step"] == train["steps_done"]
    assert train["metrics"]["psnr_model"] > 0
    assert train["files"] == RUN_FILES


def test_what_comes_back_fits_the_device_tool(dry_run):
    names = sorted(path.name for path in dry_run.iterdir())
    assert names == sorted(OUT_FILES)
    assert len(names) <= 8
    assert all((dry_run / name).stat().st_size <= 16 * 2**20 for name in names)
    page = (dry_run / "report.md").read_text()
    for heading in ("## Stages", "## GPU tests", "## Dequantizer network",
                    "## LAIC per-pixel work", "## Training chunk"):
        assert heading in page
    log = (dry_run / "log.txt").read_text()
    assert all(f"===== stage {name} =====" in log for name in STAGES[1:])


def test_training_resumes_from_a_previous_run(dry_run, tmp_path):
    first = _report(dry_run)["stages"]["train"]["result"]
    result = _run("--only", "train", "--resume", dry_run, "--out", tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    train = _report(tmp_path)["stages"]["train"]["result"]
    assert train["origin"].startswith("resumed") and train["config"] == first["config"]
    assert train["start_step"] == first["end_step"]
    assert train["end_step"] > train["start_step"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "history.jsonl").open()]
    assert steps == list(range(1, train["end_step"] + 1))


def test_a_hung_stage_is_killed_at_its_budget_and_the_next_still_runs(tmp_path):
    result = _run("--only", "environment", "bench_laic", "--hang", "environment",
                  "--stage-budget", "environment=3", "--out", tmp_path)
    assert result.returncode == 1  # not every stage is "ok"
    stages = _report(tmp_path)["stages"]
    assert stages["environment"]["status"] == "timeout"
    assert 3 <= stages["environment"]["seconds"] < 15
    assert stages["bench_laic"]["status"] == "ok"


def test_no_stage_starts_past_the_deadline(tmp_path):
    result = _run("--budget", "1", "--out", tmp_path, timeout=120)
    assert result.returncode == 1
    report = _report(tmp_path)
    assert [stage["status"] for stage in report["stages"].values()][1:] == \
        ["skipped"] * (len(STAGES) - 1)
    assert (tmp_path / "report.md").is_file() and (tmp_path / "log.txt").is_file()


def _script_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("device_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("lines, expected", [
    (["created: 4/4 workers\n", "4 workers [76 items]\n"], 76),
    (["collected 610 items / 534 deselected / 76 selected\n"], 76),
    (["collected 3 items\n"], 3),
    (["collected 1 item\n"], 1),
    (["no header here\n"], None),
])
def test_the_tests_stage_reads_how_many_tests_pytest_set_out_to_run(lines, expected):
    assert _script_module()._selected_count(lines) == expected


def test_a_tests_stage_cut_at_its_budget_is_incomplete_not_failed():
    status = _script_module()._tests_status
    passed = {"passed": 55, "failed": 0, "error": 0, "skipped": 0, "xfailed": 0, "total": 55,
              "selected": 76, "not_reached": 21}
    # the first device run of session 30 read "failed: 0 failed, 0 errors" here
    assert status(passed, None) == (
        "incomplete", "stopped at the budget: 55 of 76 tests ran, none failed; 21 not reached")
    assert status(dict(passed, failed=1), None)[0] == "failed"
    assert status(passed, 1)[0] == "failed"  # pytest's own failure code, e.g. a crash
    assert status(dict(passed, not_reached=0, selected=55, total=55), 0) is None
    assert status(dict(passed, passed=0, total=0, selected=0, not_reached=0), 5) is None
