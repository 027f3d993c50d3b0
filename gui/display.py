"""The display presenter: draws the newest Prediction on the window's views, no faster than the display rate, and
fills the Performance panel with the rates, latency and counters of the running pipeline."""

from __future__ import annotations

import collections
import time

from PyQt6.QtCore import QObject, Qt, QTimer

from realtime import Prediction

from .controller import Controller
from .session import SessionInfo
from .stats import stats_rows
from .widgets import Banner, FlowView, ScoreBars, StatsPanel, Timeline, VideoView, flow_arrows

TIMELINE_SECONDS = 10.0
BARS_INTERVAL_S = 1 / 15 - 0.004  # the margin keeps a 30 fps source at every other frame despite jitter
TIMELINE_INTERVAL_S = 0.1
STATS_INTERVAL_MS = 500


class DisplayPresenter(QObject):
    """Takes the newest Prediction from the controller and shows it on the video, flow, bars and timeline; every
    STATS_INTERVAL_MS it fills the stats panel. The window builds and lays out the views; this only draws on them."""

    def __init__(
        self,
        controller: Controller,
        video: VideoView,
        flow_view: FlowView,
        bars: ScoreBars,
        timeline: Timeline,
        stats: StatsPanel,
        banner: Banner,
        display_hz: float,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.video, self.flow_view, self.bars, self.timeline, self.stats, self.banner = video, flow_view, bars, timeline, stats, banner
        self.flow_mode = "colour"  # or "arrows": flow drawn on the video instead of beside it
        self.frames_shown = 0
        self.shown_prediction: Prediction | None = None  # the last one drawn
        self._newest: Prediction | None = None
        self._shown: collections.deque[float] = collections.deque(maxlen=240)
        self._last_drawn = self._last_timeline = self._last_bars = 0.0
        self._counts: collections.deque[tuple[float, int, int, int]] = collections.deque(maxlen=5)  # rates over the last ~2 s
        self._stopped = False
        # The display timer: started when a prediction arrives, it draws the newest one no sooner than one
        # display interval after the last drawing. So the view shows every frame a source gives up to the
        # display rate, never more, and a slow view skips to the newest instead of queueing anything.
        self.display_interval = 1.0 / display_hz
        self.display_timer = QTimer(self)
        self.display_timer.setSingleShot(True)
        self.display_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.display_timer.timeout.connect(self._refresh_display)
        self.stats_timer = QTimer(self)
        self.stats_timer.timeout.connect(self.refresh_stats)
        self.stats_timer.start(STATS_INTERVAL_MS)
        controller.predictionReady.connect(self._on_prediction_ready)

    def start_session(self, info: SessionInfo, swapped: bool = False) -> None:
        """A new pipeline (or, `swapped`, a new model in the running one): the views forget the last one's scores."""
        self._counts.clear()
        if swapped:
            self.bars.clear()
        self.video.clip_length = info.clip_length
        self.flow_view.clear()
        self.timeline.clear_history()

    def stop(self) -> None:
        """The window closes: nothing is drawn from now on."""
        self._stopped = True
        self.display_timer.stop()
        self.stats_timer.stop()

    @property
    def display_fps(self) -> float:
        shown = [t for t in self._shown if t > time.monotonic() - 2.0]
        return (len(shown) - 1) / (shown[-1] - shown[0]) if len(shown) > 2 and shown[-1] > shown[0] else 0.0

    def _on_prediction_ready(self) -> None:
        pred = self.controller.take_latest()
        if pred is None:
            return
        self._newest = pred  # an older one not drawn yet is simply replaced
        if not self.display_timer.isActive() and not self._stopped:
            wait = self._last_drawn + self.display_interval - time.monotonic()
            self.display_timer.start(max(0, int(wait * 1000)))

    def _refresh_display(self) -> None:
        pred, self._newest = self._newest, None
        if pred is None or pred.frame is None:
            return
        self._last_drawn = time.monotonic()
        arrows = None
        h, w = pred.frame.shape[:2]
        if pred.flow is not None:
            if self.flow_mode == "arrows":
                arrows = flow_arrows(pred.flow, w, h, self.flow_view.scale.update(pred.flow))
            else:
                self.flow_view.show_flow(pred.flow, pred.frame.shape)
        self.video.show_frame(pred.frame, pred.top(3), pred.truth, pred.ready, arrows, pred.status, pred.known, pred.min_score)
        self.shown_prediction = pred
        now = time.monotonic()
        self._shown.append(now)
        self.frames_shown += 1
        # Video and flow follow every frame; the bars (smoothed scores) at 15 Hz and the 10 s timeline at
        # 10 Hz are as smooth to the eye, and never on the same frame: the Qt thread's work stays small and even.
        if now - self._last_bars >= BARS_INTERVAL_S:
            self._last_bars = now
            self.bars.show_scores(pred.labels, pred.spatial, pred.temporal, pred.fused, pred.min_score, pred.known)
        elif now - self._last_timeline >= TIMELINE_INTERVAL_S:
            self._last_timeline = now
            ts, scores, labels, minimums, known = self.controller.history.window(pred.capture_ts - TIMELINE_SECONDS)
            self.timeline.show_history(ts, scores, labels, pred.capture_ts, minimums, known)

    def refresh_stats(self) -> None:
        """The stats panel as of now (the stats timer calls it; so may anyone who wants it current)."""
        st = self.controller.stats()
        recording = self.controller.recording
        if recording is not None:
            self.video.recording_text = f"● REC {recording[1]} frames"
        if not st:
            return
        now = time.monotonic()
        counts = (now, st["captured"], st["flowed"], st["predicted"])
        self._counts.append(counts)
        first = self._counts[0]
        dt = now - first[0]
        rates = [max(0.0, (a - b) / dt) if dt > 0 else 0.0 for a, b in zip(counts[1:], first[1:])]
        for row, text, colour in stats_rows(st, (rates[0], rates[1], rates[2]), self.display_fps, self.timeline.unknown_fraction, TIMELINE_SECONDS):
            self.stats.set(row, text, colour)
        source = self.controller.source
        if st["status"] == "reconnecting" and source is not None and source.status_message:
            self.banner.show_message("warning", self.controller.safe_text(source.status_message))  # with the attempt count as it grows
