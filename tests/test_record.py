"""Recording labelled clips: `twostream record`, the Recorder schedule, the clip library, pipeline taps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import synthetic_frames, write_video
from realtime.errors import UserError
from realtime.stream.pipeline import Pipeline
from realtime.io.record import ClipLibrary, Recorder, check_label, clip_frames


def twostream(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "realtime.cli", *args], capture_output=True, text=True, timeout=timeout)


def decoded_frames(path: Path) -> int:
    """Frames actually decodable (not the container's claim)."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_record_cli_writes_clips_of_the_asked_length(tmp_path: Path) -> None:
    r = twostream("record", "synthetic:spin?fps=0&seed=4", "--label", "spin", "--clips", "3", "--seconds", "1.5", "--to", str(tmp_path))
    assert r.returncode == 0, r.stderr
    clips = ClipLibrary(tmp_path).classes()["spin"]
    assert [p.name for p in clips] == ["spin_001.avi", "spin_002.avi", "spin_003.avi"]
    assert [decoded_frames(p) for p in clips] == [45, 45, 45]  # 1.5 s at the source's 30 fps
    assert ClipLibrary.info(clips[0]).fps == pytest.approx(30.0)
    # A second run adds to the class, numbering on
    r = twostream("record", "synthetic:bounce?fps=0", "--label", "spin", "--clips", "1", "--seconds", "0.5", "--to", str(tmp_path), "-q")
    assert r.returncode == 0, r.stderr
    assert ClipLibrary(tmp_path).counts() == {"spin": 4}
    assert decoded_frames(tmp_path / "spin" / "spin_004.avi") == 15


def test_clips_from_a_file_use_its_frame_rate_and_a_short_file_keeps_only_whole_clips(tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.avi", synthetic_frames("zigzag", 50), fps=20.0)
    out = tmp_path / "rec"
    r = twostream("record", str(video), "--label", "zig", "--clips", "3", "--seconds", "1", "--to", str(out))
    # 50 frames hold two whole 20-frame clips; the third is cut short by the end of the file
    assert r.returncode == 1
    assert "ended after 2 of 3 clips" in r.stderr and "Traceback" not in r.stderr
    files = sorted((out / "zig").iterdir())
    assert [p.name for p in files] == ["zig_001.avi", "zig_002.avi"]  # no partial file left behind
    (out / "zig" / ".zig_003.partial.avi").write_bytes(files[0].read_bytes())  # as a killed recording would leave it
    from realtime.train.datasets import open_dataset

    ds = open_dataset(out)  # a hidden partial clip is never part of the dataset
    assert sorted(c.path.name for c in ds.train + ds.test) == ["zig_001.avi", "zig_002.avi"]
    assert [decoded_frames(p) for p in files] == [20, 20]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for args, words in (
        (["synthetic:spin", "--label", "no good", "--to", str(tmp_path)], "class name"),
        (["synthetic:spin", "--label", "ok", "--seconds", "0", "--to", str(tmp_path)], "more than 0 seconds"),
        ([str(tmp_path / "missing.mp4"), "--label", "ok", "--to", str(tmp_path)], "missing.mp4"),
    ):
        r = twostream("record", *args)
        assert r.returncode == 2, r.stderr
        assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing created for a refused recording


def test_delete_moves_a_clip_out_of_the_dataset_and_numbers_are_not_reused(tmp_path: Path) -> None:
    lib = ClipLibrary(tmp_path)
    for _ in range(3):
        rec = Recorder(lib, "wave2", clips=1, seconds=0.2, fps=10, countdown=0, gap=0).start()
        for f in synthetic_frames("wave", 2):
            rec.feed(f)
    assert lib.counts() == {"wave2": 3}
    gone = lib.delete(tmp_path / "wave2" / "wave2_002.avi")
    assert lib.counts() == {"wave2": 2} and gone.is_file() and ".deleted" in gone.parts
    assert lib.next_path("wave2").name == "wave2_004.avi"
    from realtime.train.datasets import open_dataset

    ds = open_dataset(tmp_path)  # the deleted clip is not part of the dataset
    assert sorted(c.path.name for c in ds.train + ds.test) == ["wave2_001.avi", "wave2_003.avi"]
    back = lib.restore(gone)
    assert back.name == "wave2_002.avi" and lib.counts() == {"wave2": 3}
    with pytest.raises(UserError):
        lib.delete(tmp_path / "elsewhere.avi")


def test_recorder_waits_out_the_countdown_and_gaps() -> None:
    now = [0.0]
    frames = [np.full((24, 32, 3), i, np.uint8) for i in range(200)]
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        lib = ClipLibrary(d)
        phases = []
        rec = Recorder(lib, "a", clips=2, seconds=0.5, fps=10, countdown=3, gap=1, on_change=lambda s: phases.append(s.phase), clock=lambda: now[0]).start()
        fed = 0
        while rec.active:
            rec.feed(frames[fed])
            fed += 1
            now[0] += 0.1  # a 10 fps source
        assert rec.state.phase == "done" and len(rec.state.saved) == 2
        # 3 s of countdown (30 frames) + 5 frames + 1 s gap (10 frames) + 5 frames, give or take the frame that ends a wait
        assert 39 <= fed <= 52
        first = cv2.VideoCapture(str(rec.state.saved[0]))
        ok, img = first.read()
        first.release()
        assert ok and abs(int(img.mean()) - 30) <= 2  # the first frame after the countdown, not frame 0
        assert phases[:3] == ["countdown", "recording", "gap"] and phases[-1] == "done"
    assert check_label(" ok_name-1 ") == "ok_name-1"
    assert clip_frames(2, None) == 60 and clip_frames(0.01, 30) == 2


def test_recording_from_a_live_pipeline_loses_no_frame(tmp_path: Path, tiny_model) -> None:
    lib = ClipLibrary(tmp_path)
    rec = Recorder(lib, "spin", clips=2, seconds=1, fps=30, countdown=0, gap=0).start()
    with Pipeline("synthetic:spin?fps=60&seed=2", tiny_model, engine="torch", device="cpu") as p:
        p.add_tap(rec.feed)
        for pred in p:
            if not rec.active:
                break
        p.remove_tap(rec.feed)
    assert rec.state.phase == "done"
    assert [decoded_frames(c) for c in lib.classes()["spin"]] == [30, 30]

    def broken(frame: np.ndarray) -> None:
        raise OSError("disk full")

    with Pipeline("synthetic:spin?fps=0&frames=40", tiny_model, engine="torch", device="cpu") as p:
        p.add_tap(broken)  # a failing tap is dropped; recognition goes on
        assert len(list(p)) == 40


def test_record_never_prints_credentials(tmp_path: Path) -> None:
    r = twostream("record", "rtsp://bob:s3cret@127.0.0.1:9/cam", "--label", "a", "--to", str(tmp_path / "rec"), "--timeout", "2")
    assert r.returncode == 2 and "s3cret" not in r.stderr + r.stdout and "bob" not in r.stderr
    assert "127.0.0.1:9/cam" in r.stderr and not (tmp_path / "rec").exists()
