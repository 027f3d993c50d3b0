"""The live pipeline: capture -> flow -> infer threads on one source, one fused Prediction per frame.

    with Pipeline("synthetic:demo", model) as p:
        for pred in p:
            print(pred.index, pred.label, pred.score)

`Pipeline` is the stream core (`realtime.stream.core`) with one source. Every hand-over between threads
is bounded. A live source keeps only the newest work and counts what it drops, so latency stays
bounded under overload; a file (unless paced with realtime=True) is read without loss, and the nets
take up to `file_batch` of its consecutive frames at once. Work buffers are preallocated and
recycled: the per-frame path builds no new input stacks. An exception in any stage stops the
pipeline and is raised to the caller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import UserError
from ..io.sources import FrameSource, open_source
from ..nets.checkpoint import TwoStreamModel
from ..nets.engines import Engine, batch_mode
from .core import KEEP, PipelineError, Stream, StreamCore
from .cuts import CUT_THRESHOLD
from .flow import FlowSettings
from .fusion import Smoother
from .prediction import NO_KNOWN_ACTION, Prediction
from .stages import PipelineStats

__all__ = ["KEEP", "NO_KNOWN_ACTION", "Pipeline", "PipelineError", "Prediction"]


class Pipeline(StreamCore[Prediction]):
    """Live two-stream recognition on any source. Iterate for Predictions; use as a context manager."""

    def __init__(
        self,
        source: str | int | FrameSource,
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
        min_score: float | None = None,
        cut_threshold: float = CUT_THRESHOLD,
        file_batch: int = 8,
    ):
        """`file_batch`: a file read as fast as possible runs the nets on up to this many consecutive frames
        at once (1: one at a time); live sources and `realtime` files always go one frame at a time."""
        if file_batch < 1:
            raise UserError("file_batch must be at least 1")
        self.file_batch = file_batch
        super().__init__(
            [source],
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
            max_batch=1,
            thread_prefix=lambda i: "twostream-",
            strict_names=False,  # a malformed source is refused by start(), as a missing file is
        )

    # -- one source: its state is the pipeline's ------------------------------------------------------
    @property
    def _stream(self) -> Stream:
        return self.streams[0]

    @property
    def source(self) -> FrameSource | None:
        return self._stream.source

    @property
    def source_name(self) -> str:
        return self._stream.name

    @property
    def stats(self) -> PipelineStats:
        return self._stream.stats

    @property
    def dropped(self) -> dict[str, int]:
        return self._stream.dropped

    @property
    def smoother(self) -> Smoother:
        """The smoother of the frames so far (its window changes with `configure(smoothing=...)`)."""
        return self._stream.smoother

    def add_tap(self, tap: Callable[[np.ndarray], object]) -> None:
        """Call `tap(frame)` with every frame as read, on the capture thread, before anything can drop it.

        For recording clips from the live source. A tap must be quick; one that raises is removed
        (and the error logged), and recognition goes on.
        """
        self._stream.taps = [*self._stream.taps, tap]

    @property
    def taps(self) -> tuple[Callable[[np.ndarray], object], ...]:
        """The taps attached now (a recorder removes its own when done)."""
        return tuple(self._stream.taps)

    def remove_tap(self, tap: Callable[[np.ndarray], object]) -> None:
        self._stream.remove_tap(tap)

    # -- policy ---------------------------------------------------------------------------------------
    def _rows_per_stream(self, live: bool) -> int:
        # a file read in full goes through the nets FILE_BATCH consecutive frames at a time when the engine takes
        # batches of any size (the predictions are the frames' own: tests/test_pipeline.py compares them)
        return 1 if live or self._realtime or batch_mode(self.engine) != "ready" else self.file_batch

    def _prediction(self, st: Stream, **fields: Any) -> Prediction:
        return Prediction(**fields)

    def _stream_failed(self, st: Stream, stage: str, error: BaseException) -> None:
        """One source: its failure is the pipeline's, raised to the caller."""
        if self._error is None:
            self._error = (stage, error)
        self._stop_all()

    def _source_status(self, st: Stream, status: str) -> None:
        super()._source_status(st, status)
        if self.status in ("running", "reconnecting") and st.status in ("running", "reconnecting"):
            self.status = st.status

    def _open_sources(self) -> None:
        """The source's own error (a SourceError saying what is wrong), not one wrapped in a stream number."""
        st = self._stream
        src = st.source_arg
        try:
            st.source = src if isinstance(src, FrameSource) else open_source(src, realtime=self._realtime, timeout_s=self._source_timeout)
        except BaseException:
            self._close_opened()  # a refused start leaves no engine thread behind (a retry runs the nets one after the other)
            raise
        st.name = st.source.name

    # -- reporting ----------------------------------------------------------
    def summary(self) -> dict:
        st = self._stream
        cfg = self.model.config
        per = self._per_stream
        return {
            "source": st.name,
            **st.stats.figures(),
            "dropped": st.dropped,
            "engine": self.engine.describe(),
            **(
                {
                    "batch_size": {
                        "limit": per,
                        "mean": round(float(np.mean(self.batch_sizes)), 3) if self.batch_sizes else 0.0,
                        "max": max(self.batch_sizes, default=0),
                    }
                }
                if per > 1
                else {}
            ),
            "model": cfg.provenance.get("name", "model"),
            "trained": cfg.trained,
            "status": self.status,
            "reconnects": st.source.reconnects if st.source is not None else 0,
            "source_down_s": round(st.source.downtime_s, 3) if st.source is not None else 0.0,
        }
