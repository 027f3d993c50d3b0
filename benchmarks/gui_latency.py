"""Does the desktop app slow the pipeline? Pipeline latency headless vs. with the GUI open, and the display rate.

    python benchmarks/gui_latency.py [--rounds 3] [--seconds 10] [--source synthetic:demo?fps=30] [--engine auto]

Runs the same source, model and engine for the same time headless (a bare Pipeline, as `twostream
run` uses it) and inside the GUI (offscreen unless a display is set, set up as `twostream gui` sets
itself up), each run in a fresh process, alternating for --rounds rounds so that a change in the
machine's load touches both alike. Predictions of the first --warmup seconds of each run are left
out. Prints and writes JSON (benchmarks/results/gui_latency.json) with the capture-to-prediction
latency of both, per stage, and the display fps. The bar: GUI p95 within 10% of headless, and the
display at 30 fps or more on a 30 fps source.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

STAGES = ("total", "flow", "infer", "infer_compute")


def percentiles(latency_s: list[float]) -> dict[str, float]:
    a = np.asarray(latency_s, np.float64) * 1e3
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {
        "p50": round(float(p50), 2),
        "p95": round(float(p95), 2),
        "p99": round(float(p99), 2),
        "mean": round(float(a.mean()), 2),
        "predictions": int(a.size),
    }


def _record(stats, n0: int, n1: int | None = None) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    return {
        "total": list(stats.total_latency)[n0:n1],
        "flow": list(stats.flow_latency)[n0:n1],
        "infer": list(stats.infer_latency)[n0:n1],
        "infer_compute": list(stats.infer_compute)[n0:n1],
    }


def child_headless(args: argparse.Namespace) -> dict:
    from realtime.stream.pipeline import Pipeline

    pipe = Pipeline(args.source, args.model, engine=args.engine).start()
    t_start, n0, t0 = time.monotonic(), None, 0.0
    for _ in pipe:
        now = time.monotonic()
        if n0 is None and now - t_start >= args.warmup:
            n0, t0 = len(pipe.stats.total_latency), now
        if n0 is not None and now - t0 >= args.seconds:
            break
    samples = _record(pipe.stats, n0 or 0)
    pipe.stop()
    return {"samples": samples, "prediction_fps": len(samples["total"]) / args.seconds, "engine": pipe.engine.describe()}


def child_gui(args: argparse.Namespace) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtCore import QEventLoop, QSettings, QTimer

    from gui.app import create_app, lower_qt_thread_priority
    from gui.window import MainWindow

    app = create_app()
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "bench.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings, source=args.source, model=args.model, engine=args.engine, probe_cameras=False)
    lowered = lower_qt_thread_priority() if not args.same_priority else False  # as `twostream gui` does
    win.resize(1280, 800)
    win.show()

    def run_events(seconds: float, until=None) -> None:  # type: ignore[no-untyped-def]
        """Qt's own event loop (which sleeps between events, as in the app) for `seconds`, or until `until()`."""
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        poll = QTimer()
        if until is not None:
            poll.timeout.connect(lambda: until() and loop.quit())
            poll.start(50)
        loop.exec()
        poll.stop()

    run_events(180, lambda: win.controller.pipeline_stats is not None and win.controller.pipeline_stats.predicted > 0)
    stats = win.controller.pipeline_stats
    if stats is None:
        raise SystemExit(f"the GUI did not start: {win.banner.label.text()}")
    run_events(args.warmup)
    n0, shown0, t0 = len(stats.total_latency), win.frames_shown, time.monotonic()
    run_events(args.seconds)
    n1, shown1, t1 = len(stats.total_latency), win.frames_shown, time.monotonic()
    samples = _record(stats, n0, n1)
    info = win.controller.info
    win.close()
    return {
        "samples": samples,
        "prediction_fps": len(samples["total"]) / (t1 - t0),
        "display_fps": (shown1 - shown0) / (t1 - t0),
        "shown_per_prediction": (shown1 - shown0) / max(1, len(samples["total"])),
        "engine": f"{info.engine} on {info.device} ({info.precision})",
        "qt_platform": app.platformName(),
        "qt_thread_priority_lowered": lowered,
    }


