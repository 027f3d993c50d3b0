"""Recording training clips in-process, as `twostream record` does (its CLI is tested in test_record.py)."""

from __future__ import annotations

from pathlib import Path

from realtime.io.record import ClipLibrary, Recorder
from realtime.io.sources import open_source


def record_clips(root: Path, label: str, clips: int, seconds: float, source: str) -> list[Path]:
    """`clips` clips of `seconds` s of `label` from `source` into the library at `root`, with no countdown or gap."""
    src = open_source(source, realtime=False)
    rec = Recorder(ClipLibrary(root), label, clips, seconds, src.fps, countdown=0, gap=0).start()
    try:
        while (frame := src.read()) is not None and rec.feed(frame):
            pass
    finally:
        src.close()
    assert rec.state.phase == "done", rec.state.error
    return rec.state.saved
