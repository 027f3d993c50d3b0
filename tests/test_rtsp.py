"""A real RTSP server on 127.0.0.1 (GStreamer, see rtsp_server.py) and the recognizer reading it.

The faults a camera on a flaky network produces: the server dies and comes back, it stops sending
without closing, it changes resolution; and a stream URL's credentials must not leak anywhere.
Each test skips, saying why, where the server cannot start; under CI (CI set) it fails instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from realtime.stream.pipeline import Pipeline
from realtime.io.sources import open_source
from outages import StatusLog
from rtsp_server import RtspServer, unavailable_reason
from test_reliability import process_sockets

pytestmark = pytest.mark.rtsp

ROOT = Path(__file__).resolve().parent.parent
SECRET, TOKEN = "Sup3rS3cretPw", "T0kenValue99"


@pytest.fixture(scope="module")
def rtsp_ok() -> None:
    reason = unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the RTSP tests, but: {reason}")
        pytest.skip(reason)


@pytest.fixture
def rtsp(rtsp_ok):  # type: ignore[no-untyped-def]
    """Start RTSP servers for one test; they, and any capture thread left reading them, end with it."""
    servers: list[RtspServer] = []

    def start(**options: object) -> RtspServer:
        server = RtspServer(**options).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()
    deadline = time.monotonic() + 15  # an abandoned capture ends once its server is gone
    while _source_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _source_threads(), "a capture thread outlived its source and its server"


def _source_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "twostream-source"]


def test_reads_a_live_rtsp_stream_as_a_live_source(rtsp, tiny_model) -> None:
    """Its rate and the frames' age at prediction are timed by benchmarks/reliability.py."""
    server = rtsp(fps=30)
    preds = []
    with Pipeline(server.url, tiny_model, engine="torch", source_timeout=2.0) as p:
        assert p.source is not None and p.source.is_live and p.source.fps == 30
        for pred in p:
            preds.append(pred)
            if len(preds) == 60:
                break
    assert all(q.frame.shape == (120, 160, 3) and q.status == "ok" for q in preds)
    assert preds[-1].ready and [q.index for q in preds] == sorted(q.index for q in preds)
    assert len({q.capture_ts for q in preds}) == len(preds)  # every prediction a new frame, none replayed


def test_server_killed_and_restarted_reconnects_with_no_flow_across_the_gap(rtsp, tiny_model) -> None:
    server = rtsp(fps=30)
    pipe = Pipeline(server.url, tiny_model, engine="torch", source_timeout=2.0).start()
    status = StatusLog(pipe)
    warm, times = threading.Event(), {}

    def outage() -> None:
        warm.wait(20)
        times["kill"] = time.monotonic()
        server.kill()  # SIGKILL mid-stream: the TCP connection drops
        time.sleep(2.0)
        server.start()
        times["back"] = server.ready_at
        time.sleep(10)  # the test ends long before; this only bounds a hang
        pipe.stop()

    controller = threading.Thread(target=outage, daemon=True)
    controller.start()
    preds = []
    try:
        for pred in pipe:
            preds.append(pred)
            if sum(q.ready for q in preds) >= 10:
                warm.set()
            if "back" in times and sum(q.capture_ts > times["back"] for q in preds) >= 30:
                break
        summary = pipe.summary()
        source_threads = _source_threads()
    finally:
        pipe.stop()
        status.close()
    assert "back" in times, "the outage never happened"
    before = [q for q in preds if q.capture_ts < times["kill"]]
    after = [q for q in preds if q.capture_ts > times["back"]]
    assert before and after and all(q.status == "ok" for q in before[:-3])

    # Seen while the server was away: the pipeline said so, with a readable, redacted reason.
    lost = status.first("reconnecting", after=times["kill"])
    assert lost is not None and lost[0] < times["back"]  # how soon: benchmarks/reliability.py (bar 0.5 s)
    assert "reconnecting" in lost[2] and "127.0.0.1" in lost[2]
    assert status.rows[-1][1] == "running" or pipe.status in ("stopped", "finished")

    # Back, in the same process and pipeline, with the flow ring restarted (how soon: benchmarks/reliability.py, bar 2 s).
    first = after[0]
    assert first.status == "reconnected" and not first.ready, "flow was computed across the gap"
    assert first.index > before[-1].index
    ready_again = [q for q in after if q.ready]
    assert ready_again and all(q.status == "ok" for q in ready_again)
    assert all(q.status in ("reconnected", "ok") for q in after)
    assert summary["reconnects"] == 1 and summary["source_down_s"] > 1.5  # the server was away 2 s
    assert source_threads == ["twostream-source"]  # the lost connection's capture thread has ended


def test_a_stream_that_stalls_without_closing_is_detected_and_recovers(rtsp, tiny_model) -> None:
    server = rtsp(fps=30)
    pipe = Pipeline(server.url, tiny_model, engine="torch", source_timeout=1.0).start()
    status = StatusLog(pipe)
    preds, times = [], {}
    try:
        for pred in pipe:
            preds.append(pred)
            if len(preds) == 15:
                times["pause"] = time.monotonic()
                server.pause()  # SIGSTOP: the connection stays open, nothing more arrives
                threading.Timer(3.0, lambda: (times.setdefault("resume", time.monotonic()), server.resume())).start()
            if "resume" in times and sum(q.capture_ts > times["resume"] for q in preds) >= 5:
                break
            if time.monotonic() - (times.get("pause") or time.monotonic()) > 15:
                pytest.fail("the stream never came back after the server resumed")
    finally:
        pipe.stop()
        status.close()
    lost = status.first("reconnecting", after=times["pause"])
    assert lost is not None, "a stalled stream was never reported"
    assert lost[0] - times["pause"] > 0.9 and "no frame for 1.0 s" in lost[2]  # not before its timeout (how soon after: the benchmark)
    after = [q for q in preds if q.capture_ts > times["resume"]]
    assert after and after[0].status == "reconnected"
    assert pipe.summary()["reconnects"] == 1


