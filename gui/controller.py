"""The window's link to the engine: one Pipeline at a time, run and switched off the Qt thread.

A loader thread opens sources, loads models and builds engines (a TorchScript engine takes seconds);
a reader thread drains the running Pipeline, keeps the newest Prediction and a bounded score
history, and says through a Qt signal that something new is waiting. The window's display timer
takes only the newest, so a slow display never holds up or backs up the pipeline.

Every message that leaves this module has URL credentials removed.
"""
from __future__ import annotations

import collections
import difflib
import logging
import os
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from realtime import (annotate, AnnotatedWriter, CheckpointError, create_engine, Engine, FrameSource, open_source, parse_source, Pipeline,
                      PipelineStats, Prediction, probe_cameras, redact, resolve_model, scrub, SourceSpec, TwoStreamModel, UserError)

log = logging.getLogger("twostream")
LATENCY_WINDOW = 150  # predictions behind the latency percentiles (5 s at 30 fps)


def safe_text(text: str) -> str:
    """Text fit for the window, the status bar and logs: URL credentials and secret query values removed."""
    text = str(text)
    if "://" in text and redact(text) != text and " " not in text.split("://", 1)[0]:  # the whole text is one URL
        return redact(text)
    return scrub(" ".join(redact(word) if "://" in word else word for word in text.split(" ")))


class Redactor:
    """safe_text, plus the literal secrets of every source this window was given, wherever they turn up.

    Patterns catch `user:pass@` in URLs; a password with a space, or echoed by some library without
    its URL, is caught only by knowing it. Secrets stay in memory, never on disk.
    """

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def learn(self, source_text: str) -> None:
        """Remember the parts of `source_text` that redaction removes (user info, secret query values)."""
        shown = redact(source_text)
        if shown == source_text:
            return
        # The span redaction changed (from the first to the last difference), and each changed piece.
        head = len(os.path.commonprefix([source_text, shown]))
        tail = len(os.path.commonprefix([source_text[head:][::-1], shown[head:][::-1]]))
        pieces = [source_text[head:len(source_text) - tail]]
        for op, a0, a1, _, _ in difflib.SequenceMatcher(None, source_text, shown, autojunk=False).get_opcodes():
            if op in ("replace", "delete"):
                pieces.append(source_text[a0:a1])
        for piece in pieces:
            for secret in (piece, piece.split(":", 1)[1] if ":" in piece else ""):  # also a password on its own
                if len(secret) >= 3:
                    self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        text = safe_text(text)
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


