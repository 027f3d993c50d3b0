"""Multi-stream serving: batched scores equal single-stream ones, every stream in order, streams fail alone.

Agreement bound: batched nets may sum in another order than batch-1 nets, so scores are compared
within 1e-4 (max abs difference of fp32 softmax scores, the bound tests/test_engine_agreement.py uses).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import informative, synthetic_frames, write_video
from realtime.stream.cuts import CUT_RAMP
from realtime.nets.checkpoint import TwoStreamModel
from realtime.nets.engines import create_engine
from realtime.errors import UserError
from realtime.nets.engines import batch_mode, batched_scores
from realtime.stream.multistream import MultiPipeline, StreamPrediction
from realtime.stream.pipeline import Pipeline
from realtime.io.sources import FrameSource

ROOT = Path(__file__).resolve().parent.parent
BOUND = 1e-4


@pytest.fixture(scope="module")
def model(tiny_model: TwoStreamModel) -> TwoStreamModel:
    """The tiny model made to score inputs unevenly (an untrained net's BatchNorm makes every score ~uniform)."""
    return informative(tiny_model)


class ListSource(FrameSource):
    """Plays the frames it was given, without loss; a frame of another size starts a new segment."""

    def __init__(self, frames: list[np.ndarray], name: str = "list source"):
        self.frames, self.name, self.is_live, self.n = frames, name, False, 0

    def read(self):  # type: ignore[no-untyped-def]
        if self.n >= len(self.frames):
            return None
        self.n += 1
        return self.frames[self.n - 1]


class FailingSource(FrameSource):
    """A camera that gives 6 frames, then its driver raises."""

    name = "camera 7"
    is_live = False

    def __init__(self) -> None:
        self.n, self.closed = 0, False
        self.clip = synthetic_frames("wave", 6, seed=4)

    def read(self):  # type: ignore[no-untyped-def]
        if self.n >= 6:
            raise RuntimeError("sensor unplugged")
        self.n += 1
        return self.clip[self.n - 1]

    def close(self) -> None:
        self.closed = True


class OutageSource(FrameSource):
    """A stream that goes away after frame 5 for `outage` seconds and is re-opened, reporting it as OpenCVSource does."""

    name = "rtsp://***@cam/1"
    is_live = False  # read without loss: every frame it gives is predicted

    def __init__(self, outage: float = 0.6):
        self.outage, self.n = outage, 0
        self.clip = synthetic_frames("swipe_left", 30, seed=8)

    def read(self):  # type: ignore[no-untyped-def]
        self.n += 1
        if self.n > 30:
            return None
        if self.n == 6:
            self.status = "reconnecting"
            self._on_status("reconnecting", f"{self.name}: no frame for 5.0 s, reconnecting")
            if self._cancel.wait(self.outage):
                return None
            self.reconnects += 1
            self._on_status("ok", f"{self.name}: reconnected after {self.outage} s")
        return self.clip[self.n - 1]


def by_stream(preds: list[StreamPrediction], n: int) -> list[list[StreamPrediction]]:
    out: list[list[StreamPrediction]] = [[] for _ in range(n)]
    for p in preds:
        out[p.stream].append(p)
    return out


def serving_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.is_alive() and (t.name.startswith("twostream-s") or t.name == "twostream-infer")]


@pytest.mark.parametrize("engine,mode", [("torch", "ready"), ("torchscript", "ready"), ("torch", "padded"), ("torch", "rows")])
def test_batched_scores_equal_each_items_own_batch_1_scores(model: TwoStreamModel, engine: str, mode: str) -> None:
    # "padded" is how compile engines are fed, "rows" how TensorRT's batch-1 engines are; both run here on real nets
    s, c = model.config.input_size, model.config.temporal_channels
    gen = torch.Generator().manual_seed(3)
    rgb, temporal = torch.randn(5, 3, s, s, generator=gen), torch.randn(5, c, s, s, generator=gen)
    has_temporal = [True, False, True, True]  # 4 items of a 5-row buffer; item 1's flow stack is not ready
    eng = create_engine(model, engine, "cpu")
    try:
        sp, tp = batched_scores(eng, rgb, temporal, has_temporal, mode)
        assert sp.shape == (4, 4) and tp is not None and tp.shape == (3, 4)
        j = 0
        for i, has_t in enumerate(has_temporal):
            ref_s, ref_t = eng(rgb[i : i + 1], temporal[j : j + 1] if has_t else None)
            np.testing.assert_allclose(sp[i], ref_s[0], atol=BOUND, rtol=0)
            if has_t:
                np.testing.assert_allclose(tp[j], ref_t[0], atol=BOUND, rtol=0)
                j += 1
        assert sp.max() > 0.4 and tp.max() > 0.4, "near-uniform scores: the comparison would prove nothing"
        sp_none, tp_none = batched_scores(eng, rgb, temporal, [False, False], mode)
        assert tp_none is None and sp_none.shape == (2, 4)
        assert batch_mode(eng) == "ready"
    finally:
        eng.close()


