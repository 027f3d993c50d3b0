"""How fast the pipeline notices and recovers when a live input fails: the reliability promises
in seconds, against their bars (the tests assert what happens and in which order; this times it).

    python benchmarks/reliability.py            # 3 trials of each, the shipped model, engine auto
    python benchmarks/reliability.py --quick    # 1 trial of each

Through a real RTSP server on 127.0.0.1 (tests/rtsp_server.py: system python3 + gi; `make
system-deps`): the rate a 30 fps stream is read at and the frames' age at prediction (made by the
server -> predicted here); a server killed mid-stream (SIGKILL) and restarted 2 s later: how soon the
pipeline says "reconnecting", how soon after the server is back a frame is predicted; a server that
stalls without closing (SIGSTOP for 3 s, `source_timeout` 1 s): how soon the stall is reported, how
soon frames come back after it resumes; `stop(timeout=1)` while the capture is blocked in a read.
Through a named pipe that delivers half a video then stays silent (`source_timeout` 1 s): how soon
after the last frame the pipeline fails with its one-line error; a pipe that never delivers: how
soon `open_source(timeout_s=1)` gives up. The desktop app (offscreen Qt): how long closing the
window takes while it runs a file. Writes benchmarks/results/reliability.{json,md}; exits 1 when a
bar is missed, 2 when the RTSP server cannot run here (its rows are then skipped with the reason).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # rtsp_server.py and outages.py: the test suite's failing inputs

from common import busy_note, finish, machine  # noqa: E402
from outages import StallingPipe, StatusLog  # noqa: E402
from realtime.errors import SourceError  # noqa: E402
from realtime.io.sources import open_source  # noqa: E402
from realtime.io.synthetic import SyntheticClip  # noqa: E402
from realtime.nets.models_store import default_model  # noqa: E402
from realtime.stream.pipeline import Pipeline  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

# (key, what, bar, test): every figure in seconds unless its name says otherwise
BARS: list[tuple[str, str, str, Callable[[float], bool]]] = [
    ("rtsp_fps", "a 30 fps RTSP stream is read at (fps)", "25 to 35", lambda v: 25 <= v <= 35),
    ("rtsp_frame_age_ms", "frame age at prediction, median (ms)", "<= 250", lambda v: v <= 250),
    ("outage_reported_s", "server killed -> status 'reconnecting'", "<= 0.5", lambda v: v <= 0.5),
    ("outage_resumed_s", "server back -> first frame predicted", "<= 2.0", lambda v: v <= 2.0),
    # measured from the stall; the timeout counts from the last frame, which came up to a frame before it
    ("stall_reported_s", "stream stalls (1 s timeout) -> 'reconnecting'", "0.9 to 2.0", lambda v: 0.9 <= v <= 2.0),
    ("stall_resumed_s", "stream resumes -> first frame predicted", "<= 4.0", lambda v: v <= 4.0),
    ("stop_stalled_s", "stop(timeout=1) while a read is blocked", "<= 1.1", lambda v: v <= 1.1),
    ("pipe_stall_error_s", "file stops delivering (1 s timeout): last frame -> error", "<= 2.5", lambda v: v <= 2.5),
    ("pipe_open_error_s", "file never delivers: open_source(timeout_s=1) gives up", "<= 3.0", lambda v: v <= 3.0),
    ("gui_close_s", "closing the desktop app while it runs a file", "<= 1.0", lambda v: v <= 1.0),
]


def _video_bytes(path: Path, frames: int = 40) -> bytes:
    clip = SyntheticClip("swipe_up", 0, 160, 120)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (160, 120))
    for i in range(frames):
        out.write(clip.frame(i))
    out.release()
    return path.read_bytes()


# -- RTSP ---------------------------------------------------------------------------------------
def rtsp_rate(server: Any, model: Any, engine: str, frames: int = 120) -> dict:
    from rtsp_server import frame_age_ms

    ages = []
    with Pipeline(server.url, model, engine=engine, source_timeout=2.0) as p:
        for pred in p:
            ages.append(frame_age_ms(pred.frame))
            if len(ages) == frames:
                break
        fps = p.summary()["fps"]
    return {"rtsp_fps": round(fps, 2), "rtsp_frame_age_ms": round(float(np.median(ages[frames // 3 :])), 1)}


def _fault(server: Any, model: Any, engine: str, timeout: float, fault: Callable[[], None], restore: Callable[[], float], down_s: float) -> tuple[float, float]:
    """45 frames in, `fault()`; `down_s` later, `restore()` (returns when the stream is back). Seconds from
    the fault to status 'reconnecting', and from the return to the next predicted frame."""
    pipe = Pipeline(server.url, model, engine=engine, source_timeout=timeout).start()
    status = StatusLog(pipe)
    times: dict[str, float] = {}
    resumed = float("inf")
    try:
        for i, pred in enumerate(pipe):
            if i == 45 and "fault" not in times:
                times["fault"] = time.monotonic()
                fault()
                threading.Timer(down_s, lambda: times.setdefault("back", restore())).start()
            if "back" in times and pred.capture_ts > times["back"]:
                resumed = pred.capture_ts - times["back"]
                break
            if "fault" in times and time.monotonic() - times["fault"] > 20:
                break
    finally:
        pipe.stop()
        status.close()
    lost = status.first("reconnecting", after=times["fault"])
    return (round(lost[0] - times["fault"], 3) if lost else float("inf")), round(resumed, 3)


def rtsp_outage(server: Any, model: Any, engine: str) -> dict:
    """The server killed mid-stream (SIGKILL) and restarted 2 s later."""
    reported, resumed = _fault(server, model, engine, 2.0, server.kill, lambda: (server.start(), server.ready_at)[1], 2.0)
    return {"outage_reported_s": reported, "outage_resumed_s": resumed}


def rtsp_stall(server: Any, model: Any, engine: str) -> dict:
    """The server stalls without closing (SIGSTOP) for 3 s, with a 1 s source timeout."""
    reported, resumed = _fault(server, model, engine, 1.0, server.pause, lambda: (time.monotonic(), server.resume())[0], 3.0)
    return {"stall_reported_s": reported, "stall_resumed_s": resumed}


def stop_while_stalled(server: Any, model: Any, engine: str) -> dict:
    pipe = Pipeline(server.url, model, engine=engine, source_timeout=30.0).start()
    it = iter(pipe)
    for _ in range(10):
        next(it)
    server.pause()
    last, quiet_since = pipe.stats.captured, time.monotonic()
    while time.monotonic() - quiet_since < 0.3:  # until the capture thread is blocked in its read
        time.sleep(0.02)
        if pipe.stats.captured != last:
            last, quiet_since = pipe.stats.captured, time.monotonic()
    t0 = time.monotonic()
    pipe.stop(timeout=1.0)
    elapsed = time.monotonic() - t0
    server.resume()
    return {"stop_stalled_s": round(elapsed, 3)}


# -- named pipes, the desktop app ---------------------------------------------------------------
def pipe_stall(tmp: Path, model: Any, engine: str) -> dict:
    data = _video_bytes(tmp / "clip.avi")
    fifo = StallingPipe(tmp / "stall.fifo", data[: len(data) // 2])
    last = None
    try:
        with Pipeline(fifo.path, model, engine=engine, source_timeout=1.0) as p:
            for _ in p:
                last = time.monotonic()
    except SourceError:
        pass
    finally:
        fifo.close()
        (tmp / "stall.fifo").unlink()
    return {"pipe_stall_error_s": round(time.monotonic() - last, 3) if last else float("inf")}


def pipe_open(tmp: Path) -> dict:
    fifo = StallingPipe(tmp / "silent.fifo", b"")
    t0 = time.monotonic()
    try:
        open_source(fifo.path, timeout_s=1.0).release()
        elapsed = float("inf")  # it opened: nothing gave up
    except SourceError:
        elapsed = time.monotonic() - t0
    finally:
        fifo.close()
        (tmp / "silent.fifo").unlink()
    return {"pipe_open_error_s": round(elapsed, 3)}


def gui_close(tmp: Path, model_dir: str | None, engine: str) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtCore import QSettings

    from gui.app import create_app
    from gui.window import MainWindow

    video = tmp / "gui.avi"
    _video_bytes(video, frames=600)
    app = create_app()
    win = MainWindow(QSettings(str(tmp / "gui.ini"), QSettings.Format.IniFormat), source=str(video), model=model_dir, engine=engine, probe_cameras=False)
    win.show()
    deadline = time.monotonic() + 120
    while win.frames_shown < 10 and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    t0 = time.monotonic()
    win.close()
    elapsed = time.monotonic() - t0
    left = [t.name for t in threading.enumerate() if t.name.startswith("twostream-")]
    return {"gui_close_s": round(elapsed, 3) if win.frames_shown >= 10 and not left else float("inf")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 trial of each instead of 3")
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--model", help="checkpoint directory (default: the shipped default)")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--out", type=Path, default=RESULTS / "reliability.json")
    args = ap.parse_args()
    trials = args.trials or (1 if args.quick else 3)
    from realtime.nets.checkpoint import load_checkpoint

    model = load_checkpoint(args.model) if args.model else default_model()
    res: dict = {"benchmark": "reliability", "machine": machine(), "engine": args.engine, "trials": trials, "runs": [], "skipped": {}}

    from rtsp_server import RtspServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        res["skipped"]["rtsp"] = reason
        print(f"reliability: RTSP rows skipped: {reason}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for trial in range(trials):
            run: dict = {}
            if not reason:
                for step in (rtsp_rate, rtsp_outage, rtsp_stall, stop_while_stalled):
                    server = RtspServer(fps=30, size="160x120", lifetime=120).start()
                    try:
                        run.update(step(server, model, args.engine))
                    finally:
                        server.stop()
            run.update(pipe_stall(tmp, model, args.engine))
            run.update(pipe_open(tmp))
            run.update(gui_close(tmp, args.model, args.engine))
            print(f"trial {trial + 1}/{trials}: {json.dumps(run)}", flush=True)
            res["runs"].append(run)

    finish(res["machine"])
    rows = ["| what | bar | " + " | ".join(f"trial {i + 1}" for i in range(trials)) + " | met |", "|---|---|" + "---|" * trials + "---|"]
    res["bars"] = {}
    for key, what, bar, ok in BARS:
        values = [r[key] for r in res["runs"] if key in r]
        if not values:
            rows.append(f"| {what} | {bar} | " + " | ".join("skipped" for _ in range(trials)) + " | not measured |")
            continue
        met = all(ok(v) for v in values)
        res["bars"][key] = {"what": what, "bar": bar, "values": values, "median": statistics.median(values), "met": met}
        rows.append(f"| {what} | {bar} | " + " | ".join(f"{v:g}" for v in values) + f" | {'yes' if met else '**no**'} |")
    md = "\n".join(rows) + "\n"
    if res["skipped"]:
        md += "\n" + "".join(f"Skipped ({k}): {v}\n" for k, v in res["skipped"].items())
    md += f"\nModel: {model.config.spatial_arch} + {model.config.temporal_arch}, engine {args.engine}; seconds unless the row says otherwise.\n"
    md += busy_note(res["machine"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(md)
    print(md)
    missed = [k for k, b in res["bars"].items() if not b["met"]]
    return 1 if missed else 2 if res["skipped"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