class ControlledSource(FrameSource):
    """An opened source as the GUI needs it: pausable, interruptible, counted, and reusable across pipelines.

    Pausing a live source (camera, stream, synthetic) keeps reading and discarding frames, so resuming
    shows the present, not a stale buffer; pausing a file waits. Files are paced at their own fps here
    (the pipeline reads them losslessly), and pacing restarts after a pause instead of racing to catch up.
    `close()` (called by every Pipeline that stops) only detaches, so switching model keeps a stream's
    connection and a file's place; `release()` really closes. Reconnecting a lost camera or stream is
    the inner source's job; its status passes through.
    """

    def __init__(self, inner: FrameSource, spec: SourceSpec):
        self.inner = inner
        self.spec = spec
        self.name = inner.name
        self.fps = inner.fps
        self.is_live = inner.is_live
        self.frame_count = inner.frame_count
        self.frames = 0  # frames handed to pipelines
        self._running = threading.Event()
        self._running.set()
        self._interrupted = False
        self._released = False
        self._in_read = False
        self._lock = threading.Lock()
        self._period = 1.0 / (inner.fps or 25.0) if spec.kind == "file" else 0.0
        self._next_due: float | None = None
        self.on_status: Callable[[str, str], None] | None = None  # the controller hears "reconnecting" / "ok" here

    # A lost camera or stream reconnects inside the inner source's read(); these pass its state through.
    @property
    def status(self) -> str:  # type: ignore[override]
        return self.inner.status

    @property
    def status_message(self) -> str:  # type: ignore[override]
        return self.inner.status_message

    @property
    def reconnects(self) -> int:  # type: ignore[override]
        return self.inner.reconnects

    @property
    def downtime_s(self) -> float:  # type: ignore[override]
        return self.inner.downtime_s

    def watch(self, cancel: threading.Event | None = None, on_status: Callable[[str, str], None] | None = None) -> None:
        def both(status: str, message: str) -> None:
            if on_status is not None:
                on_status(status, message)
            if self.on_status is not None:
                self.on_status(status, message)

        self.inner.watch(cancel, both)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        # Forwards what a source may optionally offer (`label`, `ground_truth_flow` of synthetic sources).
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def released(self) -> bool:
        """Closed for good (or closing as soon as a blocked read returns)."""
        return self._released

    @property
    def reusable(self) -> bool:
        """Open, and no thread is stuck inside a read: a new pipeline may take it."""
        return not self._released and not self._in_read

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def interrupt(self) -> None:
        """Make a pending or paused read return None (end of stream), so a pipeline can stop at once."""
        self._interrupted = True
        self._running.set()

    def rearm(self) -> bool:
        """After interrupt(): serve the next pipeline. False if the source cannot be reused."""
        with self._lock:
            if not self.reusable:
                return False
            self._interrupted = False
            self._next_due = None
            return True

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
            self._interrupted = True
            self._running.set()
            busy = self._in_read
        if not busy:  # a thread inside read() closes it on the way out
            self.inner.close()

    def close(self) -> None:
        """Pipelines call this when they stop; the source stays open for the next one (see release)."""

    def read(self) -> np.ndarray | None:
        with self._lock:
            if self._interrupted:
                return None
            self._in_read = True
        try:
            frame = self._read()
        finally:
            with self._lock:
                self._in_read = False
                close_now = self._released
        if close_now:
            self.inner.close()
            return None
        if frame is not None:
            self.frames += 1
        return frame

    def _read(self) -> np.ndarray | None:
        while not self._running.is_set() or self._interrupted:
            if self._interrupted:
                return None
            if self.spec.kind == "file":
                self._running.wait(0.05)
            elif self.inner.read() is None:  # live: drain, so the frame after resume is current
                return None
            self._next_due = None
        frame = self.inner.read()
        if self._period and frame is not None:
            now = time.monotonic()
            if self._next_due is not None and self._next_due > now:
                time.sleep(self._next_due - now)
            self._next_due = max(self._next_due or now, now - 0.2) + self._period
        return frame if not self._interrupted else None


class ScoreHistory:
    """Timestamps and fused scores of recent predictions, for the timeline. Written by one thread, read by another."""

    def __init__(self, capacity: int = 1200):
        self.capacity = capacity
        self._lock = threading.Lock()
        self._ts = np.zeros(capacity, np.float64)
        self._scores = np.zeros((capacity, 0), np.float32)
        self._min = np.zeros(capacity, np.float32)  # each prediction's "no known action" threshold
        self._known = np.ones(capacity, bool)  # each prediction's verdict (the threshold, and whether the frame looked familiar)
        self._labels: tuple[str, ...] = ()
        self._n = 0
        self._head = 0

    def reset(self, labels: tuple[str, ...]) -> None:
        with self._lock:
            self._labels = labels
            self._scores = np.zeros((self.capacity, len(labels)), np.float32)
            self._n = self._head = 0

    def append(self, ts: float, scores: np.ndarray, min_score: float = 0.0, known: bool | None = None) -> None:
        with self._lock:
            if scores.shape[0] != self._scores.shape[1]:
                return
            self._ts[self._head] = ts
            self._scores[self._head] = scores
            self._min[self._head] = min_score
            self._known[self._head] = bool(scores.max() >= min_score) if known is None else known
            self._head = (self._head + 1) % self.capacity
            self._n = min(self._n + 1, self.capacity)

    def window(self, since: float) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        """(timestamps, scores (N, C), labels) of the predictions captured after `since`, oldest first."""
        with self._lock:
            order = (np.arange(self._n) + self._head - self._n) % self.capacity
            ts = self._ts[order]
            keep = ts > since
            return ts[keep], self._scores[order[keep]], self._labels

    def window_with_thresholds(self, since: float) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray, np.ndarray]:
        """window(since), plus each prediction's "no known action" threshold and whether it was known
        (read together: the same predictions)."""
        with self._lock:
            order = (np.arange(self._n) + self._head - self._n) % self.capacity
            keep = order[self._ts[order] > since]
            return self._ts[keep], self._scores[keep], self._labels, self._min[keep], self._known[keep]

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    def __len__(self) -> int:
        return self._n


