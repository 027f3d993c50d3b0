"""benchmarks/gpu.py in its CPU smoke-test mode: every section runs, and rows that need CUDA say so.

The script is the one prepared command for a lent GPU machine; running it here, on a CPU, means a
device call meets only the problems that need a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("correctness", "paper", "multistream", "breakdown", "tensorrt")
NO_CUDA = "no CUDA device"


@pytest.mark.slow
def test_gpu_bench_cpu_quick(tmp_path: Path) -> None:
    out = tmp_path / "gpu"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--quick", "--budget-s", "150", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads((out / "gpu.json").read_text())
    md = (out / "gpu.md").read_text()
    assert (out / "gpu.log").is_file()
    assert res["device"] == "cpu" and res["cuda"] == NO_CUDA
    assert res["machine"]["cores"] and res["machine"]["torch"] and "run_s" in res["machine"]
    for name in SECTIONS:
        sec = res["sections"][name]
        assert sec["status"] == "ok", (name, sec.get("status"), sec.get("traceback"))
        assert sec["cuda"] == NO_CUDA, name
        assert sec["time_box_s"] > 0 and sec["wall_s"] <= sec["time_box_s"] + 1

    # 1. correctness: the CPU rows ran and pass their bound; every fp16 (CUDA) row says there is no CUDA device
    rows = res["sections"]["correctness"]["rows"]
    assert {(r["model"], r["engine"], r["precision"]) for r in rows} >= {
        ("fast", "torch", "fp32"),
        ("paper", "torch", "fp32"),
        ("fast", "torch", "fp16"),
        ("fast", "compile", "fp16"),
    }
    for r in rows:
        if r["precision"] == "fp16":
            assert r["status"] == NO_CUDA, r
            assert "max_abs_diff" not in r
        if r["engine"] == "torch" and r["precision"] == "fp32":
            assert r["status"] == "ok" and r["passed"] and r["second_thread"]["passed"], r
            assert r["max_abs_diff"]["spatial"] <= r["bound"] and r["channels_last"] is True
    assert res["bars"]["correctness"]["failed"] == []

    # 2. the paper-size section: a pipeline run with per-stage percentiles, the nets alone, CUDA rows marked
    paper = res["sections"]["paper"]
    run = paper["pipeline"]["torch fp32"]["paced_30fps"]
    assert run["status"] == "ok" and run["frames_measured"] > 0
    for stage in ("flow", "infer", "total"):
        assert run["latency_ms"][stage]["p99"] >= run["latency_ms"][stage]["p50"] > 0
    assert paper["pipeline"]["torch fp32"]["as_fast_as_possible"]["fps"] > 0
    assert paper["engines"]["torch fp16"]["status"] == NO_CUDA and paper["engines"]["compile fp16"]["status"] == NO_CUDA
    assert paper["nets_alone"]["1"]["torch fp32"]["ms_per_batch"]["p50"] > 0
    assert paper["nets_alone"]["1"]["compile fp16"]["status"] == NO_CUDA
    assert "pipeline_p99_ms" in res["bars"] and "compile_fp16_vs_eager_fp32" in res["bars"]

    # 3. multi-stream: runs for both models, a largest N, utilisation figures (GPU: no CUDA device)
    ms = res["sections"]["multistream"]
    for label in ("fast", "paper"):
        m = ms["models"][label]
        assert isinstance(m["largest_n"], int)
        done = [r for r in m["runs"] if r.get("status") == "ok"]
        assert done and all(r["gpu_utilisation"] == NO_CUDA and r["cpu"]["process_cores_busy"] > 0 for r in done)
    assert "multistream_fast" in res["bars"]

    # 4. breakdown: pieces timed, CUDA events marked absent, both upload patterns measured and their stacks equal
    for label in ("paper", "fast"):
        b = ms_b = res["sections"]["breakdown"]["models"][label]
        eng = b["engines"]["torch fp32"]
        assert eng["status"] == "ok" and eng["cuda_events"] == NO_CUDA
        assert any(k.startswith("upload: flow stack") for k in eng["pieces"]) and "net: spatial + softmax" in eng["pieces"]
        assert b["engines"]["compile fp16"]["status"] == NO_CUDA
        ring = ms_b["ring"]
        assert set(ring["per_frame_p50_ms"]) == {"A_whole_stack", "B_newest_field_float", "B8_newest_field_uint8"}
        assert ring["max_abs_diff_vs_whole_stack"]["B"] < 1e-5 and ring["max_abs_diff_vs_whole_stack"]["B8"] < 1e-5
        assert isinstance(ring["verdict"]["pays"], bool)

    # 5. TensorRT: reported as not available
    trt = res["sections"]["tensorrt"]
    assert trt["available"] is False and "not available" in trt["tensorrt"]

    for heading in ("## Bars", "## 1. Correctness", "## 2. Paper-size", "## 3. Multi-stream", "## 4. Where the time goes", "## 5. TensorRT"):
        assert heading in md
    assert NO_CUDA in md
    assert (out / "gpu.png").is_file() or "no PNG" in md
