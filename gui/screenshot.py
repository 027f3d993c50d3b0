"""Regenerate docs/screenshot.png: the main window running on the synthetic source with the default model.

    python -m gui.screenshot [--out docs/screenshot.png] [--seconds 9] [--size 1280x800]
    python -m gui.screenshot --teach [--out docs/teach.png]    # the Teach panel after teaching three new motions
    python -m gui.screenshot --unknown --min-score 0.9 [--out docs/unknown.png]   # a moment of "no known action"

Renders offscreen (no display needed) with a throw-away settings file, so neither the user's
settings nor their screen are touched. The default model is trained/default when it is shipped
(or $TWOSTREAM_MODEL); otherwise the untrained fallback, and the window then says so.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .window import MainWindow

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gui.screenshot", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "docs" / "screenshot.png"), help="PNG to write (default: docs/screenshot.png)")
    ap.add_argument("--source", default="synthetic:demo", help="source to run (default: synthetic:demo)")
    ap.add_argument("--model", help="checkpoint directory (default: the default model)")
    ap.add_argument("--engine", default="auto")
    ap.add_argument(
        "--seconds",
        type=float,
        default=9.0,
        help="seconds of live predictions before the picture (default 9: the demo is mid-way through circle_cw and the timeline is nearly full)",
    )
    ap.add_argument("--size", default="1280x800", help="window size WxH (default 1280x800)")
    ap.add_argument("--arrows", action="store_true", help="show flow as arrows on the video instead of the colour image")
    ap.add_argument("--show", action="store_true", help="render on the real display instead of offscreen")
    ap.add_argument("--min-score", type=float, metavar="S", help="the no-known-action threshold (default: the model's own)")
    ap.add_argument(
        "--unknown",
        action="store_true",
        help="after --seconds, wait (up to 60 s more) for a moment of 'no known action' (the last half second of "
        "predictions all below the threshold) and take the picture then (default --out: docs/unknown.png)",
    )
    ap.add_argument(
        "--teach",
        action="store_true",
        help="use the Teach panel first: record 5 clips each of spin, bounce and zigzag from the synthetic source, "
        "train in the background and swap the result in (models and clips go to a temporary folder)",
    )
    args = ap.parse_args(argv)
    if args.teach:
        os.environ["TWOSTREAM_HOME"] = tempfile.mkdtemp(prefix="twostream-teach-")
        if args.out == str(REPO / "docs" / "screenshot.png"):
            args.out = str(REPO / "docs" / "teach.png")
    if args.unknown and args.out == str(REPO / "docs" / "screenshot.png"):
        args.out = str(REPO / "docs" / "unknown.png")
    if not args.show:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    width, height = (int(v) for v in args.size.lower().split("x"))

    from PyQt6.QtCore import QSettings

    from .app import create_app
    from .window import MainWindow

    app = create_app()
    settings = QSettings(str(Path(tempfile.mkdtemp(prefix="twostream-shot-")) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings, source=args.source, model=args.model, engine=args.engine, probe_cameras=False, min_score=args.min_score)
    window.resize(width, height)
    window.show()
    if args.arrows:
        window.set_flow_view("arrows")

    def spin(seconds: float, until: Callable[[], bool] = lambda: False) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            if until():
                return True
            time.sleep(0.005)
        return until()

    if not spin(180, lambda: window.frames_shown > 0):
        sys.stderr.write(f"screenshot: the pipeline did not start: {window.banner.label.text() or window.status_text}\n")
        window.close()
        return 1
    if args.teach and not teach(window, spin):
        window.close()
        return 1
    spin(args.seconds)
    if args.unknown and not spin(60, lambda: unknown_now(window)):
        sys.stderr.write("screenshot: no half second of 'no known action' within 60 s (raise --min-score?)\n")
        window.close()
        return 1
    window.display.refresh_stats()  # stats as of this very frame
    spin(0.1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(out), "PNG")
    info = window.controller.info
    window.close()
    if not ok:
        sys.stderr.write(f"screenshot: could not write {out}\n")
        return 1
    print(
        f"wrote {out} ({width}x{height}; source {info.source_name if info else '?'}, model {info.model_name if info else '?'}"
        f"{'' if info is None or info.trained else ', UNTRAINED'})"
    )
    return 0


def unknown_now(window: MainWindow, hold_s: float = 0.5) -> bool:
    """The window shows "no known action" on the video, the bars and the timeline, and has for `hold_s`."""
    pred, spans = window.shown_prediction, window.timeline.unknown_spans
    return pred is not None and not pred.known and not window.bars.known and bool(spans) and spans[-1][1] >= -0.15 and spans[-1][1] - spans[-1][0] >= hold_s


def teach(window: MainWindow, spin: Callable[..., bool], clips: int = 5, seconds: float = 1.0) -> bool:
    """Drive the Teach panel as a user would: record three motions the shipped model never saw, train, swap live."""
    panel = window.teach
    recorder = panel.clip_recorder
    window.show_teach(True)
    recorder.clips_box.setValue(clips)
    recorder.seconds_box.setValue(seconds)
    recorder.countdown_box.setValue(0)
    recorder.gap_s = 0.3
    for seed, label in enumerate(("spin", "bounce", "zigzag")):
        before = window.controller.source
        window.open_source(f"synthetic:{label}?fps=30&seed={seed + 20}")
        if not spin(60, lambda: window.controller.source is not before and window.controller.running):
            sys.stderr.write(f"screenshot: synthetic:{label} did not open\n")
            return False
        recorder.name_edit.setText(label)
        if not recorder.start_recording() or not spin(120, lambda: not panel.recording):
            sys.stderr.write(f"screenshot: recording {label} failed: {panel.last_error}\n")
            return False
    pipe = window.controller.pipeline
    if pipe is None:
        sys.stderr.write("screenshot: no pipeline is running to teach beside\n")
        return False
    if not panel.train() or not spin(600, lambda: not panel.training) or panel.last_result is None:
        sys.stderr.write(f"screenshot: training failed: {panel.last_error}\n")
        return False
    if not spin(60, lambda: pipe.swaps > 0 and window.shown_prediction is not None and "zigzag" in window.shown_prediction.labels):
        sys.stderr.write("screenshot: the taught model was not swapped in\n")
        return False
    panel.clip_list.select_clip(panel.root / "zigzag" / "zigzag_003.avi")
    return True


if __name__ == "__main__":
    raise SystemExit(main())
