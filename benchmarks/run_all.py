"""Run the pipeline (quiet and with one core contended), engine, flow, flow-accuracy, multi-stream and teach benchmarks, then join their tables into benchmarks/results/SUMMARY.md.

    python benchmarks/run_all.py                 # full (about 37 minutes on 2 quiet CPU cores, 24 of them flow_accuracy)
    python benchmarks/run_all.py --quick         # short versions (about 7 minutes)
    python benchmarks/run_all.py --summary-only  # rewrite SUMMARY.md from the results already there

Each benchmark runs in its own process (a fresh interpreter: no thread settings or compiled
kernels carried from one to the next) and writes results/NAME.json, .md and .png. SUMMARY.md
says, next to each table, the machine and the time it came from, so figures from different
machines are never mixed up silently. A benchmark that fails is reported and the others still run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BENCHMARKS = {
    "pipeline": "Pipeline: threaded pipeline against a single-threaded loop, live sources at 15/30/60 fps",
    "pipeline-contend1": "Pipeline with one core taken by another process (`pipeline.py --contend 1`): the same runs, sharing the cores",
    "engines": "Engines: eager, TorchScript, torch.compile (and on CUDA fp16 and TensorRT), batch 1 and 8",
    "flow": "Flow: time per frame against end-point error on exact synthetic flow",
    "flow_accuracy": "Flow method against accuracy: one temporal net trained from scratch on each method's flow, tested on the procedural test split",
    "multistream": "Multi-stream: one MultiPipeline batching N sources against N separate pipelines, sources at 30 fps",
    "teach": "Teach: 3 new classes x 10 recorded clips taught to the shipped model, tested on clips recorded separately",
    "reliability": "Reliability: how soon a lost, stalled or silent input is reported and recovered, and how soon stop and the app's close return",
}


def describe_machine(m: dict) -> str:
    parts = [f"{m.get('cpu') or 'CPU'} ({m.get('cores')} cores)"]
    if "gpu" in m:  # benchmarks that could use a GPU record which, or None
        parts.insert(0, m["gpu"] or "no GPU")
    parts += [f"{k} {m[k]}" for k in ("torch", "opencv") if m.get(k)]
    if m.get("load_avg_at_start"):
        parts.append(f"load average {m['load_avg_at_start'][0]:.1f} at start")
    if m.get("other_cores_busy") is not None:
        parts.append(f"other work busy on {m['other_cores_busy']:.1f} cores on average")
    return ", ".join(parts)


def section(results: Path, name: str, title: str, status: str | None) -> list[str]:
    js, md, png = (results / f"{name}{ext}" for ext in (".json", ".md", ".png"))
    lines = [f"## {title}", ""]
    if status:
        lines += [f"**{status}**", ""]
    if not (js.is_file() and md.is_file()):
        return lines + [f"No results: run `python benchmarks/{name}.py`.", ""]
    data = json.loads(js.read_text())
    machine = data.get("machine", {})
    when = data.get("measured_at") or dt.datetime.fromtimestamp(js.stat().st_mtime, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC (file time)")
    lines += [f"Machine: {describe_machine(machine)}; measured {when}; data: [{js.name}]({js.name})", "", md.read_text().strip(), ""]
    if png.is_file():
        lines += [f"![{name}]({png.name})", ""]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short version of every benchmark")
    ap.add_argument("--only", nargs="+", choices=tuple(BENCHMARKS), help="run only these (SUMMARY.md still lists all)")
    ap.add_argument("--summary-only", action="store_true", help="run nothing; rewrite SUMMARY.md from the results there")
    ap.add_argument("--results", default=str(RESULTS), help=f"directory for every result file and SUMMARY.md (default {RESULTS})")
    args = ap.parse_args()
    results = Path(args.results)
    status: dict[str, str] = {}
    failed = 0
    if not args.summary_only:
        for name in args.only or BENCHMARKS:
            script, _, contend = name.partition("-contend")  # pipeline-contend1: pipeline.py --contend 1
            cmd = [sys.executable, str(HERE / f"{script}.py"), "--out", str(results / f"{name}.json")] + (["--quick"] if args.quick else [])
            cmd += ["--contend", contend] if contend else []
            print(f"== {' '.join(cmd)}", flush=True)
            t0 = time.perf_counter()
            rc = subprocess.call(cmd)
            if rc != 0:
                failed += 1
                status[name] = f"the last run failed (exit {rc}); the figures below, if any, are from an earlier run"
            print(f"== {name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
    lines = [
        "# Benchmark results",
        "",
        "Written by `python benchmarks/run_all.py`; what each benchmark measures: benchmarks/README.md. "
        "Each section names the machine its figures came from: compare figures only within one machine "
        "and prefer the ratios measured in the same run.",
        "",
    ]
    for name, title in BENCHMARKS.items():
        lines += section(results, name, title, status.get(name))
    results.mkdir(parents=True, exist_ok=True)
    (results / "SUMMARY.md").write_text("\n".join(lines))
    print(f"wrote {results / 'SUMMARY.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
