"""The `twostream` command as a user runs it: per-frame output, JSON lines, annotated video, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

ROOT = Path(__file__).resolve().parent.parent


def twostream(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "realtime.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})}
    )


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tiny_model) -> Path:
    return tiny_model.save(tmp_path_factory.mktemp("models") / "tiny")


def test_run_prints_a_prediction_per_frame_and_a_summary(tiny_model_dir) -> None:
    r = twostream("run", "synthetic:demo?fps=0", "--model", str(tiny_model_dir), "--max-frames", "12")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("frame")]
    assert len(lines) == 12
    assert "summary: 12 frames" in r.stderr and "p95" in r.stderr and "dropped frames: 0" in r.stderr
    assert "engine onnxruntime on cpu" in r.stderr
    assert "UNTRAINED" in r.stdout + r.stderr  # the tiny model is untrained, and the output must say so


def test_json_lines_are_machine_readable(tiny_model_dir) -> None:
    r = twostream("run", "synthetic:wave?fps=0", "--model", str(tiny_model_dir), "--max-frames", "8", "--json", "--engine", "torch")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["frame"] for row in rows] == list(range(8))
    assert rows[-1]["ready"] is True and rows[0]["ready"] is False
    assert set(rows[-1]["latency_ms"]) == {"flow", "infer", "total"} and rows[-1]["truth"] == "wave"
    summary = json.loads(r.stderr.strip().splitlines()[-1])["summary"]
    assert summary["frames"] == 8 and summary["engine"].startswith("torch")


def test_out_writes_an_annotated_video_with_every_frame(tmp_path, video_file, tiny_model_dir) -> None:
    out = tmp_path / "annotated.mp4"
    r = twostream("run", str(video_file), "--model", str(tiny_model_dir), "--out", str(out), "-q")
    assert r.returncode == 0, r.stderr
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 40 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 160


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "/no/such/clip.mp4"], "no such file"),
        (["run", "gopher://x/y"], "unknown source scheme"),
        (["run", "97"], "camera could not be opened"),
        (["run", "--model", "/no/such/model"], "no such model directory"),
        (["run", "--engine", "tensorrt"], "torch-tensorrt"),
        (["run", "--device", "cuda"], "no CUDA GPU"),
        (["run", "--max-frames", "0"], "--max-frames must be at least 1"),
        (["run", "--out", "/no/such/dir/x.mp4"], "does not exist"),
        (["run", "--out", "video.xyz"], "unsupported video extension"),
        (["run", "synthetic:moonwalk"], "unknown synthetic source"),
        (["run", "--cut-threshold", "0"], "cut threshold 0.0 is outside (0, 1]"),
    ],
)
def test_user_errors_are_one_line_exit_2_no_traceback(args, message) -> None:
    r = twostream(*args, timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "error" in ln]) == 1


def test_unreadable_video_and_corrupt_model_are_user_errors(tmp_path, tiny_model_dir) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    r = twostream("run", str(bad), "--model", str(tiny_model_dir))
    assert r.returncode == 2 and "broken.mp4" in r.stderr and "Traceback" not in r.stderr
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.json").write_text((tiny_model_dir / "model.json").read_text())
    (corrupt / "weights.safetensors").write_bytes(os.urandom(300))
    r = twostream("run", "--model", str(corrupt))
    assert r.returncode == 2 and "corrupt or truncated" in r.stderr and "Traceback" not in r.stderr


def test_credentials_in_a_stream_url_never_reach_the_output() -> None:
    r = twostream("run", "rtsp://admin:s3cr3tpw@127.0.0.1:9/cam", "--timeout", "1", timeout=60)
    assert r.returncode == 2
    assert "s3cr3tpw" not in r.stdout + r.stderr and "rtsp://***@127.0.0.1:9/cam" in r.stderr


def test_info_reports_versions_backends_and_auto_engine() -> None:
    r = twostream("info", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["packages"]["torch"] and info["cuda"]["available"] in (True, False)
    assert "FFMPEG" in info["video"]["built_with"] and isinstance(info["cameras"], list)
    assert info["auto_engine"]["chosen"].startswith(("onnxruntime", "torchscript", "tensorrt", "compile", "torch"))
    text = twostream("info", "--no-cameras")
    assert "engine auto picks:" in text.stdout and "CUDA:" in text.stdout


def test_model_means_the_same_in_every_command_a_directory_default_or_a_taught_name(tmp_path, monkeypatch, tiny_model) -> None:
    from realtime.errors import UserError
    from realtime.nets.models_store import model_path, resolve_model

    home = tmp_path / "home"
    taught = tiny_model.save(home / "models" / "waves-2026")
    monkeypatch.setenv("TWOSTREAM_HOME", str(home))
    assert model_path("waves-2026") == taught and resolve_model("waves-2026").config.labels == tiny_model.config.labels
    monkeypatch.setenv("TWOSTREAM_MODEL", str(taught))
    assert model_path("default") == taught  # 'default' is the default model, wherever it comes from
    with pytest.raises(UserError, match="no such model directory.*models here: .*waves-2026"):
        model_path("wavez")
    # the same name through the command line, as `train --from` takes it
    r = twostream("run", "synthetic:wave?fps=0", "--model", "waves-2026", "--max-frames", "3", "--json", "--engine", "torch", env={"TWOSTREAM_HOME": str(home)})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stderr.strip().splitlines()[-1])["summary"]["model"] == tiny_model.config.provenance["name"]