@pytest.mark.parametrize("engine", ["torch", "torchscript"])
def test_each_stream_scores_as_its_own_single_stream_pipeline(tmp_path: Path, model: TwoStreamModel, engine: str) -> None:
    a = write_video(tmp_path / "a.avi", synthetic_frames("swipe_right", 24, seed=1))
    b = write_video(tmp_path / "b.avi", synthetic_frames("circle_cw", 18, seed=2))
    # a third stream changes size at frame 9: its flow stack restarts while the others' are ready,
    # so batches mix items with and without a temporal input
    frames = synthetic_frames("push", 9, seed=3) + synthetic_frames("push", 12, seed=3, size=(128, 96))
    sources = [str(a), str(b), ListSource(frames, "resizing"), "synthetic:wave?fps=0&frames=20&size=96x72"]
    with MultiPipeline(sources, model, engine=engine, device="cpu") as mp:
        streams = by_stream(list(mp), len(sources))
    singles = [str(a), str(b), ListSource(frames, "resizing"), "synthetic:wave?fps=0&frames=20&size=96x72"]
    for i, src in enumerate(singles):
        with Pipeline(src, model, engine=engine, device="cpu") as p:
            ref = list(p)
        got = streams[i]
        assert [q.index for q in got] == [q.index for q in ref]
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g.spatial, r.spatial, atol=BOUND, rtol=0)
            assert (g.temporal is None) == (r.temporal is None) and g.status == r.status
            if g.temporal is not None:
                np.testing.assert_allclose(g.temporal, r.temporal, atol=BOUND, rtol=0)
            np.testing.assert_allclose(g.fused, r.fused, atol=BOUND, rtol=0)
    resized = streams[2]
    L = model.config.clip_length
    assert [q.status for q in resized[9 : 9 + L]] == ["resized"] * L and all(q.temporal is None for q in resized[9 : 9 + L])
    assert max(float(q.spatial.max()) for q in streams[0]) > 0.4


def test_every_stream_gets_all_its_predictions_in_order(tmp_path: Path, tiny_model: TwoStreamModel) -> None:
    clip = write_video(tmp_path / "clip.avi", synthetic_frames("swipe_up", 30, seed=5))
    sources = ["synthetic:demo?fps=0&frames=26&clip=13&size=96x72", str(clip), "synthetic:wave?fps=0&frames=17&size=96x72"]
    with MultiPipeline(sources, tiny_model, engine="torch") as mp:
        preds = list(mp)
    streams = by_stream(preds, 3)
    for stream, n in zip(streams, (26, 30, 17)):
        assert [q.index for q in stream] == list(range(n))
        caps = [q.capture_ts for q in stream]
        assert all(b > a for a, b in zip(caps, caps[1:]))
        assert all(q.capture_ts <= q.flow_ts <= q.infer_ts for q in stream)
        assert all(abs(float(q.fused.sum()) - 1) < 1e-4 for q in stream)
    assert [q.truth for q in streams[0]] == ["swipe_left"] * 13 + ["swipe_right"] * 13
    assert {q.source for q in streams[1]} == {str(clip)} and streams[2][0].source == "synthetic:wave"
    L = tiny_model.config.clip_length
    assert [q.ready for q in streams[1]] == [False] * L + [True] * (30 - L)
    summary = mp.summary()
    assert [s["frames"] for s in summary["streams"]] == [26, 30, 17] and summary["frames"] == 73
    assert [s["status"] for s in summary["streams"]] == ["finished"] * 3 and mp.status == "finished"
    assert all(s["dropped"] == {"capture": 0, "infer": 0, "output": 0} for s in summary["streams"])
    assert summary["batches"] >= 30 and 1 <= summary["batch_size"]["mean"] <= 3 and summary["failed"] == []
    row = preds[-1].to_dict()
    assert row["stream"] == preds[-1].stream and row["source"] == preds[-1].source and "latency_ms" in row


