"""The running pipeline's live settings: fusion (mode and spatial weight), smoothing and the "no known action"
threshold. Each control applies at once through the controller; a new session shows what its model uses."""

from __future__ import annotations

from typing import Callable

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QStandardItemModel
from PyQt6.QtWidgets import QComboBox, QLabel, QSlider, QSpinBox

from realtime import FUSION_MODES, UserError

from .controller import Controller
from .session import SessionInfo
from .threshold_box import ThresholdBox


def select(box: QComboBox, text: str) -> None:
    """Show `text` in `box` when it is one of its items (else leave the box as it is)."""
    i = box.findText(text)
    if i >= 0:
        box.setCurrentIndex(i)


class LiveControls:
    """The fusion box, the spatial-weight slider and its label, the smoothing box and the threshold box; the window
    lays them out. `problem(level, text)` and `status(text)` report to the window."""

    def __init__(self, controller: Controller, problem: Callable[[str, str], None], status: Callable[[str], None]):
        self.controller, self._problem, self._status = controller, problem, status
        self.fusion_box = QComboBox()
        self.fusion_box.addItems(FUSION_MODES)
        self.fusion_box.setToolTip("avg: mean of the two streams; weighted: the slider sets the mix; svm: the model's fitted SVM")
        self.fusion_box.activated.connect(lambda i: self.set_fusion_mode(FUSION_MODES[i]))
        self.weight_slider = QSlider(Qt.Orientation.Horizontal)
        self.weight_slider.setRange(0, 100)
        self.weight_slider.setValue(50)
        self.weight_slider.setMinimumWidth(60)
        self.weight_slider.setToolTip("Weight of the spatial (RGB) stream in weighted fusion; the temporal stream gets the rest ([ and ])")
        self.weight_slider.valueChanged.connect(self._on_weight_changed)
        self.weight_label = QLabel()
        self.weight_label.setMinimumWidth(self.weight_label.fontMetrics().horizontalAdvance("spatial 0.50 · temporal 0.50") + 4)
        self.smoothing_box = QSpinBox()
        self.smoothing_box.setRange(1, 120)
        self.smoothing_box.setValue(8)
        self.smoothing_box.setSuffix(" frames")
        self.smoothing_box.setToolTip("Average the fused scores over this many frames, each weighted by its top score (1 = off)")
        self.smoothing_box.valueChanged.connect(self.controller.set_smoothing)
        self.min_score_box = ThresholdBox()
        self.min_score_box.valueChanged.connect(lambda _: self.set_min_score(self.min_score_box.threshold))

    @property
    def spatial_weight(self) -> float | None:
        """The slider's weight when fusion is weighted (None otherwise: the mode decides the mix)."""
        return self.weight_slider.value() / 100 if self.fusion_box.currentText() == "weighted" else None

    def update(self) -> None:
        """The slider on only for weighted fusion; the label says the mix."""
        mode = self.fusion_box.currentText()
        self.weight_slider.setEnabled(mode == "weighted")
        w = self.weight_slider.value() / 100 if mode == "weighted" else 0.5
        self.weight_label.setText(f"spatial {w:.2f} · temporal {1 - w:.2f}" if mode != "svm" else "SVM decides the mix")

    def set_fusion_mode(self, mode: str) -> None:
        """avg, weighted (the slider sets the mix) or svm (when the model has one); applies live."""
        select(self.fusion_box, mode)
        self.apply_fusion()

    def apply_fusion(self) -> None:
        try:
            self.controller.set_fusion(self.fusion_box.currentText(), self.spatial_weight)
        except UserError as e:
            self._problem("error", self.controller.safe_text(str(e)))
            info = self.controller.info
            select(self.fusion_box, info.fusion_mode if info else "avg")
        self.update()

    def _on_weight_changed(self, _: int) -> None:
        self.update()
        if self.fusion_box.currentText() == "weighted":
            self.apply_fusion()

    def nudge_weight(self, delta: float) -> None:
        if self.fusion_box.currentText() != "weighted":
            self.set_fusion_mode("weighted")
        self.weight_slider.setValue(self.weight_slider.value() + round(delta * 100))

    def set_min_score(self, value: float | None) -> None:
        """The "no known action" threshold, live: a number 0..1 is yours (kept for every model, remembered), None the
        running model's own calibrated one."""
        try:
            self.controller.set_min_score(value)
        except UserError as e:
            self._problem("error", str(e))
        info = self.controller.info
        mine = self.controller.min_score
        shown = mine if mine is not None else (info.model_min_score if info is not None else 0.0)
        self.show_min_score()
        whose = "yours" if mine is not None else "the model's own"
        self._status(f"no known action below {shown:.2f} ({whose})" if shown > 0 else f"no known action: off, threshold 0 ({whose})")

    def show_min_score(self, info: SessionInfo | None = None) -> None:
        """Show the threshold in use (the user's, else the running model's own) without setting it."""
        info = info or self.controller.info
        self.min_score_box.display(info.model_min_score if info is not None else 0.0, self.controller.min_score)

    def show_session(self, info: SessionInfo) -> None:
        """A new session (or a swapped-in model): show its fusion, offer SVM only when it has one, show its threshold."""
        select(self.fusion_box, info.fusion_mode)
        if info.fusion_mode == "weighted":
            self.weight_slider.blockSignals(True)
            self.weight_slider.setValue(round(info.spatial_weight * 100))
            self.weight_slider.blockSignals(False)
        items = self.fusion_box.model()
        assert isinstance(items, QStandardItemModel)  # a QComboBox's own model
        svm_item = items.item(FUSION_MODES.index("svm"))
        assert svm_item is not None
        svm_item.setEnabled(info.has_svm)
        svm_item.setToolTip("" if info.has_svm else "this model has no fitted SVM fusion")
        self.update()
        self.show_min_score(info)  # the new model's own, unless the user set one
