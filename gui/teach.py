"""The Teach panel: record clips of your own actions from the live source, check them, train on them, and run the result.

Three parts, one job each: recording (gui/clip_recorder.py: a frame tap on the running pipeline feeds a
`realtime.Recorder`), the clip list (gui/clip_list.py: the folder's classes and clips, delete and undo), and
the training job (gui/training.py: `python -m realtime.cli train --from MODEL --progress-json` as a child
process, whose `TrainEvent`s this panel shows). The window and the recognizer keep running while it trains.
When it is done the new checkpoint is swapped into the running pipeline (the window asks its controller;
the source is never restarted). This panel holds the parts together: one folder, and no deleting or
training while recording, no recording or deleting while training.
"""

from __future__ import annotations

import time
from pathlib import Path

from PyQt6.QtCore import QProcess, Qt, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import QCheckBox, QFileDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QVBoxLayout, QWidget

import realtime
from realtime import check_clips, ClipLibrary, TrainEvent, user_models_dir, UserError

from .clip_list import ClipList
from .clip_recorder import ClipRecorder
from .controller import Controller
from .training import TrainingJob
from .widgets import ERROR_COLOUR

PACKAGE_ROOT = Path(realtime.__file__).resolve().parent.parent  # the child process imports the same `realtime`
TRAINING_BLOCKS_RECORDING = "training is running: record more clips when it is done"


def default_recordings_dir() -> Path:
    """Beside the taught models: <user data>/twostream/recordings (or $TWOSTREAM_HOME/recordings)."""
    return user_models_dir().parent / "recordings"


def short_message(error: str) -> str:
    """A trainer message without its command-line advice ("…, e.g. twostream record …"), which the panel replaces."""
    return error.split(", e.g. twostream record")[0].split(" (record clips with: twostream record")[0].strip()