def test_live_streams_keep_the_newest_work_and_count_every_drop(tiny_model: TwoStreamModel) -> None:
    # two sources at 1000 fps, far beyond what the nets do: each stream drops, counted, and stays in order
    sources = [f"synthetic:demo?fps=1000&frames=400&size=160x120&seed={i}" for i in range(2)]
    with MultiPipeline(sources, tiny_model, engine="torch", smoothing=1) as mp:
        streams = by_stream(list(mp), 2)
    for i, stream in enumerate(streams):
        s = mp.summary()["streams"][i]
        idx = [q.index for q in stream]
        assert all(b > a for a, b in zip(idx, idx[1:]))
        assert s["captured"] == 400
        # every frame read is either predicted and received, or dropped at a counted stage
        assert len(stream) + sum(s["dropped"].values()) == 400
        assert s["frames"] - s["dropped"]["output"] == len(stream)
    assert sum(sum(s["dropped"].values()) for s in mp.summary()["streams"]) > 0


def test_a_stream_that_ends_leaves_the_others_running(tmp_path: Path, tiny_model: TwoStreamModel) -> None:
    short = write_video(tmp_path / "short.avi", synthetic_frames("pull", 6, seed=6))
    sources = [str(short), "synthetic:circle_ccw?fps=0&frames=60&size=96x72"]
    with MultiPipeline(sources, tiny_model, engine="torch") as mp:
        streams = by_stream(list(mp), 2)
    assert [q.index for q in streams[0]] == list(range(6)) and [q.index for q in streams[1]] == list(range(60))
    assert sum(q.infer_ts > streams[0][-1].infer_ts for q in streams[1]) > 0  # the long one went on after the short one ended
    assert [s["status"] for s in mp.summary()["streams"]] == ["finished", "finished"]


def test_a_failing_stream_is_reported_and_the_others_go_on(tmp_path: Path, tiny_model: TwoStreamModel, caplog: pytest.LogCaptureFixture) -> None:
    clip = write_video(tmp_path / "clip.avi", synthetic_frames("swipe_down", 30, seed=7))
    failing = FailingSource()
    sources = [str(clip), failing, "synthetic:wave?fps=0&frames=40&size=96x72"]
    log = logging.getLogger("twostream")
    log.addHandler(caplog.handler)  # directly: the CLI's setup_logging (run in-process by other tests) stops propagation
    try:
        with MultiPipeline(sources, tiny_model, engine="torch") as mp:
            streams = by_stream(list(mp), 3)  # no exception: one stream's failure is not the server's
    finally:
        log.removeHandler(caplog.handler)
    assert [q.index for q in streams[0]] == list(range(30)) and [q.index for q in streams[2]] == list(range(40))
    assert [q.index for q in streams[1]] == list(range(len(streams[1]))) and len(streams[1]) <= 6
    summary = mp.summary()
    assert [s["status"] for s in summary["streams"]] == ["finished", "failed", "finished"]
    assert "sensor unplugged" in summary["streams"][1]["error"] and summary["failed"] == [1]
    assert failing.closed
    assert any("stream 1 (camera 7) failed" in r.getMessage() and "the other streams go on" in r.getMessage() for r in caplog.records)


def test_a_reconnecting_stream_rebuilds_its_flow_while_the_others_go_on(model: TwoStreamModel) -> None:
    sources = [OutageSource(), "synthetic:wave?fps=30&frames=45&size=96x72"]
    with MultiPipeline(sources, model, engine="torch") as mp:
        streams = by_stream(list(mp), 2)
    cam, other = streams
    L = model.config.clip_length
    assert [q.index for q in cam] == list(range(30))
    # the other stream is live (30 fps): on a loaded machine it drops frames, and then it must count every one
    # (how many it drops is the machine's load, not the pipeline's behaviour: benchmarks/multistream.py measures that)
    seen = [q.index for q in other]
    assert seen == sorted(set(seen)) and set(seen) <= set(range(45)) and seen[-1] == 44
    assert [q.status for q in cam[5 : 5 + L]] == ["reconnected"] * L and all(q.temporal is None for q in cam[5 : 5 + L])
    assert all(q.ready for q in cam[5 + L :])  # flow never spans the gap: the stack is rebuilt from new frames
    assert np.abs(cam[4].fused - cam[4].spatial).max() > 1e-3  # smoothing mixes frames...
    np.testing.assert_allclose(cam[5].fused, cam[5].spatial, atol=1e-6)  # ...but forgot the ones before the gap
    gap = (cam[4].infer_ts, cam[5].capture_ts)
    assert sum(gap[0] < q.infer_ts < gap[1] for q in other) > 0  # the other stream was served during the outage
    s = mp.summary()["streams"]
    assert s[0]["reconnects"] == 1 and s[0]["source"] == "rtsp://***@cam/1" and [x["status"] for x in s] == ["finished"] * 2
    assert len(seen) + sum(s[1]["dropped"].values()) == 45, s[1]["dropped"]


