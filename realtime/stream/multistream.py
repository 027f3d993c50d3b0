"""Multi-stream serving: one process, N sources, one infer thread running each net once per batch.

    with MultiPipeline(["rtsp://cam1/1", "rtsp://cam2/1", "clip.mp4"], "trained/default") as mp:
        for pred in mp:                       # a StreamPrediction: a Prediction plus .stream and .source
            print(pred.stream, pred.index, pred.label, f"{pred.latency_ms:.1f} ms")
    for s in mp.summary()["streams"]:
        print(s["source"], s["fps"], s["latency_ms"]["total"]["p95"], s["dropped"])

Each source gets its own capture and flow threads, the same stages as `realtime.stream.pipeline`: the newest
frames are kept (live sources drop and count the rest), flow goes into a `FlowRing`, and the net
inputs are built by `realtime.stream.preprocess`. One infer thread takes the newest ready work of every
stream, stacks it into one (N, C, S, S) batch per net, runs the spatial and the temporal net once
each, then fuses and smooths per stream. A live stream whose work waits while the nets are busy
keeps only its newest (the replaced work is counted as that stream's infer drop), so latency stays
bounded per stream; files are read without loss, every stream getting one row per batch in turn.
(When files and live sources are served together, the shared output keeps only the newest
predictions if the caller falls behind, as for live sources; each one replaced is counted against
its stream.)

A stream that ends or fails (its source errors, its frames are unreadable) is reported once in the
log and in its summary; the other streams go on. Only a failure of the shared infer stage stops all.
Source names are the redacted ones of `realtime.io.sources`: credentials never reach the output.

Engines: `torch`, `torchscript` and `onnxruntime` (dynamic batch axis) run whatever batch is
ready; `compile` specialises on shapes, so its batches are padded to N rows (two shapes in all,
compiled once); `tensorrt` builds engines for batches 1..N and runs whatever is ready (if that
build fails, batch-1 engines and row by row).
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .buffers import END, LatestSlot
from ..nets.checkpoint import TwoStreamModel
from ..nets.engines import Engine, batched_scores, create_engine, familiarity_of
from ..errors import UserError
from .flow import FlowSettings
from .fusion import Fusion, Smoother
from ..logs import scrub
from ..options import add_fusion_option, add_model_options, stream_options
from .pipeline import Prediction, _resolve_model, _Running
from .stages import Captured, PipelineStats, Work, capture_stage, flow_stage, stream_slots
from ..io.sources import FrameSource, open_source, parse_source

log = logging.getLogger("twostream")


@dataclass
class StreamPrediction(Prediction):
    """A Prediction from one of a MultiPipeline's streams."""

    stream: int = 0  # position of the source in the list given to MultiPipeline
    source: str = ""  # its printable (redacted) name

    def to_dict(self, k: int = 5) -> dict:
        return {"stream": self.stream, "source": self.source, **super().to_dict(k)}


class Stream:
    """One source of a MultiPipeline: its threads' hand-overs, smoother, counters and status."""

    def __init__(self, number: int, source: str | int | FrameSource, smoothing: int, num_classes: int):
        self.number = number
        self.source_arg = source
        self.source: FrameSource | None = None
        self.name = str(source) if isinstance(source, (str, int)) else getattr(source, "name", f"stream {number}")
        if isinstance(source, (str, int)):
            self.name = parse_source(source).name  # redacted; a malformed source is refused here, before anything starts
        self.status = "idle"  # idle, running, reconnecting, finished, failed, stopped
        self.error: str | None = None
        self.stats = PipelineStats()
        self.smoother = Smoother(num_classes, smoothing)
        self.stop = threading.Event()
        self.flow_ready = threading.Event()
        self.threads: list[threading.Thread] = []
        self.frames: LatestSlot[Captured] | None = None
        self.work: LatestSlot[Work] | None = None
        self.pool: LatestSlot[Work] | None = None
        self.output_dropped = 0
        self.done = False  # the infer thread saw this stream's end

    @property
    def dropped(self) -> dict[str, int]:
        return {
            "capture": self.frames.dropped if self.frames is not None else 0,
            "infer": self.work.dropped if self.work is not None else 0,
            "output": self.output_dropped,
        }

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = scrub(str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}")
        self.status = "failed"
        self.stop.set()

    def summary(self) -> dict:
        st = self.stats
        return {
            "stream": self.number,
            "source": self.name,
            "status": self.status,
            **({"error": self.error} if self.error else {}),
            **{k: v for k, v in st.figures().items() if k != "compute_ms"},
            "compute_ms": {"flow": st.percentiles(st.flow_compute)},  # inference is per batch: see MultiPipeline.summary
            "dropped": self.dropped,
            "reconnects": self.source.reconnects if self.source is not None else 0,
        }


