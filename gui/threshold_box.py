"""The "no known action" threshold control: the user's number, or (its lowest step) the running model's own."""

from __future__ import annotations

from PyQt6.QtWidgets import QDoubleSpinBox


class ThresholdBox(QDoubleSpinBox):
    """The "no known action" threshold: 0.00 to 1.00 is the user's; the lowest step, shown as "model 0.42", is the
    running model's own calibrated one (None). Stepping up from it starts at the model's number."""

    MODEL = -0.01

    def __init__(self) -> None:
        super().__init__()
        self.setRange(self.MODEL, 1.0)
        self.setSingleStep(0.01)
        self.setDecimals(2)
        self.setKeyboardTracking(False)  # a typed value applies on Enter (arrows and the wheel step at once)
        self.model_value = 0.0
        self.setSpecialValueText("model 0.00")
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("model 0.00") + 28)
        self.setValue(self.MODEL)

    @property
    def mine(self) -> bool:
        return self.value() > self.MODEL / 2

    @property
    def threshold(self) -> float | None:
        """The user's threshold, or None for the model's own."""
        return round(self.value(), 2) if self.mine else None

    def display(self, model_value: float, mine: float | None) -> None:
        """Show `mine` (or, if None, the model's own `model_value`) without signalling a change."""
        self.blockSignals(True)
        if model_value != self.model_value or not self.specialValueText():
            self.model_value = model_value
            self.setSpecialValueText(f"model {model_value:.2f}")
        if self.threshold != mine:  # never rewrite the text under the user's cursor for nothing
            self.setValue(self.MODEL if mine is None else mine)
        self.blockSignals(False)
        value = model_value if mine is None else mine
        whose = (
            "yours; the lowest step, 'model', goes back to the model's own"
            if mine is not None
            else "the model's own, calibrated on clips its nets did not train on"
        )
        self.setToolTip(
            f"No known action below {value:.2f} ({whose}).\nA frame whose fused top score is below this names "
            "no class; its scores stay visible.\nA value you set is kept for every model you open, and remembered. "
            "0 always names the top class."
        )

    def stepBy(self, steps: int) -> None:  # noqa: N802 (Qt name)
        if not self.mine and steps > 0:
            self.setValue(self.model_value)  # from the model's own: go on from its number
        else:
            super().stepBy(steps)