def test_a_source_that_cannot_be_opened_is_refused_or_left_out(tmp_path: Path, tiny_model: TwoStreamModel) -> None:
    missing = str(tmp_path / "missing.mp4")
    mp = MultiPipeline(["synthetic:wave?fps=0&frames=5", missing], tiny_model, engine="torch")
    with pytest.raises(UserError, match=r"stream 1: .*missing\.mp4: no such file"):
        mp.start()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("twostream-spatial")]  # refused: its engine holds no thread
    mp.stop()
    assert serving_threads() == []
    with MultiPipeline(["synthetic:wave?fps=0&frames=5&size=96x72", missing], tiny_model, engine="torch", keep_going=True) as mp:
        preds = list(mp)
    assert [q.stream for q in preds] == [0] * 5
    s = mp.summary()["streams"]
    assert s[0]["status"] == "finished" and s[1]["status"] == "failed" and "no such file" in s[1]["error"]
    with pytest.raises(UserError, match="unknown source scheme"):
        MultiPipeline(["synthetic:wave", "gopher://x/y"], tiny_model, engine="torch")


def test_auto_on_a_cpu_picks_onnxruntime_for_a_few_streams_and_eager_nets_for_many(tiny_model: TwoStreamModel) -> None:
    """ONNX Runtime runs batches of 1-4 fastest on a CPU; beyond that eager nets pull ahead (engines.auto_candidates),
    and frozen TorchScript nets gain nothing from batches."""
    from realtime.nets.engines import ORT_AUTO_MAX_BATCH, auto_candidates

    several = MultiPipeline(["synthetic:wave?fps=0&size=96x72", "synthetic:push?fps=0&size=96x72"], tiny_model, engine="auto", device="cpu")
    one = MultiPipeline(["synthetic:wave?fps=0&size=96x72"], tiny_model, engine="auto", device="cpu")
    try:
        assert several.engine.name == "onnxruntime" and one.engine.name == "onnxruntime"
        assert any("torchscript: its frozen nets gain nothing from batches" in r for r in several.engine.auto_reasons)
    finally:
        several.stop()
        one.stop()
    many, why = auto_candidates(torch.device("cpu"), ORT_AUTO_MAX_BATCH + 1)
    assert many[0] == "torch" and any("eager torch runs batches" in r for r in why)
    single = create_engine(tiny_model, "auto", "cpu")
    assert single.name == "onnxruntime"
    single.close()


def test_stop_joins_every_thread_and_releases_every_source(tiny_model: TwoStreamModel) -> None:
    sources = [FailingSource(), "synthetic:demo?fps=30&size=96x72", "synthetic:wave?fps=30&size=96x72"]
    mp = MultiPipeline(sources, tiny_model, engine="torch")
    seen = 0
    for _ in mp:  # endless live sources: the caller decides when to stop
        seen += 1
        if seen == 20:
            break
    mp.stop(timeout=3.0)
    assert serving_threads() == []
    assert all(st.source is not None for st in mp.streams) and sources[0].closed
    assert [s["status"] for s in mp.summary()["streams"]][1:] == ["stopped", "stopped"]


def serve(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "realtime.cli", "serve", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=os.environ.copy()
    )


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model: TwoStreamModel) -> Path:
    return tiny_model.save(tmp_path_factory.mktemp("models") / "tiny")


def test_serve_prints_predictions_of_every_stream_and_a_summary_per_stream(tiny_model_dir: Path, video_file: Path) -> None:
    r = serve("synthetic:demo?fps=0&frames=9", str(video_file), "--model", str(tiny_model_dir), "--max-frames", "12", "--engine", "torch")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len([ln for ln in lines if ln.startswith("stream  0 ")]) == 9 and len([ln for ln in lines if ln.startswith("stream  1 ")]) == 12
    assert "summary: 21 predictions from 2 streams" in r.stderr and "UNTRAINED" in r.stderr
    table = [ln.split() for ln in r.stderr.splitlines() if ln.strip().startswith(("0 ", "1 "))]
    assert [(row[0], row[1], row[2]) for row in table] == [("0", "finished", "9"), ("1", "finished", "12")]