class MultiPipeline(_Running[StreamPrediction]):
    """Two-stream recognition on N sources at once, with batched inference. Iterate for StreamPredictions."""

    def __init__(
        self,
        sources: Sequence[str | int | FrameSource],
        model: str | Path | TwoStreamModel | None = None,
        *,
        engine: str | Engine = "auto",
        device: str | None = "auto",
        half: bool | None = None,
        fusion: str | None = None,
        spatial_weight: float | None = None,
        smoothing: int = 8,
        realtime: bool = False,
        max_frames: int | None = None,
        source_timeout: float = 5.0,
        flow: FlowSettings | None = None,
        keep_going: bool = False,
        min_score: float | None = None,
    ):
        """`keep_going`: a source that cannot be opened is reported and left out instead of refusing to start."""
        if isinstance(sources, (str, int, FrameSource)) or len(sources) == 0:
            raise UserError("MultiPipeline needs a list of one or more sources")
        if max_frames is not None and max_frames < 1:
            raise UserError("max_frames must be at least 1")
        self.model = _resolve_model(model, flow)
        cfg = self.model.config
        self.labels = list(cfg.labels)
        self.streams = [Stream(i, s, smoothing, cfg.num_classes) for i, s in enumerate(sources)]
        self.fusion = Fusion(cfg.fusion, fusion, spatial_weight, min_score)
        self.max_frames = max_frames
        self.keep_going = keep_going
        self._realtime = realtime
        self._source_timeout = source_timeout
        self._owns_engine = not isinstance(engine, Engine)
        self.engine = engine if isinstance(engine, Engine) else create_engine(self.model, engine, device, half, max_batch=len(self.streams))
        self._stop = threading.Event()
        self._work_ready = threading.Event()  # set by any flow thread after it hands over work
        self._threads: list[threading.Thread] = []
        self._error: tuple[str, BaseException] | None = None
        self._out: LatestSlot[StreamPrediction] | None = None
        self.batch_sizes: collections.deque = collections.deque(maxlen=20000)
        self.batch_compute: collections.deque = collections.deque(maxlen=20000)
        self.started = time.monotonic()
        self.status = "idle"

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> "MultiPipeline":
        if self._threads:
            return self
        self._open_sources()
        cfg = self.model.config
        live = any(s.source is not None and s.source.is_live for s in self.streams)
        n = len(self.streams)
        self._out = LatestSlot(16 * n if live else 4 * n, drop_oldest=live)
        if n > 1:  # the first call at a new batch size is slow (compile: builds it); pay for it before frames arrive
            self.engine.warmup(batch=n, iterations=2)
        self.started = time.monotonic()
        self.status = "running"
        infer = threading.Thread(target=self._guard_infer, name="twostream-infer", daemon=True)
        self._threads.append(infer)
        infer.start()
        for st in self.streams:
            if st.source is None:  # could not be opened (keep_going): already reported
                st.done = True
                continue
            src_live = st.source.is_live
            st.frames, st.work, st.pool = stream_slots(cfg, src_live)
            st.stats = PipelineStats()
            st.status = "running"
            for stage, target in (("flow", self._flow_loop), ("capture", self._capture_loop)):
                t = threading.Thread(target=self._guard_stream, args=(st, stage, target), name=f"twostream-s{st.number}-{stage}", daemon=True)
                st.threads.append(t)
                self._threads.append(t)
                t.start()
                if stage == "flow":
                    st.flow_ready.wait(5.0)
        self._work_ready.set()  # the infer thread notices streams that were left out
        return self

    def _open_sources(self) -> None:
        """Open every source at once (network streams can each take up to the timeout to answer)."""

        def open_one(st: Stream) -> FrameSource:
            src = st.source_arg
            return src if isinstance(src, FrameSource) else open_source(src, realtime=self._realtime, timeout_s=self._source_timeout)

        with ThreadPoolExecutor(min(len(self.streams), 16), thread_name_prefix="twostream-open") as pool:
            futures = [pool.submit(open_one, st) for st in self.streams]
            errors: list[tuple[Stream, BaseException]] = []
            for st, fut in zip(self.streams, futures):
                try:
                    st.source = fut.result()
                    st.name = st.source.name
                except Exception as e:  # reported per stream below, never as a traceback
                    st.fail(e)
                    errors.append((st, e))
        if not errors:
            return
        if not self.keep_going or len(errors) == len(self.streams):
            for st in self.streams:
                if st.source is not None and not isinstance(st.source_arg, FrameSource):
                    st.source.close()
            if self._owns_engine:  # a refused start leaves no engine thread behind
                self.engine.close()
            st, _ = errors[0]
            more = f" (and {len(errors) - 1} more source(s) failed to open)" if len(errors) > 1 else ""
            raise UserError(f"stream {st.number}: {st.error}{more}")
        for st, _ in errors:
            log.warning("stream %d: %s; serving the other streams", st.number, st.error)

    def stop(self, timeout: float = 1.0) -> None:
        """Stop every thread and release every source; returns within about `timeout` seconds."""
        self._stop.set()
        for st in self.streams:
            st.stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("threads still finishing after stop: %s (blocked in a source's read)", ", ".join(alive))
        for st in self.streams:
            if st.source is not None and not any(t.is_alive() for t in st.threads if t.name.endswith("capture")):
                st.source.close()
            if st.status in ("running", "reconnecting"):
                st.status = "stopped"
        if self._owns_engine:
            self.engine.close()
        if self.status == "running":
            self.status = "stopped"

    def _guard_infer(self) -> None:
        try:
            self._infer_loop()
        except BaseException as e:  # the shared stage: its failure stops every stream and reaches the caller
            self._error = ("infer", e)
            self._stop.set()
            for st in self.streams:
                st.stop.set()

    def _guard_stream(self, st: Stream, stage: str, loop: Callable[[Stream], None]) -> None:
        try:
            loop(st)
        except BaseException as e:  # this stream's failure is its own: report it, end it, keep the others
            st.fail(e)
            log.warning("stream %d (%s) failed in %s: %s; the other streams go on", st.number, st.name, stage, st.error)
            if stage == "capture" and st.frames is not None:
                st.frames.finish()
            if stage == "flow" and st.work is not None:
                st.work.finish()
                self._work_ready.set()
        finally:
            if stage == "capture" and st.source is not None:
                st.source.close()

    # -- per-stream stages: realtime.stream.pipeline's capture and flow stages, one pair per source ----------
    def _capture_loop(self, st: Stream) -> None:
        assert st.source is not None and st.frames is not None

        def on_status(status: str) -> None:  # from inside the source's read, on this thread
            if st.status == "running" and status == "reconnecting":
                st.status = "reconnecting"
            elif st.status == "reconnecting" and status != "reconnecting":
                st.status = "running"

        capture_stage(st.source, st.frames, st.stop, st.stats, self.max_frames, on_status)

    def _flow_loop(self, st: Stream) -> None:
        assert st.frames is not None and st.work is not None and st.pool is not None
        flow_stage(self.model.config, st.frames, st.work, st.pool, st.stop, st.stats, st.flow_ready, self._work_ready.set)

    # -- the shared infer stage ---------------------------------------------
    def _infer_loop(self) -> None:
        cfg = self.model.config
        n, s = len(self.streams), cfg.input_size
        out = self._out
        assert out is not None
        rgb = torch.zeros(n, 3, s, s)  # the batch, preallocated; each stream's work is copied into one row
        temporal = torch.zeros(n, cfg.temporal_channels, s, s)
        if self.engine.device.type == "cuda":  # page-locked once, so every batch's copy to the GPU is asynchronous (unmeasured)
            rgb, temporal = rgb.pin_memory(), temporal.pin_memory()
        rgb_np, temporal_np = rgb.numpy(), temporal.numpy()
        segments = [0] * n
        while not self._stop.is_set():
            self._work_ready.clear()  # before polling: work handed over after this point sets it again
            batch: list[tuple[Stream, Work]] = []
            for st in self.streams:
                if st.done or st.work is None:
                    continue
                w = st.work.get(timeout=0)
                if w is END:
                    self._stream_ended(st)
                elif w is not None:
                    batch.append((st, w))
            if not batch:
                if all(st.done for st in self.streams):
                    out.finish()
                    return
                self._work_ready.wait(0.05)
                continue
            m = 0
            for i, (st, w) in enumerate(batch):
                rgb_np[i] = w.rgb_np
                if w.has_temporal:
                    temporal_np[m] = w.temporal_np
                    m += 1
            t0 = time.perf_counter()
            scores = batched_scores(self.engine, rgb, temporal, [w.has_temporal for _, w in batch])
            spatial_scores, temporal_scores = scores
            familiarity = familiarity_of(scores)
            now = time.monotonic()
            self.batch_compute.append(time.perf_counter() - t0)
            self.batch_sizes.append(len(batch))
            j = 0
            for i, (st, w) in enumerate(batch):
                if w.segment != segments[st.number]:  # after a gap, smooth only over the new frames
                    st.smoother.reset()
                    segments[st.number] = w.segment
                sp = spatial_scores[i]
                tp = None
                if w.has_temporal:
                    assert temporal_scores is not None  # a frame with a flow stack has temporal scores
                    tp = temporal_scores[j]
                    j += 1
                fused = st.smoother(self.fusion(sp, tp))
                status = "reconnecting" if st.status == "reconnecting" else w.status
                pred = StreamPrediction(
                    w.index,
                    w.capture_ts,
                    w.flow_ts,
                    now,
                    self.labels,
                    fused,
                    sp,
                    tp,
                    dropped=sum(st.dropped.values()),
                    status=status,
                    frame=w.frame,
                    flow=w.flow,
                    truth=w.truth,
                    stream=st.number,
                    source=st.name,
                    min_score=self.fusion.min_score,
                    familiarity=float(familiarity[i]) if familiarity is not None else None,
                    min_familiarity=self.fusion.min_familiarity,
                )
                w.frame = w.flow = None
                assert st.pool is not None
                st.pool.put(w)
                st.stats.record(pred)
                evicted = out.put(pred, self._stop)
                if isinstance(evicted, StreamPrediction):
                    self.streams[evicted.stream].output_dropped += 1

    def _stream_ended(self, st: Stream) -> None:
        st.done = True
        if st.status == "failed":
            return  # reported where it failed
        if self._stop.is_set() or st.stop.is_set():
            st.status = "stopped"
            return
        st.status = "finished"
        log.info("stream %d (%s) ended after %d frames", st.number, st.name, st.stats.predicted)

    # -- reporting ----------------------------------------------------------
    def summary(self) -> dict:
        """One summary per stream (`streams`), and what the shared infer stage did."""
        sizes = np.fromiter(self.batch_sizes, np.float64) if self.batch_sizes else np.zeros(0)
        streams = [st.summary() for st in self.streams]
        cfg = self.model.config
        return {
            "streams": streams,
            "frames": sum(s["frames"] for s in streams),
            "fps_total": round(sum(s["fps"] for s in streams), 2),
            "batches": int(sizes.size),
            "batch_size": {"mean": round(float(sizes.mean()), 3) if sizes.size else 0.0, "max": int(sizes.max()) if sizes.size else 0},
            "batch_compute_ms": PipelineStats.percentiles(self.batch_compute),
            "engine": self.engine.describe(),
            "model": cfg.provenance.get("name", "model"),
            "trained": cfg.trained,
            "status": self.status,
            "failed": [s["stream"] for s in streams if s["status"] == "failed"],
        }