def run_child(mode: str, args: argparse.Namespace) -> dict:
    cmd = (
        [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--source",
            args.source,
            "--engine",
            args.engine,
            "--seconds",
            str(args.seconds),
            "--warmup",
            str(args.warmup),
        ]
        + (["--model", args.model] if args.model else [])
        + (["--same-priority"] if args.same_priority else [])
    )
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(runs: list[dict]) -> dict:
    out: dict = {
        "latency_ms": percentiles([x for run in runs for x in run["samples"]["total"]]),
        "per_round_p95_ms": [percentiles(run["samples"]["total"])["p95"] for run in runs],
        "stage_latency_ms": {k: percentiles([x for run in runs for x in run["samples"][k]]) for k in STAGES[1:]},
        "prediction_fps": round(float(np.mean([run["prediction_fps"] for run in runs])), 2),
        "engine": runs[0]["engine"],
    }
    if "display_fps" in runs[0]:
        out["display_fps"] = round(float(np.mean([run["display_fps"] for run in runs])), 2)
        out["per_round_display_fps"] = [round(run["display_fps"], 2) for run in runs]
        out["shown_per_prediction"] = round(float(np.mean([run["shown_per_prediction"] for run in runs])), 4)
        out["qt_platform"] = runs[0]["qt_platform"]
        out["qt_thread_priority_lowered"] = runs[0]["qt_thread_priority_lowered"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="synthetic:demo?fps=30")
    ap.add_argument("--model", help="checkpoint directory (default: the default model)")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--same-priority", action="store_true", help="do not lower the Qt thread's priority (the app does)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gui_latency.json"))
    ap.add_argument("--child", choices=("headless", "gui"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        result = child_headless(args) if args.child == "headless" else child_gui(args)
        print(json.dumps(result))
        return 0

    import torch

    load_before = os.getloadavg()
    bare_runs, gui_runs = [], []
    for r in range(args.rounds):
        bare_runs.append(run_child("headless", args))
        gui_runs.append(run_child("gui", args))
        print(
            f"round {r + 1}/{args.rounds}: p95 headless {percentiles(bare_runs[-1]['samples']['total'])['p95']:.2f} ms, "
            f"GUI {percentiles(gui_runs[-1]['samples']['total'])['p95']:.2f} ms, display {gui_runs[-1]['display_fps']:.1f} fps",
            flush=True,
        )
    bare, gui = summary(bare_runs), summary(gui_runs)
    ratio = gui["latency_ms"]["p95"] / bare["latency_ms"]["p95"]
    source_fps = float(dict(p.split("=") for p in args.source.partition("?")[2].split("&") if "=" in p).get("fps", 30))
    report = {
        "source": args.source,
        "rounds": args.rounds,
        "seconds_per_run": args.seconds,
        "warmup_s": args.warmup,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "headless": bare,
        "gui": gui,
        "gui_p95_over_headless": round(ratio, 3),
        # A source paced at 30 fps gives 30 frames a second: "30 fps or more" means every frame shown, within 1% for timing.
        "bar": {"p95_within_10_percent": ratio <= 1.10, "display_at_least_source_fps": gui["display_fps"] >= 0.99 * source_fps, "source_fps": source_fps},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    hl, gl, hs, gs = bare["latency_ms"], gui["latency_ms"], bare["stage_latency_ms"], gui["stage_latency_ms"]
    print("latency ms (capture -> prediction)   p50     p95     p99")
    print(f"  headless                        {hl['p50']:7.2f} {hl['p95']:7.2f} {hl['p99']:7.2f}   ({bare['prediction_fps']:.1f} fps, {bare['engine']})")
    print(f"  GUI open                        {gl['p50']:7.2f} {gl['p95']:7.2f} {gl['p99']:7.2f}   ({gui['prediction_fps']:.1f} fps)")
    print(
        f"  stage p50/p95 headless | GUI: flow {hs['flow']['p50']:.2f}/{hs['flow']['p95']:.2f} | {gs['flow']['p50']:.2f}/{gs['flow']['p95']:.2f}; "
        f"infer {hs['infer']['p50']:.2f}/{hs['infer']['p95']:.2f} | {gs['infer']['p50']:.2f}/{gs['infer']['p95']:.2f} "
        f"(nets alone {hs['infer_compute']['p50']:.2f}/{hs['infer_compute']['p95']:.2f} | {gs['infer_compute']['p50']:.2f}/{gs['infer_compute']['p95']:.2f})"
    )
    print(f"GUI p95 / headless p95 = {ratio:.3f}  (bar <= 1.10: {'met' if ratio <= 1.10 else 'NOT met'})")
    print(
        f"display {gui['display_fps']:.2f} fps on a {source_fps:g} fps source ({gui['prediction_fps']:.2f} predictions/s, "
        f"{gui['shown_per_prediction']:.1%} shown; bar >= {source_fps:g}: {'met' if report['bar']['display_at_least_source_fps'] else 'NOT met'})"
    )
    print(
        f"load average before {report['machine']['load_average_before']}, after {report['machine']['load_average_after']} "
        f"({os.cpu_count()} CPUs; other processes on the machine count too)"
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
