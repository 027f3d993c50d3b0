"""The desktop app, offscreen: a real window on a real pipeline (synthetic source, tiny untrained models, CPU)."""

from __future__ import annotations

import copy
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest

pytest.importorskip("PyQt6.QtWidgets", reason="the GUI tests need PyQt6: pip install 'twostream[gui]'")
pytest.importorskip("pyqtgraph", reason="the GUI tests need pyqtgraph: pip install 'twostream[gui]'")

from PyQt6.QtCore import QSettings, Qt  # noqa: E402

from gui.window import MainWindow  # noqa: E402
from realtime.nets.checkpoint import ModelConfig, TwoStreamModel  # noqa: E402
from realtime.stream.flow import FlowSettings  # noqa: E402
from realtime.io.sources import FrameSource  # noqa: E402
from realtime.io.synthetic import SyntheticClip  # noqa: E402

pytestmark = pytest.mark.gui

SOURCE = "synthetic:demo?fps=30&size=160x120"
SECRET_URL = "rtsp://user:secret@127.0.0.1:1/x"
WAIT_MS = 20_000  # generous for a loaded 2-core machine; the tests pass in a fraction of it


def _threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("twostream-") and t.is_alive())


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model: TwoStreamModel) -> Path:
    """The conftest's tiny model (labels a..d) as a checkpoint directory, loaded as a user would."""
    return tiny_model.save(tmp_path_factory.mktemp("models") / "tiny-abcd")