def test_stop_returns_promptly_while_the_stream_is_stalled(rtsp, tiny_model) -> None:
    server = rtsp(fps=30)
    pipe = Pipeline(server.url, tiny_model, engine="torch", source_timeout=30.0).start()
    it = iter(pipe)
    for _ in range(5):
        next(it)
    server.pause()
    # wait until capture has stalled: the capture thread is then blocked in a read that would wait 30 s
    last, quiet_since, deadline = pipe.stats.captured, time.monotonic(), time.monotonic() + 10
    while time.monotonic() - quiet_since < 0.3 and time.monotonic() < deadline:
        time.sleep(0.02)
        if pipe.stats.captured != last:
            last, quiet_since = pipe.stats.captured, time.monotonic()
    assert time.monotonic() < deadline, "frames kept coming after the server paused"
    pipe.stop(timeout=1.0)  # the blocked read is cut short: no thread but OpenCV's own reader outlives the 1 s deadline
    assert not [t.name for t in threading.enumerate() if t.name.startswith("twostream-") and t.name != "twostream-source"]
    server.stop()  # the abandoned read returns once the server is gone; the fixture checks it ends


def test_resolution_change_mid_stream_keeps_running(rtsp, tiny_model) -> None:
    server = rtsp(fps=30, resize_after=20, size2="240x136")  # also tinted, so the switch is visible
    preds = []
    with Pipeline(server.url, tiny_model, engine="torch", source_timeout=2.0) as p:
        for pred in p:
            preds.append(pred)
            if len(preds) >= 60:
                break
    red_minus_blue = [float(q.frame[..., 2].mean() - q.frame[..., 0].mean()) for q in preds]
    switched = [i for i, d in enumerate(red_minus_blue) if d > 60]
    assert switched and switched[0] < len(preds) - 10, "the new stream never arrived"
    # OpenCV's FFmpeg reader scales a stream to its first size; should it ever hand over the new
    # size, the pipeline must treat it as a new segment (no flow between the two sizes).
    shapes = [q.frame.shape for q in preds]
    for prev, cur, q in zip(shapes, shapes[1:], preds[1:]):
        if cur != prev:
            assert q.status == "resized" and not q.ready
    assert preds[-1].ready


def test_cli_survives_an_outage_and_never_shows_credentials(rtsp, tiny_model, tmp_path) -> None:
    server = rtsp(fps=30, user="admin", password=SECRET)
    url = server.url + f"?token={TOKEN}"
    model_dir = tiny_model.save(tmp_path / "tiny")
    video = tmp_path / "annotated.avi"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "realtime.cli",
            "-v",
            "run",
            url,
            "--model",
            str(model_dir),
            "--engine",
            "torch",
            "--json",
            "--max-frames",
            "150",
            "--timeout",
            "2",
            "--out",
            str(video),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    errs: list[str] = []
    readers = [
        threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True),  # type: ignore[arg-type]
        threading.Thread(target=lambda: errs.extend(proc.stderr), daemon=True),
    ]  # type: ignore[arg-type]
    for r in readers:
        r.start()
    sockets = None
    try:
        deadline = time.monotonic() + 60
        while len(lines) < 40 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(lines) >= 40, "the CLI never got going"
        sockets = process_sockets(proc.pid)  # mid-stream: one connection out, nothing listening
        server.kill()
        time.sleep(1.5)
        server.start()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for r in readers:
        r.join(5)
    err = "".join(errs)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert sockets is not None and set(sockets) == {"ESTABLISHED"} and len(sockets["ESTABLISHED"]) == 1, sockets
    rows = [json.loads(line) for line in lines]
    summary = json.loads(err.strip().splitlines()[-1])["summary"]
    assert {r["status"] for r in rows} >= {"ok", "reconnected"}
    assert summary["captured"] == 150 and summary["frames"] == len(rows) == 150 - sum(summary["dropped"].values())
    assert summary["reconnects"] == 1 and summary["source"] == f"rtsp://***@127.0.0.1:{server.port}/cam?token=***"
    assert "reconnecting" in err and "reconnected after" in err
    recorded = video.read_bytes()
    assert len(recorded) > 1000
    for secret in (SECRET, TOKEN):
        assert secret not in "".join(lines) and secret not in err
        assert secret.encode() not in recorded


def test_a_wrong_password_is_refused_in_one_line_without_echoing_it(rtsp) -> None:
    server = rtsp(user="admin", password=SECRET)
    wrong = server.url.replace(SECRET, "Wr0ngPassw0rd")
    r = subprocess.run([sys.executable, "-m", "realtime.cli", "run", wrong, "--timeout", "2"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("twostream run: error:")]
    assert len(errors) == 1 and f"rtsp://***@127.0.0.1:{server.port}/cam" in errors[0]
    assert "Wr0ngPassw0rd" not in r.stderr + r.stdout


def test_open_source_on_rtsp_reports_live_stream_properties(rtsp) -> None:
    server = rtsp(fps=25, size="96x72")
    with open_source(server.url, timeout_s=2.0) as src:
        frames = [src.read() for _ in range(5)]
        assert src.is_live and src.reconnect_when_lost and src.frame_count is None and src.fps == 25
    assert all(f is not None and f.shape == (72, 96, 3) and f.dtype == np.uint8 for f in frames)
