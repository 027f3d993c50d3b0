"""The Teach panel, offscreen: record clips from a live synthetic source, delete one, train in the background, swap live.

A real window on a real pipeline with the shipped model; real clips written by the Recorder; a real
`twostream train --from` child process. The three synthetic motions (spin, bounce, zigzag) are
classes the shipped model never saw.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import pytest

pytest.importorskip("PyQt6.QtWidgets", reason="the GUI tests need PyQt6: pip install 'twostream[gui]'")
pytest.importorskip("pyqtgraph", reason="the GUI tests need pyqtgraph: pip install 'twostream[gui]'")

from PyQt6.QtCore import QSettings, Qt  # noqa: E402

from gui.window import MainWindow  # noqa: E402
from realtime.io.record import ClipLibrary  # noqa: E402
from realtime.train.teach import user_models_dir  # noqa: E402

from clips import record_clips  # noqa: E402

pytestmark = pytest.mark.gui

CLASSES = ("bounce", "spin", "zigzag")  # sorted: the taught model's label order
CLIPS, SECONDS, FPS = 4, 1.0, 30
LIVE_FPS = 15  # the source running while a training works beside it: live, but leaving the trainer a core's worth
WAIT_MS = 20_000
TRAIN_MS = 170_000  # a training on a loaded 2-core machine takes about 30 s; the limit is for a very busy one


@pytest.fixture(autouse=True)
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Taught models and the default recording folder go to a temporary $TWOSTREAM_HOME (the trainer inherits it)."""
    home = tmp_path / "home"
    monkeypatch.setenv("TWOSTREAM_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CLIPS clips of SECONDS s per class, recorded by the Recorder from the synthetic sources, as `twostream record` does."""
    root = tmp_path_factory.mktemp("recorded") / "clips"
    for seed, label in enumerate(CLASSES):
        record_clips(root, label, CLIPS, SECONDS, f"synthetic:{label}?fps=0&seed={seed + 10}&size=160x120")
    return root


@pytest.fixture
def clips(recorded: Path, tmp_path: Path) -> Path:
    """A private copy of the recorded clips (a test may delete some, training adds a flow cache)."""
    return Path(shutil.copytree(recorded, tmp_path / "clips"))


@pytest.fixture
def open_window(qtbot, tmp_path: Path):  # type: ignore[no-untyped-def]
    windows: list[MainWindow] = []

    def make(source: str) -> MainWindow:
        settings = QSettings(str(tmp_path / "settings" / "twostream-gui.ini"), QSettings.Format.IniFormat)
        w = MainWindow(settings, source=source, engine="torch", device="cpu", probe_cameras=False)  # the default model
        qtbot.addWidget(w)
        w.resize(1280, 800)
        w.show()
        windows.append(w)
        w.show_teach(True)
        start = w.frames_shown
        qtbot.waitUntil(lambda: w.frames_shown >= start + 3, timeout=WAIT_MS)
        return w

    yield make
    for w in windows:
        w.close()


def test_recording_writes_the_clips_with_their_frame_counts_and_delete_and_undo_update_the_list(qtbot, open_window, user_home) -> None:
    w = open_window(f"synthetic:spin?fps={FPS}&seed=1&size=160x120")
    panel = w.teach
    recorder, clip_list = panel.clip_recorder, panel.clip_list
    assert panel.root == user_home / "recordings"  # the default, beside the taught models

    qtbot.keyClicks(recorder.name_edit, "two words!")  # a name that cannot be a folder: one clear message, no recording
    assert recorder.name_error.isVisible() and "not usable" in recorder.name_error.text()
    assert not recorder.record_button.isEnabled() and not recorder.start_recording()
    recorder.name_edit.setText("spin")
    assert not recorder.name_error.isVisible() and recorder.record_button.isEnabled()

    recorder.clips_box.setValue(3)
    recorder.seconds_box.setValue(SECONDS)
    recorder.countdown_box.setValue(1)
    recorder.gap_s = 0.2
    qtbot.keyClick(w.video, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # Ctrl+R: record
    assert panel.recording and w.video.teach_text == "1"  # the countdown is on the video
    assert "in 1 s" in recorder.record_status.text()
    qtbot.waitUntil(lambda: w.video.teach_text.startswith("●"), timeout=WAIT_MS)  # then the clip being recorded
    qtbot.waitUntil(lambda: not panel.recording, timeout=WAIT_MS)

    made = ClipLibrary(panel.root).classes()["spin"]
    assert [p.name for p in made] == ["spin_001.avi", "spin_002.avi", "spin_003.avi"]
    for path in made:  # every clip has exactly SECONDS x the source's fps frames
        cap = cv2.VideoCapture(str(path))
        n = 0
        while cap.read()[0]:
            n += 1
        cap.release()
        assert n == SECONDS * FPS
    qtbot.waitUntil(lambda: w.video.teach_text == "", timeout=WAIT_MS)  # the overlay clears once the window takes the end
    assert clip_list.counts() == {"spin": 3}
    top = clip_list.tree.topLevelItem(0)
    assert top.text(0) == "spin  (3 clips)" and [top.child(i).text(1) for i in range(3)] == ["30"] * 3
    assert "3 clip(s) of 'spin' saved" in recorder.record_status.text()
    assert w.controller.pipeline is not None and not w.controller.pipeline.taps  # the recorder let go of the frames

    # A bad clip: select it, Del; the count follows; Undo puts it back.
    assert clip_list.select_clip(made[1])
    clip_list.tree.setFocus()
    qtbot.keyClick(clip_list.tree, Qt.Key.Key_Delete)
    assert clip_list.counts() == {"spin": 2} and clip_list.tree.topLevelItem(0).text(0) == "spin  (2 clips)"
    assert not made[1].exists() and (panel.root / ".deleted" / "spin" / "spin_002.avi").is_file()
    clip_list.undo_button.click()
    assert clip_list.counts() == {"spin": 3} and made[1].is_file()


def test_training_with_too_few_clips_says_what_is_missing_and_starts_nothing(qtbot, open_window, clips: Path) -> None:
    w = open_window(f"synthetic:bounce?fps={FPS}&seed=1&size=160x120")
    for extra in sorted((clips / "bounce").glob("*.avi"))[2:]:
        extra.unlink()
    panel = w.teach
    panel.set_root(clips)
    panel.train_button.click()
    assert not panel.training and panel.process is None
    assert panel.problem_label.isVisible()
    assert "too few clips" in panel.last_error and "'bounce' has 2" in panel.last_error and "at least 4" in panel.last_error
    assert not user_models_dir().exists() or not any(user_models_dir().iterdir())


def test_cancel_stops_the_training_and_nothing_is_swapped_in(qtbot, open_window, clips: Path) -> None:
    w = open_window(f"synthetic:zigzag?fps={FPS}&seed=1&size=160x120")
    panel = w.teach
    panel.set_root(clips)
    panel.whole_nets.setChecked(True)  # "also fine-tune the whole nets" reaches the trainer
    assert panel.train()
    args = panel.process.arguments()
    assert args[args.index("--finetune") + 1] == "all" and not panel.whole_nets.isEnabled()
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=TRAIN_MS)  # it is working
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: not panel.training, timeout=WAIT_MS)
    assert "cancelled" in panel.stage_label.text()
    assert w.controller.pipeline.swaps == 0 and w.controller.info.model_name == "default"
    assert not user_models_dir().exists() or not any(p.is_dir() and (p / "model.json").exists() for p in user_models_dir().iterdir())