@dataclass(frozen=True)
class RunRequest:
    """What the user asked to run. `source` None keeps the open source; `model` "" is the default model."""

    source: str | None
    model: str = ""
    engine: str = "auto"
    device: str = "auto"
    swap: bool = False  # change the model inside the running Pipeline (Pipeline.swap_model): same source, same threads


@dataclass(frozen=True)
class SessionInfo:
    """What the window shows about the running pipeline. Names are safe to display."""

    source_name: str
    source_kind: str
    source_fps: float | None
    model_key: str
    model_name: str
    trained: bool
    labels: tuple[str, ...]
    clip_length: int
    engine: str
    device: str
    precision: str
    fusion_mode: str
    spatial_weight: float
    has_svm: bool
    smoothing: int
    accuracy: str = ""  # the checkpoint's own held-out result, e.g. "held-out top-1 97.5% (fusion_avg)"
    min_score: float = 0.0  # "no known action" below this fused top score: the threshold in use
    model_min_score: float = 0.0  # the model's own calibrated threshold (0: it never says "no known action")
    min_score_set: bool = False  # the user's threshold (True) or the model's own (False)
    familiarity: bool = False  # frames unlike the model's training frames are "no known action" too


@dataclass
class _Session:
    gen: int
    pipe: Pipeline
    source: ControlledSource
    source_text: str  # what the user typed, credentials included: never displayed
    request: RunRequest
    info: SessionInfo
    engine_key: tuple[str, str, str]
    latency_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LATENCY_WINDOW))
    lock: threading.Lock = field(default_factory=threading.Lock)
    retired: bool = False
    reader: threading.Thread | None = None
    labels_seen: object = None  # the label list of the last prediction published (changes with a live model swap)


