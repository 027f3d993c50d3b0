"""Regenerate docs/screenshot.png: the main window running on the synthetic source with the default model.

    python -m gui.screenshot [--out docs/screenshot.png] [--seconds 9] [--size 1280x800]

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

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gui.screenshot", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "docs" / "screenshot.png"), help="PNG to write (default: docs/screenshot.png)")
    ap.add_argument("--source", default="synthetic:demo", help="source to run (default: synthetic:demo)")
    ap.add_argument("--model", help="checkpoint directory (default: the default model)")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--seconds", type=float, default=9.0,
                    help="seconds of live predictions before the picture (default 9: the demo is mid-way through circle_cw "
                         "and the timeline is nearly full)")
    ap.add_argument("--size", default="1280x800", help="window size WxH (default 1280x800)")
    ap.add_argument("--arrows", action="store_true", help="show flow as arrows on the video instead of the colour image")
    ap.add_argument("--show", action="store_true", help="render on the real display instead of offscreen")
    args = ap.parse_args(argv)
    if not args.show:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    width, height = (int(v) for v in args.size.lower().split("x"))

    from PyQt6.QtCore import QSettings

    from .app import create_app
    from .window import MainWindow

    app = create_app()
    settings = QSettings(str(Path(tempfile.mkdtemp(prefix="twostream-shot-")) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings, source=args.source, model=args.model, engine=args.engine, probe_cameras=False)
    window.resize(width, height)
    window.show()
    if args.arrows:
        window.set_flow_view("arrows")

    def spin(seconds: float, until=lambda: False) -> bool:  # type: ignore[no-untyped-def]
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
    spin(args.seconds)
    window.stats_timer.timeout.emit()  # stats as of this very frame
    spin(0.1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(out), "PNG")
    info = window.controller.info
    window.close()
    if not ok:
        sys.stderr.write(f"screenshot: could not write {out}\n")
        return 1
    print(f"wrote {out} ({width}x{height}; source {info.source_name if info else '?'}, model {info.model_name if info else '?'}"
          f"{'' if info is None or info.trained else ', UNTRAINED'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
