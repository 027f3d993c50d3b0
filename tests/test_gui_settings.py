"""The app's remembered settings as one dataclass over QSettings: round trip, bad values, no credentials written."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("PyQt6", reason="the desktop app's settings use QSettings (pip install 'twostream[gui]')")

from PyQt6.QtCore import QSettings  # noqa: E402

from gui.settings import AppSettings  # noqa: E402


def _ini(tmp_path, name: str = "s.ini") -> QSettings:
    return QSettings(str(tmp_path / name), QSettings.Format.IniFormat)


def test_settings_round_trip_and_an_unset_fusion_stays_the_models_own(tmp_path) -> None:
    st = AppSettings(
        source="clip.mp4",
        recent_sources=["clip.mp4", "synthetic:wave"],
        model="/m/taught",
        engine="torch",
        fusion="weighted",
        spatial_weight=30,
        smoothing=4,
        min_score=0.35,
        flow_view="arrows",
        teach_clips=6,
        teach_seconds=2.5,
        teach_visible=True,
    )
    st.save(_ini(tmp_path))
    back = AppSettings.load(_ini(tmp_path))
    assert (back.source, back.recent_sources, back.model, back.engine, back.fusion, back.spatial_weight, back.smoothing) == (
        "clip.mp4",
        ["clip.mp4", "synthetic:wave"],
        "/m/taught",
        "torch",
        "weighted",
        30,
        4,
    )
    assert back.min_score == pytest.approx(0.35) and back.flow_view == "arrows" and back.teach_visible is True
    assert (back.teach_clips, back.teach_seconds, back.teach_countdown) == (6, 2.5, None)
    fresh = AppSettings.load(_ini(tmp_path, "none.ini"))
    assert fresh == AppSettings() and fresh.fusion is None and fresh.min_score is None


def test_a_hand_edited_file_gives_the_defaults_and_credentials_are_never_written(tmp_path) -> None:
    (tmp_path / "bad.ini").write_text(
        "[General]\nspatial_weight=lots\nsmoothing=-3\nmin_score=7\nflow_view=plaid\nteach%2Fclips=x\nrecent_sources=rtsp://admin:pw@cam/1, clip.mp4\n"
    )
    bad = AppSettings.load(_ini(tmp_path, "bad.ini"))
    assert (bad.spatial_weight, bad.smoothing, bad.min_score, bad.flow_view, bad.teach_clips) == (50, 8, None, "colour", None)
    assert bad.recent_sources == ["clip.mp4"]  # the one with a password is dropped on the way in
    AppSettings(source="rtsp://admin:pw@cam/1", recent_sources=["rtsp://admin:pw@cam/1", "clip.mp4"]).save(_ini(tmp_path, "out.ini"))
    written = (tmp_path / "out.ini").read_text()
    assert "pw@" not in written and "admin" not in written
    back = AppSettings.load(_ini(tmp_path, "out.ini"))  # (Qt writes lists as binary variants: read them back)
    assert back.recent_sources == ["clip.mp4"] and back.source == ""
