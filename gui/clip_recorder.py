"""The Teach panel's recording: N clips of S seconds of a named class from the live source, with a countdown.

A `realtime.Recorder` is fed from a frame tap on the running pipeline (the capture thread, before
anything can be dropped), so a clip has every frame the source gave.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import QDoubleSpinBox, QGridLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget

from realtime import check_label, ClipLibrary, MIN_CLIPS, RECOMMENDED_CLIPS, Recorder, RecorderState, UserError

from .controller import Controller
from .widgets import ERROR_COLOUR, OK_COLOUR


class ClipRecorder(QWidget):
    """The class name, how many clips of how long after what countdown, the Record button and what is happening now."""

    changed = pyqtSignal()  # a recording started, saved a clip or ended: the clips on disk and `recording` may differ
    overlayChanged = pyqtSignal(str)  # countdown / clip text for the video view ("" = none)
    message = pyqtSignal(str)  # one line for the status bar
    problem = pyqtSignal(str)  # why a recording could not start or stopped early ("": it went well)
    _recorderChanged = pyqtSignal(object)  # from the capture thread (Recorder.on_change) to the Qt thread

    def __init__(self, controller: Controller, library: ClipLibrary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.library = library
        self.gap_s = 1.0  # seconds between two clips of a run: time to start the action again
        self.blocked = ""  # why no recording may start now ("": it may), e.g. a training running
        self.recorder: Recorder | None = None
        self._saved_shown = 0  # clips of the running recording already announced
        self._tap: Callable[[np.ndarray], None] | None = None  # the frame tap feeding the recorder, while attached
        self._record_source: object = None  # the source it records from: another one opened stops it
        self._build()
        self._recorderChanged.connect(self._on_recorder_state)
        self._ticker = QTimer(self)
        self._ticker.setInterval(100)
        self._ticker.timeout.connect(self._tick)
        controller.sessionStarted.connect(lambda _: self._source_changed())
        controller.sessionEnded.connect(lambda why: self._stop_recording_for(f"the source stopped ({why})"))

    def _build(self) -> None:
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("class name, e.g. wave_hello")
        self.name_edit.setToolTip("Letters, digits, '_' or '-'; pick a class in the list below to record more of it")
        self.name_edit.textChanged.connect(self._on_name_changed)
        self.name_edit.returnPressed.connect(self.toggle_recording)
        self.name_error = QLabel()
        self.name_error.setWordWrap(True)
        self.name_error.setStyleSheet(f"color: {ERROR_COLOUR.name()}")
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

        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(5)
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
        self._on_name_changed("")

    @property
    def recording(self) -> bool:
        return self.recorder is not None and self.recorder.active

    def set_blocked(self, why: str) -> None:
        """No recording may start while `why` is not "" (one already running goes on)."""
        self.blocked = why
        self._update_buttons()

    def _update_buttons(self) -> None:
        recording = self.recording
        self.record_button.setEnabled((self._label_or_none() is not None and not self.blocked) or recording)
        self.record_button.setText("■ Stop recording" if recording else "● Record clips")
        for w in (self.name_edit, self.clips_box, self.seconds_box, self.countdown_box):
            w.setEnabled(not recording and not self.blocked)

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

    # -- recording ----------------------------------------------------------------------
    def toggle_recording(self) -> None:
        self.stop_recording() if self.recording else self.start_recording()

    def start_recording(self) -> bool:
        """Record the planned clips of the named class from the running source; False (with the reason shown) if it cannot."""
        if self.recording:
            return False
        if self.blocked:
            self.problem.emit(self.blocked)
            return False
        try:
            label = check_label(self.name_edit.text())
        except UserError as e:
            self.problem.emit(str(e))
            return False
        info = self.controller.info
        if info is None or not self.controller.running:
            self.problem.emit("no source is running: open a camera, a file or synthetic:demo first")
            return False
        try:
            rec = Recorder(
                self.library,
                label,
                self.clips_box.value(),
                self.seconds_box.value(),
                info.source_fps,
                countdown=self.countdown_box.value(),
                gap=self.gap_s,
                on_change=self._recorderChanged.emit,
            )
        except UserError as e:
            self.problem.emit(str(e))
            return False
        self.problem.emit("")
        self.recorder = rec
        self._record_source = self.controller.source

        def tap(frame: np.ndarray) -> None:  # capture thread: a few microseconds, a clip write now and then
            if not rec.feed(frame):
                self.controller.remove_tap(tap)

        self._tap, self._saved_shown = tap, 0
        rec.start()
        self.controller.add_tap(tap)
        self.changed.emit()  # the class appears in the list at once, with its clips so far
        self._ticker.start()
        self._tick()
        self.message.emit(f"recording {rec.state.clips} clip(s) of '{label}' ({rec.state.frames_per_clip} frames each) into {self.library.root / label}")
        self._update_buttons()
        return True

    def stop_recording(self) -> None:
        """Stop now: the clips already saved stay, the one being written is discarded."""
        if self.recorder is not None and self.recorder.active:
            self.recorder.cancel()  # on_change -> _on_recorder_state finishes the rest

    def shutdown(self) -> None:
        """The window closes: stop recording and let go of the frames."""
        self._ticker.stop()
        if self.recorder is not None and self.recorder.active:
            self.recorder.cancel()
        self._detach()

    def _detach(self) -> None:
        if self._tap is not None:
            self.controller.remove_tap(self._tap)
            self._tap = None

    def _stop_recording_for(self, why: str) -> None:
        if self.recorder is not None and self.recorder.active:
            kept = len(self.recorder.state.saved)
            self.stop_recording()
            self.problem.emit(f"recording stopped: {why}; {kept} clip(s) kept")

    def _source_changed(self) -> None:
        if self.recording and self.controller.source is not self._record_source:
            self._stop_recording_for("another source was opened")

    def _on_recorder_state(self, st: RecorderState) -> None:
        rec = self.recorder
        if rec is None or st is not rec.state or self._tap is None:  # queued after the end: already handled
            return
        if st.phase in ("done", "cancelled", "failed"):
            self._finish_recording(rec, st)
            return
        if len(st.saved) != self._saved_shown:  # a clip was saved: its count shows at once
            self._saved_shown = len(st.saved)
            self.changed.emit()
        self._tick()

    def _finish_recording(self, rec: Recorder, st: RecorderState) -> None:
        self._detach()
        self._ticker.stop()
        self.overlayChanged.emit("")
        label = rec.label
        if st.phase == "done":
            text = f"✓ {len(st.saved)} clip(s) of '{label}' saved"
            self.message.emit(f"{text} in {self.library.root / label}")
        elif st.phase == "failed":
            text = ""
            self.problem.emit(f"recording stopped: {st.error}; {len(st.saved)} clip(s) kept")
        else:
            text = f"stopped: {len(st.saved)} clip(s) of '{label}' kept"
            self.message.emit(text)
        self.record_status.setText(text)
        self.record_status.setStyleSheet(f"color: {OK_COLOUR.name()}" if st.phase == "done" else "")
        self._update_buttons()
        self.changed.emit()

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
        self.record_status.setStyleSheet(f"color: {ERROR_COLOUR.name()}" if st.phase == "recording" else "")
        self.record_status.setText(text)
        self.overlayChanged.emit(overlay)
        self._update_buttons()
