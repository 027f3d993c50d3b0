"""The window's link to the engine: one Pipeline at a time, run and switched off the Qt thread.

A loader thread opens sources, loads models and builds engines (a TorchScript engine takes seconds);
a reader thread drains the running Pipeline, keeps the newest Prediction, feeds the score history
(gui/score_history.py) and the recording (gui/recording.py), and says through a Qt signal that something
new is waiting. The window's display presenter (gui/display.py) takes only the newest, so a slow display
never holds up or backs up the pipeline.

Every message that leaves this module has URL credentials removed.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from realtime import (
    CheckpointError,
    create_engine,
    Engine,
    open_source,
    parse_source,
    Pipeline,
    PipelineStats,
    Prediction,
    probe_cameras,
    resolve_model,
    TwoStreamModel,
    UserError,
)

from .controlled_source import ControlledSource
from .recording import AnnotatedRecording
from .redaction import Redactor
from .score_history import ScoreHistory
from .session import held_out_accuracy, RunRequest, SessionInfo

log = logging.getLogger("twostream")
LATENCY_WINDOW = 150  # predictions behind the latency percentiles (5 s at 30 fps)


@dataclass
class _Session:
    gen: int
    pipe: Pipeline
    source: ControlledSource
    source_text: str  # what the user typed, credentials included: never displayed
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
        self._recording = AnnotatedRecording(lambda path, frames, error: self._event.emit(-1, "record-failed", (str(path), frames, self.safe_text(error))))
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
            s.info = replace(
                s.info,
                min_score=s.pipe.fusion.min_score,
                min_score_set=value is not None,
                familiarity=s.pipe.model.prototypes is not None and s.pipe.fusion.min_familiarity > 0,
            )
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
        return self._recording.start(path, s.source.fps if s is not None and s.source.fps else 30.0)

    def stop_recording(self) -> tuple[Path, int] | None:
        """Finish the file; returns (path, frames written), or None if nothing was recording."""
        return self._recording.stop()

    @property
    def recording(self) -> tuple[Path, int] | None:
        """(path, frames written so far) while recording, else None."""
        return self._recording.current

    def stats(self) -> dict:
        """Counters for the stats panel (read from the Qt thread; plain integer reads, no locks)."""
        s = self._session
        if s is None:
            return {}
        st = s.pipe.stats
        dropped = s.pipe.dropped
        lat = np.array(tuple(s.latency_ms), np.float64)  # tuple(): one C call, so the reader cannot append mid-copy
        p50, p95 = np.percentile(lat, [50, 95]) if lat.size else (float("nan"), float("nan"))
        return {
            "captured": s.source.frames,
            "flowed": max(0, st.captured - dropped["capture"]),
            "predicted": st.predicted,
            "dropped": dropped,
            "latency_p50": float(p50),
            "latency_p95": float(p95),
            "info": s.info,
            "status": "paused" if s.source.paused else s.pipe.status,
        }

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
                assert req is not None  # the wait above ends with a request, or when closing
                gen = self._generation
            try:
                self._load(req, gen)
            except UserError as e:
                self._post(gen, "failed", self._refusal(e))
            except Exception as e:  # a bug must not kill the loader silently: show it and keep the window
                log.error("loading failed: %s", self.safe_text(traceback.format_exc()))  # the log is redacted too
                self._post(gen, "failed", self.safe_text(f"could not start: {type(e).__name__}: {e}"))

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
        s.engine_key = engine_key
        s.info = self._session_info(s.source, req, model, engine, s.pipe)
        self._post(gen, "swapped", s.info)
        return True

    def _session_info(self, source: ControlledSource, req: RunRequest, model: TwoStreamModel, engine: Engine, pipe: Pipeline) -> SessionInfo:
        cfg = model.config
        return SessionInfo(
            source_name=self.safe_text(source.name),
            source_kind=source.spec.kind,
            source_fps=source.fps,
            model_key=req.model,
            model_name=str(cfg.provenance.get("name", "model")),
            trained=cfg.trained,
            labels=tuple(cfg.labels),
            clip_length=cfg.clip_length,
            engine=engine.name,
            device=str(engine.device),
            precision=engine.precision,
            fusion_mode=pipe.fusion.mode,
            spatial_weight=pipe.fusion.spatial_weight,
            has_svm=cfg.fusion.svm_weight is not None,
            smoothing=self._smoothing,
            accuracy=held_out_accuracy(cfg.metrics, pipe.fusion.mode),
            min_score=pipe.fusion.min_score,
            model_min_score=float(cfg.fusion.min_score),
            min_score_set=self._min_score is not None,
            familiarity=model.prototypes is not None and pipe.fusion.min_familiarity > 0,
        )

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
        slow = {
            "torchscript": " (TorchScript traces the nets: a few seconds)",
            "onnxruntime": " (the nets are exported to ONNX once, then loaded from the cache)",
            "auto": " (the first start exports the nets to ONNX: a few seconds)",
        }.get(key[1], "")
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

    def _start(
        self, gen: int, req: RunRequest, source: ControlledSource, source_text: str, model: TwoStreamModel, engine: Engine, engine_key: tuple[str, str, str]
    ) -> _Session:
        cfg = model.config
        mode, weight = self._fusion, self._spatial_weight
        if mode == "svm" and cfg.fusion.svm_weight is None:
            self._post(gen, "warning", f"{cfg.provenance.get('name', 'this model')} has no fitted SVM fusion: using {cfg.fusion.mode}")
            mode = None
        pipe = Pipeline(source, model, engine=engine, fusion=mode, spatial_weight=weight, smoothing=self._smoothing, min_score=self._min_score)
        for tap in self._taps:
            pipe.add_tap(tap)
        info = self._session_info(source, req, model, engine, pipe)
        session = _Session(gen, pipe, source, source_text, info, engine_key)
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
        except Exception as e:  # a lost source (UserError), PipelineError and anything else: the window says so and stays up
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
        self._recording.write(pred)
        with self._lock:
            self._latest = pred
            notify, self._notified = not self._notified, True
        if notify:  # at most one signal in flight: a stalled Qt thread cannot pile up events
            self.predictionReady.emit()

    # -- Qt thread ------------------------------------------------------------------
    def _post(self, gen: int, kind: str, payload: object) -> None:
        self._event.emit(gen, kind, payload)

    def _on_event(self, gen: int, kind: str, payload: Any) -> None:  # payload: what `kind` carries (see _post's callers)
        if kind == "cameras":
            self.camerasFound.emit(payload)
            return
        if kind == "record-failed":
            path, frames, error = payload
            self.recordingStopped.emit(path, frames, error)
            return
        session = self._session
        if kind in ("ended", "source-status"):
            if session is None or session.gen != gen:
                return  # from a session already replaced
            if kind == "ended":
                self._on_session_end(session, *payload)
            else:
                status, message = payload
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
            self.problem.emit("error", str(payload))

    def _on_session_end(self, s: _Session, reason: str, message: str) -> None:
        if reason == "lost":
            self.problem.emit("error", message if message.startswith(s.info.source_name) else f"{s.info.source_name}: {message}")
            self.sessionEnded.emit("stopped")
        else:
            self.sessionEnded.emit("end of video" if s.source.spec.kind == "file" else "end of stream")
