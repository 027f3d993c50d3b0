"""The live pipeline: capture -> flow -> infer threads, one fused Prediction per frame.

    with Pipeline("synthetic:demo", model) as p:
        for pred in p:
            print(pred.index, pred.label, pred.score)

Every hand-over between threads is bounded. A live source keeps only the newest work and counts
what it drops, so latency stays bounded under overload; a file (unless paced with realtime=True)
is read without loss. Work buffers are preallocated and recycled: the per-frame path builds no
new input stacks. An exception in any stage stops the pipeline and is raised to the caller.
"""

from __future__ import annotations

import collections
import enum
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, NamedTuple, TypeVar

import numpy as np
import torch

from .buffers import END, LatestSlot
from ..nets.checkpoint import ModelConfig, TwoStreamModel
from ..nets.engines import Engine, Scores, batch_mode, batched_scores, create_engine, familiarity_of
from ..errors import UserError
from .flow import FlowSettings
from .fusion import Fusion, Smoother
from ..nets.models_store import resolve_model
from .stages import Captured, PipelineStats, Work, capture_stage, flow_stage, stream_slots
from ..io.sources import FrameSource, open_source

log = logging.getLogger("twostream")
_R = TypeVar("_R", bound="_Running[Any]")
P = TypeVar("P", bound="Prediction")  # what a pipeline yields: Prediction, or MultiPipeline's StreamPrediction
NO_KNOWN_ACTION = "no known action"


class PipelineError(RuntimeError):
    """A stage of the pipeline failed; `__cause__` holds the original exception."""


@dataclass
class Prediction:
    """What the pipeline says about one frame. Scores are probabilities over `labels`."""

    index: int
    capture_ts: float  # time.monotonic() when the frame was read
    flow_ts: float  # flow and net inputs ready
    infer_ts: float  # fused scores ready
    labels: list[str]
    fused: np.ndarray  # fused and smoothed
    spatial: np.ndarray
    temporal: np.ndarray | None  # None until L flow fields exist
    dropped: int = 0  # frames dropped so far, all stages
    status: str = "ok"
    frame: np.ndarray | None = None  # the BGR frame as read
    flow: np.ndarray | None = None  # newest flow field (H, W, 2) px at the working size
    truth: str | None = None  # ground-truth label, for synthetic sources
    min_score: float = 0.0  # below this fused top score the frame shows "no known action"
    familiarity: float | None = None  # how like the training frames the spatial net finds this one (realtime.nets.familiarity)
    min_familiarity: float = 0.0  # ... below which it is "no known action" too

    @property
    def ready(self) -> bool:
        """Both streams contributed (L flow fields were available)."""
        return self.temporal is not None

    @property
    def known(self) -> bool:
        """The evidence names a class: the fused top score reaches the model's calibrated threshold, and
        the frame looks like the frames the model was trained on."""
        return self.score >= self.min_score and (self.familiarity is None or self.familiarity >= self.min_familiarity)

    @property
    def top_label(self) -> str:
        """The best-scoring class, known or not."""
        return self.labels[int(np.argmax(self.fused))]

    @property
    def label(self) -> str | None:
        """The recognised class, or None: no known action (the scores stay available)."""
        return self.top_label if self.known else None

    @property
    def display_label(self) -> str:
        return self.top_label if self.known else NO_KNOWN_ACTION

    @property
    def score(self) -> float:
        return float(np.max(self.fused))

    @property
    def latency_ms(self) -> float:
        return (self.infer_ts - self.capture_ts) * 1e3

    def top(self, k: int = 5, which: str = "fused") -> list[tuple[str, float]]:
        scores = getattr(self, which)
        if scores is None:
            return []
        order = np.argsort(scores)[::-1][:k]
        return [(self.labels[i], float(scores[i])) for i in order]

    def to_dict(self, k: int = 5) -> dict:
        return {
            "frame": self.index,
            "label": self.label,
            "score": round(self.score, 4),
            "known": self.known,
            "min_score": round(self.min_score, 4),
            **({"familiarity": round(self.familiarity, 4), "min_familiarity": round(self.min_familiarity, 4)} if self.familiarity is not None else {}),
            "top": [{"label": lab, "score": round(s, 4)} for lab, s in self.top(k)],
            "spatial_top": [{"label": lab, "score": round(s, 4)} for lab, s in self.top(3, "spatial")],
            "temporal_top": [{"label": lab, "score": round(s, 4)} for lab, s in self.top(3, "temporal")],
            "ready": self.ready,
            "status": self.status,
            "capture_ts": round(self.capture_ts, 6),
            "latency_ms": {
                "flow": round((self.flow_ts - self.capture_ts) * 1e3, 3),
                "infer": round((self.infer_ts - self.flow_ts) * 1e3, 3),
                "total": round(self.latency_ms, 3),
            },
            "dropped": self.dropped,
            **({"truth": self.truth} if self.truth is not None else {}),
        }


