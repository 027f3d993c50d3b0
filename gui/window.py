"""The main window: the layout of the controls and panels, and their wiring to the controller, the display presenter,
the source and model choosers, the Teach panel, shortcuts and remembered settings."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from PyQt6.QtCore import QSettings, QStandardPaths, Qt, QTimer
from PyQt6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PyQt6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from realtime import ENGINES, device_choices, parse_source, Prediction, trained_dir, UserError

from .choices import DEFAULT_SOURCE, ModelChoices, SourceChoices
from .controller import Controller
from .display import DisplayPresenter, TIMELINE_SECONDS
from .session import RunRequest, SessionInfo
from .settings import FLOW_VIEWS, AppSettings
from .stats import model_title
from .live_controls import LiveControls, select
from .teach import TeachPanel
from .widgets import Banner, FlowView, ScoreBars, StatsPanel, Timeline, VideoView

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mkv *.mov *.m4v *.webm *.mpg *.mpeg *.wmv);;All files (*)"
TEACH_WIDTH = 330  # px, the Teach panel when it opens
SHORTCUTS = (
    ("Space", "pause / resume"),
    ("R", "start / stop recording the annotated view"),
    ("S", "save a snapshot PNG"),
    ("F", "flow: colour image / arrows on the video"),
    ("[  ]", "spatial weight down / up (weighted fusion)"),
    ("Ctrl+O", "open a video file"),
    ("Ctrl+L", "type a source: camera index, URL, file or synthetic:NAME"),
    ("Ctrl+M", "open a model folder"),
    ("Ctrl+T", "show / hide the Teach panel"),
    ("Ctrl+R", "Teach: record clips of the named class / stop"),
    ("Del", "Teach: delete the selected clips (in the list)"),
    ("Ctrl+Z", "Teach: undo the last delete"),
    ("F11", "full screen"),
    ("F1", "this list"),
    ("Ctrl+Q", "quit"),
)


def _timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


class MainWindow(QMainWindow):
    """`twostream gui`: live video with labels, live flow, per-stream scores, a timeline and stats, all from one Pipeline."""

    def __init__(
        self,
        settings: QSettings,
        source: str | None = None,
        model: str | None = None,
        engine: str | None = None,
        device: str | None = None,
        source_timeout: float = 5.0,
        probe_cameras: bool = True,
        display_hz: float | None = None,
        autostart: bool = True,
        min_score: float | None = None,
    ):
        super().__init__()
        self.settings = settings
        self.controller = Controller(source_timeout, self)
        self._info: SessionInfo | None = None
        self.last_saved: Path | None = None
        self._closed = False
        self.resize(1280, 800)
        self.setMinimumSize(900, 600)

        self._build_panels()
        self._build_controls()
        self._build_layout()
        self._build_actions()
        screen = self.screen()
        display_hz = display_hz or min(240.0, max(30.0, screen.refreshRate() if screen is not None else 60.0))
        self.display = DisplayPresenter(self.controller, self.video, self.flow_view, self.bars, self.timeline, self.stats, self.banner, display_hz, self)
        self._load_settings(source, model, engine, device, min_score)

        c = self.controller
        c.sessionStarted.connect(self._on_session_started)
        c.sessionEnded.connect(self._on_session_ended)
        c.problem.connect(self._on_problem)
        c.problemCleared.connect(self._on_problem_cleared)
        c.progress.connect(self._on_progress)
        c.camerasFound.connect(self._on_cameras_found)
        c.recordingStopped.connect(self._on_recording_failed)
        c.modelSwapped.connect(self._on_model_swapped)
        self.teach.modelTaught.connect(self.open_taught_model)
        self.teach.overlayChanged.connect(self._on_teach_overlay)
        self.teach.message.connect(self._status)

        self._update_title()
        self.video.setFocus()
        if probe_cameras:
            c.probe_cameras()
        if autostart:
            self._run(RunRequest(self.source_text, self.model_key, self.engine_box.currentText(), self.device_box.currentText()))

    # -- construction -------------------------------------------------------------
    def _build_panels(self) -> None:
        self.video = VideoView()
        self.video.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # single-key shortcuts work from the start
        self.flow_view = FlowView()
        self.bars = ScoreBars(5)
        self.timeline = Timeline(TIMELINE_SECONDS, 5)
        self.stats = StatsPanel()
        self.banner = Banner(dismissable=True)
        self.model_banner = Banner(dismissable=False)
        self.teach = TeachPanel(self.controller)

    def _build_controls(self) -> None:
        self.source_box = QComboBox()
        self.source_box.setEditable(True)
        self.source_box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.source_box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.source_box.setMinimumContentsLength(18)
        source_line = self.source_box.lineEdit()
        assert source_line is not None  # an editable QComboBox has a line edit (the stubs allow None)
        source_line.setPlaceholderText("0, /dev/video0, rtsp://…, a file, synthetic:demo")
        self.source_box.setToolTip(
            "A camera index or device, an rtsp:// or http(s):// URL, a video file, or synthetic:NAME.\n"
            "Press Enter to open. Credentials in URLs are never shown or remembered."
        )
        self.source_box.activated.connect(self._on_source_activated)
        source_line.returnPressed.connect(self._on_source_return)
        self.source_choices = SourceChoices(self.source_box, self.controller.safe_text, [])
        self.open_button = QPushButton("Open")
        self.open_button.setToolTip("Open the source typed on the left (Enter)")
        self.open_button.clicked.connect(lambda: self.open_source(self.source_choices.typed()))
        self.file_button = QPushButton("File…")
        self.file_button.setToolTip("Open a video file (Ctrl+O)")
        self.file_button.clicked.connect(self.choose_file)

        self.model_box = QComboBox()
        self.model_box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.model_box.setMinimumContentsLength(14)
        self.model_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_box.activated.connect(lambda i: self.open_model(self.model_box.itemData(i)))
        self.model_choices = ModelChoices(self.model_box, [])
        self.model_button = QPushButton("Folder…")
        self.model_button.setToolTip("Open a checkpoint folder (holding model.json and weights.safetensors) (Ctrl+M)")
        self.model_button.clicked.connect(self.choose_model)
        self.engine_box = QComboBox()
        self.engine_box.addItems(ENGINES)
        self.engine_box.setToolTip("Inference back end; auto picks the fastest that works here")
        self.engine_box.activated.connect(lambda _: self._rerun())
        self.device_box = QComboBox()
        self.device_box.addItems(device_choices())
        self.device_box.activated.connect(lambda _: self._rerun())

        self.live = LiveControls(self.controller, self._on_problem, self._status)
        self.flow_box = QComboBox()
        self.flow_box.addItems(["colour image", "arrows on video"])
        self.flow_box.setToolTip("Show flow as a colour image beside the video, or as sparse arrows on it (F)")
        self.flow_box.activated.connect(lambda i: self.set_flow_view(FLOW_VIEWS[i]))
        self.pause_button = QPushButton("❚❚ Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Pause / resume (Space)")
        self.pause_button.toggled.connect(self.set_paused)
        self.record_button = QPushButton("● Record")
        self.record_button.setCheckable(True)
        self.record_button.setToolTip("Record the annotated view to a video file in the output folder (R)")
        self.record_button.clicked.connect(lambda checked: self.start_recording() if checked else self.stop_recording())
        self.snapshot_button = QPushButton("Snapshot")
        self.snapshot_button.setToolTip("Save the annotated view as a PNG in the output folder (S)")
        self.snapshot_button.clicked.connect(lambda: self.save_snapshot())
        self.teach_button = QPushButton("Teach…")
        self.teach_button.setCheckable(True)
        self.teach_button.setToolTip("Record your own actions, train on them and run the result (Ctrl+T)")

    def _build_layout(self) -> None:
        widget: QWidget
        top = QHBoxLayout()
        top.setSpacing(6)
        for widget, stretch in (
            (QLabel("Source"), 0),
            (self.source_box, 4),
            (self.open_button, 0),
            (self.file_button, 0),
            (QLabel("  Model"), 0),
            (self.model_box, 3),
            (self.model_button, 0),
            (QLabel("  Engine"), 0),
            (self.engine_box, 0),
            (QLabel("Device"), 0),
            (self.device_box, 0),
        ):
            top.addWidget(widget, stretch)
        live = QHBoxLayout()
        live.setSpacing(6)
        for widget, stretch in (
            (QLabel("Fusion"), 0),
            (self.live.fusion_box, 0),
            (self.live.weight_slider, 1),
            (self.live.weight_label, 0),
            (QLabel("  Smoothing"), 0),
            (self.live.smoothing_box, 0),
            (QLabel("  Unknown <"), 0),
            (self.live.min_score_box, 0),
            (QLabel("  Flow"), 0),
            (self.flow_box, 0),
        ):
            live.addWidget(widget, stretch)
        live.addSpacing(12)
        for b in (self.pause_button, self.record_button, self.snapshot_button, self.teach_button):
            # Narrower than the style's 80 px when the row is short of room (1280 px holds every control); wider never.
            b.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            b.setMinimumWidth(b.fontMetrics().horizontalAdvance(b.text()) + 14)
            live.addWidget(b)

        def group(title: str, widget: QWidget) -> QGroupBox:
            box = QGroupBox(title)
            lay = QVBoxLayout(box)
            lay.setContentsMargins(4, 4, 4, 4)
            lay.addWidget(widget)
            return box

        self.flow_group = group("Optical flow", self.flow_view)
        self.video_group = group("Video", self.video)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.flow_group)
        right.addWidget(group("Performance", self.stats))
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        upper = QSplitter(Qt.Orientation.Horizontal)
        upper.addWidget(self.video_group)
        upper.addWidget(right)
        upper.setStretchFactor(0, 3)
        upper.setStretchFactor(1, 2)
        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(group("Scores of the top classes", self.bars))
        lower.addWidget(group(f"Fused probability, last {TIMELINE_SECONDS:g} s", self.timeline))
        lower.setStretchFactor(0, 1)
        lower.setStretchFactor(1, 1)
        outer = QSplitter(Qt.Orientation.Vertical)
        outer.addWidget(upper)
        outer.addWidget(lower)
        outer.setStretchFactor(0, 5)
        outer.setStretchFactor(1, 2)
        self.splitters = {"right": right, "upper": upper, "lower": lower, "outer": outer}
        self._default_sizes = {"right": [330, 230], "upper": [740, 500], "lower": [620, 620], "outer": [520, 230]}
        for key, sizes in self._default_sizes.items():
            self.splitters[key].setSizes(sizes)

        central = QWidget()
        col = QVBoxLayout(central)
        col.setContentsMargins(8, 2, 8, 2)
        col.setSpacing(5)
        col.addWidget(self.model_banner)
        col.addWidget(self.banner)
        col.addWidget(outer, 1)
        self.setCentralWidget(central)
        # The two rows of controls are fixed tool bars: they span the whole window, above and below the
        # Teach panel, so opening it narrows only the panels.
        for row, area, margins in ((top, Qt.ToolBarArea.TopToolBarArea, (8, 6, 8, 2)), (live, Qt.ToolBarArea.BottomToolBarArea, (8, 2, 8, 4))):
            holder = QWidget()
            row.setContentsMargins(*margins)
            holder.setLayout(row)
            bar = QToolBar()
            bar.setObjectName("source_model" if area == Qt.ToolBarArea.TopToolBarArea else "live")
            bar.setMovable(False)
            bar.setFloatable(False)
            bar.setStyleSheet("QToolBar { border: 0px; spacing: 0px; padding: 0px; }")
            bar.addWidget(holder)
            self.addToolBar(area, bar)
        self.status_label = QLabel()
        status_bar = self.statusBar()
        assert status_bar is not None  # a QMainWindow makes one on first ask (the stubs allow None)
        status_bar.addWidget(self.status_label, 1)

        scroll = QScrollArea()  # on a small screen the panel scrolls rather than squeezing its list
        scroll.setWidget(self.teach)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(TEACH_WIDTH - 20)
        self.teach_dock = QDockWidget("Teach your own actions", self)
        self.teach_dock.setObjectName("teach")
        self.teach_dock.setWidget(scroll)
        self.teach_dock.setAllowedAreas(Qt.DockWidgetArea.LeftDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.teach_dock)
        self.teach_dock.hide()
        self.teach_dock.visibilityChanged.connect(self._on_teach_visibility)
        self.teach_button.toggled.connect(self.show_teach)

    def _build_actions(self) -> None:
        bar = self.menuBar()
        assert bar is not None  # a QMainWindow makes one on first ask (the stubs allow None)

        def menu(title: str) -> QMenu:
            m = bar.addMenu(title)
            assert m is not None  # addMenu always makes one (the stubs allow None)
            return m

        def action(menu: QMenu, text: str, slot: Callable[..., object], shortcut: str | None = None, checkable: bool = False) -> QAction:
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
                a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            a.setCheckable(checkable)
            (a.toggled if checkable else a.triggered).connect(slot)
            menu.addAction(a)
            return a

        m = menu("&File")
        action(m, "Open video file…", self.choose_file, "Ctrl+O")
        action(m, "Type a source (camera, URL, file)…", self.focus_source, "Ctrl+L")
        action(m, "Open model folder…", self.choose_model, "Ctrl+M")
        action(m, "Output folder for recordings and snapshots…", self.choose_output_dir)
        m.addSeparator()
        action(m, "Quit", self.close, "Ctrl+Q")
        m = menu("&Run")
        self.pause_action = action(m, "Pause", lambda: self.pause_button.toggle(), "Space")
        self.record_action = action(m, "Record / stop recording", lambda: self.record_button.click(), "R")
        action(m, "Save snapshot", lambda: self.save_snapshot(), "S")
        m.addSeparator()
        action(m, "Spatial weight down", lambda: self.live.nudge_weight(-0.05), "[")
        action(m, "Spatial weight up", lambda: self.live.nudge_weight(+0.05), "]")
        action(m, "Rescan cameras", self.controller.probe_cameras)
        m = menu("&Teach")
        self.teach_action = action(m, "Teach panel", self.show_teach, "Ctrl+T", checkable=True)
        action(m, "Record clips / stop", self._teach_record, "Ctrl+R")
        action(m, "Train on the recorded clips", self._teach_train)
        action(m, "Folder for recorded clips…", self._teach_folder)
        clip_list = self.teach.clip_list
        delete = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), clip_list.tree, clip_list.delete_selected)
        delete.setContext(Qt.ShortcutContext.WidgetShortcut)
        undo = QShortcut(QKeySequence(QKeySequence.StandardKey.Undo), self.teach, clip_list.undo_delete)
        undo.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)  # the class-name field keeps its own Ctrl+Z
        m = menu("&View")
        self.arrows_action = action(m, "Flow as arrows on the video", lambda on: self.set_flow_view("arrows" if on else "colour"), "F", checkable=True)
        action(m, "Full screen", self._toggle_full_screen, "F11")
        action(m, "Reset layout", self._reset_layout)
        m = menu("&Help")
        action(m, "Keyboard shortcuts", self.show_shortcuts, "F1")
        action(m, "About", self._about)

    # -- settings -------------------------------------------------------------------
    def _load_settings(self, source: str | None, model: str | None, engine: str | None, device: str | None, min_score: float | None = None) -> None:
        st = AppSettings.load(self.settings, tuple(self.splitters))
        self.source_choices.recent = st.recent_sources
        self.model_choices.recent = [x for x in st.recent_models if (Path(x) / "model.json").is_file()]
        self.output_dir = Path(st.output_dir or _default_output_dir())
        self.source_text = source or st.source or DEFAULT_SOURCE
        self.controller.safe_text.learn(self.source_text)
        self.model_key = str(Path(model).resolve()) if model else st.model
        if self.model_key and not Path(self.model_key).exists():
            self.model_key = ""
        self.source_choices.fill([])
        self.source_choices.show(self.source_text)
        self.model_choices.fill(self.model_key)
        select(self.engine_box, engine or st.engine)
        select(self.device_box, device or st.device)
        live = self.live
        select(live.fusion_box, st.fusion or "avg")
        live.weight_slider.setValue(st.spatial_weight)
        live.smoothing_box.setValue(st.smoothing)
        if st.teach_folder:
            self.teach.set_root(st.teach_folder)
        recorder = self.teach.clip_recorder
        if st.teach_clips is not None:
            recorder.clips_box.setValue(st.teach_clips)
        if st.teach_seconds is not None:
            recorder.seconds_box.setValue(st.teach_seconds)
        if st.teach_countdown is not None:
            recorder.countdown_box.setValue(st.teach_countdown)
        self.set_flow_view(st.flow_view)
        live.update()
        if st.geometry is not None:
            self.restoreGeometry(st.geometry)
        self.show_teach(st.teach_visible)
        for key, state in st.splitters.items():
            self.splitters[key].restoreState(state)
        # The pipeline starts with what the controls say; a first run uses the model's own fusion.
        self.controller.set_smoothing(live.smoothing_box.value())
        # The user's "no known action" threshold: the command line's, else the last one set; none: each model's own.
        try:
            self.controller.set_min_score(min_score if min_score is not None else st.min_score)
        except UserError as e:
            self._on_problem("error", str(e))
        live.show_min_score()
        self.controller.set_fusion(live.fusion_box.currentText() if st.fusion is not None else None, live.spatial_weight)

    def current_settings(self) -> AppSettings:
        """What the window would remember now."""
        recorder = self.teach.clip_recorder
        return AppSettings(
            source=self.controller.source_text or "",  # the last source that opened, not a typo that did not
            recent_sources=self.source_choices.recent,
            model=self.model_key,
            recent_models=self.model_choices.recent,
            engine=self.engine_box.currentText(),
            device=self.device_box.currentText(),
            fusion=self.live.fusion_box.currentText(),
            spatial_weight=self.live.weight_slider.value(),
            smoothing=self.live.smoothing_box.value(),
            min_score=self.controller.min_score,
            flow_view=self.flow_mode,
            output_dir=str(self.output_dir),
            teach_folder=str(self.teach.root),
            teach_clips=recorder.clips_box.value(),
            teach_seconds=recorder.seconds_box.value(),
            teach_countdown=recorder.countdown_box.value(),
            teach_visible=not self.teach_dock.isHidden(),
            geometry=self.saveGeometry(),
            splitters={k: sp.saveState() for k, sp in self.splitters.items()},
        )

    def save_settings(self) -> None:
        self.current_settings().save(self.settings)

    # -- sources and models ------------------------------------------------------------
    def _on_source_activated(self, index: int) -> None:
        data = self.source_box.itemData(index)
        self.open_source(str(data) if data else self.source_choices.typed())

    def _on_source_return(self) -> None:
        if self.source_box.findText(self.source_box.currentText()) < 0:  # a listed item arrives through activated
            self.open_source(self.source_choices.typed())

    def open_source(self, text: str) -> None:
        """Switch to another source (typed, picked, or a file); the current one runs until the new one is open."""
        text = text.strip()
        if not text:
            return
        self.controller.safe_text.learn(text)  # before anything can show it
        try:
            spec = parse_source(text)
        except UserError as e:
            self._on_problem("error", self.controller.safe_text(str(e)))
            return
        if spec.kind == "file" and not Path(spec.target).exists():
            self._on_problem("error", f"{self.controller.safe_text(spec.name)}: no such file")
            return
        self.source_text = text
        self.source_choices.show(text)
        self._run(RunRequest(text, self.model_key, self.engine_box.currentText(), self.device_box.currentText()))

    def open_model(self, key: str | None) -> None:
        """Switch model ("" = default); the current one runs until the new one is ready or refused."""
        self.model_key = str(Path(key).resolve()) if key else ""
        self._run(RunRequest(None, self.model_key, self.engine_box.currentText(), self.device_box.currentText()))

    def open_taught_model(self, path: str) -> None:
        """Run a model the Teach panel just made: swapped into the running pipeline (same source, no restart)."""
        self.model_key = str(Path(path).resolve())
        self._run(RunRequest(None, self.model_key, self.engine_box.currentText(), self.device_box.currentText(), swap=True))

    def _rerun(self) -> None:
        self._run(RunRequest(None, self.model_key, self.engine_box.currentText(), self.device_box.currentText()))

    def _run(self, req: RunRequest) -> None:
        if req.source is None and not self.controller.running and self._info is None:
            req = RunRequest(self.source_text, req.model, req.engine, req.device)
        self.controller.request(req)
        if self._info is None:
            self.video.set_placeholder("Starting…")

    def choose_file(self) -> None:
        start = str(Path(self.source_text).parent) if parse_source(self.source_text).kind == "file" else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a video file", start, VIDEO_FILTER)
        if path:
            self.open_source(path)

    def choose_model(self) -> None:
        start = self.model_key or str(trained_dir())
        path = QFileDialog.getExistingDirectory(self, "Open a checkpoint folder (model.json + weights.safetensors)", start)
        if path:
            self.open_model(path)

    def choose_output_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for recordings and snapshots", str(self.output_dir))
        if path:
            self.output_dir = Path(path)
            self._status(f"recordings and snapshots go to {self.output_dir}")

    def focus_source(self) -> None:
        self.source_box.setFocus()
        line = self.source_box.lineEdit()
        if line is not None:
            line.selectAll()

    # -- view ---------------------------------------------------------------------------
    @property
    def flow_mode(self) -> str:
        """ "colour" (an image beside the video) or "arrows" (on the video)."""
        return self.display.flow_mode

    def set_flow_view(self, mode: str) -> None:
        self.display.flow_mode = mode
        self.flow_box.setCurrentIndex(FLOW_VIEWS.index(mode))
        if hasattr(self, "arrows_action"):
            self.arrows_action.blockSignals(True)
            self.arrows_action.setChecked(mode == "arrows")
            self.arrows_action.blockSignals(False)
        if self.flow_group.isVisibleTo(self) == (mode == "colour") and hasattr(self, "_colour_sizes"):
            return
        upper = self.splitters["upper"]
        if mode == "arrows":  # the flow panel goes: the video takes most of its width, the stats keep enough
            self._colour_sizes = upper.sizes()
            total = sum(self._colour_sizes)
            upper.setSizes([total - 380, 380])
        elif getattr(self, "_colour_sizes", None):
            upper.setSizes(self._colour_sizes)
        self.flow_group.setVisible(mode == "colour")
        if mode == "colour":
            self.video.arrows = []
            self.video.update()

    def set_paused(self, paused: bool) -> None:
        if paused and not self.controller.running:
            self.pause_button.setChecked(False)
            return
        self.controller.pause(paused)
        self.pause_button.setText("▶ Resume" if paused else "❚❚ Pause")
        self.video.paused = paused
        self.video.update()
        self._status("paused" if paused else "running")

    def start_recording(self, path: str | Path | None = None) -> Path | None:
        target = Path(path) if path else self.output_dir / f"twostream-{_timestamp()}.mp4"
        try:
            written = self.controller.start_recording(target)
        except UserError as e:
            self._on_problem("error", f"cannot record: {self.controller.safe_text(str(e))}")
            self.record_button.setChecked(False)
            return None
        self.record_button.setChecked(True)
        self.record_button.setText("■ Stop recording")
        self.video.recording_text = "● REC"
        self._status(f"recording the annotated view to {written}")
        return written

    def stop_recording(self) -> tuple[Path, int] | None:
        done = self.controller.stop_recording()
        self.record_button.setChecked(False)
        self.record_button.setText("● Record")
        self.video.recording_text = ""
        self.video.update()
        if done is not None:
            self.last_saved = done[0]
            self._status(f"saved {done[1]} frames to {done[0]}")
        return done

    def _on_recording_failed(self, path: str, frames: int, error: str) -> None:
        self.stop_recording()
        self._on_problem("error", f"recording stopped after {frames} frames ({path}): {error}")

    def save_snapshot(self, path: str | Path | None = None) -> Path | None:
        """Save the annotated video view, as shown, to a PNG."""
        target = Path(path) if path else self.output_dir / f"twostream-{_timestamp()}.png"
        if not target.parent.is_dir():
            self._on_problem("error", f"cannot save the snapshot: the folder {target.parent} does not exist (File > Output folder)")
            return None
        if not self.video.grab().save(str(target), "PNG"):
            self._on_problem("error", f"cannot save the snapshot to {target} (check permissions and free space)")
            return None
        self.last_saved = target
        self._status(f"snapshot saved to {target}")
        return target

    def show_teach(self, visible: bool = True) -> None:
        opening = visible and self.teach_dock.isHidden()
        self.teach_dock.setVisible(visible)
        if opening:  # wide enough for the clip list and the training messages; the video keeps the rest
            QTimer.singleShot(0, lambda: self.resizeDocks([self.teach_dock], [TEACH_WIDTH], Qt.Orientation.Horizontal))
        for w in (self.teach_button, self.teach_action):
            w.blockSignals(True)
            w.setChecked(visible)
            w.blockSignals(False)
        name_edit = self.teach.clip_recorder.name_edit
        if visible and not name_edit.text():
            name_edit.setFocus()

    def _on_teach_visibility(self, _: bool) -> None:
        for w in (self.teach_button, self.teach_action):  # the dock's own close button hides it too
            w.blockSignals(True)
            w.setChecked(not self.teach_dock.isHidden())
            w.blockSignals(False)

    def _teach_record(self) -> None:
        self.show_teach(True)
        self.teach.clip_recorder.toggle_recording()

    def _teach_train(self) -> None:
        self.show_teach(True)
        self.teach.train()

    def _teach_folder(self) -> None:
        self.show_teach(True)
        self.teach.choose_folder()

    def _on_teach_overlay(self, text: str) -> None:
        self.video.teach_text = text
        self.video.update()

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{v}</td></tr>" for k, v in SHORTCUTS)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")

    def _about(self) -> None:
        from realtime import __version__

        QMessageBox.about(
            self,
            "About twostream",
            f"<b>twostream {__version__}</b><br>Live two-stream (RGB + optical flow) action recognition after Simonyan &amp; Zisserman, NIPS 2014.",
        )

    def _toggle_full_screen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def _reset_layout(self) -> None:
        for key, sizes in self._default_sizes.items():
            self.splitters[key].setSizes(sizes)

    # -- controller signals -----------------------------------------------------------------
    @property
    def frames_shown(self) -> int:
        """Frames drawn since the window opened."""
        return self.display.frames_shown

    @property
    def shown_prediction(self) -> Prediction | None:
        """The prediction the video shows now."""
        return self.display.shown_prediction

    def _on_session_started(self, info: SessionInfo, swapped: bool = False) -> None:
        self._info = info
        self.display.start_session(info, swapped)
        self.source_text = self.controller.source_text or self.source_text
        self.source_choices.remember(self.source_text)
        self.source_choices.show(self.source_text)
        self.model_key = info.model_key
        self.model_choices.remember(info.model_key)
        self.model_choices.fill(self.model_key)
        self.live.show_session(info)
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(False)
        self.pause_button.setText("❚❚ Pause")
        self.pause_button.blockSignals(False)
        self.video.paused = False
        if info.trained:
            self.model_banner.hide()
        else:
            named = "" if "untrained" in info.model_name.lower() else f" ({info.model_name})"
            self.model_banner.show_message(
                "warning",
                f"UNTRAINED MODEL{named}: random weights, so the labels are meaningless. Train one with 'twostream train', or open a trained model (Ctrl+M).",
            )
        self._update_title()
        self._status(f"running {info.source_name} with {model_title(info)} on {info.engine} / {info.device}")
        self.save_settings()

    def _on_model_swapped(self, info: SessionInfo) -> None:
        """A taught (or other) model now runs in the same pipeline: everything that shows labels follows it."""
        self._on_session_started(info, swapped=True)
        self._status(
            f"now recognising {', '.join(info.labels)} with {model_title(info)}"
            f"{f' ({info.accuracy})' if info.accuracy else ''}: swapped in live, the source kept running"
        )

    def _on_session_ended(self, why: str) -> None:
        self._status(f"{why}: press Enter in the source field or Open to start it again")
        self._update_title()

    def _on_problem(self, level: str, text: str) -> None:
        text = self.controller.safe_text(text)
        self.banner.show_message(level, text)
        self._status(text)
        if self.controller.info is None or not self.controller.running:
            self.video.set_placeholder(f"{text}\n\nChoose another source above.")
        if level == "error" and self.controller.info is not None:
            self.model_key = self.controller.info.model_key  # a refused model: the box shows the one still running
            self.model_choices.fill(self.model_key)

    def _on_problem_cleared(self) -> None:
        self.banner.dismiss()

    def _on_progress(self, text: str) -> None:
        self._status(text)
        if not self.controller.running:
            self.video.set_placeholder(text)

    def _on_cameras_found(self, cameras: list[str]) -> None:
        self.source_choices.fill(cameras)
        if cameras:
            self._status(f"cameras found: {', '.join(cameras)}")

    # -- misc ------------------------------------------------------------------------------
    def _status(self, text: str) -> None:
        self.status_label.setText(self.controller.safe_text(text))

    @property
    def status_text(self) -> str:
        return self.status_label.text()

    def _update_title(self) -> None:
        info = self._info
        if info is None:
            self.setWindowTitle("twostream")
            return
        self.setWindowTitle(self.controller.safe_text(f"twostream — {info.source_name} — {model_title(info)}"))

    def createPopupMenu(self) -> QMenu | None:  # noqa: N802 (Qt name)
        return None  # no right-click menu that could hide the control rows

    def closeEvent(self, event: QCloseEvent | None) -> None:  # noqa: N802 (Qt name)
        if event is not None:
            event.accept()
        if self._closed:
            return
        self._closed = True
        self.display.stop()
        if self.controller.recording is not None:
            self.stop_recording()
        self.save_settings()
        self.teach.shutdown()
        self.controller.shutdown(1.0)


def _default_output_dir() -> Path:
    for location in (QStandardPaths.StandardLocation.MoviesLocation, QStandardPaths.StandardLocation.PicturesLocation):
        folder = QStandardPaths.writableLocation(location)
        if folder and Path(folder).is_dir():
            return Path(folder)
    return Path.home()