# -- `twostream serve` -----------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    if args.max_frames is not None and args.max_frames < 1:
        raise UserError("--max-frames must be at least 1")
    mp = MultiPipeline(args.sources, args.model, keep_going=args.keep_going, **stream_options(args))
    mp.announce(args.model, f", {len(mp.streams)} sources")
    out = sys.stdout

    def show(pred: StreamPrediction) -> None:
        if args.json:
            out.write(json.dumps(pred.to_dict(args.top_k)) + "\n")
        elif not args.quiet:
            mark = "" if pred.ready else "  (spatial only)"
            out.write(f"stream {pred.stream:2d} frame {pred.index:6d}  {pred.display_label:<14s} {pred.score:5.2f}  {pred.latency_ms:6.1f} ms{mark}\n")

    interrupted = mp.run_to_end(show)
    out.flush()
    summary = mp.summary()
    if args.json:
        sys.stderr.write(json.dumps({"summary": summary}) + "\n")
    else:
        sys.stderr.write(format_summary(summary))
    if interrupted:
        return 130
    return 1 if summary["failed"] else 0


def format_summary(s: dict) -> str:
    lines = [
        f"summary: {s['frames']} predictions from {len(s['streams'])} streams, {s['fps_total']:.1f} fps in all; "
        f"{s['batches']} batches of {s['batch_size']['mean']:.2f} streams on average (max {s['batch_size']['max']}), "
        f"batch compute p50 {s['batch_compute_ms']['p50']:.1f} ms; engine {s['engine']}; model {s['model']}"
        + ("" if s["trained"] else " (UNTRAINED: predictions are meaningless)"),
        "  stream  status     frames    fps   latency p50 / p95 / p99 ms   dropped (capture/infer/output)  source",
    ]
    for st in s["streams"]:
        lat = st["latency_ms"]["total"]
        d = st["dropped"]
        lines.append(
            f"  {st['stream']:6d}  {st['status']:<9s} {st['frames']:7d} {st['fps']:6.1f}   "
            f"{lat['p50']:7.1f} {lat['p95']:7.1f} {lat['p99']:7.1f}          {sum(d.values()):6d} ({d['capture']}/{d['infer']}/{d['output']})"
            f"{'':14s}{st['source']}"
        )
        if st.get("error"):
            lines.append(f"          error: {st['error']}")
    return "\n".join(lines) + "\n"


def register(sub: argparse._SubParsersAction, commands: dict) -> None:
    p = sub.add_parser("serve", help="serve several sources in one process, batching both nets across them")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="one or more of: 0 or /dev/videoN, rtsp://..., http(s)://..., a video file, synthetic:NAME")
    add_model_options(p)
    add_fusion_option(p)
    p.add_argument("--smoothing", type=int, default=8, help="average the fused scores over this many frames per stream (1 = off; default 8)")
    p.add_argument(
        "--min-score",
        type=float,
        metavar="S",
        help="a prediction whose fused top score is below S is 'no known action' (default: the model's calibrated threshold; 0: never)",
    )
    p.add_argument("--max-frames", type=int, metavar="N", help="stop each stream after N frames")
    p.add_argument("--realtime", action="store_true", help="pace files at their own fps (and drop frames like a camera)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a stream to open or deliver a frame")
    p.add_argument("--keep-going", action="store_true", help="serve the sources that open when some cannot be opened (each reported)")
    p.add_argument("--json", action="store_true", help="one JSON object per prediction on stdout (with its stream); the summary goes to stderr")
    p.add_argument("--top-k", type=int, default=5, help="labels per prediction in --json")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-prediction lines, only the summary")
    commands["serve"] = cmd_serve
