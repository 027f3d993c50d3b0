"""Recording the annotated view: started and stopped from the Qt thread, written by the controller's reader thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from realtime import annotate, AnnotatedWriter, Prediction


class AnnotatedRecording:
    """Every prediction's annotated frame into one video file, from start() until stop() or a write fails.

    A failed write (disk full, codec gone) stops the recording, never the pipeline: `on_failed(path, frames,
    error)` hears it, on the writing thread.
    """

    def __init__(self, on_failed: Callable[[Path, int, str], None]) -> None:
        self.on_failed = on_failed
        self._writer: AnnotatedWriter | None = None
        self._lock = threading.Lock()  # start/stop (Qt thread) against write (reader thread)

    def start(self, path: str | Path, fps: float) -> Path:
        """Write to `path` (.mp4/.avi/...) from the next prediction on, finishing a recording still open. Raises UserError
        for a bad extension or folder (nothing changes then)."""
        writer = AnnotatedWriter(path, fps)
        with self._lock:
            old, self._writer = self._writer, writer
        if old is not None:
            old.close()
        return writer.path

    def stop(self) -> tuple[Path, int] | None:
        """Finish the file; returns (path, frames written), or None if nothing was recording."""
        with self._lock:
            writer, self._writer = self._writer, None
            if writer is None:
                return None
            writer.close()
        return writer.path, writer.frames

    @property
    def current(self) -> tuple[Path, int] | None:
        """(path, frames written so far) while recording, else None."""
        w = self._writer
        return (w.path, w.frames) if w is not None else None

    def write(self, pred: Prediction) -> None:
        """The annotated frame of `pred`, if recording (the reader thread, once per prediction)."""
        if self._writer is None:  # not recording: no lock taken
            return
        with self._lock:
            writer = self._writer
            if writer is None:
                return
            try:
                writer.write(annotate(pred, 3))
                return
            except Exception as e:  # disk full, codec gone: stop recording, keep running
                self._writer = None
                error = str(e)
        writer.close()
        self.on_failed(writer.path, writer.frames, error)
