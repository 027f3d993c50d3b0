"""Start the desktop app: the QApplication, its look, and the main window."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType

from PyQt6.QtCore import QSettings, QTimer
from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QApplication

from .redaction import safe_text
from .window import MainWindow

log = logging.getLogger("twostream")
ORGANISATION, APPLICATION = "twostream", "twostream-gui"
QT_THREAD_NICENESS = 5  # the view yields the CPU to the pipeline, never the other way round


def lower_qt_thread_priority(niceness: int = QT_THREAD_NICENESS) -> bool:
    """Give the calling (Qt) thread a lower CPU priority than the pipeline's threads. Linux only; True if done.

    On a busy machine the display then waits for the pipeline instead of slowing it. Threads started
    later by this thread inherit the lower priority, so the window's controller starts its loader
    thread (which starts every pipeline) before this is called.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))  # per thread on Linux
        return True
    except OSError as e:
        log.debug("could not lower the Qt thread's priority: %s", e)
        return False


def create_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication with the app's dark look (video and flow read best on dark)."""
    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    apply_dark_theme(app)
    return app


def apply_dark_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    pal = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#1b1e23",
        QPalette.ColorRole.WindowText: "#e6e6e6",
        QPalette.ColorRole.Base: "#14161a",
        QPalette.ColorRole.AlternateBase: "#22262c",
        QPalette.ColorRole.ToolTipBase: "#2a2f36",
        QPalette.ColorRole.ToolTipText: "#f0f0f0",
        QPalette.ColorRole.Text: "#e6e6e6",
        QPalette.ColorRole.Button: "#2a2f36",
        QPalette.ColorRole.ButtonText: "#e6e6e6",
        QPalette.ColorRole.BrightText: "#ff6b6b",
        QPalette.ColorRole.Link: "#4c9be8",
        QPalette.ColorRole.Highlight: "#3d7bd9",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.PlaceholderText: "#8a9099",
    }
    for role, colour in colours.items():
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b7078"))
    app.setPalette(pal)


def open_settings(path: str | Path | None = None) -> QSettings:
    """The settings file given, else Qt's per-user location for this app."""
    if path:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


def run(
    source: str | None = None,
    model: str | None = None,
    engine: str | None = None,
    device: str | None = None,
    source_timeout: float = 5.0,
    settings_path: str | None = None,
    min_score: float | None = None,
) -> int:
    """Open the window and run until it closes. Returns the exit status."""
    app = create_app()
    window = MainWindow(
        open_settings(settings_path), source=source, model=model, engine=engine, device=device, source_timeout=source_timeout, min_score=min_score
    )
    lower_qt_thread_priority()

    def report(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        # A bug in a slot must not abort the app (PyQt's default): log it and show it in the window.
        log.error("internal error: %s", safe_text("".join(traceback.format_exception(kind, value, tb))))
        window.banner.show_message("error", safe_text(f"internal error: {kind.__name__}: {value} (details in the log)"))

    sys.excepthook = report
    # Ctrl+C in the terminal closes the window cleanly; the timer lets Python see the signal while Qt waits.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    window.show()
    return app.exec()