@pytest.mark.slow
def test_background_training_swaps_the_taught_model_into_the_running_pipeline(qtbot, open_window, clips: Path) -> None:
    w = open_window(f"synthetic:zigzag?fps={LIVE_FPS}&seed=3&size=160x120")
    panel = w.teach
    panel.set_root(clips)
    pipe, source = w.controller.pipeline, w.controller.source
    before = w.shown_prediction.index
    assert set(w.shown_prediction.labels) & set(CLASSES) == set()  # the shipped model does not know these

    panel.train_button.click()
    assert panel.training and not panel.train_button.isEnabled() and panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=TRAIN_MS)
    shown_while_training = w.frames_shown
    # the accuracy as it arrives (a training that fails on the way says why at once instead of timing out)
    qtbot.waitUntil(lambda: "held-out top-1" in panel.accuracy_label.text() or not panel.training, timeout=TRAIN_MS)
    assert panel.last_error == "" and "held-out top-1" in panel.accuracy_label.text(), panel.last_error
    qtbot.waitUntil(lambda: not panel.training, timeout=TRAIN_MS)
    assert panel.last_error == "" and panel.last_result is not None, panel.last_error
    out = Path(panel.last_result.out)
    assert {"model.json", "weights.safetensors", "MODEL_CARD.md", "metrics.json"} <= {p.name for p in out.iterdir()}
    assert out.parent == user_models_dir()
    assert w.frames_shown > shown_while_training  # recognition went on while it trained

    qtbot.waitUntil(lambda: pipe.swaps == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: tuple(w.shown_prediction.labels) == CLASSES, timeout=WAIT_MS)
    # The same pipeline and source: frame numbers carry on, the labels are the new classes.
    assert w.controller.pipeline is pipe and w.controller.source is source and pipe.status == "running"
    assert w.shown_prediction.index > before
    assert w.controller.info.labels == CLASSES and w.controller.info.model_key == str(out.resolve())
    qtbot.waitUntil(lambda: bool(w.bars.rows) and {r[0] for r in w.bars.rows} == set(CLASSES), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: bool(w.timeline.classes) and set(w.timeline.classes) <= set(CLASSES), timeout=WAIT_MS)
    assert {lab for lab, _ in w.video.top} <= set(CLASSES)
    assert out.name in w.windowTitle()
    w.display.stats_timer.timeout.emit()
    assert "3 classes" in w.stats.values["model"].text() and "held-out top-1" in w.stats.values["model"].text()
    assert w.model_box.currentData() == str(out.resolve())  # in the model chooser, selected
    assert str(out) in panel.result_label.text() and "held-out top-1" in panel.accuracy_label.text()
