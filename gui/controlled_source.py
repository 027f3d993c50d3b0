"""The GUI's hold on an opened source: pausable, interruptible, counted, and kept open across pipelines."""

from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from realtime import FrameSource, Pacer, SourceSpec


class ControlledSource(FrameSource):
    """An opened source as the GUI needs it: pausable, interruptible, counted, and reusable across pipelines.

    Pausing a live source (camera, stream, synthetic) keeps reading and discarding frames, so resuming
    shows the present, not a stale buffer; pausing a file waits. Files are paced at their own fps here
    (the pipeline reads them losslessly), and pacing restarts after a pause instead of racing to catch up.
    `close()` (called by every Pipeline that stops) only detaches, so switching model keeps a stream's
    connection and a file's place; `release()` really closes. Reconnecting a lost camera or stream is
    the inner source's job; its status passes through.
    """

    def __init__(self, inner: FrameSource, spec: SourceSpec) -> None:
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
        # a file is read at its own rate; a resume never bursts through more than 0.2 s of frames
        self._pacer = Pacer(inner.fps or 25.0, catch_up=0.2) if spec.kind == "file" else None
        self.on_status: Callable[[str, str], None] | None = None  # the controller hears "reconnecting" / "ok" here

    # A lost camera or stream reconnects inside the inner source's read(); these pass its state through.
    @property
    def status(self) -> str:
        return self.inner.status

    @status.setter
    def status(self, value: str) -> None:
        self.inner.status = value

    @property
    def status_message(self) -> str:
        return self.inner.status_message

    @status_message.setter
    def status_message(self, value: str) -> None:
        self.inner.status_message = value

    @property
    def reconnects(self) -> int:
        return self.inner.reconnects

    @reconnects.setter
    def reconnects(self, value: int) -> None:
        self.inner.reconnects = value

    @property
    def downtime_s(self) -> float:
        return self.inner.downtime_s

    @downtime_s.setter
    def downtime_s(self, value: float) -> None:
        self.inner.downtime_s = value

    def watch(self, cancel: threading.Event | None = None, on_status: Callable[[str, str], None] | None = None) -> None:
        def both(status: str, message: str) -> None:
            if on_status is not None:
                on_status(status, message)
            if self.on_status is not None:
                self.on_status(status, message)

        self.inner.watch(cancel, both)

    def truth(self) -> str | None:
        """The inner source's ground truth of the frame last read (a synthetic source knows it)."""
        return self.inner.truth()

    def __getattr__(self, name: str) -> Any:
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
            self._reset_pacer()
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

    def _reset_pacer(self) -> None:
        if self._pacer is not None:
            self._pacer.reset()

    def _read(self) -> np.ndarray | None:
        while not self._running.is_set() or self._interrupted:
            if self._interrupted:
                return None
            if self.spec.kind == "file":
                self._running.wait(0.05)
            elif self.inner.read() is None:  # live: drain, so the frame after resume is current
                return None
            self._reset_pacer()
        frame = self.inner.read()
        if self._pacer is not None and frame is not None:
            self._pacer.wait()
        return frame if not self._interrupted else None
