"""What the app remembers between runs: one dataclass over QSettings, read and written in one place.

Every value is checked on the way in (a hand-edited or old settings file gives the defaults, never
an exception), and a source with credentials in it is never written (`remembered`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from PyQt6.QtCore import QSettings

from realtime import redact

from .redaction import safe_text

D = TypeVar("D")  # what a missing or malformed stored value reads as

RECENT_MAX = 8
FLOW_VIEWS = ("colour", "arrows")


def remembered(text: str) -> bool:
    """Only sources without credentials are written to the settings file."""
    return redact(text) == text and safe_text(text) == text


@dataclass
class AppSettings:
    source: str = ""  # the last source that opened ("" : none yet)
    recent_sources: list[str] = field(default_factory=list)
    model: str = ""  # a checkpoint directory ("": the default model)
    recent_models: list[str] = field(default_factory=list)
    engine: str = "auto"
    device: str = "auto"
    fusion: str | None = None  # None: never set, each model's own
    spatial_weight: int = 50  # percent, for fusion "weighted"
    smoothing: int = 8
    min_score: float | None = None  # the user's "no known action" threshold; None: each model's own
    flow_view: str = "colour"
    output_dir: str = ""  # "": the Movies (or Pictures, or home) folder
    teach_folder: str = ""
    teach_clips: int | None = None  # None: the panel's own default
    teach_seconds: float | None = None
    teach_countdown: float | None = None
    teach_visible: bool = False
    geometry: Any = None  # Qt's opaque window and splitter states, passed through
    splitters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, s: QSettings, splitters: tuple[str, ...] = ()) -> "AppSettings":
        d = cls()
        weight = _int(s.value("spatial_weight"), d.spatial_weight)
        smoothing = _int(s.value("smoothing"), d.smoothing)
        threshold = _float(s.value("min_score"), -1.0)
        fusion = s.value("fusion")
        flow_view = str(s.value("flow_view", d.flow_view))
        return cls(
            source=str(s.value("source", "") or ""),
            recent_sources=[x for x in _list(s.value("recent_sources")) if remembered(x)],
            model=str(s.value("model", "") or ""),
            recent_models=_list(s.value("recent_models")),
            engine=str(s.value("engine", d.engine) or d.engine),
            device=str(s.value("device", d.device) or d.device),
            fusion=str(fusion) if fusion not in (None, "") else None,
            spatial_weight=weight if 0 <= weight <= 100 else d.spatial_weight,
            smoothing=smoothing if smoothing >= 1 else d.smoothing,
            min_score=threshold if 0.0 <= threshold <= 1.0 else None,
            flow_view=flow_view if flow_view in FLOW_VIEWS else d.flow_view,
            output_dir=str(s.value("output_dir", "") or ""),
            teach_folder=str(s.value("teach/folder", "") or ""),
            teach_clips=_int(s.value("teach/clips"), None),
            teach_seconds=_float(s.value("teach/seconds"), None),
            teach_countdown=_float(s.value("teach/countdown"), None),
            teach_visible=str(s.value("teach/visible", "false")).lower() == "true",
            geometry=s.value("geometry"),
            splitters={k: v for k in splitters if (v := s.value(f"splitter/{k}")) is not None},
        )

    def save(self, s: QSettings) -> None:
        if self.source and remembered(self.source):
            s.setValue("source", self.source)
        s.setValue("recent_sources", [x for x in self.recent_sources if remembered(x)][:RECENT_MAX])
        s.setValue("model", self.model)
        s.setValue("recent_models", self.recent_models[:RECENT_MAX])
        for key in ("engine", "device", "spatial_weight", "smoothing", "flow_view", "output_dir"):
            s.setValue(key, getattr(self, key))
        if self.fusion is not None:
            s.setValue("fusion", self.fusion)
        s.setValue("min_score", "" if self.min_score is None else f"{self.min_score:.2f}")  # "": the model's own
        s.setValue("teach/folder", self.teach_folder)
        for key in ("clips", "seconds", "countdown"):
            value = getattr(self, f"teach_{key}")
            if value is not None:
                s.setValue(f"teach/{key}", value)
        s.setValue("teach/visible", self.teach_visible)
        if self.geometry is not None:
            s.setValue("geometry", self.geometry)
        for key, state in self.splitters.items():
            s.setValue(f"splitter/{key}", state)
        s.sync()


def _list(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [str(v) for v in value]
    return []


def _int(value: object, default: D) -> int | D:
    """A stored number (QSettings gives text, or the number itself) as an int; `default` for anything else."""
    if not isinstance(value, (int, float, str)):
        return default
    try:
        return int(value)
    except (ValueError, OverflowError):
        return default


def _float(value: object, default: D) -> float | D:
    if not isinstance(value, (int, float, str)):
        return default
    try:
        return float(value)
    except ValueError:
        return default
