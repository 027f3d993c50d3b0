"""Soak benchmark: a long live run, watching for leaks, stalls and latency creep.

    python benchmarks/soak.py                        # 10 minutes, synthetic source at 30 fps
    python benchmarks/soak.py --minutes 1            # a quick look
    python benchmarks/soak.py --rtsp --outage-every 60   # through a real RTSP server that dies every minute

Samples resident memory, thread count and open file descriptors every few seconds, with the frames
predicted, dropped and the capture->prediction latency of the window. After a warm-up (allocator
pools, first clips, first inferences) the run passes when resident memory grew less than 5%, the
thread and descriptor counts never moved, and predictions kept coming. With --rtsp the source is
tests/rtsp_server.py's GStreamer server on 127.0.0.1 (system python3 + gi needed); --outage-every N
kills it every N seconds and restarts it 2 s later, and the run also reports every reconnect.
Writes benchmarks/results/soak.json (or --out) and prints a short report.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # rtsp_server.py, for --rtsp

from realtime.stream.pipeline import Pipeline  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
RSS_GROWTH_LIMIT_PCT = 5.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Sampler:
    """Every `every` seconds: memory, threads, descriptors, and what the pipeline did since last time."""

    def __init__(self, pipe: Pipeline, every: float, server=None):  # type: ignore[no-untyped-def]
        self.pipe, self.every, self.server = pipe, every, server
        self.samples: list[dict] = []
        self.latencies: list[float] = []  # capture->prediction, ms, filled by the consumer
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, latency_ms: float) -> None:
        with self._lock:
            self.latencies.append(latency_ms)

    def _run(self) -> None:
        last_frames = 0
        while not self._done.wait(self.every):
            with self._lock:
                window, self.latencies = self.latencies, []
            st = self.pipe.stats
            frames = st.predicted
            self.samples.append(
                {
                    "t_s": round(time.monotonic() - self._t0, 2),
                    "rss_mb": round(rss_mb(), 1),
                    "threads": threading.active_count(),
                    "fds": open_fds(),
                    "frames": frames,
                    "fps": round((frames - last_frames) / self.every, 2),
                    "dropped": sum(self.pipe.dropped.values()),
                    "latency_ms_p50": round(float(np.percentile(window, 50)), 1) if window else None,
                    "latency_ms_p95": round(float(np.percentile(window, 95)), 1) if window else None,
                    "status": self.pipe.status,
                    "reconnects": self.pipe.source.reconnects if self.pipe.source else 0,
                    "server_up": self.server is None or self.server.proc is not None,
                }
            )
            last_frames = frames

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def outages(server, every: float, down: float, stop: threading.Event, log: list) -> None:  # type: ignore[no-untyped-def]
    """Kill the RTSP server every `every` s and bring it back `down` s later."""
    while not stop.wait(every):
        t_kill = time.monotonic()
        server.kill()
        if stop.wait(down):
            server.start()
            break
        server.start()
        log.append({"killed_at": t_kill, "back_at": server.ready_at})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds before the memory baseline (default 60)")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--model", help="checkpoint directory (default: the shipped default)")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--rtsp", action="store_true", help="read through a real RTSP server on 127.0.0.1")
    ap.add_argument("--outage-every", type=float, default=0.0, help="with --rtsp: kill the server every N s (0: never)")
    ap.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    args = ap.parse_args()

    server = None
    if args.rtsp:
        from rtsp_server import RtspServer, unavailable_reason

        reason = unavailable_reason()
        if reason:
            print(f"soak: cannot run --rtsp: {reason}", file=sys.stderr)
            return 2
        server = RtspServer(fps=int(args.fps), size="320x240", lifetime=args.minutes * 60 + 120).start()
        source = server.url
    else:
        source = f"synthetic:demo?fps={args.fps:g}"

    duration = args.minutes * 60
    pipe = Pipeline(source, args.model, engine=args.engine, source_timeout=2.0).start()
    sampler = Sampler(pipe, args.every, server)
    sampler.start()
    stop, outage_log = threading.Event(), []  # type: ignore[var-annotated]
    chaos = None
    if server is not None and args.outage_every > 0:
        chaos = threading.Thread(target=outages, args=(server, args.outage_every, 2.0, stop, outage_log), daemon=True)
        chaos.start()
    resumed = []  # seconds from a server's return to the next prediction, one per outage
    t0 = time.monotonic()
    try:
        for pred in pipe:
            sampler.add(pred.latency_ms)
            if outage_log and len(resumed) < len(outage_log) and pred.capture_ts > outage_log[len(resumed)]["back_at"]:
                resumed.append(round(pred.capture_ts - outage_log[len(resumed)]["back_at"], 3))
            if time.monotonic() - t0 >= duration:
                break
    finally:
        sampler.stop()  # before the pipeline: a sample taken while it stops would count its threads ending
        stop.set()
        if chaos is not None:
            chaos.join()
        pipe.stop()
        if server is not None:
            server.stop()

    samples = sampler.samples
    # Threads and descriptors are compared while the stream is up: an outage closes the connection (and
    # the test server's pipes), and a reconnect briefly runs a second capture thread.
    steady = [s for s in samples if s["t_s"] >= args.warmup and s["status"] == "running" and s["server_up"]] or samples[-1:]
    base = steady[0]
    summary = pipe.summary()
    result = {
        "benchmark": "soak",
        "source": summary["source"],
        "minutes": args.minutes,
        "fps_asked": args.fps,
        "engine": summary["engine"],
        "model": summary["model"],
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "frames": summary["frames"],
        "captured": summary["captured"],
        "fps": summary["fps"],
        "dropped": summary["dropped"],
        "latency_ms": summary["latency_ms"]["total"],
        "reconnects": summary["reconnects"],
        "source_down_s": summary["source_down_s"],
        "outages": len(outage_log),
        "resumed_after_s": resumed,
        "warmup_s": args.warmup,
        "rss_mb": {"after_warmup": base["rss_mb"], "end": steady[-1]["rss_mb"], "max": max(s["rss_mb"] for s in steady)},
        "rss_growth_pct": round((steady[-1]["rss_mb"] - base["rss_mb"]) / base["rss_mb"] * 100, 2),
        "threads": sorted({s["threads"] for s in steady}),
        "fds": sorted({s["fds"] for s in steady}),
        "samples": samples,
    }
    stalls = [s["t_s"] for s in samples if s["fps"] == 0 and s["status"] != "reconnecting" and s["server_up"]]
    result["checks"] = {
        f"rss grew < {RSS_GROWTH_LIMIT_PCT:g}% after warm-up": result["rss_growth_pct"] < RSS_GROWTH_LIMIT_PCT,
        "thread count constant": len(result["threads"]) == 1,
        "fd count constant": len(result["fds"]) == 1,
        "no stall outside outages": not stalls,
        "every outage resumed within 2 s": all(r < 2.0 for r in resumed) and len(resumed) == len(outage_log),
    }
    result["passed"] = all(result["checks"].values())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(
        f"soak: {result['frames']} frames from {result['source']} in {args.minutes:g} min, {result['fps']} fps, "
        f"dropped {sum(result['dropped'].values())}, latency p50/p95/p99 {result['latency_ms']['p50']}/"
        f"{result['latency_ms']['p95']}/{result['latency_ms']['p99']} ms"
    )
    print(
        f"  rss {base['rss_mb']} MB after {args.warmup:g} s warm-up -> {steady[-1]['rss_mb']} MB at the end "
        f"({result['rss_growth_pct']:+.2f}%), threads {result['threads']}, fds {result['fds']}"
    )
    if outage_log:
        print(f"  {len(outage_log)} outages, {result['reconnects']} reconnects, resumed after {resumed} s")
    for name, ok in result["checks"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    print(f"  wrote {args.out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
