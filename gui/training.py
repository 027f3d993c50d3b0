"""A teach-mode training run: `twostream train --from MODEL --progress-json` in a child process, its typed
progress (`realtime.TrainEvent`) as Qt signals. The panel (gui/teach.py) shows them; nothing here draws."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PyQt6.QtCore import QObject, QProcess, QProcessEnvironment, pyqtSignal

from realtime import TrainEvent


class TrainingJob(QObject):
    progressed = pyqtSignal(object)  # a TrainEvent, as the trainer goes
    ended = pyqtSignal(object, str, bool)  # the "done" event or None; why it failed ("" when done); cancelled

    def __init__(self, parent: QObject, args: list[str], out: Path, cwd: Path):
        super().__init__(parent)
        self.out, self._out_existed = out, out.exists()
        self.process: QProcess | None = QProcess(self)
        proc = self.process
        proc.setProgram(sys.executable)
        proc.setArguments(args)
        proc.setWorkingDirectory(str(cwd))
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        proc.setProcessEnvironment(env)
        proc.readyReadStandardOutput.connect(self._on_stdout)
        proc.readyReadStandardError.connect(self._on_stderr)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_process_error)
        self._stdout = b""
        self._stderr: list[str] = []
        self._last: TrainEvent | None = None  # the trainer's last event: "done" or "error"
        self._cancelled = False

    def start(self) -> None:
        assert self.process is not None
        self.process.start()

    @property
    def running(self) -> bool:
        return self.process is not None

    def cancel(self, wait_ms: int = 0) -> None:
        """Kill the trainer; `ended` reports it as cancelled (and what it had written is removed)."""
        if self.process is not None:
            self._cancelled = True
            proc = self.process
            proc.kill()
            if wait_ms:
                proc.waitForFinished(wait_ms)

    def _on_stdout(self, proc: QProcess | None = None, final: bool = False) -> None:
        proc = proc or self.process
        if proc is None:
            return
        self._stdout += proc.readAllStandardOutput().data() + (b"\n" if final else b"")
        *lines, self._stdout = self._stdout.split(b"\n")
        for line in lines:
            event = TrainEvent.from_json(line)
            if event is None:
                continue
            if event.stage in ("done", "error"):
                self._last = event
            else:
                self.progressed.emit(event)

    def _on_stderr(self, proc: QProcess | None = None) -> None:
        proc = proc or self.process
        if proc is None:
            return
        text = proc.readAllStandardError().data().decode("utf-8", "replace")
        self._stderr = (self._stderr + [line for line in text.splitlines() if line.strip()])[-40:]

    def _on_process_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.process is not None:
            self._stderr.append(f"could not start {sys.executable}: {self.process.errorString()}")
            self._on_finished(-1, QProcess.ExitStatus.CrashExit)

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        self._on_stdout(proc, final=True)  # what is left in the pipes
        self._on_stderr(proc)
        proc.deleteLater()
        last = self._last
        if self._cancelled:
            self._remove_partial()
            self.ended.emit(None, "", True)
        elif code == 0 and last is not None and last.stage == "done" and last.out:
            self.ended.emit(last, "", False)
        else:
            self._remove_partial()
            if last is not None and last.stage == "error" and last.error:
                why = last.error  # the trainer's own one-line reason, from its event stream
            else:  # it died without saying (killed, crashed): the last thing it logged
                why = self._stderr[-1] if self._stderr else f"the trainer exited with code {code}"
            self.ended.emit(None, why, False)

    def _remove_partial(self) -> None:
        """A training stopped half-way may leave half a checkpoint folder: remove it if this run created it."""
        out = self.out
        if out.is_dir() and not self._out_existed and not (out / "metrics.json").is_file():
            shutil.rmtree(out, ignore_errors=True)
