"""The Teach panel: record clips of your own actions from the live source, train on them, and run the result.

Recording feeds a `realtime.io.record.Recorder` from a frame tap on the running pipeline (the capture
thread, before anything can be dropped), so a clip has every frame the source gave. Training runs
`python -m realtime.cli train --from MODEL --progress-json` as a child process (gui/training.py,
whose `TrainEvent`s this panel shows): the window and the recognizer keep running while it works. When it is done the
new checkpoint is swapped into the running pipeline (the window asks its controller; the source is
never restarted).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from PyQt6.QtCore import QProcess, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QColor, QFont
from PyQt6.QtWidgets import (QAbstractItemView, QCheckBox, QDoubleSpinBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QLineEdit,
                             QProgressBar, QPushButton, QSizePolicy, QSpinBox, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

import realtime
from realtime import (MIN_CLIPS, RECOMMENDED_CLIPS, check_clips, check_label, ClipLibrary, Recorder, RecorderState, TrainEvent,
                      user_models_dir, UserError)

from .controller import Controller
from .training import TrainingJob

PACKAGE_ROOT = Path(realtime.__file__).resolve().parent.parent  # the child process imports the same `realtime`
ERROR_COLOUR, WARNING_COLOUR, OK_COLOUR = "#ff8080", "#ffb13b", "#5cd65c"
PATH_ROLE = Qt.ItemDataRole.UserRole


def default_recordings_dir() -> Path:
    """Beside the taught models: <user data>/twostream/recordings (or $TWOSTREAM_HOME/recordings)."""
    return user_models_dir().parent / "recordings"


def taught_models(limit: int = 8) -> list[Path]:
    """The newest checkpoints in the taught-models folder (for the model chooser)."""
    try:
        found = [p.parent.resolve() for p in user_models_dir().glob("*/model.json")]
    except Exception:  # no user data directory on this system: nothing taught yet
        return []
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)[:limit]


def short_message(error: str) -> str:
    """A trainer message without its command-line advice ("…, e.g. twostream record …"), which the panel replaces."""
    return error.split(", e.g. twostream record")[0].split(" (record clips with: twostream record")[0].strip()


class TeachPanel(QWidget):
    """Name a class, record N clips of S seconds with a countdown, review and delete clips, train, and see the result."""

    modelTaught = pyqtSignal(str)  # the new checkpoint's folder: the window swaps it into the running pipeline
    overlayChanged = pyqtSignal(str)  # countdown / clip text for the video view ("" = none)
    message = pyqtSignal(str)  # one line for the status bar
    _recorderChanged = pyqtSignal(object)  # from the capture thread (Recorder.on_change) to the Qt thread

    def __init__(self, controller: Controller, root: str | Path | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.safe_text = controller.safe_text
        self.library = ClipLibrary(Path(root) if root else default_recordings_dir())
        self.gap_s = 1.0  # seconds between two clips of a run: time to start the action again
        self.recorder: Recorder | None = None
        self._saved_shown = 0  # clips of the running recording already in the list
        self._tap = None
        self._record_source: object = None
        self._undo: list[list[Path]] = []  # groups of deleted clips, newest last
        self._info_cache: dict[Path, tuple[float, int, float]] = {}
        self.job: TrainingJob | None = None  # the training running now (gui/training.py)
        self.last_result: TrainEvent | None = None  # the "done" event (out, metrics) of the last training
        self.last_error = ""  # the last problem the panel showed (empty when the last action went well)
        self._build()
        self._recorderChanged.connect(self._on_recorder_state)
        self._ticker = QTimer(self)
        self._ticker.setInterval(100)
        self._ticker.timeout.connect(self._tick)
        controller.sessionStarted.connect(lambda _: self._source_changed())
        controller.sessionEnded.connect(lambda why: self._stop_recording_for(f"the source stopped ({why})"))
        self.refresh()

    # -- construction -------------------------------------------------------------
    def _build(self) -> None:
        self.folder_label = QLabel()
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.folder_button = QPushButton("Folder…")
        self.folder_button.setToolTip("Where recorded clips go: one folder per class, an ordinary dataset for 'twostream train'")
        self.folder_button.clicked.connect(self.choose_folder)

        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("class name, e.g. wave_hello")
        self.name_edit.setToolTip("Letters, digits, '_' or '-'; pick a class in the list below to record more of it")
        self.name_edit.textChanged.connect(self._on_name_changed)
        self.name_edit.returnPressed.connect(self.toggle_recording)
        self.name_error = QLabel()
        self.name_error.setWordWrap(True)
        self.name_error.setStyleSheet(f"color: {ERROR_COLOUR}")
        self.name_error.hide()
        self.clips_box = QSpinBox()
        self.clips_box.setRange(1, 100)
        self.clips_box.setValue(RECOMMENDED_CLIPS)
        self.clips_box.setToolTip(f"Clips to record in one go (at least {MIN_CLIPS} per class to train, {RECOMMENDED_CLIPS} recommended)")
        self.seconds_box = QDoubleSpinBox()
        self.seconds_box.setRange(0.5, 10.0)
        self.seconds_box.setSingleStep(0.5)
        self.seconds_box.setDecimals(1)
        self.seconds_box.setValue(2.0)
        self.seconds_box.setSuffix(" s")
        self.seconds_box.setToolTip("Length of each clip: one performance of the action")
        self.countdown_box = QDoubleSpinBox()
        self.countdown_box.setRange(0.0, 10.0)
        self.countdown_box.setDecimals(0)
        self.countdown_box.setValue(3.0)
        self.countdown_box.setSuffix(" s")
        self.countdown_box.setToolTip("Time to get into place before the first clip (1 s between the following clips)")
        self.record_button = QPushButton("● Record clips")
        self.record_button.setToolTip("Record the clips from the source running now (Ctrl+R); again to stop")
        self.record_button.clicked.connect(self.toggle_recording)
        self.record_status = QLabel()
        big = QFont(self.font())
        big.setPointSizeF(big.pointSizeF() * 1.25)
        big.setBold(True)
        self.record_status.setFont(big)
        self.record_status.setWordWrap(True)

        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["class / clip", "frames", "s"])
        self.tree.setRootIsDecorated(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setMinimumHeight(120)
        self.tree.header().setStretchLastSection(False)
        self.tree.header().resizeSection(1, 56)
        self.tree.header().resizeSection(2, 40)
        self.tree.header().setSectionResizeMode(0, self.tree.header().ResizeMode.Stretch)
        self.tree.itemSelectionChanged.connect(self._on_selection)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Move the selected clips (or a whole class) out of the dataset, into .deleted/ (Del)")
        self.delete_button.clicked.connect(self.delete_selected)
        self.undo_button = QPushButton("Undo delete")
        self.undo_button.setToolTip("Put the last deleted clips back (Ctrl+Z)")
        self.undo_button.clicked.connect(self.undo_delete)

        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Teach the running model these classes, in the background; the result is swapped in live")
        self.train_button.clicked.connect(self.train)
        self.whole_nets = QCheckBox("also fine-tune the whole nets (slower)")
        self.whole_nets.setToolTip("After fitting new heads, train every layer for 3 epochs at a small learning rate "
                                   "(twostream train --finetune all); the heads alone are usually enough")
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
        self.problem_label.setStyleSheet(f"color: {ERROR_COLOUR}")
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
        col.addWidget(self.name_edit)
        col.addWidget(self.name_error)
        grid = QGridLayout()
        grid.setHorizontalSpacing(6)
        for i, (text, box) in enumerate((("clips", self.clips_box), ("each", self.seconds_box), ("countdown", self.countdown_box))):
            grid.addWidget(QLabel(text), 0, i)
            grid.addWidget(box, 1, i)
        col.addLayout(grid)
        col.addWidget(self.record_button)
        col.addWidget(self.record_status)
        col.addWidget(heading("2  Check the clips"))
        col.addWidget(self.tree, 1)
        row = QHBoxLayout()
        row.addWidget(self.delete_button)
        row.addWidget(self.undo_button)
        col.addLayout(row)
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
        self._on_name_changed("")

    # -- state ----------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.library.root

    @property
    def recording(self) -> bool:
        return self.recorder is not None and self.recorder.active

    @property
    def training(self) -> bool:
        return self.job is not None

    def set_root(self, folder: str | Path) -> None:
        if self.recording or self.training:
            self._problem("finish the recording or training first, then choose another folder")
            return
        self.library = ClipLibrary(Path(folder))
        self._undo.clear()
        self.refresh()
        self.message.emit(f"recordings go to {self.root}")

    def choose_folder(self) -> None:
        start = str(self.root if self.root.is_dir() else Path.home())
        path = QFileDialog.getExistingDirectory(self, "Folder for recorded clips (one folder per class)", start)
        if path:
            self.set_root(path)

    def _update_buttons(self) -> None:
        busy_training, recording = self.training, self.recording
        name_ok = self._label_or_none() is not None
        self.record_button.setEnabled((name_ok and not busy_training) or recording)
        self.record_button.setText("■ Stop recording" if recording else "● Record clips")
        for w in (self.name_edit, self.clips_box, self.seconds_box, self.countdown_box, self.folder_button):
            w.setEnabled(not recording and not busy_training)
        self.delete_button.setEnabled(not recording and not busy_training and bool(self.tree.selectedItems()))
        self.undo_button.setEnabled(not recording and not busy_training and bool(self._undo))
        self.train_button.setEnabled(not busy_training and not recording)
        self.whole_nets.setEnabled(not busy_training)
        self.cancel_button.setEnabled(busy_training)

    def _problem(self, text: str) -> None:
        text = self.safe_text(text)
        self.last_error = text
        self.problem_label.setText(text)
        self.problem_label.setVisible(bool(text))
        if text:
            self.message.emit(text)

    def _clear_problem(self) -> None:
        self.last_error = ""
        self.problem_label.hide()

    # -- class name -------------------------------------------------------------------
    def _label_or_none(self) -> str | None:
        try:
            return check_label(self.name_edit.text())
        except UserError:
            return None

    def _on_name_changed(self, text: str) -> None:
        error = ""
        if text.strip():
            try:
                check_label(text)
            except UserError as e:
                error = str(e)
        self.name_error.setText(error)
        self.name_error.setVisible(bool(error))
        self._update_buttons()

    # -- the list of classes and clips ------------------------------------------------
    def counts(self) -> dict[str, int]:
        return self.library.counts()

    def _clip_info(self, path: Path) -> tuple[int, float]:
        mtime = path.stat().st_mtime
        cached = self._info_cache.get(path)
        if cached is None or cached[0] != mtime:
            info = ClipLibrary.info(path)
            cached = self._info_cache[path] = (mtime, info.frames, info.seconds)
        return cached[1], cached[2]

    def refresh(self) -> None:
        """Rebuild the list from the folder (it is the truth: clips added or removed outside the app show up too)."""
        self.folder_label.setText(self.safe_text(str(self.root)))
        self.folder_label.setToolTip(self.safe_text(str(self.root)))
        expanded = {self.tree.topLevelItem(i).text(0).split(" ")[0] for i in range(self.tree.topLevelItemCount())
                    if self.tree.topLevelItem(i).isExpanded()}
        self.tree.clear()
        classes = self.library.classes()
        for label, clips in classes.items():
            item = QTreeWidgetItem([f"{label}  ({len(clips)} clip{'' if len(clips) == 1 else 's'})", "", ""])
            item.setData(0, PATH_ROLE, str(self.root / label))
            if len(clips) < MIN_CLIPS:
                item.setForeground(0, QColor(WARNING_COLOUR))
                item.setToolTip(0, f"at least {MIN_CLIPS} clips are needed to train ({RECOMMENDED_CLIPS} recommended)")
            for clip in clips:
                try:
                    frames, seconds = self._clip_info(clip)
                except OSError:  # removed meanwhile
                    continue
                child = QTreeWidgetItem([clip.name, str(frames), f"{seconds:.1f}"])
                child.setData(0, PATH_ROLE, str(clip))
                child.setTextAlignment(1, Qt.AlignmentFlag.AlignRight)
                child.setTextAlignment(2, Qt.AlignmentFlag.AlignRight)
                item.addChild(child)
            self.tree.addTopLevelItem(item)
            item.setExpanded(label in expanded)
        total = sum(len(c) for c in classes.values())
        self.train_button.setText(f"Train on {len(classes)} class{'' if len(classes) == 1 else 'es'}, {total} clips" if classes else "Train")
        self._update_buttons()

    def _on_selection(self) -> None:
        items = self.tree.selectedItems()
        if len(items) == 1 and not self.recording and not self.training:  # a class picked: record more of it
            item = items[0]
            label = (item.parent() or item).data(0, PATH_ROLE)
            self.name_edit.setText(Path(label).name)
        self._update_buttons()

    def select_clip(self, path: str | Path) -> bool:
        """Select one clip (or a class folder) in the list; False if it is not there."""
        want = str(path)
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for item in (top, *(top.child(j) for j in range(top.childCount()))):
                if item.data(0, PATH_ROLE) == want:
                    self.tree.clearSelection()
                    if item.parent() is not None:
                        item.parent().setExpanded(True)
                    item.setSelected(True)
                    self.tree.scrollToItem(item)
                    return True
        return False

    def delete_selected(self) -> list[Path]:
        """Move the selected clips out of the dataset (a selected class: all its clips, and its folder goes)."""
        if self.recording or self.training:
            return []
        clips: list[Path] = []
        folders: list[Path] = []
        for item in self.tree.selectedItems():
            path = Path(item.data(0, PATH_ROLE))
            if item.parent() is None:
                folders.append(path)
                clips += [Path(item.child(j).data(0, PATH_ROLE)) for j in range(item.childCount())]
            else:
                clips.append(path)
        moved: list[Path] = []
        try:
            for clip in dict.fromkeys(clips):
                moved.append(self.library.delete(clip))
            for folder in folders:  # an empty class folder would count as a class with 0 clips
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
        except (UserError, OSError) as e:
            self._problem(f"could not delete: {e}")
        if moved:
            self._undo.append(moved)
            self._clear_problem()
            what = moved[0].name if len(moved) == 1 else f"{len(moved)} clips"
            self.message.emit(f"deleted {what} (moved to {moved[0].parent}); Undo delete puts it back")
        self.refresh()
        return moved

    def undo_delete(self) -> list[Path]:
        if not self._undo or self.recording or self.training:
            return []
        restored = []
        for path in self._undo.pop():
            try:
                restored.append(self.library.restore(path))
            except (UserError, OSError) as e:
                self._problem(f"could not restore {path.name}: {e}")
        if restored:
            self.message.emit(f"restored {restored[0].name if len(restored) == 1 else f'{len(restored)} clips'}")
        self.refresh()
        return restored

    # -- recording ----------------------------------------------------------------------
    def toggle_recording(self) -> None:
        self.stop_recording() if self.recording else self.start_recording()

    def start_recording(self) -> bool:
        """Record the planned clips of the named class from the running source; False (with the reason shown) if it cannot."""
        if self.recording:
            return False
        if self.training:
            self._problem("training is running: record more clips when it is done")
            return False
        try:
            label = check_label(self.name_edit.text())
        except UserError as e:
            self._problem(str(e))
            return False
        info = self.controller.info
        if info is None or not self.controller.running:
            self._problem("no source is running: open a camera, a file or synthetic:demo first")
            return False
        try:
            rec = Recorder(self.library, label, self.clips_box.value(), self.seconds_box.value(), info.source_fps,
                           countdown=self.countdown_box.value(), gap=self.gap_s, on_change=self._recorderChanged.emit)
        except UserError as e:
            self._problem(str(e))
            return False
        self._clear_problem()
        self.recorder = rec
        self._record_source = self.controller.source

        def tap(frame) -> None:  # type: ignore[no-untyped-def]  # capture thread: a few microseconds, a clip write now and then
            if not rec.feed(frame):
                self.controller.remove_tap(tap)

        self._tap, self._saved_shown = tap, 0
        rec.start()
        self.controller.add_tap(tap)
        self.refresh()  # the class appears in the list at once, with its clips so far
        self._ticker.start()
        self._tick()
        self.message.emit(f"recording {rec.state.clips} clip(s) of '{label}' ({rec.state.frames_per_clip} frames each) into "
                          f"{self.root / label}")
        self._update_buttons()
        return True

    def stop_recording(self) -> None:
        """Stop now: the clips already saved stay, the one being written is discarded."""
        if self.recorder is not None and self.recorder.active:
            self.recorder.cancel()  # on_change -> _on_recorder_state finishes the rest

    def _stop_recording_for(self, why: str) -> None:
        if self.recording:
            kept = len(self.recorder.state.saved)  # type: ignore[union-attr]
            self.stop_recording()
            self._problem(f"recording stopped: {why}; {kept} clip(s) kept")

    def _source_changed(self) -> None:
        if self.recording and self.controller.source is not self._record_source:
            self._stop_recording_for("another source was opened")

    def _on_recorder_state(self, st: RecorderState) -> None:
        rec = self.recorder
        if rec is None or st is not rec.state or self._tap is None:  # queued after the end: already handled
            return
        if st.phase in ("done", "cancelled", "failed"):
            self._finish_recording(st)
            return
        if len(st.saved) != self._saved_shown:  # a clip was saved: its count shows at once
            self._saved_shown = len(st.saved)
            self.refresh()
        self._tick()

    def _finish_recording(self, st: RecorderState) -> None:
        if self._tap is not None:
            self.controller.remove_tap(self._tap)
            self._tap = None
        self._ticker.stop()
        self.overlayChanged.emit("")
        label = self.recorder.label if self.recorder else ""
        if st.phase == "done":
            text = f"✓ {len(st.saved)} clip(s) of '{label}' saved"
            self.message.emit(f"{text} in {self.root / label}")
        elif st.phase == "failed":
            text = ""
            self._problem(f"recording stopped: {st.error}; {len(st.saved)} clip(s) kept")
        else:
            text = f"stopped: {len(st.saved)} clip(s) of '{label}' kept"
            self.message.emit(text)
        self.record_status.setText(text)
        self.record_status.setStyleSheet(f"color: {OK_COLOUR}" if st.phase == "done" else "")
        self.refresh()

    def _tick(self) -> None:
        rec = self.recorder
        if rec is None or not rec.active:
            self._update_buttons()
            return
        st = rec.state
        n = len(st.saved) + 1
        if st.phase in ("countdown", "gap"):
            left = max(1, math.ceil(st.countdown_left)) if st.countdown_left > 0 else 0
            text = f"clip {n}/{st.clips} of '{rec.label}' in {left} s: get ready" if left else f"clip {n}/{st.clips}: starting"
            overlay = str(left) if left else ""
        else:
            text = f"● recording clip {st.clip}/{st.clips} of '{rec.label}': {st.frames_written}/{st.frames_per_clip} frames"
            overlay = f"● {rec.label} {st.clip}/{st.clips}"
        self.record_status.setStyleSheet(f"color: {ERROR_COLOUR}" if st.phase == "recording" else "")
        self.record_status.setText(text)
        self.overlayChanged.emit(overlay)
        self._update_buttons()

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
        args = ["-m", "realtime.cli", "train", "--data", str(self.root), "--from", self.base_model(), "--out", str(out),
                "--progress-json", "--nice", "10", "--finetune", "all" if self.whole_nets.isChecked() else "heads"]
        self.job = TrainingJob(self, args, out, PACKAGE_ROOT)
        self.job.progressed.connect(self._on_progress)
        self.job.ended.connect(self._on_job_ended)
        self._clear_problem()
        self.progress.setValue(0)
        self.stage_label.setText(f"starting: {len(counts)} classes, {sum(counts.values())} clips, from "
                                 f"{Path(self.base_model()).name}…")
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
            self.accuracy_label.setText(f"held-out top-1: fused {acc['fused']:.0%} (spatial {acc.get('spatial', float('nan')):.0%}, "
                                        f"temporal {acc.get('temporal', float('nan')):.0%})")

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
            self.accuracy_label.setText(f"held-out top-1 on {held.get('videos', '?')} clips never used for fitting: "
                                        f"fused {held['fused']:.0%} (spatial {held['spatial']:.0%}, temporal {held['temporal']:.0%})")
        self.result_label.setText(self.safe_text(f"Saved to {done.out} — now running live."))
        self.message.emit(self.safe_text(f"taught model saved to {done.out}; swapping it in"))

    def shutdown(self) -> None:
        """Window closing: stop recording and kill a training (it would not be swapped in anyway)."""
        self._ticker.stop()
        if self.recording:
            self.recorder.cancel()  # type: ignore[union-attr]
        if self._tap is not None:
            self.controller.remove_tap(self._tap)
        if self.job is not None:
            self.job.cancel(wait_ms=2000)
