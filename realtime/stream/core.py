"""The one stream core under `Pipeline` and `MultiPipeline`: per-source capture and flow threads, one infer thread.

    source 0 -> [capture -> flow] --\\
    source 1 -> [capture -> flow] ---+--> infer: both nets once per batch of ready work -> fuse, smooth per source -> output
    ...                           --/

The per-source stages are `realtime.stream.stages`; everything after them lives here, once: opening the
sources, starting and stopping the threads, the infer stage (gather each source's ready work, stack it,
run both nets, fuse and smooth per source), model swaps and setting changes, counters and the output.

The two pipelines differ only in policy. `Pipeline` (one source): any stage's failure stops it and
reaches the caller, and a file read in full gives the nets up to `file_batch` consecutive frames per
pass. `MultiPipeline` (N sources): a source's failure is its own (reported, the others go on), and each
source contributes one row per pass, its newest work when it is live.

Model swaps (`swap_model`) and fusion / smoothing / threshold changes (`configure`) are queued under
one lock from any thread and applied by the infer thread between two passes of the nets, so no frame
sees half a change and none is lost.
"""

from __future__ import annotations

import collections
import enum
import logging
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, NamedTuple, Sequence, TypeVar

import numpy as np
import torch

from ..errors import UserError
from ..io.sources import FrameSource, open_source, parse_source, redact
from ..logs import scrub
from ..nets.checkpoint import ModelConfig, TwoStreamModel
from ..nets.engines import Engine, Scores, batch_mode, batched_scores, create_engine, familiarity_of
from ..nets.models_store import resolve_model
from .buffers import END, LatestSlot
from .cuts import CUT_THRESHOLD, check_cut_threshold
from .flow import FlowSettings
from .fusion import Fusion, Smoother
from .prediction import Prediction
from .stages import Captured, PipelineStats, Work, capture_stage, flow_stage, stream_slots

log = logging.getLogger("twostream")
P = TypeVar("P", bound=Prediction)  # what a pipeline yields: Prediction, or MultiPipeline's StreamPrediction
_C = TypeVar("_C", bound="StreamCore[Any]")


class PipelineError(RuntimeError):
    """A stage of the pipeline failed; `__cause__` holds the original exception."""


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP  # configure(): leave this setting as it is


class _Scoring(NamedTuple):
    """How the infer thread turns a frame's scores into a Prediction: replaced whole, never edited, so a
    frame sees the old settings or the new ones, never half of each."""

    fusion: Fusion
    smoothing: int  # frames each source's smoother averages over


@dataclass
class _Swap:
    """A model waiting to replace the running one between two passes of the nets."""

    model: TwoStreamModel
    engine: Engine
    owns_engine: bool
    scoring: _Scoring
    done: threading.Event = field(default_factory=threading.Event)


def source_name(source: str | int | FrameSource, number: int, strict: bool) -> str:
    """The printable (redacted) name of a source. `strict`: a malformed one is refused here (UserError);
    otherwise it is refused when the pipeline starts, and its name is the redacted text."""
    if isinstance(source, FrameSource):
        return getattr(source, "name", f"stream {number}")
    if strict:
        return parse_source(source).name
    try:
        return parse_source(source).name
    except UserError:
        return redact(str(source))


class Stream:
    """One source of a pipeline: its hand-overs, threads, smoother, counters and status."""

    def __init__(self, number: int, source: str | int | FrameSource, num_classes: int, smoothing: int, thread_prefix: str, strict_name: bool):
        self.number = number
        self.source_arg = source
        self.source: FrameSource | None = None
        self.name = source_name(source, number, strict_name)
        self.thread_prefix = thread_prefix  # its threads are f"{prefix}capture" and f"{prefix}flow"
        self.status = "idle"  # idle, running, reconnecting, finished, failed, stopped
        self.error: str | None = None
        self.stats = PipelineStats()
        self.smoother = Smoother(num_classes, smoothing)
        self.segment = 0  # the segment of the last frame smoothed: after a gap the smoother restarts
        self.stop = threading.Event()
        self.flow_ready = threading.Event()
        self.threads: list[threading.Thread] = []
        self.frames: LatestSlot[Captured] | None = None
        self.work: LatestSlot[Work] | None = None
        self.pool: LatestSlot[Work] | None = None
        self.taps: list[Callable[[np.ndarray], object]] = []  # copy-on-write: the capture thread iterates without a lock
        self.output_dropped = 0
        self.done = False  # the infer thread saw this stream's end

    @property
    def dropped(self) -> dict[str, int]:
        return {
            "capture": self.frames.dropped if self.frames is not None else 0,
            "infer": self.work.dropped if self.work is not None else 0,
            "output": self.output_dropped,
        }

    def remove_tap(self, tap: Callable[[np.ndarray], object]) -> None:
        self.taps = [t for t in self.taps if t is not tap]

    def capturing(self) -> bool:
        return any(t.is_alive() for t in self.threads if t.name.endswith("capture"))

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


