"""The stages every pipeline runs per source, and what they hand over.

capture (a FrameSource -> `Captured` frames) -> flow (flow ring + both nets' inputs, written into
pooled `Work` buffers) -> the infer stage of `realtime.stream.core`, which runs the nets on every source's ready work at
once (`Pipeline`: one source, or a file's consecutive frames; `MultiPipeline`: N sources).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, NamedTuple

import numpy as np
import torch

from ..io.sources import FrameSource, as_frame
from ..nets.checkpoint import ModelConfig
from .buffers import END, FlowRing, LatestSlot
from .cuts import CutDetector
from .preprocess import FlowFrontEnd, centre_crop, flow_input, rgb_input

if TYPE_CHECKING:
    from .prediction import Prediction

log = logging.getLogger("twostream")


class Segment(NamedTuple):
    """A run of frames with no gap or size change inside: flow is never computed across two segments."""

    number: int
    status: str  # what Predictions say until the temporal stream is rebuilt: "ok", "reconnected", "resized"


@dataclass(frozen=True, slots=True)
class Captured:
    """A frame as the capture stage hands it to the flow stage."""

    index: int
    capture_ts: float  # time.monotonic() when it was read
    frame: np.ndarray
    truth: str | None  # the source's ground-truth annotation of the frame (FrameSource.truth), if it has one
    segment: Segment


class Work:
    """One preallocated set of net inputs, recycled between the flow and infer threads."""

    def __init__(self, input_size: int, temporal_channels: int, pinned: bool = False):
        # pinned (page-locked) for a CUDA engine: the copy to the GPU is then one asynchronous DMA,
        # not a copy into a staging buffer first. (The engine waits for its results before the
        # buffer goes back to the pool, so the flow thread never overwrites a copy in flight.)
        self.rgb = torch.empty(1, 3, input_size, input_size, pin_memory=pinned)
        self.temporal = torch.empty(1, temporal_channels, input_size, input_size, pin_memory=pinned)
        self.rgb_np, self.temporal_np = self.rgb.numpy()[0], self.temporal.numpy()[0]  # views the flow stage fills
        self.has_temporal = False
        self.index = 0
        self.capture_ts = self.flow_ts = 0.0
        self.frame: np.ndarray | None = None
        self.flow: np.ndarray | None = None
        self.truth: str | None = None
        self.status = "ok"
        self.segment = 0
        self.since_cut: int | None = None  # frames since a shot cut in this segment (0: this frame starts a shot)


@dataclass
class PipelineStats:
    """Counters and recent timings (bounded), for the closing summary and the GUI."""

    captured: int = 0
    predicted: int = 0
    started: float = field(default_factory=time.monotonic)
    first_capture: float | None = None
    last_prediction: float | None = None
    flow_latency: collections.deque = field(default_factory=lambda: collections.deque(maxlen=20000))
    infer_latency: collections.deque = field(default_factory=lambda: collections.deque(maxlen=20000))
    total_latency: collections.deque = field(default_factory=lambda: collections.deque(maxlen=20000))
    flow_compute: collections.deque = field(default_factory=lambda: collections.deque(maxlen=20000))
    infer_compute: collections.deque = field(default_factory=lambda: collections.deque(maxlen=20000))

    @staticmethod
    def percentiles(values: collections.deque) -> dict[str, float]:
        if not values:
            return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
        a = np.fromiter(values, np.float64) * 1e3
        p50, p95, p99 = np.percentile(a, [50, 95, 99])
        return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "p99": round(float(p99), 3)}

    def fps(self) -> float:
        if self.first_capture is None or self.last_prediction is None or self.predicted < 2:
            return 0.0
        return (self.predicted - 1) / max(self.last_prediction - self.first_capture, 1e-9)

    def record(self, pred: "Prediction") -> None:
        """One prediction made: counters and its stage latencies."""
        self.predicted += 1
        self.last_prediction = pred.infer_ts
        self.flow_latency.append(pred.flow_ts - pred.capture_ts)
        self.infer_latency.append(pred.infer_ts - pred.flow_ts)
        self.total_latency.append(pred.infer_ts - pred.capture_ts)

    def figures(self) -> dict:
        """Frames, duration, fps and latency percentiles: the part of a summary every pipeline reports."""
        return {
            "frames": self.predicted,
            "captured": self.captured,
            "seconds": round((self.last_prediction or time.monotonic()) - (self.first_capture or self.started), 3),
            "fps": round(self.fps(), 2),
            "latency_ms": {
                "flow": self.percentiles(self.flow_latency),
                "infer": self.percentiles(self.infer_latency),
                "total": self.percentiles(self.total_latency),
            },
            "compute_ms": {"flow": self.percentiles(self.flow_compute), "infer": self.percentiles(self.infer_compute)},
        }


# -- the per-source stages --------------------------------------------------------------------------------
def stream_slots(cfg: ModelConfig, live: bool, batch: int = 1, pinned: bool = False) -> tuple[LatestSlot[Captured], LatestSlot[Work], LatestSlot[Work]]:
    """One source's hand-overs: frames (capture -> flow), work (flow -> infer) and the pool of recycled `Work`.

    Live: one frame of jitter buffer and one piece of work, the oldest dropped (and counted). A file:
    lossless, with room for `batch` pieces of work queued for the infer stage and two batches of spare buffers.
    """
    frames: LatestSlot[Captured] = LatestSlot(2 if live else 4, drop_oldest=live)
    work: LatestSlot[Work] = LatestSlot(1 if live else max(2, batch), drop_oldest=live)
    spare = 4 + (2 * batch if batch > 1 else 0)  # one being filled, one queued, one in the nets, one spare (+ two batches)
    pool: LatestSlot[Work] = LatestSlot(spare, drop_oldest=False)
    for _ in range(spare):
        pool.put(Work(cfg.input_size, cfg.temporal_channels, pinned))
    return frames, work, pool


def capture_stage(
    src: FrameSource,
    frames: LatestSlot[Captured],
    stop: threading.Event,
    stats: PipelineStats,
    max_frames: int | None,
    on_status: Callable[[str], None],
    taps: Callable[[], list] = list,
    drop_tap: Callable | None = None,
) -> None:
    """Read frames into `frames` as `Captured` until the end, `stop` or `max_frames`.

    A reconnect or a resolution change starts a new segment, so flow is never computed across it.
    `on_status` hears "reconnecting" / "ok" from the source. `taps()` are called with every frame
    (a failing one is dropped through `drop_tap`). Finishes `frames` with the end marker.
    """
    index = 0
    segment, shape, reconnects = Segment(0, "ok"), None, src.reconnects
    src.watch(stop, lambda status, message: on_status(status))  # stop() cuts a blocked read or a reconnect wait short
    try:
        while not stop.is_set():
            frame = src.read()
            if frame is None:
                break
            frame = as_frame(frame, src.name)  # grey, BGRA, 16-bit or strided frames from any source
            now = time.monotonic()
            if src.reconnects != reconnects or (shape is not None and frame.shape != shape):
                # A gap or a new resolution: the flow stage restarts its ring instead of spanning it.
                segment = Segment(segment.number + 1, "reconnected" if src.reconnects != reconnects else "resized")
                reconnects = src.reconnects
            shape = frame.shape
            for tap in taps():
                try:
                    tap(frame)
                except Exception as e:  # a recorder that failed (disk full) must not stop recognition
                    log.warning("a frame tap failed and was removed: %s", e)
                    if drop_tap is not None:
                        drop_tap(tap)
            if stats.first_capture is None:
                stats.first_capture = now
            stats.captured += 1
            frames.put(Captured(index, now, frame, src.truth(), segment), stop)
            index += 1
            if max_frames is not None and index >= max_frames:
                break
    finally:
        on_status("ok")  # stopped while the source was away: not "reconnecting" any more
    frames.finish()


def flow_stage(
    cfg: ModelConfig,
    frames: LatestSlot[Captured],
    work: LatestSlot[Work],
    pool: LatestSlot[Work],
    stop: threading.Event,
    stats: PipelineStats,
    ready: threading.Event,
    handed_over: Callable[[], None] = lambda: None,
    cut_threshold: float | None = None,
) -> None:
    """Frames -> flow ring -> net inputs in recycled `Work` items, handed to `work`; `handed_over()` after each.

    Sets `ready` once the flow estimator has allocated (capture should not start before: a live
    source would drop what waits). Each `Work` says how many frames ago the last shot cut was
    (`realtime.stream.cuts`; `cut_threshold` None or 1: never). Finishes `work` with the end marker.
    """
    front = FlowFrontEnd(cfg.flow)
    blank = np.zeros((cfg.flow.height, cfg.flow.width, 3), np.uint8)
    front.push(blank)  # DIS allocates on its first call: not on frame 1
    front.push(blank)
    front.reset()
    ready.set()
    ring = FlowRing(cfg.flow, cfg.clip_length)
    top, left = centre_crop(cfg.flow, cfg.input_size)
    segment: Segment | None = None
    cuts = CutDetector(cut_threshold) if cut_threshold is not None and cut_threshold < 1.0 else None
    since_cut: int | None = None
    while not stop.is_set():
        item = frames.get()
        if item is None:
            continue
        if item is END:
            break
        seg = item.segment
        if seg != segment:  # the source reconnected or changed size: no flow across the gap
            front.reset()
            ring.reset()
            segment, since_cut = seg, None
            if cuts is not None:
                cuts.reset()
        t0 = time.perf_counter()
        small, flow = front.push(item.frame)
        if flow is not None:
            ring.push(flow)
        if cuts is not None and cuts.push(small):
            since_cut = 0
        elif since_cut is not None:
            since_cut += 1
        w = None
        while w is None and not stop.is_set():
            got = pool.get(timeout=0.1)
            w = got if isinstance(got, Work) else None  # (a pool is never finished)
        if w is None:
            break
        rgb_input(small, cfg, top, left, out=w.rgb_np)
        w.has_temporal = ring.ready
        if ring.ready:
            flow_input(ring.codes, cfg, top, left, out=w.temporal_np, order=ring.order())
        w.index, w.capture_ts, w.frame, w.flow, w.truth = item.index, item.capture_ts, item.frame, flow, item.truth
        w.status, w.segment, w.since_cut = ("ok" if ring.ready else seg.status), seg.number, since_cut
        w.flow_ts = time.monotonic()
        stats.flow_compute.append(time.perf_counter() - t0)
        evicted = work.put(w, stop)
        handed_over()
        if evicted is not None and evicted is not END:
            pool.put(evicted)
    work.finish()  # not on an exception: the caller records the failure first, then ends the stream
    handed_over()
