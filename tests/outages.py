"""Inputs that fail the way live inputs do, and a log of what a pipeline said meanwhile: shared by the
reliability tests (which assert what happens, in order) and benchmarks/reliability.py (which times it).

Nothing here imports the project: it works on anything with a pipeline's `status` and `source`.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any


class StatusLog:
    """Samples a pipeline's status every 10 ms on a side thread: rows of (time, status, source message)."""

    def __init__(self, pipe: Any):
        self.pipe = pipe
        self.rows: list[tuple[float, str, str]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.01):
            src = self.pipe.source
            self.rows.append((time.monotonic(), self.pipe.status, src.status_message if src else ""))

    def close(self) -> None:
        self._done.set()
        self._thread.join()

    def first(self, status: str, after: float = 0.0) -> tuple[float, str, str] | None:
        """The first row with this status at or after `after` (monotonic seconds)."""
        return next((r for r in self.rows if r[1] == status and r[0] >= after), None)


class StallingPipe:
    """A named pipe at `path` that delivers `data` (the start of a video file, say), then stays open
    and silent until `close()`: a camera or capture card that stops delivering without ending."""

    def __init__(self, path: Path, data: bytes):
        self.path, self.data = path, data
        os.mkfifo(self.path)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._write, name="stalling-pipe", daemon=True)
        self.thread.start()

    def _write(self) -> None:
        deadline = time.monotonic() + 30
        fd = None
        while fd is None and time.monotonic() < deadline and not self.done.is_set():
            try:  # non-blocking, so the writer never hangs when no reader comes
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.02)
        if fd is None:
            return
        os.set_blocking(fd, True)
        try:
            os.write(fd, self.data)
        except OSError:
            pass
        self.done.wait(30)
        os.close(fd)

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)
