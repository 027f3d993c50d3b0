"""Does the desktop app slow the pipeline? Pipeline latency headless vs. with the GUI open, and the display rate.

    python benchmarks/gui_latency.py [--seconds 20] [--source synthetic:demo?fps=30] [--engine auto]

Runs the same source, model and engine twice for the same time: once headless (a bare Pipeline),
once inside the GUI (offscreen unless a display is set). Predictions of the first --warmup seconds
are left out of both. Prints and writes JSON (benchmarks/results/gui_latency.json) with the
capture-to-prediction latency percentiles of both runs and the display fps. The bar: GUI p95 within
10% of headless, display >= 30 fps on a 30 fps source.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def percentiles(latency_s: list[float]) -> dict[str, float]:
    a = np.asarray(latency_s, np.float64) * 1e3
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "p99": round(float(p99), 2), "mean": round(float(a.mean()), 2),
            "predictions": int(a.size)}


def headless(source: str, model: str | None, engine: str, warmup: float, seconds: float) -> dict:
    from realtime.pipeline import Pipeline

    pipe = Pipeline(source, model, engine=engine)
    describe = pipe.engine.describe()
    pipe.start()
    t_start = time.monotonic()
    n0 = None
    for pred in pipe:
        now = time.monotonic()
        if n0 is None and now - t_start >= warmup:
            n0, t0 = len(pipe.stats.total_latency), now
        if n0 is not None and now - t0 >= seconds:
            break
    samples = list(pipe.stats.total_latency)[n0:]
    pipe.stop()
    return {"latency_ms": percentiles(samples), "prediction_fps": round(len(samples) / seconds, 2), "engine": describe}


def with_gui(source: str, model: str | None, engine: str, warmup: float, seconds: float) -> dict:
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from gui.app import create_app
    from gui.window import MainWindow

    app = create_app()
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "bench.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings, source=source, model=model, engine=engine, probe_cameras=False)
    win.show()

    def spin_until(cond, limit: float) -> None:  # type: ignore[no-untyped-def]
        end = time.monotonic() + limit
        while not cond() and time.monotonic() < end:
            QApplication.processEvents()
            time.sleep(0.002)

    spin_until(lambda: win.controller.pipeline_stats is not None and win.controller.pipeline_stats.predicted > 0, 120)
    stats = win.controller.pipeline_stats
    if stats is None:
        raise SystemExit(f"the GUI did not start: {win.banner.label.text()}")
    spin_until(lambda: False, warmup)
    n0, shown0, t0 = len(stats.total_latency), win.frames_shown, time.monotonic()
    spin_until(lambda: False, seconds)
    n1, shown1, t1 = len(stats.total_latency), win.frames_shown, time.monotonic()
    samples = list(stats.total_latency)[n0:n1]
    info = win.controller.info
    result = {"latency_ms": percentiles(samples), "prediction_fps": round(len(samples) / (t1 - t0), 2),
              "display_fps": round((shown1 - shown0) / (t1 - t0), 2),
              "shown_per_prediction": round((shown1 - shown0) / max(1, len(samples)), 3), "engine": f"{info.engine} on {info.device} ({info.precision})",
              "qt_platform": app.platformName()}
    win.close()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="synthetic:demo?fps=30")
    ap.add_argument("--model", help="checkpoint directory (default: the default model)")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "gui_latency.json"))
    args = ap.parse_args()

    import torch

    bare = headless(args.source, args.model, args.engine, args.warmup, args.seconds)
    gui = with_gui(args.source, args.model, args.engine, args.warmup, args.seconds)
    ratio = gui["latency_ms"]["p95"] / bare["latency_ms"]["p95"]
    source_fps = float(dict(p.split("=") for p in args.source.partition("?")[2].split("&") if "=" in p).get("fps", 30))
    report = {
        "source": args.source, "seconds": args.seconds, "warmup_s": args.warmup,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__, "cuda": torch.cuda.is_available()},
        "headless": bare, "gui": gui,
        "gui_p95_over_headless": round(ratio, 3),
        "bar": {"p95_within_10_percent": ratio <= 1.10, "display_at_least_source_fps": gui["display_fps"] >= source_fps * 0.99,
                "source_fps": source_fps},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    hl, gl = bare["latency_ms"], gui["latency_ms"]
    print(f"latency ms (capture -> prediction)   p50     p95     p99")
    print(f"  headless                        {hl['p50']:7.2f} {hl['p95']:7.2f} {hl['p99']:7.2f}   ({bare['prediction_fps']:.1f} fps, {bare['engine']})")
    print(f"  GUI open                        {gl['p50']:7.2f} {gl['p95']:7.2f} {gl['p99']:7.2f}   ({gui['prediction_fps']:.1f} fps)")
    print(f"GUI p95 / headless p95 = {ratio:.3f}  (bar <= 1.10: {'met' if ratio <= 1.10 else 'NOT met'})")
    print(f"display {gui['display_fps']:.1f} fps on a {source_fps:g} fps source  (bar >= {source_fps:g}: "
          f"{'met' if report['bar']['display_at_least_source_fps'] else 'NOT met'})")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