@pytest.fixture(scope="session")
def other_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny model with other labels and another clip length, to see a model switch on screen."""
    cfg = ModelConfig(
        labels=["walk", "run", "jump"],
        spatial_arch="mobilenet_v2_035",
        temporal_arch="mobilenet_v2_035",
        input_size=64,
        clip_length=2,
        flow=FlowSettings(width=72, height=72),
        trained=False,
        provenance={"name": "tiny-wrj"},
    )
    return TwoStreamModel.create(cfg, seed=1).save(tmp_path_factory.mktemp("models") / "tiny-wrj")


@pytest.fixture(scope="session")
def calibrated_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model: TwoStreamModel) -> Path:
    """The tiny model with a calibrated "no known action" threshold of 0.6 in its checkpoint (same inputs: swaps in live)."""
    model = copy.deepcopy(tiny_model)
    model.config.fusion.min_score = 0.6
    model.config.provenance = {"name": "tiny-calibrated"}
    return model.save(tmp_path_factory.mktemp("models") / "tiny-calibrated")


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return tmp_path / "settings" / "twostream-gui.ini"  # never the user's own settings


@pytest.fixture
def open_window(qtbot, settings_file: Path, model_dir: Path):  # type: ignore[no-untyped-def]
    """Open MainWindows (closed again at the end of the test); the default runs SOURCE on the tiny model."""
    windows: list[MainWindow] = []

    def make(source: str | None = SOURCE, model: Path | None = model_dir, timeout: float = 2.0, min_score: float | None = None) -> MainWindow:
        w = MainWindow(
            QSettings(str(settings_file), QSettings.Format.IniFormat),
            source=source,
            model=str(model) if model else None,
            engine="torch",
            device="cpu",
            source_timeout=timeout,
            probe_cameras=False,
            min_score=min_score,
        )
        qtbot.addWidget(w)
        w.resize(1100, 720)
        w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()


def _number(text: str) -> float:
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        return -1.0


def wait_for_frames(qtbot, w: MainWindow, n: int = 3) -> None:  # type: ignore[no-untyped-def]
    start = w.frames_shown
    qtbot.waitUntil(lambda: w.frames_shown >= start + n, timeout=WAIT_MS)


def test_predictions_reach_the_labels_bars_timeline_flow_and_stats(qtbot, open_window, tiny_model) -> None:
    w = open_window()
    labels = set(tiny_model.config.labels)
    # The temporal stream is ready after L flow fields; the timeline needs a few predictions.
    qtbot.waitUntil(lambda: bool(w.bars.rows) and w.bars.rows[0][2] is not None and len(w.controller.history) > 10, timeout=WAIT_MS)
    wait_for_frames(qtbot, w, 4)

    assert w.video.has_image and len(w.video.top) == 3 and {lab for lab, _ in w.video.top} <= labels
    scores = [s for _, s in w.video.top]
    assert scores == sorted(scores, reverse=True)
    assert w.video.truth is not None  # the synthetic source knows the true class

    rows = w.bars.rows
    assert len(rows) == 4 and {r[0] for r in rows} == labels  # 4 labels, top 5 asked
    fused = [r[3] for r in rows]
    assert fused == sorted(fused, reverse=True) and abs(sum(fused) - 1) < 1e-3
    assert all(0 <= r[1] <= 1 and r[2] is not None and 0 <= r[2] <= 1 for r in rows)  # spatial and temporal side by side

    qtbot.waitUntil(lambda: len(w.timeline.classes) == 4, timeout=WAIT_MS)
    x, y = w.timeline.curves[0].getData()
    assert len(x) > 5 and -w.timeline.seconds - 0.5 <= x.min() and x.max() <= 0.0 and ((0 <= y) & (y <= 1)).all()
    assert set(w.timeline.classes) == labels

    assert w.flow_view.has_image and w.flow_view.full_speed > 0
    qtbot.waitUntil(lambda: _number(w.stats.values["infer"].text()) > 5 and _number(w.stats.values["display"].text()) > 5, timeout=WAIT_MS)
    assert w.stats.values["engine"].text().startswith("torch") and w.stats.values["device"].text() == "cpu"
    assert "ms" in w.stats.values["latency"].text()
    assert "synthetic:demo" in w.windowTitle() and "tiny-test" in w.windowTitle()
    assert w.model_banner.isVisible() and "UNTRAINED" in w.model_banner.label.text()  # the window says the model is untrained


def test_switching_source_and_model_while_running(qtbot, open_window, video_file: Path, other_model_dir: Path) -> None:
    w = open_window()
    wait_for_frames(qtbot, w)
    assert w.controller.info.source_kind == "synthetic"

    w.open_source(str(video_file))  # 160x120 file of 40 frames at 25 fps
    qtbot.waitUntil(lambda: w.controller.info.source_kind == "file", timeout=WAIT_MS)
    wait_for_frames(qtbot, w)
    assert w.video.truth is None  # a file has no ground truth: these frames come from the file
    assert "clip.avi" in w.windowTitle()

    w.open_model(str(other_model_dir))
    qtbot.waitUntil(lambda: w.controller.info.model_name == "tiny-wrj", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: bool(w.bars.rows) and {r[0] for r in w.bars.rows} == {"walk", "run", "jump"}, timeout=WAIT_MS)
    assert {lab for lab, _ in w.video.top} <= {"walk", "run", "jump"}
    assert w.controller.info.source_kind == "file" and "tiny-wrj" in w.windowTitle()
    assert w.model_box.currentData() == str(other_model_dir.resolve())

    w.open_source("synthetic:wave?fps=30&size=96x72")
    qtbot.waitUntil(lambda: w.video.truth == "wave", timeout=WAIT_MS)
    assert w.controller.info.model_name == "tiny-wrj"  # the model stays when the source changes
    assert _threads().count("twostream-capture") == 1 and _threads().count("twostream-gui-reader") == 1  # old pipelines are gone


def test_a_refused_model_is_reported_and_the_running_one_keeps_going(qtbot, open_window, tmp_path: Path) -> None:
    w = open_window()
    wait_for_frames(qtbot, w)
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    w.open_model(str(not_a_model))
    qtbot.waitUntil(lambda: w.banner.level == "error", timeout=WAIT_MS)
    assert "model refused" in w.banner.text and "model.json" in w.banner.text
    wait_for_frames(qtbot, w, 5)  # still running, on the old model
    assert w.controller.info.model_name == "tiny-test" and {r[0] for r in w.bars.rows} == {"a", "b", "c", "d"}
    assert w.model_box.currentData() == w.controller.info.model_key


@pytest.mark.parametrize("url", [SECRET_URL, "rtsp://admin:a secret@pw/?#@127.0.0.1:1/x?token=secret2"])
def test_a_bad_url_shows_an_error_keeps_the_app_usable_and_never_shows_the_secret(qtbot, open_window, settings_file: Path, url: str) -> None:
    w = open_window(timeout=1.0)
    wait_for_frames(qtbot, w)
    w.source_box.setEditText(url)
    qtbot.keyClick(w.source_box.lineEdit(), Qt.Key.Key_Return)  # typed and Enter, as a user does
    qtbot.waitUntil(lambda: w.banner.level == "error", timeout=WAIT_MS)
    assert "127.0.0.1:1" in w.banner.text and "***" in w.banner.text
    wait_for_frames(qtbot, w, 5)  # the synthetic source it was running keeps running
    assert w.controller.info.source_kind == "synthetic"

    w.close()  # settings are written on close
    shown = [
        w.windowTitle(),
        w.status_text,
        w.banner.text,
        w.source_box.currentText(),
        w.video.placeholder,
        *(w.source_box.itemText(i) for i in range(w.source_box.count())),
        *(v.text() for v in w.stats.values.values()),
    ]
    assert not [s for s in shown if "secret" in s]
    assert "secret" not in settings_file.read_text()


def test_a_bad_url_at_start_leaves_a_usable_window(qtbot, open_window) -> None:
    w = open_window(source=SECRET_URL, timeout=1.0)
    qtbot.waitUntil(lambda: w.banner.level == "error", timeout=WAIT_MS)
    assert not w.controller.running and "secret" not in w.video.placeholder and "127.0.0.1" in w.video.placeholder
    assert "secret" not in w.windowTitle() + w.status_text
    w.open_source(SOURCE)
    wait_for_frames(qtbot, w)
    assert w.controller.info.source_kind == "synthetic" and not w.banner.isVisible()


class _DroppingStream(FrameSource):
    """A live stream that drops after 15 frames and comes back after `down_s`, reconnecting inside read() as OpenCVSource does."""

    def __init__(self, name: str, down_s: float = 1.0):
        self.name, self.fps, self.is_live = name, 30.0, True
        self.clip = SyntheticClip("swipe_right", 0, 160, 120)
        self.n, self.down_s, self.closed = 0, down_s, False
        self._cancel = self._on_status = None

    def read(self):  # type: ignore[no-untyped-def]
        if self._cancel is not None and self._cancel.is_set():
            return None
        if self.n == 15:
            self.status, self.status_message = "reconnecting", f"{self.name}: the stream ended or the connection was lost, reconnecting"
            self._on_status and self._on_status(self.status, self.status_message)
            end = time.monotonic() + self.down_s
            while time.monotonic() < end:
                if self._cancel is not None and self._cancel.wait(0.02):
                    return None
                self.status_message = f"{self.name}: the stream ended or the connection was lost, reconnecting (attempt 2)"
            self.reconnects += 1
            self.status, self.status_message = "ok", f"{self.name}: reconnected after {self.down_s:.1f} s (2 attempts)"
            self._on_status and self._on_status(self.status, self.status_message)
        time.sleep(1 / 30)
        self.n += 1
        return self.clip.frame(self.n)

    def close(self) -> None:
        self.closed = True


def test_a_lost_stream_shows_reconnecting_then_recovers_without_showing_credentials(qtbot, open_window, monkeypatch) -> None:
    import gui.controller

    opened: list[_DroppingStream] = []

    def fake_open(spec, realtime=False, timeout_s=5.0):  # type: ignore[no-untyped-def]
        opened.append(_DroppingStream(spec.name))  # spec.name is the redacted URL, as OpenCVSource names itself
        return opened[-1]

    monkeypatch.setattr(gui.controller, "open_source", fake_open)
    w = open_window("rtsp://admin:hunter2@cam.local/stream1")
    qtbot.waitUntil(lambda: w.banner.level == "warning" and "reconnecting" in w.banner.text, timeout=WAIT_MS)
    assert "cam.local" in w.banner.text and "hunter2" not in w.banner.text
    qtbot.waitUntil(lambda: "reconnecting" in w.stats.values["source"].text(), timeout=WAIT_MS)
    shown = w.frames_shown
    qtbot.waitUntil(lambda: not w.banner.isVisible(), timeout=WAIT_MS)  # back: the warning goes
    wait_for_frames(qtbot, w, 5)
    assert w.frames_shown > shown and "reconnected" in w.status_text
    assert not [t for t in (w.windowTitle(), w.status_text, w.source_box.currentText()) if "hunter2" in t]
    assert len(opened) == 1  # the source reconnected by itself; the window did not reopen it


def test_typing_in_the_source_field_is_not_taken_for_shortcuts(qtbot, open_window) -> None:
    w = open_window()
    wait_for_frames(qtbot, w)
    w.focus_source()
    qtbot.keyClicks(w.source_box.lineEdit(), "rs f")
    assert w.source_box.currentText() == "rs f"
    assert w.controller.recording is None and not w.controller.paused and w.flow_mode == "colour"


def test_recording_writes_a_video_that_opencv_reads_back_frame_for_frame(qtbot, open_window, tmp_path: Path) -> None:
    w = open_window()
    w.output_dir = tmp_path
    wait_for_frames(qtbot, w)
    qtbot.keyClick(w.video, Qt.Key.Key_R)  # the shortcut starts recording into the output folder
    assert w.controller.recording is not None
    qtbot.waitUntil(lambda: w.controller.recording[1] >= 25, timeout=WAIT_MS)
    qtbot.keyClick(w.video, Qt.Key.Key_R)  # and stops it
    assert w.controller.recording is None
    path = w.last_saved
    assert path is not None and path.parent == tmp_path and path.suffix == ".mp4"
    frames_written = int(w.status_text.split("saved ")[1].split(" frames")[0])
    assert frames_written >= 25

    cap = cv2.VideoCapture(str(path))
    shapes = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        shapes.append(frame.shape)
    cap.release()
    assert len(shapes) == frames_written and set(shapes) == {(120, 160, 3)}  # every prediction, at the source's size


def test_snapshot_saves_the_annotated_view_as_png(qtbot, open_window, tmp_path: Path) -> None:
    w = open_window()
    w.output_dir = tmp_path
    wait_for_frames(qtbot, w)
    qtbot.keyClick(w.video, Qt.Key.Key_S)
    path = w.last_saved
    assert path is not None and path.suffix == ".png" and path.parent == tmp_path
    image = cv2.imread(str(path))
    ratio = w.video.devicePixelRatioF()
    assert image.shape[:2] == (round(w.video.height() * ratio), round(w.video.width() * ratio))
    assert image.std() > 10  # a picture, not a blank widget


def test_pause_freezes_the_view_and_resume_continues(qtbot, open_window) -> None:
    w = open_window()
    wait_for_frames(qtbot, w)
    qtbot.keyClick(w.video, Qt.Key.Key_Space)
    assert w.controller.paused and w.video.paused
    last = [w.frames_shown, time.monotonic()]

    def settled() -> bool:  # the frames already in the pipeline have arrived: nothing new for 300 ms
        if w.frames_shown != last[0]:
            last[:] = [w.frames_shown, time.monotonic()]
        return time.monotonic() - last[1] > 0.3

    qtbot.waitUntil(settled, timeout=WAIT_MS)
    frozen = w.frames_shown
    qtbot.wait(700)
    assert w.frames_shown == frozen
    qtbot.keyClick(w.video, Qt.Key.Key_Space)
    assert not w.controller.paused
    wait_for_frames(qtbot, w, 5)


def test_fusion_weight_and_smoothing_change_the_live_scores(qtbot, open_window) -> None:
    w = open_window()
    wait_for_frames(qtbot, w)
    w.live.smoothing_box.setValue(1)  # no smoothing: a fused score is this frame's
    w.live.set_fusion_mode("weighted")
    w.live.weight_slider.setValue(100)  # spatial only
    assert w.controller.info.fusion_mode == "weighted" and w.controller.info.spatial_weight == 1.0
    qtbot.waitUntil(lambda: bool(w.bars.rows) and w.bars.rows[0][2] is not None, timeout=WAIT_MS)
    wait_for_frames(qtbot, w, 5)  # past the frames in flight, and a bars refresh (15 Hz)
    assert all(abs(f - s) < 1e-5 for _, s, _, f in w.bars.rows)
    qtbot.keyClick(w.video, Qt.Key.Key_BracketLeft)  # '[' moves the weight towards the temporal stream
    assert w.live.weight_slider.value() == 95
    w.live.weight_slider.setValue(0)  # temporal only
    wait_for_frames(qtbot, w, 5)
    assert all(abs(f - t) < 1e-5 for _, _, t, f in w.bars.rows)
    assert "temporal 1.00" in w.live.weight_label.text()


def test_flow_view_switches_to_arrows_on_the_video(qtbot, open_window) -> None:
    w = open_window("synthetic:swipe_right?fps=30&size=160x120")
    wait_for_frames(qtbot, w)
    qtbot.keyClick(w.video, Qt.Key.Key_F)
    assert w.flow_mode == "arrows" and not w.flow_group.isVisible()
    wait_for_frames(qtbot, w, 3)
    assert w.video.arrows
    before = w.video.frame.scaled.copy()
    qtbot.keyClick(w.video, Qt.Key.Key_F)
    assert w.flow_mode == "colour" and w.flow_group.isVisible()
    wait_for_frames(qtbot, w, 2)
    assert not w.video.arrows and w.flow_view.has_image
    # With arrows on, the drawn frame holds the arrows' dark edges; the plain frame rarely has pure near-black pixels.
    assert (before.max(axis=2) <= 20).sum() > (w.video.frame.scaled.max(axis=2) <= 20).sum() + 50


def test_settings_are_remembered_between_runs(qtbot, open_window, settings_file: Path) -> None:
    w = open_window("synthetic:wave?fps=30&size=96x72")
    wait_for_frames(qtbot, w)
    w.live.set_fusion_mode("weighted")
    w.live.weight_slider.setValue(70)
    w.live.smoothing_box.setValue(3)
    w.set_flow_view("arrows")
    w.close()

    again = open_window(source=None)  # no source given: the last one comes back, with every setting
    assert again.source_text == "synthetic:wave?fps=30&size=96x72"
    assert (again.live.fusion_box.currentText(), again.live.weight_slider.value(), again.live.smoothing_box.value(), again.flow_mode) == (
        "weighted",
        70,
        3,
        "arrows",
    )
    qtbot.waitUntil(lambda: again.controller.info is not None, timeout=WAIT_MS)
    info = again.controller.info
    assert (info.fusion_mode, info.spatial_weight, info.smoothing) == ("weighted", 0.7, 3)  # and the pipeline uses them
    assert str(settings_file).startswith(str(settings_file.parent))  # written where the test said, nowhere else
    assert "synthetic:wave" in settings_file.read_text()


def test_closing_stops_every_thread_and_releases_the_source(qtbot, open_window, video_file: Path) -> None:
    """How long close takes: benchmarks/reliability.py (bar 1 s)."""
    w = open_window(str(video_file))
    wait_for_frames(qtbot, w, 2)
    source = w.controller.source
    assert source is not None and not source.released and "twostream-capture" in _threads()
    w.close()  # returns once the pipeline has stopped: nothing left running below
    assert source.released
    assert _threads() == []


def test_gui_cli_is_light_and_says_how_to_install_pyqt() -> None:
    code = "import sys, realtime.cli as c; p = c.build_parser(); assert 'gui' in c.COMMANDS; print('PyQt6' in sys.modules, 'pyqtgraph' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]  # `twostream --help` does not load Qt
    # Without PyQt6 installed, the command prints one line saying what to install.
    code = "import sys; sys.modules['PyQt6'] = None; from realtime.cli import main; sys.exit(main(['gui', 'synthetic:demo']))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "pip install 'twostream[gui]'" in done.stderr


def test_the_threshold_control_makes_the_overlay_bars_timeline_and_stats_say_no_known_action(qtbot, open_window) -> None:
    w = open_window()
    wait_for_frames(qtbot, w)
    pipe = w.controller.pipeline
    # The tiny model calibrated nothing (0): every frame names its top class.
    assert pipe.fusion.min_score == 0.0 and w.live.min_score_box.threshold is None and w.live.min_score_box.text() == "model 0.00"
    assert w.video.known and w.video.leader == w.video.top[0][0] == w.video.headline

    w.live.min_score_box.setValue(0.9)  # as a user types it: applies to the running pipeline at once
    assert pipe.fusion.min_score == pytest.approx(0.9) and w.controller.info.min_score == pytest.approx(0.9)
    assert w.live.min_score_box.threshold == pytest.approx(0.9) and w.controller.min_score == pytest.approx(0.9)
    qtbot.waitUntil(lambda: w.shown_prediction is not None and w.shown_prediction.min_score == pytest.approx(0.9), timeout=WAIT_MS)
    wait_for_frames(qtbot, w, 3)
    pred = w.shown_prediction
    assert pred.score < 0.9 and not pred.known  # an untrained 4-class model is near uniform: below the threshold
    assert not w.video.known and w.video.leader is None and w.video.headline == "no known action"
    assert len(w.video.top) == 3 and w.video.top == pred.top(3)  # the scores stay visible under the verdict
    qtbot.waitUntil(lambda: not w.bars.known and w.bars.min_score == pytest.approx(0.9), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: bool(w.timeline.unknown_spans) and w.timeline.unknown_spans[-1][1] > -0.5, timeout=WAIT_MS)
    assert w.timeline.threshold_line.isVisible() and w.timeline.threshold_line.value() == pytest.approx(0.9)
    assert w.timeline.unknown_fraction > 0 and "no known action" in [label.text for _, label in w.timeline.legend.items]
    w.display.stats_timer.timeout.emit()
    assert "below 0.90 (yours" in w.stats.values["unknown"].text()

    w.live.min_score_box.setValue(w.live.min_score_box.minimum())  # its lowest step, "model": the model's own (0 here): named again
    assert pipe.fusion.min_score == 0.0 and w.controller.min_score is None and w.live.min_score_box.text() == "model 0.00"
    qtbot.waitUntil(lambda: w.shown_prediction.min_score == 0.0 and w.video.known, timeout=WAIT_MS)
    assert w.video.leader == w.shown_prediction.top(1)[0][0] == w.video.headline
    qtbot.waitUntil(lambda: not w.timeline.threshold_line.isVisible() and w.timeline.unknown_spans[-1][1] < -0.2, timeout=WAIT_MS)
    w.display.stats_timer.timeout.emit()
    assert w.stats.values["unknown"].text() == "never: threshold 0 (model)"


def test_each_models_own_threshold_applies_unless_the_user_set_one_and_it_is_remembered(
    qtbot, open_window, model_dir: Path, calibrated_model_dir: Path, other_model_dir: Path, settings_file: Path
) -> None:
    w = open_window(model=calibrated_model_dir)
    qtbot.waitUntil(
        lambda: w.controller.info is not None and w.live.min_score_box.text() == "model 0.60", timeout=WAIT_MS
    )  # the window shows the started session
    assert w.controller.pipeline.fusion.min_score == pytest.approx(0.6)  # the checkpoint's calibrated threshold
    assert w.live.min_score_box.threshold is None
    w.live.min_score_box.stepBy(1)  # up from "model 0.60": the user's, from the model's number
    assert w.live.min_score_box.threshold == pytest.approx(0.6) and w.controller.min_score == pytest.approx(0.6)
    w.live.min_score_box.stepBy(-1)
    assert w.live.min_score_box.threshold == pytest.approx(0.59) and w.controller.pipeline.fusion.min_score == pytest.approx(0.59)
    w.live.set_min_score(None)
    assert w.live.min_score_box.text() == "model 0.60" and w.controller.pipeline.fusion.min_score == pytest.approx(0.6)
    wait_for_frames(qtbot, w, 3)
    assert w.shown_prediction.min_score == pytest.approx(0.6) and not w.video.known  # near-uniform scores: below 0.6
    w.display.stats_timer.timeout.emit()
    assert w.stats.values["unknown"].text().startswith("below 0.60 (model)")

    w.open_model(str(other_model_dir))  # another model, no override: its own threshold (0)
    qtbot.waitUntil(lambda: w.controller.info.model_name == "tiny-wrj" and w.live.min_score_box.text() == "model 0.00", timeout=WAIT_MS)
    assert w.controller.pipeline.fusion.min_score == 0.0

    w.live.min_score_box.setValue(0.3)  # the user's threshold: kept for every model from now on
    w.open_model(str(calibrated_model_dir))  # a new pipeline (other inputs than tiny-wrj)
    qtbot.waitUntil(lambda: w.controller.info.model_name == "tiny-calibrated" and w.live.min_score_box.threshold == pytest.approx(0.3), timeout=WAIT_MS)
    assert w.controller.pipeline.fusion.min_score == pytest.approx(0.3) and w.controller.info.min_score_set
    w.live.set_fusion_mode("weighted")  # changing fusion keeps it
    assert w.controller.pipeline.fusion.min_score == pytest.approx(0.3)
    pipe = w.controller.pipeline
    w.open_taught_model(str(model_dir))  # swapped into the same pipeline: still the user's
    qtbot.waitUntil(lambda: pipe.swaps == 1 and w.controller.info.model_name == "tiny-test", timeout=WAIT_MS)
    assert w.controller.pipeline is pipe and pipe.fusion.min_score == pytest.approx(0.3)
    w.live.set_min_score(None)  # reset: the running model's own
    assert pipe.fusion.min_score == 0.0
    w.open_taught_model(str(calibrated_model_dir))  # swapped in live, no override: the new model's own
    qtbot.waitUntil(
        lambda: pipe.swaps == 2 and w.controller.info.model_name == "tiny-calibrated" and w.live.min_score_box.text() == "model 0.60", timeout=WAIT_MS
    )
    assert pipe.fusion.min_score == pytest.approx(0.6)

    w.live.min_score_box.setValue(0.45)
    w.close()
    assert "min_score=0.45" in settings_file.read_text()
    again = open_window(source=None, model=other_model_dir)  # remembered between runs
    qtbot.waitUntil(lambda: again.controller.info is not None and again.live.min_score_box.threshold == pytest.approx(0.45), timeout=WAIT_MS)
    assert again.controller.pipeline.fusion.min_score == pytest.approx(0.45)
    again.close()
    third = open_window(source=None, model=other_model_dir, min_score=0.8)  # `twostream gui --min-score 0.8` wins
    qtbot.waitUntil(lambda: third.controller.info is not None and third.live.min_score_box.threshold == pytest.approx(0.8), timeout=WAIT_MS)
    assert third.controller.pipeline.fusion.min_score == pytest.approx(0.8)


def test_gui_min_score_option() -> None:
    from realtime.cli import build_parser, main

    assert build_parser().parse_args(["gui", "--min-score", "0.4"]).min_score == 0.4
    assert main(["gui", "--min-score", "1.5"]) == 2  # refused in one line before any window opens
