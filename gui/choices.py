"""What the source and model choosers list: cameras found, the demo and recent sources; the default, shipped, taught
and recently opened models. The window builds the two combo boxes; these fill them."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PyQt6.QtWidgets import QComboBox

from realtime import default_model_path, shipped_models, trained_dir, user_models_dir

from .settings import RECENT_MAX, remembered

DEFAULT_SOURCE = "synthetic:demo"


def taught_models(limit: int = 8) -> list[Path]:
    """The newest checkpoints in the taught-models folder (for the model chooser)."""
    try:
        found = [p.parent.resolve() for p in user_models_dir().glob("*/model.json")]
    except Exception:  # no user data directory on this system: nothing taught yet
        return []
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)[:limit]


def short_path(path: str) -> str:
    p = Path(path)
    return f"…/{p.parent.name}/{p.name}" if len(path) > 40 else path


class SourceChoices:
    """The source field's list, and the field's text: every source is shown redacted, and what was typed behind a
    redacted text is kept (in memory only) so that picking it again opens the real thing."""

    def __init__(self, box: QComboBox, safe_text: Callable[[str], str], recent: list[str]) -> None:
        self.box = box
        self.safe_text = safe_text
        self.recent = recent  # sources that opened, newest first (only those without credentials)
        self.cameras: list[str] = []
        self._typed_behind: dict[str, str] = {}  # shown (redacted) text -> what was typed

    def fill(self, cameras: list[str] | None = None) -> None:
        """List the cameras (the last ones found unless given), the demo and the recent sources; the typed text stays."""
        if cameras is not None:
            self.cameras = cameras
        box = self.box
        text = box.currentText()
        box.clear()
        for name in self.cameras:  # "/dev/video0 (640x480)"
            box.addItem(f"camera {name}", name.split(" (")[0])
        box.addItem("synthetic:demo (built-in test scene)", DEFAULT_SOURCE)
        for recent in self.recent:
            if recent != DEFAULT_SOURCE and box.findData(recent) < 0:
                box.addItem(recent, recent)
        box.setEditText(text)

    def remember(self, text: str) -> None:
        """A source opened: first in the recent list (unless it holds credentials, or is the demo, listed anyway)."""
        if remembered(text) and text != DEFAULT_SOURCE:
            self.recent = [text] + [x for x in self.recent if x != text][: RECENT_MAX - 1]
            self.fill()

    def show(self, text: str) -> None:
        """Put `text` in the field, redacted."""
        shown = self.safe_text(text)
        if shown != text:
            self._typed_behind[shown] = text
        self.box.setEditText(shown)

    def typed(self) -> str:
        """The source in the field, as typed (credentials included where the field shows them redacted)."""
        text = self.box.currentText().strip()
        return self._typed_behind.get(text, text)


class ModelChoices:
    """The model chooser's list: the default model, the other shipped ones, taught ones, recently opened folders."""

    def __init__(self, box: QComboBox, recent: list[str]) -> None:
        self.box = box
        self.recent = recent  # checkpoint folders opened, newest first

    def remember(self, key: str) -> None:
        if key and key not in self.recent:
            self.recent.insert(0, key)

    def fill(self, selected: str) -> None:
        """List every model and select `selected` (a checkpoint folder; "" the default model)."""
        box = self.box
        box.clear()
        default_path = default_model_path()
        if default_path is None:
            default_name = "UNTRAINED: none in trained/"
        elif default_path.resolve().parent == trained_dir().resolve():
            default_name = f"trained/{default_path.name}"
        else:  # $TWOSTREAM_MODEL
            default_name = short_path(str(default_path))
        box.addItem(f"default ({default_name})", "")
        for path in shipped_models():
            if default_path is None or path.resolve() != default_path.resolve():
                box.addItem(f"trained/{path.name}", str(path.resolve()))
        for path in taught_models():
            if box.findData(str(path)) < 0:
                box.addItem(f"taught/{path.name}", str(path))
        for recent in self.recent:
            if box.findData(recent) < 0:
                box.addItem(short_path(recent), recent)
        if selected and box.findData(selected) < 0:
            box.addItem(short_path(selected), selected)
        box.setCurrentIndex(max(0, box.findData(selected)))
        box.setToolTip(f"Checkpoints in {trained_dir()} and recently opened folders")