class Controller(QObject):
    """Runs at most one Pipeline; every slow step happens in a worker thread and reports back by signal."""

    predictionReady = pyqtSignal()  # a new Prediction waits: take it with take_latest()
    sessionStarted = pyqtSignal(object)  # SessionInfo
    sessionEnded = pyqtSignal(str)  # why (end of file, stopped)
    problem = pyqtSignal(str, str)  # level ("error" | "warning"), message
    problemCleared = pyqtSignal()
    progress = pyqtSignal(str)  # what the loader is doing
    camerasFound = pyqtSignal(list)
    recordingStopped = pyqtSignal(str, int, str)  # path, frames written, error ("" when fine)
    modelSwapped = pyqtSignal(object)  # SessionInfo: a new model runs in the same pipeline (same source, same threads)
    _event = pyqtSignal(int, str, object)  # worker threads -> Qt thread

    def __init__(self, source_timeout: float = 5.0, parent: QObject | None = None):
        super().__init__(parent)
        self.source_timeout = source_timeout
        self.history = ScoreHistory()
        self.safe_text = Redactor()  # every message this controller emits passes through it
        self._lock = threading.Lock()
        self._swap_lock = threading.Lock()
        self._generation = 0
        self._pending: RunRequest | None = None
        self._wake = threading.Condition(self._lock)
        self._busy = False
        self._closing = False
        self._session: _Session | None = None
        self._source_text: str | None = None
        self._models: collections.OrderedDict[str, TwoStreamModel] = collections.OrderedDict()
        self._engines: collections.OrderedDict[tuple[str, str, str], Engine] = collections.OrderedDict()
        self._fusion: str | None = None
        self._spatial_weight: float | None = None
        self._smoothing = 8
        self._min_score: float | None = None  # the user's "no known action" threshold; None: each model's own
        self._latest: Prediction | None = None
        self._notified = False
        self.seq = 0  # predictions published so far
        self._recorder: AnnotatedWriter | None = None
        self._record_lock = threading.Lock()
        self._probe: threading.Thread | None = None
        self._taps: list[Callable[[np.ndarray], object]] = []  # frame taps, attached to every pipeline this runs
        self._event.connect(self._on_event)
        # Started now, from the thread that builds the window: pipelines started by this thread get its
        # scheduling priority, not the (possibly lowered) priority the Qt thread has later (see gui.app).
        self._loader = threading.Thread(target=self._load_loop, name="twostream-gui-loader", daemon=True)
        self._loader.start()

    # -- what the window asks ---------------------------------------------------
    def request(self, req: RunRequest) -> None:
        """Open `req` in the loader thread; the running pipeline keeps going until the new one is ready."""
        if req.source is not None:
            self.safe_text.learn(req.source)
        self._enqueue(req)

    def _enqueue(self, req: RunRequest) -> None:
        with self._lock:
            if self._closing:
                return
            self._generation += 1
            self._pending = req
            self._wake.notify()

    @property
    def info(self) -> SessionInfo | None:
        s = self._session
        return s.info if s is not None else None

    @property
    def source_text(self) -> str | None:
        """The last source that opened, as typed (credentials included): for reopening, never for display."""
        return self._source_text

    @property
    def running(self) -> bool:
        s = self._session
        return s is not None and not s.retired

    @property
    def loading(self) -> bool:
        return self._busy or self._pending is not None

    def take_latest(self) -> Prediction | None:
        """The newest Prediction (None if nothing new since the last call)."""
        with self._lock:
            pred, self._latest = self._latest, None
            self._notified = False
            return pred

    def set_fusion(self, mode: str | None, spatial_weight: float | None) -> None:
        """Change fusion live. Raises UserError (e.g. SVM asked of a model without one); nothing changes then."""
        s = self._session
        if s is not None:
            s.pipe.configure(fusion=mode, spatial_weight=spatial_weight)  # the infer thread applies it from its next frame
            fusion = s.pipe.fusion
            s.info = replace(s.info, fusion_mode=fusion.mode, spatial_weight=fusion.spatial_weight)
        self._fusion, self._spatial_weight = mode, spatial_weight

    def set_min_score(self, value: float | None) -> None:
        """The "no known action" threshold, live (None: the model's own calibrated one, also for every model run
        later). Raises UserError outside 0..1; nothing changes then."""
        value = None if value is None else float(value)
        if value is not None and not 0.0 <= value <= 1.0:
            raise UserError(f"the no-known-action threshold {value:g} is outside 0..1 (0: always name the top class)")
        s = self._session
        if s is not None:
            s.pipe.set_min_score(value)  # kept by the pipeline across live model swaps
            s.info = replace(s.info, min_score=s.pipe.fusion.min_score, min_score_set=value is not None,
                             familiarity=s.pipe.model.prototypes is not None and s.pipe.fusion.min_familiarity > 0)
        self._min_score = value

    @property
    def min_score(self) -> float | None:
        """The user's threshold, or None when each model's own applies."""
        return self._min_score

    def set_smoothing(self, frames: int) -> None:
        s = self._session
        if s is not None:
            s.pipe.configure(smoothing=frames)
            s.info = replace(s.info, smoothing=frames)
        self._smoothing = frames

    def pause(self, paused: bool) -> None:
        s = self._session
        if s is not None:
            s.source.pause() if paused else s.source.resume()

    @property
    def paused(self) -> bool:
        s = self._session
        return s is not None and s.source.paused

    def start_recording(self, path: str | Path) -> Path:
        """Write every prediction's annotated frame to `path` (.mp4/.avi/...) until stop_recording()."""
        s = self._session
        fps = s.source.fps if s is not None and s.source.fps else 30.0
        writer = AnnotatedWriter(path, fps)  # raises UserError for a bad extension or folder
        with self._record_lock:
            old, self._recorder = self._recorder, writer
        if old is not None:
            old.close()
        return writer.path

    def stop_recording(self) -> tuple[Path, int] | None:
        """Finish the file; returns (path, frames written), or None if nothing was recording."""
        with self._record_lock:
            writer, self._recorder = self._recorder, None
            if writer is None:
                return None
            writer.close()
        return writer.path, writer.frames

    @property
    def recording(self) -> tuple[Path, int] | None:
        w = self._recorder
        return (w.path, w.frames) if w is not None else None

    def stats(self) -> dict:
        """Counters for the stats panel (read from the Qt thread; plain integer reads, no locks)."""
        s = self._session
        if s is None:
            return {}
        st = s.pipe.stats
        dropped = s.pipe.dropped
        lat = np.array(tuple(s.latency_ms), np.float64)  # tuple(): one C call, so the reader cannot append mid-copy
        p50, p95 = (np.percentile(lat, [50, 95]) if lat.size else (float("nan"), float("nan")))
        return {"captured": s.source.frames, "flowed": max(0, st.captured - dropped["capture"]), "predicted": st.predicted,
                "dropped": dropped, "latency_p50": float(p50), "latency_p95": float(p95), "info": s.info,
                "status": "paused" if s.source.paused else s.pipe.status}

    @property
    def source(self) -> ControlledSource | None:
        s = self._session
        return s.source if s is not None else None

    @property
    def pipeline(self) -> Pipeline | None:
        """The running Pipeline (tests and the Teach panel look at it; the window never waits on it)."""
        s = self._session
        return s.pipe if s is not None else None

    def add_tap(self, tap: Callable[[np.ndarray], object]) -> None:
        """Call `tap(frame)` with every captured frame, on the capture thread, in this and every later pipeline
        (a model switch starts a new pipeline on the same source; the tap follows it). Keep it quick."""
        self._taps = [*self._taps, tap]  # copy-on-write: any thread may remove a tap while another reads the list
        s = self._session
        if s is not None:
            s.pipe.add_tap(tap)

    def remove_tap(self, tap: Callable[[np.ndarray], object]) -> None:
        """Any thread, idempotent (a tap may remove itself from the capture thread)."""
        self._taps = [t for t in self._taps if t is not tap]
        s = self._session
        if s is not None:
            s.pipe.remove_tap(tap)

    @property
    def pipeline_stats(self) -> PipelineStats | None:
        """The running pipeline's own counters and full latency record (for benchmarks)."""
        s = self._session
        return s.pipe.stats if s is not None else None

    def probe_cameras(self) -> None:
        """Look for cameras in a thread (opening /dev/video* can take a second each); answers with camerasFound."""
        if self._probe is not None and self._probe.is_alive():
            return

        def run() -> None:
            try:
                found = probe_cameras()
            except Exception as e:  # a broken V4L2 stack must not take the window down
                log.warning("camera probe failed: %s", e)
                found = []
            self._event.emit(-1, "cameras", found)

        self._probe = threading.Thread(target=run, name="twostream-gui-probe", daemon=True)
        self._probe.start()

    def shutdown(self, timeout: float = 1.0) -> None:
        """Stop every thread this controller started and release the source, within about `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closing = True
            self._generation += 1
            self._pending = None
            self._wake.notify()
        self.stop_recording()
        with self._swap_lock:
            s, self._session = self._session, None
        if s is not None:
            self._retire(s, keep_source=False, timeout=max(0.1, deadline - time.monotonic() - 0.1))
            if s.reader is not None:
                s.reader.join(max(0.0, deadline - time.monotonic()))
        for t in (self._loader, self._probe):
            if t is not None:
                t.join(max(0.0, deadline - time.monotonic()))
        for engine in self._engines.values():
            engine.close()
        self._engines.clear()

    # -- loader thread ------------------------------------------------------------
    def _load_loop(self) -> None:
        while True:
            with self._lock:
                while self._pending is None and not self._closing:
                    self._wake.wait()
                if self._closing:
                    return
                req, self._pending = self._pending, None
                gen = self._generation
                self._busy = True
            try:
                self._load(req, gen)
            except UserError as e:
                self._post(gen, "failed", (req, self._refusal(e)))
            except Exception as e:  # a bug must not kill the loader silently: show it and keep the window
                log.error("loading failed: %s", self.safe_text(traceback.format_exc()))  # the log is redacted too
                self._post(gen, "failed", (req, self.safe_text(f"could not start: {type(e).__name__}: {e}")))
            finally:
                self._busy = False

    def _refusal(self, e: UserError) -> str:
        text = self.safe_text(str(e))
        return f"model refused: {text}" if isinstance(e, CheckpointError) else text

    def _superseded(self, gen: int) -> bool:
        return self._closing or gen != self._generation

    def _load(self, req: RunRequest, gen: int) -> None:
        current = self._session
        if req.swap and req.source is None and current is not None and not current.retired and self._swap_model(current, req, gen):
            return
        source_text = req.source if req.source is not None else (current.source_text if current else self._source_text)
        if source_text is None:
            raise UserError("no source to run: choose a camera, a file, a URL or synthetic:demo")
        spec = parse_source(source_text)
        # Keep the open source when only the model or engine changes: a file keeps its place, a stream its connection.
        keep_source = req.source is None and current is not None and not current.retired and current.source.reusable
        source: ControlledSource | None = None
        try:
            if not keep_source:
                if spec.kind == "camera" and current is not None:  # a camera opens once: let go of it first
                    self._retire(current, keep_source=False)
                self._post(gen, "progress", f"opening {spec.name}…")
                source = ControlledSource(open_source(spec, realtime=False, timeout_s=self.source_timeout), spec)
            if self._superseded(gen):
                return
            model = self._model(req.model, gen)
            engine_key = (req.model, req.engine, req.device)
            engine = self._engine(engine_key, model, gen)
            # Only quick steps below: shutdown() waits for this lock.
            with self._swap_lock:
                if self._superseded(gen):
                    return
                if current is not None:
                    self._retire(current, keep_source=keep_source)
                    if current.reader is not None:
                        current.reader.join(1.0)
                    if keep_source:
                        if not current.source.rearm():  # it ended meanwhile: open it afresh, outside this lock
                            self._enqueue(replace(req, source=source_text))
                            return
                        source = current.source
                assert source is not None
                engine.parallel_streams(engine.device.type == "cpu")  # a stopped pipeline closed its executor
                session = self._start(gen, req, source, source_text, model, engine, engine_key)
                source = None  # the session owns it now
                self._source_text = source_text
            self._post(gen, "started", session.info)
        finally:
            if source is not None:
                source.release()

    def _swap_model(self, s: _Session, req: RunRequest, gen: int) -> bool:
        """Put `req.model` into the running pipeline between two frames (loader thread). False when it cannot
        read the running model's inputs: the caller then starts a new pipeline with it on the same source."""
        model = self._model(req.model, gen)
        if s.pipe.swap_misfit(model.config):
            return False
        engine_key = (req.model, req.engine, req.device)
        engine = self._engine(engine_key, model, gen)
        if self._superseded(gen) or s.retired:
            return True
        # The model's own fusion (a taught model's weight was chosen by cross-validation), not the last one asked for.
        self._fusion = self._spatial_weight = None
        s.pipe.swap_model(model, engine)  # returns once the infer thread runs the new model
        s.request, s.engine_key = replace(req, swap=False), engine_key
        s.info = self._session_info(s.source, req, model, engine, s.pipe)
        self._post(gen, "swapped", s.info)
        return True

    def _session_info(self, source: ControlledSource, req: RunRequest, model: TwoStreamModel, engine: Engine, pipe: Pipeline) -> SessionInfo:
        cfg = model.config
        return SessionInfo(source_name=self.safe_text(source.name), source_kind=source.spec.kind, source_fps=source.fps,
                           model_key=req.model, model_name=str(cfg.provenance.get("name", "model")), trained=cfg.trained,
                           labels=tuple(cfg.labels), clip_length=cfg.clip_length, engine=engine.name, device=str(engine.device),
                           precision=engine.precision, fusion_mode=pipe.fusion.mode,
                           spatial_weight=pipe.fusion.spatial_weight, has_svm=cfg.fusion.svm_weight is not None,
                           smoothing=self._smoothing, accuracy=_accuracy(cfg.metrics, pipe.fusion.mode),
                           min_score=pipe.fusion.min_score, model_min_score=float(cfg.fusion.min_score),
                           min_score_set=self._min_score is not None,
                           familiarity=model.prototypes is not None and pipe.fusion.min_familiarity > 0)

    def _model(self, key: str, gen: int) -> TwoStreamModel:
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        self._post(gen, "progress", f"loading {key or 'the default model'}…")
        model = resolve_model(key or None)  # a directory, "default", or a taught model's name, as --model takes
        self._models[key] = model
        while len(self._models) > 3:
            self._models.popitem(last=False)
        return model

    def _engine(self, key: tuple[str, str, str], model: TwoStreamModel, gen: int) -> Engine:
        if key in self._engines:
            self._engines.move_to_end(key)
            return self._engines[key]
        slow = {"torchscript": " (TorchScript traces the nets: a few seconds)",
                "onnxruntime": " (the nets are exported to ONNX once, then loaded from the cache)",
                "auto": " (the first start exports the nets to ONNX: a few seconds)"}.get(key[1], "")
        self._post(gen, "progress", f"building the {key[1]} engine on {key[2]}{slow}…")
        engine = create_engine(model, key[1], key[2])
        if self._closing:  # the window closed while it was being built
            engine.close()
            raise UserError("closing")
        self._engines[key] = engine
        in_use = self._session.engine_key if self._session is not None else None
        while len(self._engines) > 2:
            old_key = next(k for k in self._engines if k != key and k != in_use)
            self._engines.pop(old_key).close()
        return engine

    def _start(self, gen: int, req: RunRequest, source: ControlledSource, source_text: str, model: TwoStreamModel,
               engine: Engine, engine_key: tuple[str, str, str]) -> _Session:
        cfg = model.config
        mode, weight = self._fusion, self._spatial_weight
        if mode == "svm" and cfg.fusion.svm_weight is None:
            self._post(gen, "warning", f"{cfg.provenance.get('name', 'this model')} has no fitted SVM fusion: using {cfg.fusion.mode}")
            mode = None
        pipe = Pipeline(source, model, engine=engine, fusion=mode, spatial_weight=weight, smoothing=self._smoothing,
                        min_score=self._min_score)
        for tap in self._taps:
            pipe.add_tap(tap)
        info = self._session_info(source, req, model, engine, pipe)
        session = _Session(gen, pipe, source, source_text, req, info, engine_key)
        source.on_status = lambda status, message: self._post(gen, "source-status", (status, self.safe_text(message)))
        if self.history.labels != info.labels:
            self.history.reset(info.labels)
        pipe.start()
        self._session = session  # before the reader starts, so its first event finds it current
        session.reader = threading.Thread(target=self._read_loop, args=(session,), name="twostream-gui-reader", daemon=True)
        session.reader.start()
        return session

    def _retire(self, s: _Session, keep_source: bool, timeout: float = 1.0) -> None:
        """Stop a session's pipeline (idempotent, any thread). Its source stays open only if `keep_source`."""
        with s.lock:
            if s.retired:
                return
            s.retired = True
            s.source.interrupt()
            s.pipe.stop(timeout)
            if not keep_source:
                s.source.release()

    # -- reader thread ------------------------------------------------------------
    def _read_loop(self, s: _Session) -> None:
        reason, message = "end", ""
        try:
            for pred in s.pipe:
                self._publish(s, pred)
        except UserError as e:
            reason, message = "lost", self.safe_text(str(e))
        except Exception as e:  # PipelineError and anything else: the window says so and stays up
            reason, message = "lost", self.safe_text(str(e))
        if s.retired:  # stopped on purpose: nothing to report
            return
        self._retire(s, keep_source=False)
        self._post(s.gen, "ended", (reason, message))

    def _publish(self, s: _Session, pred: Prediction) -> None:
        s.latency_ms.append(pred.latency_ms)
        if pred.labels is not s.labels_seen:  # the first prediction, or the first after a live model swap
            s.labels_seen = pred.labels
            if tuple(pred.labels) != self.history.labels:
                self.history.reset(tuple(pred.labels))
        self.history.append(pred.capture_ts, pred.fused, pred.min_score, pred.known)
        writer = self._recorder
        if writer is not None:
            try:
                with self._record_lock:
                    if self._recorder is writer:
                        writer.write(annotate(pred, 3))
            except Exception as e:  # disk full, codec gone: stop recording, keep running
                with self._record_lock:
                    if self._recorder is writer:
                        self._recorder = None
                writer.close()
                self._event.emit(-1, "record-failed", (str(writer.path), writer.frames, self.safe_text(str(e))))
        with self._lock:
            self._latest = pred
            self.seq += 1
            notify, self._notified = not self._notified, True
        if notify:  # at most one signal in flight: a stalled Qt thread cannot pile up events
            self.predictionReady.emit()

    # -- Qt thread ------------------------------------------------------------------
    def _post(self, gen: int, kind: str, payload: object) -> None:
        self._event.emit(gen, kind, payload)

    def _on_event(self, gen: int, kind: str, payload: object) -> None:
        if kind == "cameras":
            self.camerasFound.emit(payload)
            return
        if kind == "record-failed":
            path, frames, error = payload  # type: ignore[misc]
            self.recordingStopped.emit(path, frames, error)
            return
        session = self._session
        if kind in ("ended", "source-status"):
            if session is None or session.gen != gen:
                return  # from a session already replaced
            if kind == "ended":
                self._on_session_end(session, *payload)  # type: ignore[misc]
            else:
                status, message = payload  # type: ignore[misc]
                if status == "reconnecting":
                    self.problem.emit("warning", message)  # the source retries by itself until stopped
                else:
                    self.problemCleared.emit()
                    self.progress.emit(message)
            return
        if gen != self._generation or self._closing:
            return  # a newer request took over
        if kind == "progress":
            self.progress.emit(str(payload))
        elif kind == "warning":
            self.problem.emit("warning", str(payload))
        elif kind == "started":
            self.problemCleared.emit()
            self.sessionStarted.emit(payload)
        elif kind == "swapped":
            self.problemCleared.emit()
            self.modelSwapped.emit(payload)
        elif kind == "failed":
            _, message = payload  # type: ignore[misc]
            self.problem.emit("error", message)

    def _on_session_end(self, s: _Session, reason: str, message: str) -> None:
        if reason == "lost":
            self.problem.emit("error", message if message.startswith(s.info.source_name) else f"{s.info.source_name}: {message}")
            self.sessionEnded.emit("stopped")
        else:
            self.sessionEnded.emit("end of video" if s.source.spec.kind == "file" else "end of stream")


def _accuracy(metrics: dict, fusion_mode: str) -> str:
    """The fused held-out top-1 a checkpoint reports for this fusion mode (or any), as a short phrase; "" if none."""
    deployed = metrics.get("deployed") if isinstance(metrics, dict) else None
    keys = (f"fusion_{fusion_mode}", "fusion_avg", "fusion_svm", "fused")
    if isinstance(deployed, dict) and fusion_mode == "weighted":  # the model's own fusion: what it was chosen and measured as
        keys = ("deployed", *keys)
    for key in keys:
        entry = metrics.get(key) if isinstance(metrics, dict) else None
        top1 = entry.get("top1") if isinstance(entry, dict) else None
        if isinstance(top1, (int, float)):
            what = f"deployed: {entry.get('mode')}" if key == "deployed" else key.replace("_", " ")
            return f"held-out top-1 {top1:.1%} ({what})"
    return ""
