"""Multi-stream benchmark: one MultiPipeline batching N sources against N separate Pipelines, same run.

    python benchmarks/multistream.py                        # N = 1, 2, 4 at 30 fps (about 2 minutes on 2 cores)
    python benchmarks/multistream.py --quick                # shorter runs
    python benchmarks/multistream.py --streams 1 2 4 8 16   # more streams
    python benchmarks/multistream.py --device cuda          # on a GPU (the default when CUDA is present)

For each N, N procedural sources (`synthetic:demo`, one seed each) and the default model, both nets
every frame, run two ways one after the other:
- batched: one `realtime.stream.multistream.MultiPipeline` (per-stream capture and flow threads, one infer
  thread running each net once on the batch of every stream's newest work);
- separate: N `realtime.stream.pipeline.Pipeline`s in the same process, each with its own engine and infer
  thread (what one would run without multi-stream serving).
Paced at --fps (default 30): per-stream fps, capture->prediction latency p50/p95/p99, dropped frames,
CPU seconds per second, mean batch size. As fast as possible (lossless, `fps=0`): frames per second
over all streams (capacity). Ratios batched / separate come from the same run.

The issue's GPU goal (16 sources at 30 fps, p95 < 33 ms, on one data-centre GPU) is measured only
when a CUDA GPU is present; otherwise the output and the JSON say it was NOT measured.
Writes benchmarks/results/multistream.json, .md and .png.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import busy_note, finish, cpu_name, machine  # noqa: E402
from realtime.options import ENGINES  # noqa: E402
from realtime.nets.engines import create_engine, resolve_device  # noqa: E402
from realtime.errors import UserError  # noqa: E402
from realtime.nets.models_store import default_model  # noqa: E402
from realtime.stream.multistream import MultiPipeline  # noqa: E402
from realtime.stream.pipeline import Pipeline  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
GPU_GOAL = {"streams": 16, "fps": 30, "p95_ms": 33.0}
NOT_MEASURED = (
    "GPU goal (16 sources at 30 fps, p95 < 33 ms on one data-centre GPU): NOT measured - "
    "no CUDA GPU was available to this run; the figures below are CPU figures"
)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def sources(n: int, fps: int, size: str) -> list[str]:
    return [f"synthetic:demo?fps={fps}&seed={i}&size={size}" for i in range(n)]


def stream_row(s: dict) -> dict:
    return {
        "source": s["source"],
        "frames": s["frames"],
        "fps": s["fps"],
        "latency_ms": s["latency_ms"]["total"],
        "dropped": sum(s["dropped"].values()),
        "dropped_by_stage": s["dropped"],
    }


def aggregate(streams: list[dict], wall: float, cpu: float, expected: int) -> dict:
    frames = sum(s["frames"] for s in streams)
    return {
        "streams": streams,
        "frames": frames,
        "expected_frames": expected,
        "wall_s": round(wall, 3),
        "fps_total": round(frames / wall, 2),
        "fps_per_stream_min": round(min(s["fps"] for s in streams), 2),
        "fps_per_stream_mean": round(float(np.mean([s["fps"] for s in streams])), 2),
        "p50_ms_mean": round(float(np.mean([s["latency_ms"]["p50"] for s in streams])), 2),
        "p95_ms_worst": round(max(s["latency_ms"]["p95"] for s in streams), 2),
        "p99_ms_worst": round(max(s["latency_ms"]["p99"] for s in streams), 2),
        "dropped": sum(s["dropped"] for s in streams),
        "cpu_per_wall": round(cpu / wall, 3),
    }


def run_batched(model, engine, srcs: list[str], frames: int) -> dict:  # type: ignore[no-untyped-def]
    mp = MultiPipeline(srcs, model, engine=engine, max_frames=frames)
    mp.start()  # sources opened, batch warm-up done: timing starts with the frames
    c0, t0 = cpu_seconds(), time.perf_counter()
    for _ in mp:
        pass
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    mp.stop()
    s = mp.summary()
    out = aggregate([stream_row(x) for x in s["streams"]], wall, cpu, frames * len(srcs))
    out["batch_size_mean"] = s["batch_size"]["mean"]
    out["batch_compute_ms"] = s["batch_compute_ms"]
    return out


def run_separate(model, engines: list, srcs: list[str], frames: int) -> dict:  # type: ignore[no-untyped-def]
    pipes = [Pipeline(src, model, engine=engines[i], max_frames=frames) for i, src in enumerate(srcs)]

    def drain(p: Pipeline) -> None:
        for _ in p:
            pass

    threads = [threading.Thread(target=drain, args=(p,), name=f"bench-consumer-{i}") for i, p in enumerate(pipes)]
    c0, t0 = cpu_seconds(), time.perf_counter()
    for p in pipes:
        p.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    for p in pipes:
        p.stop()
    return aggregate([stream_row(p.summary()) for p in pipes], wall, cpu, frames * len(srcs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs")
    ap.add_argument("--out", default=str(RESULTS / "multistream.json"))
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4], help="numbers of sources to run (default 1 2 4)")
    ap.add_argument("--fps", type=int, default=30, help="frame rate of each paced source (default 30)")
    ap.add_argument("--seconds", type=float, help="length of each paced run (default 8; 3 with --quick)")
    ap.add_argument("--engine", default="auto", choices=ENGINES)
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    ap.add_argument("--size", default="320x240", help="source frame size (default 320x240)")
    args = ap.parse_args()
    if min(args.streams) < 1 or args.fps < 1:
        raise UserError("--streams and --fps must be at least 1")
    seconds = args.seconds or (3.0 if args.quick else 8.0)
    capacity_frames = 40 if args.quick else 120
    device = resolve_device(args.device)
    on_gpu = device.type == "cuda"
    model = default_model()
    cfg = model.config
    gpu = torch.cuda.get_device_name(device) if on_gpu else None
    res: dict = {
        "machine": machine(gpu),
        "model": {
            "name": cfg.provenance.get("name"),
            "arch": f"{cfg.spatial_arch}/{cfg.temporal_arch}",
            "input_size": cfg.input_size,
            "L": cfg.clip_length,
            "flow": cfg.flow.to_dict(),
        },
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "fps": args.fps,
        "seconds": seconds,
        "capacity_frames": capacity_frames,
        "size": args.size,
        "gpu_goal": {**GPU_GOAL, "measured": False, "note": NOT_MEASURED} if not on_gpu else {**GPU_GOAL, "measured": True},
        "paced": {},
        "capacity": {},
    }
    print(f"{gpu or cpu_name()}, {os.cpu_count()} cores; model {cfg.spatial_arch}/{cfg.temporal_arch} at {cfg.input_size} px, L={cfg.clip_length}", flush=True)
    if not on_gpu:
        print(NOT_MEASURED, flush=True)
    n_max = max(args.streams)
    t0 = time.perf_counter()
    # the batched runs' engine, reused for every N; `auto` picks what `serve` picks for n_max streams
    shared = create_engine(model, args.engine, str(device), max_batch=n_max)
    engines = [shared] + [create_engine(model, shared.name, str(device), shared.half) for _ in range(n_max - 1)]
    res["engine"] = shared.describe()
    res["engine_build_s"] = round(time.perf_counter() - t0, 2)
    print(f"engine {shared.describe()} (x{n_max} for the separate pipelines, built in {res['engine_build_s']:.1f} s)", flush=True)
    frames = int(args.fps * seconds)
    try:
        for n in args.streams:
            row: dict = {}
            row["batched"] = run_batched(model, shared, sources(n, args.fps, args.size), frames)
            # separate pipelines own an engine each; engines[0] is the batched one (idle meanwhile)
            row["separate"] = run_separate(model, engines, sources(n, args.fps, args.size), frames)
            b, s = row["batched"], row["separate"]
            row["ratio"] = {
                "fps_total": round(b["fps_total"] / max(s["fps_total"], 1e-9), 3),
                "p95_ms_worst": round(b["p95_ms_worst"] / max(s["p95_ms_worst"], 1e-9), 3),
                "cpu_per_wall": round(b["cpu_per_wall"] / max(s["cpu_per_wall"], 1e-9), 3),
            }
            res["paced"][str(n)] = row
            for mode in ("batched", "separate"):
                r = row[mode]
                print(
                    f"N={n:2d} {mode:<8s} at {args.fps} fps: {r['fps_per_stream_mean']:5.1f} fps per stream (min {r['fps_per_stream_min']:.1f}), "
                    f"p50 {r['p50_ms_mean']:.1f} ms, worst p95 {r['p95_ms_worst']:.1f} ms, dropped {r['dropped']}, CPU {r['cpu_per_wall']:.2f} s/s",
                    flush=True,
                )
            cap = {
                "batched": run_batched(model, shared, sources(n, 0, args.size), capacity_frames),
                "separate": run_separate(model, engines, sources(n, 0, args.size), capacity_frames),
            }
            cap["ratio_fps_total"] = round(cap["batched"]["fps_total"] / max(cap["separate"]["fps_total"], 1e-9), 3)
            res["capacity"][str(n)] = cap
            print(
                f"N={n:2d} as fast as possible: batched {cap['batched']['fps_total']:.1f} frames/s, separate {cap['separate']['fps_total']:.1f} "
                f"frames/s (x{cap['ratio_fps_total']:.2f})",
                flush=True,
            )
    finally:
        for e in engines:
            e.close()
    finish(res["machine"])
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if on_gpu and str(GPU_GOAL["streams"]) in res["paced"]:
        r = res["paced"][str(GPU_GOAL["streams"])]["batched"]
        res["gpu_goal"]["met"] = r["fps_per_stream_min"] >= 0.95 * GPU_GOAL["fps"] and r["p95_ms_worst"] < GPU_GOAL["p95_ms"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    md = table(res)
    print(md)
    out.with_suffix(".md").write_text(md + "\n")
    try:
        plot(res, out.with_suffix(".png"))
    except ImportError:
        print("matplotlib not installed: no plot (pip install 'twostream[train]')")


def table(res: dict) -> str:
    lines = [f"Engine {res['engine']}; sources `synthetic:demo` at {res['size']}, {res['fps']} fps, {res['seconds']:g} s each.", ""]
    g = res["gpu_goal"]
    if not g["measured"]:
        lines += [f"**{g['note']}.**", ""]
    elif "met" in g:
        lines += [f"GPU goal (16 sources at 30 fps, p95 < 33 ms): {'met' if g['met'] else 'NOT met'} on {res['machine']['gpu']}.", ""]
    lines += [
        "| streams | serving | fps per stream, mean (min) | latency p50 (mean) / p95 / p99 (worst stream), ms | dropped | CPU s per s | mean batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, row in res["paced"].items():
        for mode in ("batched", "separate"):
            r = row[mode]
            lines.append(
                f"| {n} | {'one MultiPipeline' if mode == 'batched' else f'{n} Pipeline(s)'} | {r['fps_per_stream_mean']:.1f} ({r['fps_per_stream_min']:.1f}) | "
                f"{r['p50_ms_mean']:.1f} / {r['p95_ms_worst']:.1f} / {r['p99_ms_worst']:.1f} | {r['dropped']} | {r['cpu_per_wall']:.2f} | "
                f"{format(r['batch_size_mean'], '.2f') if 'batch_size_mean' in r else '-'} |"
            )
    lines += [
        "",
        "| streams | as fast as possible: batched frames/s | separate frames/s | batched / separate | paced: worst p95 batched / separate |",
        "|---|---|---|---|---|",
    ]
    for n, cap in res["capacity"].items():
        lines.append(
            f"| {n} | {cap['batched']['fps_total']:.1f} | {cap['separate']['fps_total']:.1f} | {cap['ratio_fps_total']:.2f}x | "
            f"{res['paced'][n]['ratio']['p95_ms_worst']:.2f}x |"
        )
    lines.append(busy_note(res["machine"]))
    return "\n".join(lines)


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [int(n) for n in res["paced"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for mode, style, colour in (("batched", "o-", "#2a7"), ("separate", "s--", "#888")):
        a.plot(ns, [res["paced"][str(n)][mode]["p95_ms_worst"] for n in ns], style, color=colour, label=f"{mode} p95 (worst stream)")
        b.plot(ns, [res["capacity"][str(n)][mode]["fps_total"] for n in ns], style, color=colour, label=mode)
    a.axhline(33.3, color="r", ls=":", label="one frame at 30 fps")
    a.set_xlabel("sources")
    a.set_ylabel("capture -> prediction p95 (ms)")
    a.set_title(f"latency, sources at {res['fps']} fps")
    a.legend(fontsize=8)
    b.plot(ns, [res["fps"] * n for n in ns], ":", color="#c33", label=f"{res['fps']} fps x sources")
    b.set_xlabel("sources")
    b.set_ylabel("frames / s, all streams")
    b.set_title("capacity (as fast as possible)")
    b.legend(fontsize=8)
    for ax in (a, b):
        ax.set_xticks(ns)
    fig.suptitle(f"{res['machine']['gpu'] or res['machine']['cpu']} ({res['machine']['cores']} cores); {res['engine']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        sys.exit(f"multistream benchmark: {e}")
