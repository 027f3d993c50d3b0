"""Faults and hostile input that need no network: gaps, stalls, odd frames, broken files, overload, leaks.

Every video file here is written by the test itself with OpenCV. The RTSP faults are in test_rtsp.py,
hostile model files in test_reliability_models.py.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import synthetic_frames, write_video
from outages import StallingPipe
from realtime.nets.engines import create_engine
from realtime.errors import SourceError
from realtime.logs import scrub
from realtime.stream.pipeline import Pipeline
from realtime.io.sources import Backoff, FrameSource, open_source, redact

ROOT = Path(__file__).resolve().parent.parent


def twostream(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "realtime.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def one_error_line(r: subprocess.CompletedProcess) -> str:
    """The CLI's single `error:` line; fails if there is a traceback or more than one."""
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if "error:" in ln]
    assert len(errors) == 1, r.stderr
    return errors[0]


def pipeline_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("twostream-") and t.is_alive())


def process_sockets(pid: int) -> dict[str, list[str]]:
    """A process's sockets from /proc: TCP by state (LISTEN, ESTABLISHED, ...), UDP, and others (unix...)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out: dict[str, list[str]] = {}
    found = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        for line in path.read_text().splitlines()[1:] if path.exists() else []:
            cols = line.split()
            if cols[9] in inodes:
                kind = "UDP" if table.startswith("udp") else {"0A": "LISTEN", "01": "ESTABLISHED"}.get(cols[3], cols[3])
                out.setdefault(kind, []).append(cols[1])
                found.add(cols[9])
    if inodes - found:
        out["other"] = sorted(inodes - found)
    return out


class ListSource(FrameSource):
    """Hands over the frames it was given, read without loss; `gap_before` marks reconnects."""

    def __init__(self, frames: list, name: str = "test source", gap_before: tuple[int, ...] = ()):
        self.frames, self.name, self.gap_before = frames, name, gap_before
        self.is_live = False
        self.n = 0

    def read(self):  # type: ignore[no-untyped-def]
        if self.n >= len(self.frames):
            return None
        if self.n in self.gap_before:
            self.reconnects += 1  # as a live source does after re-opening a lost stream
        self.n += 1
        return self.frames[self.n - 1]


# -- reconnecting and gaps ----------------------------------------------------------------------
def test_backoff_retries_at_once_then_doubles_up_to_half_a_second() -> None:
    b = Backoff(jitter=0.0)
    assert [b.delay(n) for n in range(1, 8)] == [0.0, 0.1, 0.2, 0.4, 0.5, 0.5, 0.5]
    jittered = [Backoff().delay(6) for _ in range(200)]
    assert 0.45 <= min(jittered) < max(jittered) <= 0.55


def test_after_a_reconnect_flow_and_smoothing_restart_so_nothing_spans_the_gap(tiny_model) -> None:
    engine = create_engine(tiny_model, "torch", "cpu")

    class ColourEngine(type(engine)):  # type: ignore[misc]
        """Scores that follow the picture (an untrained net scores every frame about the same)."""

        def __call__(self, spatial_x, temporal_x):  # type: ignore[no-untyped-def]
            s, t = super().__call__(spatial_x, temporal_x)
            logits = 20 * spatial_x.mean(dim=(2, 3)).numpy()  # (N, 3): one row per frame of a batch
            logits = np.concatenate([logits, np.zeros((len(logits), 1), np.float32)], 1)
            s = np.exp(logits - logits.max(1, keepdims=True))
            return (s / s.sum(1, keepdims=True)).astype(np.float32), t

    engine.__class__ = ColourEngine
    frames = synthetic_frames("swipe_right", 8) + [255 - f for f in synthetic_frames("swipe_right", 8, seed=5)]
    src = ListSource(frames, gap_before=(8,))  # and a different picture after the gap
    with Pipeline(src, tiny_model, engine=engine, smoothing=8) as p:
        preds = list(p)
    engine.close()  # the caller's engine: a pipeline closes only the engines it built
    assert not np.allclose(preds[7].fused, preds[8].spatial, atol=0.05)  # so fused == spatial below means something
    assert [q.index for q in preds] == list(range(16))
    L = tiny_model.config.clip_length  # 3: the temporal stream needs L flow fields = L + 1 frames
    assert [q.ready for q in preds[:8]] == [False] * L + [True] * (8 - L)
    gap = preds[8]
    assert gap.status == "reconnected" and gap.flow is None and gap.temporal is None
    np.testing.assert_allclose(gap.fused, gap.spatial, atol=1e-6)  # the smoother forgot the frames before the gap
    assert all(q.flow is not None and not q.ready and q.status == "reconnected" for q in preds[9 : 8 + L])
    assert all(q.ready and q.status == "ok" for q in preds[8 + L :])
    assert p.summary()["reconnects"] == 1


class _OutageSource(FrameSource):
    """A live source that goes away after frame 5 for `outage` seconds, reporting it as OpenCVSource does."""

    name = "rtsp://***@cam/1"

    def __init__(self, outage: float = 0.6):
        self.outage, self.n = outage, 0

    def read(self):  # type: ignore[no-untyped-def]
        self.n += 1
        if self.n > 40:
            return None
        if self.n == 6:
            self.status = "reconnecting"
            self._on_status("reconnecting", f"{self.name}: no frame for 5.0 s, reconnecting")
            if self._cancel.wait(self.outage):
                return None
            self.reconnects += 1
            self.downtime_s += self.outage
            self._on_status("ok", f"{self.name}: reconnected after {self.outage} s")
        time.sleep(1 / 60)
        return np.full((48, 64, 3), self.n, np.uint8)


def test_status_says_reconnecting_while_the_source_is_away(tiny_model) -> None:
    seen: list[str] = []
    with Pipeline(_OutageSource(), tiny_model, engine="torch") as p:
        watcher = threading.Thread(target=lambda: [seen.append(p.status) or time.sleep(0.01) for _ in range(150)], daemon=True)
        watcher.start()
        preds = list(p)
        watcher.join()
    assert "reconnecting" in seen and seen[0] == "running"
    assert p.status == "finished" and p.summary()["reconnects"] == 1 and p.summary()["source_down_s"] == pytest.approx(0.6)
    assert [q.status for q in preds if q.index >= 5][0] == "reconnected"


def test_stop_during_a_reconnect_wait_returns_at_once(tiny_model) -> None:
    p = Pipeline(_OutageSource(outage=30), tiny_model, engine="torch").start()
    deadline = time.monotonic() + 10
    while p.status != "reconnecting" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert p.status == "reconnecting"
    p.stop(timeout=1.0)  # the wait is cut short: every thread (capture included) joined within the 1 s deadline
    assert pipeline_threads() == [] and p.status == "stopped"


# -- odd frames ---------------------------------------------------------------------------------
def _odd_frames() -> list[tuple[str, np.ndarray]]:
    base = synthetic_frames("wave", 1, size=(160, 120))[0]
    f = base.astype(np.float32) / 255
    f[0, :4] = np.array([np.nan, np.inf, -np.inf, 2.0])[:, None]
    y, x = np.mgrid[0:4320, 0:7680]
    eight_k = np.dstack([(x // 30 % 256), (y // 17 % 256), ((x + y) // 50 % 256)]).astype(np.uint8)
    return [
        ("bgr", base),
        ("grey", cv2.cvtColor(base, cv2.COLOR_BGR2GRAY)),
        ("grey 1-channel", base[..., :1]),
        ("bgra", cv2.cvtColor(base, cv2.COLOR_BGR2BGRA)),
        ("16-bit", base.astype(np.uint16) * 257),
        ("float with NaN/inf", f),
        ("mirrored view", base[:, ::-1]),
        ("one pixel", base[:1, :1]),
        ("8K", eight_k),
        ("7x3000 strip", np.ascontiguousarray(eight_k[:7, :3000])),
        ("bgr again", base),
    ]


def test_odd_frames_are_converted_and_size_changes_restart_the_flow(tiny_model) -> None:
    named = _odd_frames()
    with Pipeline(ListSource([f for _, f in named]), tiny_model, engine="torch") as p:
        preds = list(p)
    assert len(preds) == len(named)
    for (what, src), q in zip(named, preds):
        assert q.frame.dtype == np.uint8 and q.frame.ndim == 3 and q.frame.shape[2] == 3, what
        assert q.frame.shape[:2] == src.shape[:2] and q.frame.flags.c_contiguous, what
        assert np.isfinite(q.fused).all(), what
    statuses = {what: q.status for (what, _), q in zip(named, preds)}
    assert statuses["grey"] == statuses["bgra"] == "ok"  # same size: one segment
    assert all(statuses[w] == "resized" for w in ("one pixel", "8K", "7x3000 strip", "bgr again"))
    assert preds[1].frame[5, 5].tolist() == [cv2.cvtColor(named[0][1], cv2.COLOR_BGR2GRAY)[5, 5]] * 3
    assert preds[5].frame[0, :4].tolist() == [[0, 0, 0], [255, 255, 255], [0, 0, 0], [255, 255, 255]]


@pytest.mark.parametrize(
    "what,frame,message",
    [
        ("2 channels", np.zeros((48, 64, 2), np.uint8), r"shape \(48, 64, 2\)"),
        ("5 channels", np.zeros((48, 64, 5), np.uint8), r"shape \(48, 64, 5\)"),
        ("4-D", np.zeros((1, 48, 64, 3), np.uint8), r"shape \(1, 48, 64, 3\)"),
        ("bool", np.zeros((48, 64, 3), bool), "bool values"),
        ("complex", np.zeros((48, 64, 3), np.complex64), "complex64 values"),
        ("empty", np.zeros((0, 64, 3), np.uint8), "empty 64x0 frame"),
        ("a list", [[0, 1], [2, 3]], "gave a list, not an image"),
    ],
)
def test_unusable_frames_stop_the_run_with_a_message_naming_the_source(tiny_model, what, frame, message) -> None:
    good = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(SourceError, match=message) as e:
        with Pipeline(ListSource([good, good, frame], name="cam7"), tiny_model, engine="torch") as p:
            list(p)
    assert str(e.value).startswith("cam7: ")
    assert pipeline_threads() == []


# -- files: 8K, tiny, empty, truncated, corrupt, stalled -------------------------------------------
def test_an_8k_video_file_is_read_and_predicted(tmp_path, tiny_model) -> None:
    y, x = np.mgrid[0:4320, 0:7680]
    frame = np.dstack([(x // 40 % 256), (y // 25 % 256), ((x + y) // 60 % 256)]).astype(np.uint8)
    path = write_video(tmp_path / "8k.avi", [frame, np.roll(frame, 8, axis=1)])
    with Pipeline(path, tiny_model, engine="torch") as p:
        preds = list(p)
    assert [q.frame.shape for q in preds] == [(4320, 7680, 3)] * 2 and preds[1].flow is not None


def test_a_one_frame_file_gives_one_prediction(tmp_path, tiny_model) -> None:
    path = write_video(tmp_path / "one.avi", synthetic_frames("push", 1))
    with Pipeline(path, tiny_model, engine="torch") as p:
        preds = list(p)
    assert len(preds) == 1 and not preds[0].ready and preds[0].flow is None and p.status == "finished"


def test_a_zero_frame_file_is_refused_in_one_line(tmp_path, tiny_model) -> None:
    path = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
    writer.release()  # a header and no frames
    empty = tmp_path / "zero-bytes.mp4"
    empty.write_bytes(b"")
    for bad in (path, empty):
        with pytest.raises(SourceError, match=f"{bad.name}: (no decodable frame|cannot be decoded)"):
            with Pipeline(bad, tiny_model, engine="torch") as p:
                list(p)
    assert f"{path.name}: no decodable frame" in one_error_line(twostream("run", str(path), "--engine", "torch"))


def test_a_truncated_file_predicts_what_is_there_and_says_it_was_cut(tmp_path, tiny_model, caplog) -> None:
    path = write_video(tmp_path / "cut.avi", synthetic_frames("swipe_left", 40))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    with caplog.at_level(logging.WARNING, logger="twostream"):
        with Pipeline(path, tiny_model, engine="torch") as p:
            preds = list(p)
    assert 15 <= len(preds) < 40 and [q.index for q in preds] == list(range(len(preds)))
    assert f"ended after {len(preds)} of the 40 frames its header announces (truncated or damaged)" in caplog.text


def test_a_file_corrupt_in_the_middle_plays_to_the_end(tmp_path, tiny_model) -> None:
    path = write_video(tmp_path / "damaged.avi", synthetic_frames("circle_cw", 40))
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    start, stop = len(data) * 4 // 10, len(data) * 5 // 10
    data[start:stop] = rng.integers(0, 256, stop - start, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with Pipeline(path, tiny_model, engine="torch") as p:
        preds = list(p)
    assert 20 <= len(preds) <= 40 and p.status == "finished"
    r = twostream("run", str(path), "--engine", "torch", "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr


def test_random_bytes_and_a_directory_are_refused_in_one_line(tmp_path) -> None:
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    assert "noise.mp4: cannot be decoded as video" in one_error_line(twostream("run", str(noise), "--engine", "torch"))
    with pytest.raises(SourceError, match="is a directory"):
        open_source(tmp_path)


def _stalling_pipe(tmp_path: Path, fraction: float) -> StallingPipe:
    """A named pipe that delivers the first `fraction` of a video file, then stays open and silent."""
    video = write_video(tmp_path / "clip.avi", synthetic_frames("swipe_up", 40)).read_bytes()
    return StallingPipe(tmp_path / "camera.fifo", video[: int(len(video) * fraction)])


def test_a_file_that_stops_delivering_without_closing_times_out(tmp_path, tiny_model) -> None:
    """How soon after the last frame it fails: benchmarks/reliability.py (bar 2.5 s with a 1 s timeout)."""
    pipe = _stalling_pipe(tmp_path, 0.5)
    preds = []
    try:
        with pytest.raises(SourceError, match=r"camera.fifo: no frame for 1.0 s; it stopped delivering frames without ending"):
            with Pipeline(pipe.path, tiny_model, engine="torch", source_timeout=1.0) as p:
                for q in p:
                    preds.append(q)
    finally:
        pipe.close()
    assert 10 <= len(preds) < 40
    assert [t for t in pipeline_threads() if t != "twostream-source"] == []


def test_the_cli_reports_a_stalled_input_in_one_line_and_exits(tmp_path) -> None:
    pipe = _stalling_pipe(tmp_path, 0.5)
    try:
        r = twostream("run", str(pipe.path), "--engine", "torch", "--timeout", "1", "-q", timeout=30)  # a hang fails here
    finally:
        pipe.close()
    assert "no frame for 1.0 s" in one_error_line(r)


def test_a_pipe_that_never_delivers_fails_to_open_within_the_timeout(tmp_path) -> None:
    """How soon: benchmarks/reliability.py (bar 3 s with a 1 s timeout)."""
    pipe = _stalling_pipe(tmp_path, 0.0)
    try:
        with pytest.raises(SourceError, match=r"camera.fifo: file could not be opened within"):
            open_source(pipe.path, timeout_s=1.0)
    finally:
        pipe.close()


# -- overload -----------------------------------------------------------------------------------
class _FloodSource(FrameSource):
    """A live source as fast as the machine goes: ~1000 frames a second."""

    name = "flood"

    def __init__(self) -> None:
        self.frame = synthetic_frames("wave", 1, size=(160, 120))[0]

    def read(self):  # type: ignore[no-untyped-def]
        time.sleep(0.001)
        return self.frame


def test_a_source_far_faster_than_inference_keeps_latency_bounded_and_counts_every_drop(tiny_model) -> None:
    engine = create_engine(tiny_model, "torch", "cpu")
    base = type(engine)

    class SlowEngine(base):  # type: ignore[misc, valid-type]
        def __call__(self, spatial_x, temporal_x):  # type: ignore[no-untyped-def]
            time.sleep(0.04)  # a net ~25x slower than the source
            return super().__call__(spatial_x, temporal_x)

    engine.__class__ = SlowEngine
    p = Pipeline(_FloodSource(), tiny_model, engine=engine).start()
    preds = []
    for q in p:
        preds.append(q)
        if len(preds) == 40:  # ~1.6 s of 40 ms passes, while the source offers ~1000 frames a second
            break
    p.stop()
    engine.close()  # the caller's engine: a pipeline closes only the engines it built
    s = p.summary()
    dropped = sum(s["dropped"].values())
    assert s["captured"] > 10 * len(preds) and dropped > 0.8 * s["captured"]
    in_flight = s["captured"] - s["frames"] - dropped  # in the hand-over slots or a stage when stopped
    assert 0 <= in_flight <= 4, s
    assert preds[-1].dropped > preds[0].dropped  # every Prediction carries the running count


# -- leaks and ports ----------------------------------------------------------------------------
def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_pipelines_started_and_stopped_leak_no_threads_or_file_descriptors(video_file, tiny_model) -> None:
    def run_once() -> None:
        with Pipeline(video_file, tiny_model, engine="torch") as p:
            list(p)
        with Pipeline("synthetic:demo?fps=200", tiny_model, engine="torch") as p:
            next(iter(p))

    run_once()
    threads, fds = threading.active_count(), _fds()
    for _ in range(5):
        run_once()
    assert threading.active_count() == threads and pipeline_threads() == []
    assert _fds() == fds


@pytest.mark.slow
def test_short_soak_memory_threads_and_descriptors_stay_flat(tiny_model) -> None:
    """The 10-minute version is benchmarks/soak.py; this is 20 s at 60 fps."""
    samples = []
    with Pipeline("synthetic:demo?fps=60&size=320x240", tiny_model, engine="torch") as p:
        t0 = time.monotonic()
        next_sample = t0 + 6.0  # after warm-up: allocator pools, first clips rendered
        for q in p:
            now = time.monotonic()
            if now >= next_sample:
                samples.append((now - t0, _rss_mb(), threading.active_count(), _fds(), q.index))
                next_sample += 2.0
            if now - t0 > 20:
                break
    first, last = samples[0], samples[-1]
    assert last[4] - first[4] > 500, samples  # frames really flowed
    assert last[1] < first[1] * 1.05, f"RSS grew {first[1]:.0f} -> {last[1]:.0f} MB: {samples}"
    assert {s[2] for s in samples} == {first[2]} and {s[3] for s in samples} == {first[3]}, samples


def test_nothing_listens_on_a_port_while_running(tmp_path, video_file) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "realtime.cli",
            "run",
            "synthetic:demo?fps=30",
            "--engine",
            "torch",
            "--max-frames",
            "150",
            "-q",
            "--out",
            str(tmp_path / "out.avi"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    try:
        for line in proc.stderr:  # type: ignore[union-attr]  # wait for the event, not for a guessed time
            seen.append(line)
            if line.startswith("twostream: source "):  # logged once the pipeline has started: model loaded, frames flowing
                break
        assert proc.poll() is None, "".join(seen)
        sockets = process_sockets(proc.pid)
    finally:
        _, err = proc.communicate(timeout=60)
        err = "".join(seen) + err
    assert proc.returncode == 0, err
    assert sockets == {}, f"the recognizer opened sockets: {sockets}"


# -- credentials --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "rtsp://admin:S3cret@10.1.2.3:554/live",
        "rtsp://admin:S3/cret@10.1.2.3/live",
        "rtsp://admin:S3#cret@10.1.2.3/live",
        "rtsp://admin:S3?cret@10.1.2.3/live",
        "rtsp://admin:S3@cret@10.1.2.3/live",
        "rtsp://10.1.2.3/live?token=S3cret&ch=1",
        "http://10.1.2.3/video.mjpg?user=admin&password=S3cret",
        "rtsp://admin:S3cret@[fe80::1]:554/live",
    ],
)
def test_credentials_are_redacted_from_names_and_free_text(url) -> None:
    for text in (redact(url), scrub(f"cannot open {url}: refused")):
        assert "S3" not in text and "cret" not in text and "admin" not in text, text
    assert "10.1.2.3" in redact(url) or "fe80::1" in redact(url)


def test_a_source_error_never_carries_the_password(tiny_model, caplog) -> None:
    url = "rtsp://admin:S3cretPw@127.0.0.1:9/live?token=T0ken"  # nothing listens on port 9
    with caplog.at_level(logging.DEBUG, logger="twostream"):
        with pytest.raises(SourceError) as e:
            Pipeline(url, tiny_model, engine="torch", source_timeout=1.0).start()
    text = str(e.value) + caplog.text
    assert "S3cretPw" not in text and "T0ken" not in text and "rtsp://***@127.0.0.1:9/live?token=***" in str(e.value)