class StreamCore(Generic[P]):
    """Sources -> per-source capture and flow -> one infer stage -> Predictions. See the module's docstring."""

    keep_going = False  # a source that cannot be opened is left out (reported) instead of refusing the start

    def __init__(
        self,
        sources: Sequence[str | int | FrameSource],
        model: str | Path | TwoStreamModel | None,
        *,
        engine: str | Engine,
        device: str | None,
        half: bool | None,
        fusion: str | None,
        spatial_weight: float | None,
        smoothing: int,
        realtime: bool,
        max_frames: int | None,
        source_timeout: float,
        flow: FlowSettings | None,
        min_score: float | None,
        max_batch: int,
        thread_prefix: Callable[[int], str],
        strict_names: bool,
        cut_threshold: float = CUT_THRESHOLD,
    ):
        self.cut_threshold = check_cut_threshold(cut_threshold)  # before a model loads: a bad value is the caller's
        self.model = resolve_model(model, flow)
        cfg = self.model.config
        self.labels = list(cfg.labels)
        self.streams = [Stream(i, s, cfg.num_classes, smoothing, thread_prefix(i), strict_names) for i, s in enumerate(sources)]
        self.max_frames = max_frames
        self._realtime = realtime
        self._source_timeout = source_timeout
        self._owns_engine = not isinstance(engine, Engine)  # a caller's engine outlives this pipeline
        self.engine = engine if isinstance(engine, Engine) else create_engine(self.model, engine, device, half, max_batch=max_batch)
        self._scoring = _Scoring(Fusion(cfg.fusion, fusion, spatial_weight, min_score), smoothing)
        # the caller's choices (None: the model's own), kept across configure() calls; the threshold also across swaps
        self._fusion_mode, self._spatial_weight, self._min_score = fusion, spatial_weight, min_score
        self._control = threading.Lock()  # guards _pending and the choices: changes from other threads never get lost
        self._pending: list[_Swap] = []  # models asked for, in order, taken by the infer thread between two passes
        self._stop = threading.Event()
        self._work_ready = threading.Event()  # set by any flow thread after it hands over work
        self._threads: list[threading.Thread] = []
        self._infer_thread: threading.Thread | None = None
        self._error: tuple[str, BaseException] | None = None
        self._out: LatestSlot[P] | None = None
        self._per_stream = 1  # rows one source may fill in one pass of the nets (set at start)
        self.batch_sizes: collections.deque = collections.deque(maxlen=20000)  # frames per pass of the nets
        self.batch_compute: collections.deque = collections.deque(maxlen=20000)  # seconds per pass
        self.swaps = 0  # models swapped in while running
        self.started = time.monotonic()
        self.status = "idle"

    # -- policy: what the two pipelines decide differently -------------------------------------------
    def _rows_per_stream(self, live: bool) -> int:
        """Rows one source may fill in one pass of the nets."""
        return 1

    def _prediction(self, st: Stream, **fields: Any) -> P:
        raise NotImplementedError

    def _stream_failed(self, st: Stream, stage: str, error: BaseException) -> None:
        """A source's capture or flow stage raised: by default the failure is that stream's own, the others go on."""
        st.fail(error)
        log.warning("stream %d (%s) failed in %s: %s; the other streams go on", st.number, st.name, stage, st.error)
        if stage == "capture" and st.frames is not None:
            st.frames.finish()
        if stage == "flow" and st.work is not None:
            st.work.finish()
            self._work_ready.set()

    def _source_status(self, st: Stream, status: str) -> None:
        """What a source says from inside its read ("reconnecting", "ok"), on its capture thread."""
        if st.status == "running" and status == "reconnecting":
            st.status = "reconnecting"
        elif st.status == "reconnecting" and status != "reconnecting":
            st.status = "running"

    def _open_sources(self) -> None:
        """Open every source at once (network streams can each take up to the timeout to answer). A source
        that cannot be opened refuses the start with a UserError naming its stream; with `keep_going`, the
        ones that open are served and the others reported (all failing still refuses)."""
        errors = self._open_all()
        if not errors:
            return
        if not self.keep_going or len(errors) == len(self.streams):
            self._close_opened()
            st, _ = errors[0]
            more = f" (and {len(errors) - 1} more source(s) failed to open)" if len(errors) > 1 else ""
            raise UserError(f"stream {st.number}: {st.error}{more}")
        for st, _ in errors:
            log.warning("stream %d: %s; serving the other streams", st.number, st.error)

    def _open_all(self) -> list[tuple[Stream, BaseException]]:
        def open_one(st: Stream) -> FrameSource:
            src = st.source_arg
            return src if isinstance(src, FrameSource) else open_source(src, realtime=self._realtime, timeout_s=self._source_timeout)

        errors: list[tuple[Stream, BaseException]] = []
        with ThreadPoolExecutor(min(len(self.streams), 16), thread_name_prefix="twostream-open") as pool:
            futures = [pool.submit(open_one, st) for st in self.streams]
            for st, fut in zip(self.streams, futures):
                try:
                    st.source = fut.result()
                    st.name = st.source.name
                except Exception as e:  # reported per stream, never as a traceback
                    st.fail(e)
                    errors.append((st, e))
        return errors

    def _close_opened(self) -> None:
        """After a refused start: close what was opened, and the engine this pipeline built (no thread left behind)."""
        for st in self.streams:
            if st.source is not None and not isinstance(st.source_arg, FrameSource):
                st.source.close()
        if self._owns_engine:
            self.engine.close()

    # -- lifecycle ----------------------------------------------------------
    def start(self: _C) -> _C:
        if self._threads:
            return self
        self._open_sources()
        cfg = self.model.config
        opened = [st for st in self.streams if st.source is not None]
        live = any(st.source is not None and st.source.is_live for st in opened)
        n = len(self.streams)
        self._per_stream = self._rows_per_stream(live)
        self._out = LatestSlot(16 * n if live else max(4 * n, self._per_stream), drop_oldest=live)
        if n > 1:  # the first call at a new batch size is slow (compile: builds it); pay for it before frames arrive
            self.engine.warmup(batch=n, iterations=2)
        self.batch_sizes.clear()
        self.batch_compute.clear()
        self.started = time.monotonic()
        self.status = "running"
        self._infer_thread = threading.Thread(target=self._guard_infer, name="twostream-infer", daemon=True)
        self._threads.append(self._infer_thread)
        self._infer_thread.start()
        pinned = self.engine.device.type == "cuda"
        for st in self.streams:
            if st.source is None:  # could not be opened (MultiPipeline's keep_going): already reported
                st.done = True
                continue
            st.frames, st.work, st.pool = stream_slots(cfg, st.source.is_live, self._per_stream, pinned)
            st.stats = PipelineStats()
            st.status = "running"
            for stage, target in (("flow", self._flow_loop), ("capture", self._capture_loop)):
                t = threading.Thread(target=self._guard_stream, args=(st, stage, target), name=f"{st.thread_prefix}{stage}", daemon=True)
                st.threads.append(t)
                self._threads.append(t)
                t.start()
                if stage == "flow":  # capture starts once flow can take frames (a live source drops what waits)
                    st.flow_ready.wait(5.0)
        self._work_ready.set()  # the infer thread notices streams that were left out
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Stop every thread and release every source; returns within about `timeout` seconds."""
        self._stop_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("threads still finishing after stop: %s (blocked in a source's read)", ", ".join(alive))
        for st in self.streams:
            if st.source is not None and not st.capturing():
                st.source.close()
            if st.status in ("running", "reconnecting"):
                st.status = "stopped"
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

    def _stop_all(self) -> None:
        self._stop.set()
        for st in self.streams:
            st.stop.set()

    def __enter__(self: _C) -> _C:
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

    # -- changes while running: one method each, applied by the infer thread ------------------------
    def swap_model(
        self,
        model: str | Path | TwoStreamModel,
        engine: str | Engine | None = None,
        *,
        fusion: str | None = None,
        spatial_weight: float | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Replace the model while running, between two passes of the nets: the sources, threads and flow history stay.

        The new model must read the same inputs (flow settings, L, input size, normalisation), so the flow already
        computed stays valid; its labels may differ, and Predictions after the swap carry the new ones.
        The new engine is built here, on the caller's thread (the default is the running engine's kind,
        device, precision and batch size), so recognition does not pause while it compiles. Returns once
        the infer thread has switched (or at once when the pipeline is not running).
        """
        new = resolve_model(model, None)
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
            eng = create_engine(new, engine or self.engine.name, str(self.engine.device), self.engine.half, max_batch=self.engine.max_batch)
            owns = True
        with self._control:  # queued in order under the lock: two swaps asked at once are both taken, the last one wins
            swap = _Swap(new, eng, owns, _Scoring(Fusion(cfg.fusion, fusion, spatial_weight, self._min_score), self._scoring.smoothing))
            self._fusion_mode, self._spatial_weight = fusion, spatial_weight
            if self._infer_thread is None or not self._infer_thread.is_alive():
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
    def smoothing(self) -> int:
        """Frames each source's fused scores are averaged over, from the next frame on."""
        return self._scoring.smoothing

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
        old: the infer thread reads it once per pass, so no frame sees half a change. A model swap
        still waiting for the infer thread gets the change too.
        """
        with self._control:
            mode = self._fusion_mode if fusion is KEEP else fusion
            weight = self._spatial_weight if spatial_weight is KEEP else spatial_weight
            threshold = self._min_score if min_score is KEEP else min_score
            target = self._pending[-1] if self._pending else None
            model = target.model if target is not None else self.model
            current = target.scoring if target is not None else self._scoring
            new_fusion = Fusion(model.config.fusion, mode, weight, threshold)  # validates
            window = current.smoothing if smoothing is None else Smoother(model.config.num_classes, smoothing).window  # validates
            self._fusion_mode, self._spatial_weight, self._min_score = mode, weight, threshold
            if target is not None:
                target.scoring = _Scoring(new_fusion, window)
            else:
                self._scoring = _Scoring(new_fusion, window)

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
        """On the infer thread, between two passes: every model asked for, in order (the last one runs)."""
        with self._control:
            pending, self._pending = self._pending, []
            for swap in pending:
                self._apply_swap(swap)

    def _apply_swap(self, swap: _Swap) -> None:
        old, old_owned = self.engine, self._owns_engine
        self.model, self.engine, self._owns_engine = swap.model, swap.engine, swap.owns_engine
        self._scoring, self.labels = swap.scoring, list(swap.model.config.labels)
        for st in self.streams:  # the new model's classes: every source's smoothing starts again
            st.smoother = Smoother(swap.model.config.num_classes, swap.scoring.smoothing)
        self.swaps += 1
        swap.done.set()
        if old_owned and old is not swap.engine:
            old.close()
        log.info("model swapped in live: %s (%d classes)", swap.model.config.provenance.get("name", "model"), swap.model.config.num_classes)

    # -- the threads --------------------------------------------------------
    def _guard_infer(self) -> None:
        try:
            self._infer_loop()
        except BaseException as e:  # the shared stage: its failure stops every stream and reaches the caller
            if self._error is None:
                self._error = ("infer", e)
            self._stop_all()

    def _guard_stream(self, st: Stream, stage: str, loop: Callable[[Stream], None]) -> None:
        try:
            loop(st)
        except BaseException as e:  # any failure must reach someone, not die with the thread
            self._stream_failed(st, stage, e)
        finally:
            if stage == "capture" and st.source is not None:
                st.source.close()

    def _capture_loop(self, st: Stream) -> None:
        assert st.source is not None and st.frames is not None
        capture_stage(st.source, st.frames, st.stop, st.stats, self.max_frames, lambda status: self._source_status(st, status), lambda: st.taps, st.remove_tap)

    def _flow_loop(self, st: Stream) -> None:
        assert st.frames is not None and st.work is not None and st.pool is not None
        flow_stage(self.model.config, st.frames, st.work, st.pool, st.stop, st.stats, st.flow_ready, self._work_ready.set, self.cut_threshold)

    def _gather(self) -> list[tuple[Stream, Work]]:
        """What every source has ready now, without waiting: up to `_per_stream` pieces of work each, in order."""
        batch: list[tuple[Stream, Work]] = []
        for st in self.streams:
            if st.done or st.work is None:
                continue
            for _ in range(self._per_stream):
                w = st.work.get(timeout=0)
                if w is END:
                    self._stream_ended(st)
                    break
                if w is None:
                    break
                batch.append((st, w))
        return batch

    def _infer_loop(self) -> None:
        cfg = self.model.config
        rows, s = len(self.streams) * self._per_stream, cfg.input_size
        out = self._out
        assert out is not None
        rgb = temporal = None
        if rows > 1:  # the batch, preallocated; each piece of work is copied into one row
            rgb, temporal = torch.zeros(rows, 3, s, s), torch.zeros(rows, cfg.temporal_channels, s, s)
            if self.engine.device.type == "cuda":  # page-locked once, so every batch's copy to the GPU is asynchronous (unmeasured)
                rgb, temporal = rgb.pin_memory(), temporal.pin_memory()
        while not self._stop.is_set():
            self._work_ready.clear()  # before polling: work handed over after this point sets it again
            if self._pending:  # between two passes (or while the sources are quiet)
                self._take_swaps()
            batch = self._gather()
            if not batch:
                if all(st.done for st in self.streams):
                    out.finish()
                    return
                self._work_ready.wait(0.05)
                continue
            t0 = time.perf_counter()
            scores = self._scores(batch, rgb, temporal)
            spatial, temporal_scores = scores
            familiarity = familiarity_of(scores)
            now = time.monotonic()
            seconds = time.perf_counter() - t0
            self.batch_compute.append(seconds)
            scoring = self._scoring  # once per pass: a configure() from another thread applies from the next one
            j = 0
            for i, (st, w) in enumerate(batch):
                if st.smoother.window != scoring.smoothing:
                    st.smoother = Smoother(self.model.config.num_classes, scoring.smoothing)
                if w.segment != st.segment or w.since_cut == 0:  # after a gap or a shot cut, smooth only over the new frames
                    st.smoother.reset()
                    st.segment = w.segment
                sp, tp = spatial[i], None
                if w.has_temporal:
                    assert temporal_scores is not None  # a frame with a flow stack has temporal scores
                    tp = temporal_scores[j]
                    j += 1
                pred = self._prediction(
                    st,
                    index=w.index,
                    capture_ts=w.capture_ts,
                    flow_ts=w.flow_ts,
                    infer_ts=now,
                    labels=self.labels,
                    fused=st.smoother(scoring.fusion(sp, tp, w.since_cut)),
                    spatial=sp,
                    temporal=tp,
                    dropped=sum(st.dropped.values()),
                    status="reconnecting" if st.status == "reconnecting" else w.status,
                    frame=w.frame,
                    flow=w.flow,
                    truth=w.truth,
                    since_cut=w.since_cut,
                    min_score=scoring.fusion.min_score,
                    familiarity=float(familiarity[i]) if familiarity is not None else None,
                    min_familiarity=scoring.fusion.min_familiarity,
                )
                w.frame = w.flow = None
                assert st.pool is not None
                st.pool.put(w)
                st.stats.infer_compute.append(seconds / len(batch))  # each frame's share of the pass
                st.stats.record(pred)
                evicted = out.put(pred, self._stop)
                if isinstance(evicted, Prediction):
                    self.streams[getattr(evicted, "stream", 0)].output_dropped += 1

    def _scores(self, batch: list[tuple[Stream, Work]], rgb: torch.Tensor | None, temporal: torch.Tensor | None) -> Scores:
        """Both nets on the batch: one piece of work from its own buffers, several stacked into the batch
        buffers (spatial rows in batch order, the flow stacks of the items that have one packed in front)."""
        self.batch_sizes.append(len(batch))
        if rgb is None or temporal is None or (len(batch) == 1 and self._per_stream > 1):  # one frame of one file: as it is
            w = batch[0][1]
            return self.engine(w.rgb, w.temporal if w.has_temporal else None)
        rgb_np, temporal_np = rgb.numpy(), temporal.numpy()
        m = 0
        for i, (_, w) in enumerate(batch):
            rgb_np[i] = w.rgb_np
            if w.has_temporal:
                temporal_np[m] = w.temporal_np
                m += 1
        mode = batch_mode(self.engine)
        if mode != "ready" and self._per_stream > 1:  # one file's frames, and an engine (swapped in) bound to its shapes
            mode = "rows"
        return batched_scores(self.engine, rgb, temporal, [w.has_temporal for _, w in batch], mode)

    def _stream_ended(self, st: Stream) -> None:
        st.done = True
        if st.status == "failed":
            return  # reported where it failed
        if self._stop.is_set() or st.stop.is_set():
            st.status = "stopped"
            return
        st.status = "finished"
        if len(self.streams) > 1:
            log.info("stream %d (%s) ended after %d frames", st.number, st.name, st.stats.predicted)