def test_serve_json_lines_carry_the_stream_and_the_summary_goes_to_stderr(tiny_model_dir: Path) -> None:
    r = serve("synthetic:wave?fps=0&frames=5", "synthetic:push?fps=0&frames=7", "--model", str(tiny_model_dir), "--json", "--engine", "torch")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted((row["stream"], row["frame"]) for row in rows) == [(0, i) for i in range(5)] + [(1, i) for i in range(7)]
    assert {row["source"] for row in rows} == {"synthetic:wave", "synthetic:push"} and all("latency_ms" in row for row in rows)
    summary = json.loads(r.stderr.strip().splitlines()[-1])["summary"]
    assert [s["frames"] for s in summary["streams"]] == [5, 7] and summary["engine"].startswith("torch")


@pytest.mark.parametrize(
    "args,message",
    [
        (["synthetic:demo", "gopher://x/y"], "unknown source scheme"),
        (["synthetic:demo", "/no/such/clip.mp4"], "stream 1: /no/such/clip.mp4: no such file"),
        (["synthetic:moonwalk"], "unknown synthetic source"),
        (["synthetic:demo", "--max-frames", "0"], "--max-frames must be at least 1"),
        (["synthetic:demo", "--engine", "tensorrt"], "torch-tensorrt"),
        (["synthetic:demo", "--device", "cuda"], "no CUDA GPU"),
        (["synthetic:demo", "--model", "/no/such/model"], "no such model directory"),
    ],
)
def test_serve_bad_input_is_one_line_exit_2_no_traceback(args: list[str], message: str) -> None:
    r = serve(*args, timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "error" in ln]) == 1


def test_serve_never_prints_stream_credentials(tiny_model_dir: Path) -> None:
    url = "rtsp://admin:s3cr3tpw@127.0.0.1:9/cam?token=t0ps3cret"
    r = serve("synthetic:wave?fps=0&frames=4", url, "--model", str(tiny_model_dir), "--timeout", "1", "--engine", "torch", timeout=60)
    assert r.returncode == 2 and "rtsp://***@127.0.0.1:9/cam" in r.stderr
    kept = serve(
        "synthetic:wave?fps=0&frames=4", url, "--model", str(tiny_model_dir), "--timeout", "1", "--engine", "torch", "--keep-going", "--json", timeout=60
    )
    assert kept.returncode == 1, kept.stderr  # served what it could; a stream failed
    for out in (r.stdout + r.stderr, kept.stdout + kept.stderr):
        assert "s3cr3tpw" not in out and "t0ps3cret" not in out
    summary = json.loads(kept.stderr.strip().splitlines()[-1])["summary"]
    assert summary["streams"][1]["status"] == "failed" and summary["streams"][0]["frames"] == 4


def test_configure_and_swap_while_serving_apply_to_every_stream_between_two_batches(model: TwoStreamModel) -> None:
    """The one stream core: MultiPipeline takes setting changes and model swaps as Pipeline does, whole, for every stream."""
    import copy

    other = copy.deepcopy(model)
    other.config.labels = [f"new_{lab}" for lab in model.config.labels]
    other.config.provenance = {**other.config.provenance, "name": "renamed"}
    engine = create_engine(model, "torch", "cpu", max_batch=2)
    sources = ["synthetic:demo?fps=0&size=96x72&seed=1", "synthetic:demo?fps=0&size=96x72&seed=2"]
    try:
        with MultiPipeline(sources, model, engine=engine, max_frames=90) as mp:
            it = iter(mp)
            before = [next(it) for _ in range(4)]
            mp.configure(fusion="weighted", spatial_weight=0.25, smoothing=1)
            mp.swap_model(other, engine, fusion="weighted", spatial_weight=0.25)
            after = list(it)
        assert all(p.labels == list(model.config.labels) for p in before)
        renamed = [p for p in after if p.labels[0].startswith("new_")]
        assert mp.swaps == 1 and {p.stream for p in renamed} == {0, 1}
        # once renamed, a stream never shows the old labels again, and its frames carry the new weighted fusion unsmoothed
        for s in (0, 1):
            labels = [p.labels[0].startswith("new_") for p in after if p.stream == s]
            assert labels == sorted(labels)
        ready = [p for p in renamed if p.ready]
        assert ready and mp.smoothing == 1
        for p in ready:
            assert p.temporal is not None
            # (the demo cuts to a new scene at frame 60: there the spatial stream leads for CUT_RAMP frames)
            w = 0.25 if p.since_cut is None or p.since_cut >= CUT_RAMP else 1 - 0.75 * p.since_cut / CUT_RAMP
            np.testing.assert_allclose(p.fused, w * p.spatial + (1 - w) * p.temporal, atol=1e-6)
    finally:
        engine.close()