class TeachPanel(QWidget):
    """Name a class, record N clips of S seconds with a countdown, review and delete clips, train, and see the result."""

    modelTaught = pyqtSignal(str)  # the new checkpoint's folder: the window swaps it into the running pipeline
    overlayChanged = pyqtSignal(str)  # countdown / clip text for the video view ("" = none)
    message = pyqtSignal(str)  # one line for the status bar

    def __init__(self, controller: Controller, root: str | Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.safe_text = controller.safe_text
        self.library = ClipLibrary(Path(root) if root else default_recordings_dir())
        self.job: TrainingJob | None = None  # the training running now (gui/training.py)
        self.last_result: TrainEvent | None = None  # the "done" event (out, metrics) of the last training
        self.last_error = ""  # the last problem the panel showed (empty when the last action went well)
        self.clip_recorder = ClipRecorder(controller, self.library)
        self.clip_recorder.changed.connect(self.refresh)
        self.clip_recorder.overlayChanged.connect(self.overlayChanged)
        self.clip_recorder.message.connect(self.message)
        self.clip_recorder.problem.connect(self._problem)
        self.clip_list = ClipList(self.library)
        self.clip_list.listed.connect(self._on_listed)
        self.clip_list.classPicked.connect(self.clip_recorder.name_edit.setText)
        self.clip_list.message.connect(self.message)
        self.clip_list.problem.connect(self._problem)
        self._build()
        self.refresh()

    # -- construction -------------------------------------------------------------
    def _build(self) -> None:
        self.folder_label = QLabel()
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.folder_button = QPushButton("Folder…")
        self.folder_button.setToolTip("Where recorded clips go: one folder per class, an ordinary dataset for 'twostream train'")
        self.folder_button.clicked.connect(self.choose_folder)

        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Teach the running model these classes, in the background; the result is swapped in live")
        self.train_button.clicked.connect(self.train)
        self.whole_nets = QCheckBox("also fine-tune the whole nets (slower)")
        self.whole_nets.setToolTip(
            "After fitting new heads, train every layer for 3 epochs at a small learning rate "
            "(twostream train --finetune all); the heads alone are usually enough"
        )
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the training (nothing is saved)")
        self.cancel_button.clicked.connect(self.cancel_training)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("%p%")
        self.stage_label = QLabel("Record at least two classes, then press Train.")
        self.stage_label.setWordWrap(True)
        self.accuracy_label = QLabel()
        self.accuracy_label.setWordWrap(True)
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet(f"color: {ERROR_COLOUR.name()}")
        self.problem_label.hide()

        def heading(text: str) -> QLabel:
            label = QLabel(text)
            f = QFont(label.font())
            f.setBold(True)
            label.setFont(f)
            return label

        col = QVBoxLayout(self)
        col.setContentsMargins(6, 4, 6, 4)
        col.setSpacing(5)
        col.addWidget(heading("1  Record"))
        row = QHBoxLayout()
        row.addWidget(self.folder_label, 1)
        row.addWidget(self.folder_button)
        col.addLayout(row)
        col.addWidget(self.clip_recorder)
        col.addWidget(heading("2  Check the clips"))
        col.addWidget(self.clip_list, 1)
        col.addWidget(heading("3  Train"))
        row = QHBoxLayout()
        row.addWidget(self.train_button, 1)
        row.addWidget(self.cancel_button)
        col.addLayout(row)
        col.addWidget(self.whole_nets)
        col.addWidget(self.progress)
        col.addWidget(self.stage_label)
        col.addWidget(self.accuracy_label)
        col.addWidget(self.result_label)
        col.addWidget(self.problem_label)
        self.setMinimumWidth(280)

    # -- state ----------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.library.root

    @property
    def recording(self) -> bool:
        return self.clip_recorder.recording

    @property
    def training(self) -> bool:
        return self.job is not None

    def set_root(self, folder: str | Path) -> None:
        if self.recording or self.training:
            self._problem("finish the recording or training first, then choose another folder")
            return
        self.library = ClipLibrary(Path(folder))
        self.clip_recorder.library = self.library
        self.clip_list.set_library(self.library)  # refreshes the list, and through it this panel
        self.message.emit(f"recordings go to {self.root}")

    def choose_folder(self) -> None:
        start = str(self.root if self.root.is_dir() else Path.home())
        path = QFileDialog.getExistingDirectory(self, "Folder for recorded clips (one folder per class)", start)
        if path:
            self.set_root(path)

    def refresh(self) -> None:
        """The folder and its clips as they are now (the list reads the folder; this panel follows the list)."""
        self.clip_list.refresh()

    def _on_listed(self, classes: dict[str, list[Path]]) -> None:
        self.folder_label.setText(self.safe_text(str(self.root)))
        self.folder_label.setToolTip(self.safe_text(str(self.root)))
        total = sum(len(c) for c in classes.values())
        self.train_button.setText(f"Train on {len(classes)} class{'' if len(classes) == 1 else 'es'}, {total} clips" if classes else "Train")
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy_training, recording = self.training, self.recording
        self.clip_recorder.set_blocked(TRAINING_BLOCKS_RECORDING if busy_training else "")
        self.clip_list.set_locked(recording or busy_training)
        self.folder_button.setEnabled(not recording and not busy_training)
        self.train_button.setEnabled(not busy_training and not recording)
        self.whole_nets.setEnabled(not busy_training)
        self.cancel_button.setEnabled(busy_training)

    def _problem(self, text: str) -> None:
        """Show what went wrong ("": nothing did, the last problem goes)."""
        text = self.safe_text(text)
        self.last_error = text
        self.problem_label.setText(text)
        self.problem_label.setVisible(bool(text))
        if text:
            self.message.emit(text)

    # -- training -------------------------------------------------------------------------
    def base_model(self) -> str:
        """The checkpoint training starts from: the model running now, else the shipped default."""
        info = self.controller.info
        return info.model_key if info is not None and info.model_key else "default"

    def train(self) -> bool:
        """Start training in a child process; False (with the reason shown) if it cannot start."""
        if self.training:
            return False
        if self.recording:
            self._problem("a recording is running: let it finish (or stop it) before training")
            return False
        try:
            counts = check_clips(self.root)  # the trainer's own rule and message, before anything starts
        except UserError as e:
            self._problem(short_message(str(e)))
            self.stage_label.setText("Not trained.")
            return False
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = user_models_dir() / f"{'-'.join(counts)[:48]}-{stamp}"
        args = [
            "-m",
            "realtime.cli",
            "train",
            "--data",
            str(self.root),
            "--from",
            self.base_model(),
            "--out",
            str(out),
            "--progress-json",
            "--nice",
            "10",
            "--finetune",
            "all" if self.whole_nets.isChecked() else "heads",
        ]
        self.job = TrainingJob(self, args, out, PACKAGE_ROOT)
        self.job.progressed.connect(self._on_progress)
        self.job.ended.connect(self._on_job_ended)
        self._problem("")
        self.progress.setValue(0)
        self.stage_label.setText(f"starting: {len(counts)} classes, {sum(counts.values())} clips, from {Path(self.base_model()).name}…")
        self.accuracy_label.setText("")
        self.result_label.setText("")
        self._update_buttons()
        self.job.start()
        self.message.emit(f"training in the background ({', '.join(f'{k} {v}' for k, v in counts.items())}); recognition goes on")
        return True

    @property
    def process(self) -> QProcess | None:
        """The trainer's process while one runs."""
        return self.job.process if self.job is not None else None

    def cancel_training(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _on_progress(self, event: TrainEvent) -> None:
        self.progress.setValue(round(1000 * event.fraction))
        elapsed = event.elapsed_s
        self.stage_label.setText(self.safe_text(event.message + (f"  ({elapsed:.0f} s)" if elapsed else "")))
        acc = event.accuracy
        if acc is not None and "fused" in acc:
            self.accuracy_label.setText(
                f"held-out top-1: fused {acc['fused']:.0%} (spatial {acc.get('spatial', float('nan')):.0%}, temporal {acc.get('temporal', float('nan')):.0%})"
            )

    def _on_job_ended(self, done: TrainEvent | None, why: str, cancelled: bool) -> None:
        self.job = None
        if cancelled:
            self.stage_label.setText("Training cancelled; nothing was saved.")
            self.progress.setValue(0)
            self.message.emit("training cancelled")
        elif done is not None:
            self._show_result(done)
            self.modelTaught.emit(done.out)
        else:
            self.stage_label.setText("Training failed.")
            self._problem(f"training failed: {short_message(why)}")
        self._update_buttons()

    def _show_result(self, done: TrainEvent) -> None:
        self.last_result = done
        metrics = done.metrics or {}
        held = metrics.get("held_out", {})
        classes = list(metrics.get("classes", {}))
        self.progress.setValue(1000)
        seconds = metrics.get("seconds", {}).get("total")
        self.stage_label.setText(f"Done{f' in {seconds:.0f} s' if seconds else ''}: {len(classes)} classes ({', '.join(classes)}).")
        if "fused" in held:
            self.accuracy_label.setText(
                f"held-out top-1 on {held.get('videos', '?')} clips never used for fitting: "
                f"fused {held['fused']:.0%} (spatial {held['spatial']:.0%}, temporal {held['temporal']:.0%})"
            )
        self.result_label.setText(self.safe_text(f"Saved to {done.out} — now running live."))
        self.message.emit(self.safe_text(f"taught model saved to {done.out}; swapping it in"))

    def shutdown(self) -> None:
        """Window closing: stop recording and kill a training (it would not be swapped in anyway)."""
        self.clip_recorder.shutdown()
        if self.job is not None:
            self.job.cancel(wait_ms=2000)