@dataclass
class _Swap:
    """A model waiting to replace the running one between two frames."""

    model: TwoStreamModel
    engine: Engine
    owns_engine: bool
    fusion: Fusion
    smoother: Smoother
    done: threading.Event = field(default_factory=threading.Event)


class _Scoring(NamedTuple):
    """How the infer thread turns a frame's scores into a Prediction: replaced whole, never edited, so a
    frame sees the old settings or the new ones, never half of each."""

    fusion: Fusion
    smoother: Smoother


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP  # Pipeline.configure: leave this setting as it is


class _Running(Generic[P]):
    """What Pipeline and MultiPipeline share: the context manager, and iterating their output slot."""

    model: TwoStreamModel
    engine: Engine
    _out: LatestSlot[P] | None
    _error: tuple[str, BaseException] | None
    _stop: threading.Event
    _threads: list[threading.Thread]
    status: str

    def start(self: _R) -> _R:
        raise NotImplementedError

    def stop(self, timeout: float = 1.0) -> None:
        raise NotImplementedError

    def __enter__(self: _R) -> _R:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __iter__(self) -> Iterator[P]:
        self.start()
        assert self._out is not None
        while True:
            item = self._out.get(timeout=0.1)
            if self._error is not None:
                self._raise()
            if item is END:
                self.status = "finished"
                return
            if item is None:
                if self._stop.is_set() and not any(t.is_alive() for t in self._threads):
                    return
                continue
            yield item

    def announce(self, name: object, extra: str = "") -> str:
        """Log the model and engine line that `run` and `serve` start with; returns the UNTRAINED warning ("" when trained)."""
        cfg = self.model.config
        untrained = "" if cfg.trained else " [UNTRAINED MODEL: random weights, predictions are meaningless; train one with 'twostream train']"
        log.info(
            "model %s (%d classes, %s/%s at %d px, L=%d), engine %s%s%s",
            cfg.provenance.get("name", name),
            cfg.num_classes,
            cfg.spatial_arch,
            cfg.temporal_arch,
            cfg.input_size,
            cfg.clip_length,
            self.engine.describe(),
            extra,
            untrained,
        )
        return untrained

    def run_to_end(self, on_prediction: Callable[[P], None], on_start: Callable[[], None] = lambda: None) -> bool:
        """What `twostream run` and `serve` do: start, hand every Prediction to `on_prediction` until the
        end, and stop, whatever happens. Ctrl-C (SIGINT, on the main thread) stops it cleanly; returns
        True when it did, so the command can exit 130."""
        import signal

        interrupted = False

        def on_sigint(signum: int, frame: object) -> None:
            nonlocal interrupted
            interrupted = True
            self.stop(timeout=0)

        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, on_sigint) if main else None
        try:
            self.start()
            on_start()
            for pred in self:
                on_prediction(pred)
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
            self.stop()
        return interrupted

    def _raise(self) -> None:
        assert self._error is not None
        stage, err = self._error
        self.status = "failed"
        if isinstance(err, UserError):
            raise err
        raise PipelineError(f"{stage} stage failed: {type(err).__name__}: {err}") from err


