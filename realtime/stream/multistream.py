"""Multi-stream serving: one process, N sources, one infer thread running each net once per batch.

    with MultiPipeline(["rtsp://cam1/1", "rtsp://cam2/1", "clip.mp4"], "trained/default") as mp:
        for pred in mp:                       # a StreamPrediction: a Prediction plus .stream and .source
            print(pred.stream, pred.index, pred.label, f"{pred.latency_ms:.1f} ms")
    for s in mp.summary()["streams"]:
        print(s["source"], s["fps"], s["latency_ms"]["total"]["p95"], s["dropped"])

`MultiPipeline` is the stream core (`realtime.stream.core`) with N sources, the same as `Pipeline`'s
one: each source gets its own capture and flow threads (`realtime.stream.stages`): the newest
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

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import UserError
from ..io.sources import FrameSource
from ..nets.checkpoint import TwoStreamModel
from ..nets.engines import Engine
from .core import Stream, StreamCore
from .cuts import CUT_THRESHOLD
from .flow import FlowSettings
from .prediction import Prediction
from .stages import PipelineStats


@dataclass
class StreamPrediction(Prediction):
    """A Prediction from one of a MultiPipeline's streams."""

    stream: int = 0  # position of the source in the list given to MultiPipeline
    source: str = ""  # its printable (redacted) name

    def to_dict(self, k: int = 5) -> dict:
        return {"stream": self.stream, "source": self.source, **super().to_dict(k)}


class MultiPipeline(StreamCore[StreamPrediction]):
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
        cut_threshold: float = CUT_THRESHOLD,
    ):
        """`keep_going`: a source that cannot be opened is reported and left out instead of refusing to start."""
        if isinstance(sources, (str, int, FrameSource)) or len(sources) == 0:
            raise UserError("MultiPipeline needs a list of one or more sources")
        if max_frames is not None and max_frames < 1:
            raise UserError("max_frames must be at least 1")
        self.keep_going = keep_going
        super().__init__(
            sources,
            model,
            engine=engine,
            device=device,
            half=half,
            fusion=fusion,
            spatial_weight=spatial_weight,
            smoothing=smoothing,
            realtime=realtime,
            max_frames=max_frames,
            source_timeout=source_timeout,
            flow=flow,
            min_score=min_score,
            cut_threshold=cut_threshold,
            max_batch=len(sources),
            thread_prefix=lambda i: f"twostream-s{i}-",
            strict_names=True,  # a malformed source is refused here, before anything starts
        )

    def _prediction(self, st: Stream, **fields: Any) -> StreamPrediction:
        return StreamPrediction(**fields, stream=st.number, source=st.name)

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
