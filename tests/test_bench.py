"""`twostream bench` on a CPU: start-up times, per-net latency and batched throughput, or one clear error line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from realtime.nets.checkpoint import TwoStreamModel

ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "realtime.cli", "bench", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=os.environ.copy()
    )


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model: TwoStreamModel) -> Path:
    return tiny_model.save(tmp_path_factory.mktemp("models") / "tiny")


@pytest.mark.parametrize("engine", ["torch", "torchscript"])
def test_bench_json_reports_both_starts_per_net_latency_and_batched_throughput(tiny_model_dir: Path, engine: str) -> None:
    r = bench("--engine", engine, "--device", "cpu", "--model", str(tiny_model_dir), "--iterations", "8", "--batch", "3", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["engine"] == engine and rep["device"] == "cpu" and rep["precision"] == "fp32"
    assert rep["model"]["name"] == "tiny-test" and rep["model"]["L"] == 3 and rep["machine"]["gpu"] is None
    assert rep["first_start"]["seconds"] > 0 and rep["first_start"]["engine"] == f"{engine} on cpu (fp32)"
    second = rep["second_start"]
    assert "error" not in second, second
    assert second["engine"] == f"{engine} on cpu (fp32)" and second["process_s"] >= second["seconds"] > 0
    for key in ("spatial_batch1_ms", "temporal_batch1_ms", "both_batch1_ms"):
        assert 0 < rep[key]["p50"] <= rep[key]["p95"]
    b = rep["batched"]
    assert b["batch"] == 3 and "error" not in b and b["frames_per_s"] == pytest.approx(3e3 / b["ms_per_batch"]["p50"], rel=0.01)
    assert "cache" not in rep["first_start"]  # only TensorRT has an engine cache of its own


def test_bench_text_says_what_ran_and_skips_the_second_start_on_request(tiny_model_dir: Path) -> None:
    r = bench("--engine", "torchscript", "--model", str(tiny_model_dir), "--iterations", "5", "--batch", "2", "--no-second-start")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("bench: torchscript on cpu (fp32)") and "model tiny-test" in out
    assert "first start" in out and "second start  skipped" in out
    assert all(name in out for name in ("spatial net", "temporal net", "both nets")) and "batch 2: both nets p50" in out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--engine", "tensorrt"], "engine 'tensorrt' needs torch-tensorrt, which is not installed"),
        (["--device", "cuda"], "no CUDA GPU"),
        (["--precision", "fp16", "--device", "cpu"], "fp16 inference needs a CUDA device"),
        (["--batch", "0"], "--batch and --iterations must be at least 1"),
        (["--model", "/no/such/model"], "no such model directory"),
    ],
)
def test_bench_bad_input_is_one_line_exit_2_no_traceback(args: list[str], message: str) -> None:
    r = bench(*args, timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1 and errors[0].startswith("twostream bench: error: "), errors