class Pipeline(_Running[Prediction]):
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
        file_batch: int = 8,
    ):
        """`file_batch`: a file read as fast as possible runs the nets on up to this many consecutive frames
        at once (1: one at a time); live sources and `realtime` files always go one frame at a time."""
        if file_batch < 1:
            raise UserError("file_batch must be at least 1")
        self.model = _resolve_model(model, flow)
        cfg = self.model.config
        self.labels = list(cfg.labels)
        self._source_arg = source
        self._realtime = realtime
        self._source_timeout = source_timeout
        self.max_frames = max_frames
        self._owns_engine = not isinstance(engine, Engine)  # a caller's engine outlives this pipeline
        self.engine = engine if isinstance(engine, Engine) else create_engine(self.model, engine, device, half)
        self._scoring = _Scoring(Fusion(cfg.fusion, fusion, spatial_weight, min_score), Smoother(cfg.num_classes, smoothing))
        # the caller's choices (None: the model's own), kept across configure() calls; the threshold also across swaps
        self._fusion_mode, self._spatial_weight, self._min_score = fusion, spatial_weight, min_score
        self._control = threading.Lock()  # guards _pending and the choices: changes from other threads never get lost
        self._pending: list[_Swap] = []  # models asked for, in order, taken by the infer thread between frames
        self.source: FrameSource | None = None
        self.source_name = str(source) if isinstance(source, (str, int)) else getattr(source, "name", "source")
        self.stats = PipelineStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._error: tuple[str, BaseException] | None = None
        self._frames: LatestSlot[Captured] | None = None
        self._work: LatestSlot[Work] | None = None
        self._pool: LatestSlot[Work] | None = None
        self._out: LatestSlot[Prediction] | None = None
        self.status = "idle"
        self._taps: list[Callable[[np.ndarray], object]] = []
        self.swaps = 0
        self.file_batch = file_batch
        self._batch = 1
        self.batch_sizes: collections.deque = collections.deque(maxlen=20000)  # frames per pass of the nets  # models swapped in while running

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> "Pipeline":
        if self._threads:
            return self
        src = self._source_arg
        try:
            self.source = src if isinstance(src, FrameSource) else open_source(src, realtime=self._realtime, timeout_s=self._source_timeout)
        except BaseException:
            if self._owns_engine:  # a refused start leaves no engine thread behind (a retry runs the nets one after the other)
                self.engine.close()
            raise
        self.source_name = self.source.name
        live = self.source.is_live
        cfg = self.model.config
        # a file read in full goes through the nets FILE_BATCH consecutive frames at a time when the engine takes
        # batches of any size (the predictions are the frames' own: tests/test_pipeline.py compares them)
        self._batch = 1 if live or self._realtime or batch_mode(self.engine) != "ready" else self.file_batch
        self._frames, self._work, self._pool = stream_slots(cfg, live, self._batch, pinned=self.engine.device.type == "cuda")
        self._out = LatestSlot(16 if live else max(4, self._batch), drop_oldest=live)
        self.stats = PipelineStats()
        self.batch_sizes.clear()
        self.status = "running"
        self._flow_ready = threading.Event()
        for name, target in (("flow", self._flow_loop), ("infer", self._infer_loop), ("capture", self._capture_loop)):
            t = threading.Thread(target=self._guard, args=(name, target), name=f"twostream-{name}", daemon=True)
            self._threads.append(t)
            t.start()
            if name == "flow":  # capture starts once flow can take frames (a live source drops what waits)
                self._flow_ready.wait(5.0)
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Stop every thread and release the source; returns within about `timeout` seconds."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("threads still finishing after stop: %s (blocked in the source's read)", ", ".join(alive))
        if self.source is not None and not any(t.name == "twostream-capture" and t.is_alive() for t in self._threads):
            self.source.close()
        if self._owns_engine:
            self.engine.close()
        with self._control:
            pending, self._pending = self._pending, []
        for swap in pending:  # asked for, never taken
            if swap.owns_engine:
                swap.engine.close()
            swap.done.set()
        if self.status == "running":
            self.status = "stopped"

    @property
    def dropped(self) -> dict[str, int]:
        slots = {"capture": self._frames, "infer": self._work, "output": self._out}
        return {k: (s.dropped if s is not None else 0) for k, s in slots.items()}

    def add_tap(self, tap: Callable[[np.ndarray], object]) -> None:
        """Call `tap(frame)` with every frame as read, on the capture thread, before anything can drop it.

        For recording clips from the live source. A tap must be quick; one that raises is removed
        (and the error logged), and recognition goes on.
        """
        self._taps = [*self._taps, tap]  # copy-on-write: the capture thread iterates without a lock

    def remove_tap(self, tap: Callable[[np.ndarray], object]) -> None:
        self._taps = [t for t in self._taps if t is not tap]

    def swap_model(
        self,
        model: str | Path | TwoStreamModel,
        engine: str | Engine | None = None,
        *,
        fusion: str | None = None,
        spatial_weight: float | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Replace the model while running, between two frames: the source, threads and flow history stay.

        The new model must read the same inputs (flow settings, L, input size, normalisation), so the flow already
        computed stays valid; its labels may differ, and Predictions after the swap carry the new ones.
        The new engine is built here, on the caller's thread (the default is the running engine's kind,
        device and precision), so recognition does not pause while it compiles. Returns once the infer
        thread has switched (or at once when the pipeline is not running).
        """
        new = _resolve_model(model, None)
        cfg = new.config
        misfit = self.swap_misfit(cfg)
        if misfit:
            raise UserError(
                f"{cfg.provenance.get('name', 'the new model')} reads other inputs than the running one "
                f"({', '.join(misfit)} differ): it cannot be swapped in live; start a new pipeline with it"
            )
        if isinstance(engine, Engine):
            eng, owns = engine, False
        else:
            eng, owns = create_engine(new, engine or self.engine.name, str(self.engine.device), self.engine.half), True
        with self._control:  # queued in order under the lock: two swaps asked at once are both taken, the last one wins
            swap = _Swap(new, eng, owns, Fusion(cfg.fusion, fusion, spatial_weight, self._min_score), Smoother(cfg.num_classes, self._scoring.smoother.window))
            self._fusion_mode, self._spatial_weight = fusion, spatial_weight
            if not any(t.name == "twostream-infer" and t.is_alive() for t in self._threads):
                self._apply_swap(swap)
                return
            self._pending.append(swap)
        deadline = time.monotonic() + timeout
        while not swap.done.wait(0.05):
            if self._stop.is_set():  # stopped before the infer thread took it: it never will
                with self._control:
                    if swap in self._pending:
                        self._pending.remove(swap)
                        if swap.owns_engine:
                            swap.engine.close()
                return
            if time.monotonic() > deadline:
                raise PipelineError(f"the infer stage did not take the new model within {timeout:g} s")

    @property
    def fusion(self) -> Fusion:
        """The fusion applied to the next frame (read-only: change it with `configure`)."""
        return self._scoring.fusion

    @property
    def smoother(self) -> Smoother:
        return self._scoring.smoother

    def configure(
        self,
        *,
        fusion: str | None | _Keep = KEEP,
        spatial_weight: float | None | _Keep = KEEP,
        smoothing: int | None = None,
        min_score: float | None | _Keep = KEEP,
    ) -> None:
        """Change fusion (mode and spatial weight; None: the model's own), smoothing (frames) and the
        "no known action" threshold (None: the model's calibrated one) while running, from any thread.

        Everything is checked first (a UserError changes nothing); then one new `_Scoring` replaces the
        old: the infer thread reads it once per frame, so no frame sees half a change. A model swap
        still waiting for the infer thread gets the change too.
        """
        with self._control:
            mode = self._fusion_mode if fusion is KEEP else fusion
            weight = self._spatial_weight if spatial_weight is KEEP else spatial_weight
            threshold = self._min_score if min_score is KEEP else min_score
            target = self._pending[-1] if self._pending else None
            model = target.model if target is not None else self.model
            current = target.smoother if target is not None else self._scoring.smoother
            new_fusion = Fusion(model.config.fusion, mode, weight, threshold)  # validates
            new_smoother = current if smoothing is None or smoothing == current.window else Smoother(model.config.num_classes, smoothing)
            self._fusion_mode, self._spatial_weight, self._min_score = mode, weight, threshold
            if target is not None:
                target.fusion, target.smoother = new_fusion, new_smoother
            else:
                self._scoring = _Scoring(new_fusion, new_smoother)

    def set_min_score(self, min_score: float | None) -> None:
        """Change the "no known action" threshold from now on (None: the model's calibrated one)."""
        self.configure(min_score=min_score)

    def swap_misfit(self, config: ModelConfig) -> list[str]:
        """What keeps a model with `config` from being swapped in live (empty: it can be)."""
        cur = self.model.config
        return [
            what
            for what, a, b in (
                ("flow settings", cur.flow, config.flow),
                ("clip length L", cur.clip_length, config.clip_length),
                ("input size", cur.input_size, config.input_size),
                (
                    "input normalisation",
                    (tuple(cur.rgb_mean), tuple(cur.rgb_std), cur.flow_scale, cur.subtract_mean_flow),
                    (tuple(config.rgb_mean), tuple(config.rgb_std), config.flow_scale, config.subtract_mean_flow),
                ),
            )
            if a != b
        ]

    def _take_swaps(self) -> None:
        """On the infer thread, between two frames: every model asked for, in order (the last one runs)."""
        with self._control:
            pending, self._pending = self._pending, []
            for swap in pending:
                self._apply_swap(swap)

    def _apply_swap(self, swap: _Swap) -> None:
        old, old_owned = self.engine, self._owns_engine
        self.model, self.engine, self._owns_engine = swap.model, swap.engine, swap.owns_engine
        self._scoring, self.labels = _Scoring(swap.fusion, swap.smoother), list(swap.model.config.labels)
        self.swaps += 1
        swap.done.set()
        if old_owned and old is not swap.engine:
            old.close()
        log.info("model swapped in live: %s (%d classes)", swap.model.config.provenance.get("name", "model"), swap.model.config.num_classes)

    def _guard(self, stage: str, loop: Callable[[], None]) -> None:
        try:
            loop()
        except BaseException as e:  # any failure must reach the caller, not die with the thread
            if self._error is None:
                self._error = (stage, e)
            self._stop.set()
        finally:
            if stage == "capture" and self.source is not None:
                self.source.close()

    # -- stages -------------------------------------------------------------
    def _capture_loop(self) -> None:
        assert self.source is not None and self._frames is not None
        capture_stage(self.source, self._frames, self._stop, self.stats, self.max_frames, self._source_status, lambda: self._taps, self.remove_tap)

    def _source_status(self, status: str) -> None:
        if status == "reconnecting":
            self.status = "reconnecting"
        elif self.status == "reconnecting":
            self.status = "running"

    def _flow_loop(self) -> None:
        assert self._frames is not None and self._work is not None and self._pool is not None
        flow_stage(self.model.config, self._frames, self._work, self._pool, self._stop, self.stats, self._flow_ready)

    def _infer_loop(self) -> None:
        work, pool, out = self._work, self._pool, self._out
        assert work is not None and pool is not None and out is not None
        cfg, size = self.model.config, self.model.config.input_size
        rows = self._batch  # a file: up to this many consecutive frames per pass of the nets; live: 1
        batch_rgb = torch.empty(rows, 3, size, size) if rows > 1 else None
        batch_temporal = torch.empty(rows, cfg.temporal_channels, size, size) if rows > 1 else None
        segment = 0
        while not self._stop.is_set():
            w = work.get()
            if self._pending:  # between two frames (or batches, or while the source is paused)
                self._take_swaps()
            if w is None:
                continue
            if w is END:
                out.finish()
                return
            items: list[Work] = [w]
            ended = False
            while len(items) < rows:  # what the flow stage has ready now, without waiting for more
                nxt = work.get(timeout=0)
                if nxt is None:
                    break
                if nxt is END:
                    ended = True
                    break
                items.append(nxt)
            t0 = time.perf_counter()
            scores = self._scores(items, batch_rgb, batch_temporal)
            spatial, temporal = scores
            fam = familiarity_of(scores)
            now = time.monotonic()
            compute = (time.perf_counter() - t0) / len(items)  # each frame's share of the pass
            scoring = self._scoring  # once per pass: a configure() from another thread applies from the next one
            j = 0
            for i, w in enumerate(items):
                if w.segment != segment:  # after a gap, smooth only over the new frames
                    scoring.smoother.reset()
                    segment = w.segment
                s, t = spatial[i], None
                if w.has_temporal:
                    t = temporal[j]
                    j += 1
                fused = scoring.smoother(scoring.fusion(s, t))
                status = "reconnecting" if self.status == "reconnecting" else w.status
                pred = Prediction(
                    w.index,
                    w.capture_ts,
                    w.flow_ts,
                    now,
                    self.labels,
                    fused,
                    s,
                    t,
                    dropped=sum(self.dropped.values()),
                    status=status,
                    frame=w.frame,
                    flow=w.flow,
                    truth=w.truth,
                    min_score=scoring.fusion.min_score,
                    familiarity=float(fam[i]) if fam is not None else None,
                    min_familiarity=scoring.fusion.min_familiarity,
                )
                w.frame = w.flow = None
                pool.put(w)
                self.stats.infer_compute.append(compute)
                self.stats.record(pred)
                out.put(pred, self._stop)
            if ended:
                out.finish()
                return

    def _scores(self, items: list[Work], batch_rgb: torch.Tensor | None, batch_temporal: torch.Tensor | None) -> Scores:
        """Both nets on the items' inputs: one frame as it is, several stacked into the batch buffers
        (spatial rows in frame order, the flow stacks of the frames that have one packed in front)."""
        self.batch_sizes.append(len(items))
        if len(items) == 1:
            w = items[0]
            return self.engine(w.rgb, w.temporal if w.has_temporal else None)
        assert batch_rgb is not None and batch_temporal is not None
        rgb_np, temporal_np = batch_rgb.numpy(), batch_temporal.numpy()
        m = 0
        for i, w in enumerate(items):
            rgb_np[i] = w.rgb_np
            if w.has_temporal:
                temporal_np[m] = w.temporal_np
                m += 1
        mode = "ready" if batch_mode(self.engine) == "ready" else "rows"  # a model swapped in with a shape-bound engine
        return batched_scores(self.engine, batch_rgb, batch_temporal, [w.has_temporal for w in items], mode)

    # -- reporting ----------------------------------------------------------
    def summary(self) -> dict:
        st = self.stats
        cfg = self.model.config
        return {
            "source": self.source_name,
            **st.figures(),
            "dropped": self.dropped,
            "engine": self.engine.describe(),
            **(
                {
                    "batch_size": {
                        "limit": self._batch,
                        "mean": round(float(np.mean(self.batch_sizes)), 3) if self.batch_sizes else 0.0,
                        "max": max(self.batch_sizes, default=0),
                    }
                }
                if self._batch > 1
                else {}
            ),
            "model": cfg.provenance.get("name", "model"),
            "trained": cfg.trained,
            "status": self.status,
            "reconnects": self.source.reconnects if self.source is not None else 0,
            "source_down_s": round(self.source.downtime_s, 3) if self.source is not None else 0.0,
        }


def _resolve_model(model: str | Path | TwoStreamModel | None, flow: FlowSettings | None) -> TwoStreamModel:
    return resolve_model(model, flow)
