"""`twostream bench`: how long an engine takes to start, and how fast its nets run here.

    twostream bench                                   # the engine auto picks, the default model
    twostream bench --engine tensorrt --device cuda   # first start builds, a second start loads the cache
    twostream bench --engine torchscript --json

Reports, for one engine, device, precision and model:
- first start: `create_engine` in this process (build + warm-up). For `tensorrt` the build is
  the one cached on disk (realtime/nets/engines.py's TensorRTEngine); for `onnxruntime`, the ONNX
  export, cached on disk the same way; for `compile`, inductor's cache;
  `--cold-cache` points both caches at an empty directory first, so the first start is a real build;
- second start: the same in a fresh interpreter, as a user's next launch sees it (a cache load);
- each net's latency at batch 1 (p50 / p95), both nets as the pipeline runs them at batch 1, and
  both nets at `--batch` (ms per batch and frames per second).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Callable

from ..errors import UserError
from .options import add_model_options
from .options import half as options_half

if TYPE_CHECKING:  # torch is imported when a command runs, not when the CLI starts
    import torch

    from ..nets.checkpoint import TwoStreamModel
    from ..nets.engines import Engine


def _load(model_arg: str | None) -> TwoStreamModel:
    from ..nets.models_store import resolve_model

    return resolve_model(model_arg)


def _start(model: TwoStreamModel, engine: str, device: str, half: bool | None) -> tuple[Engine, dict]:
    """Build the engine as `run` does (warm-up included); its start-up figures."""
    from ..nets.engines import create_engine

    t0 = time.perf_counter()
    eng = create_engine(model, engine, device, half)
    start = {"seconds": round(time.perf_counter() - t0, 3), "engine": eng.describe()}
    if eng.name == "tensorrt":  # what the disk cache did
        build_s, load_s = getattr(eng, "build_s", 0.0), getattr(eng, "load_s", 0.0)
        start.update(
            tensorrt_build_s=round(build_s, 3),
            tensorrt_load_s=round(load_s, 3),
            cache="built" if build_s > 0 else "loaded",
            cache_dir=str(getattr(eng, "cache_dir", "")),
        )
    elif eng.name == "onnxruntime":  # exported now, or loaded from the disk cache
        export_s, load_s = getattr(eng, "export_s", 0.0), getattr(eng, "load_s", 0.0)
        start.update(
            onnx_export_s=round(export_s, 3),
            onnx_load_s=round(load_s, 3),
            cache="built" if export_s > 0 else "loaded",
            cache_dir=str(getattr(eng, "cache_dir", "")),
            max_abs_diff=getattr(eng, "max_abs_diff", None),
        )
    return eng, start


def _cache_note(f: dict, hint: bool = False) -> str:
    if "tensorrt_build_s" in f:
        return (
            f"; TensorRT engines built in {f['tensorrt_build_s']:.1f} s"
            if f["cache"] == "built"
            else f"; TensorRT engines loaded from the cache in {f['tensorrt_load_s']:.1f} s{' (--cold-cache times a build)' if hint else ''}"
        )
    if "onnx_export_s" in f:
        return (
            f"; both nets exported to ONNX and checked in {f['onnx_export_s']:.2f} s"
            if f["cache"] == "built"
            else f"; ONNX files loaded from the cache and checked in {f['onnx_load_s']:.2f} s{' (--cold-cache times an export)' if hint else ''}"
        )
    return ""


def _percentiles(seconds: list[float]) -> dict[str, float]:
    import numpy as np

    p50, p95 = np.percentile(np.array(seconds) * 1e3, [50, 95])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3)}


def _time(fn: Callable[[], object], iterations: int, sync: Callable[[], None]) -> list[float]:
    out = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t0)
    return out


def measure(eng: Engine, iterations: int, batch: int) -> dict:
    """Per-net latency at batch 1, both nets at batch 1 and at `batch`."""
    import torch

    cfg = eng.config
    s, c = cfg.input_size, cfg.temporal_channels
    gen = torch.Generator().manual_seed(0)
    xs1, xt1 = torch.randn(1, 3, s, s, generator=gen), torch.randn(1, c, s, s, generator=gen)
    on_cuda = eng.device.type == "cuda"

    def sync() -> None:
        if on_cuda:
            torch.cuda.synchronize(eng.device)

    res: dict = {"iterations": iterations, "torch_threads": torch.get_num_threads()}
    with torch.inference_mode():
        for role, net, x in (("spatial", eng.spatial, xs1), ("temporal", eng.temporal, xt1)):
            xd = eng._to_device(x)  # the engine's own device / dtype / memory-format conversion
            for _ in range(3):
                net(xd)
            sync()
            res[f"{role}_batch1_ms"] = _percentiles(_time(lambda: net(xd), iterations, sync))
    res["both_batch1_ms"] = _percentiles(_time(lambda: eng(xs1, xt1), iterations, lambda: None))
    xs, xt = torch.randn(batch, 3, s, s, generator=gen), torch.randn(batch, c, s, s, generator=gen)
    try:
        t0 = time.perf_counter()
        eng(xs, xt)  # a new shape: compile / TensorRT build or refuse it here
        eng(xs, xt)
        warm = time.perf_counter() - t0
        times = _time(lambda: eng(xs, xt), max(3, iterations // 4), lambda: None)
        per_batch = _percentiles(times)
        res["batched"] = {"batch": batch, "warmup_s": round(warm, 3), "ms_per_batch": per_batch, "frames_per_s": round(batch * 1e3 / per_batch["p50"], 1)}
    except Exception as e:  # e.g. an engine built for batch 1 only: report it, keep the rest
        res["batched"] = {"batch": batch, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"}
    return res


def _second_start(args: argparse.Namespace, engine: str, env: dict) -> dict:
    cmd = [sys.executable, "-m", "realtime.cli.bench", "--start-only", "--engine", engine, "--device", args.device, "--precision", args.precision] + (
        ["--model", args.model] if args.model else []
    )
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    except subprocess.TimeoutExpired:
        return {"error": "the second start took more than 30 minutes"}
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {r.returncode}: {last[:200]}"}
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["process_s"] = round(time.perf_counter() - t0, 3)  # interpreter, imports, model load and engine start
    return out


def cmd_bench(args: argparse.Namespace) -> int:
    if args.batch < 1 or args.iterations < 1:
        raise UserError("--batch and --iterations must be at least 1")
    half = options_half(args)
    env = dict(os.environ)
    saved = {k: os.environ.get(k) for k in ("TWOSTREAM_CACHE", "TORCHINDUCTOR_CACHE_DIR")}
    cold = tempfile.TemporaryDirectory(prefix="twostream-bench-") if args.cold_cache else None
    try:
        if cold is not None:  # both starts share this empty cache: the first builds, the second loads
            env.update(TWOSTREAM_CACHE=cold.name, TORCHINDUCTOR_CACHE_DIR=os.path.join(cold.name, "inductor"))
            os.environ.update(TWOSTREAM_CACHE=cold.name, TORCHINDUCTOR_CACHE_DIR=env["TORCHINDUCTOR_CACHE_DIR"])
        t0 = time.perf_counter()
        model = _load(args.model)
        load_s = time.perf_counter() - t0
        eng, first = _start(model, args.engine, args.device, half)
        try:
            cfg = model.config
            report: dict = {
                "engine": eng.name,
                "asked": args.engine,
                "device": str(eng.device),
                "precision": "fp16" if eng.half else "fp32",
                "model": {
                    "name": cfg.provenance.get("name", args.model or "default"),
                    "arch": f"{cfg.spatial_arch}/{cfg.temporal_arch}",
                    "input_size": cfg.input_size,
                    "L": cfg.clip_length,
                    "load_s": round(load_s, 3),
                },
                "machine": _machine(eng.device),
                "cold_cache": bool(cold),
                "first_start": first,
            }
            if eng.auto_reasons:
                report["auto_not"] = eng.auto_reasons
            report["second_start"] = {"skipped": True} if args.no_second_start else _second_start(args, eng.name, env)
            report.update(measure(eng, args.iterations, args.batch))
        finally:
            eng.close()
    finally:
        if cold is not None:
            cold.cleanup()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else format_report(report))
    return 0


def _machine(device: torch.device) -> dict:
    import platform

    import torch

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"cores": os.cpu_count(), "gpu": gpu, "torch": torch.__version__, "python": platform.python_version()}


def format_report(r: dict) -> str:
    m = r["model"]
    where = r["machine"]["gpu"] or f"{r['machine']['cores']} CPU cores"
    lines = [
        f"bench: {r['first_start']['engine']} ({where}, torch {r['machine']['torch']}); model {m['name']} "
        f"({m['arch']} at {m['input_size']} px, L={m['L']}), loaded in {m['load_s']:.2f} s"
    ]
    if r.get("auto_not"):
        lines.append(f"  auto did not pick: {'; '.join(r['auto_not'])}")
    f = r["first_start"]
    cache = _cache_note(f, hint=True)
    lines.append(f"  first start   {f['seconds']:8.2f} s  (build + warm-up in this process{', empty cache' if r['cold_cache'] else ''}{cache})")
    s = r["second_start"]
    if s.get("skipped"):
        lines.append("  second start  skipped (--no-second-start)")
    elif "error" in s:
        lines.append(f"  second start  failed: {s['error']}")
    else:
        extra = _cache_note(s)
        lines.append(f"  second start  {s['seconds']:8.2f} s  (a fresh process: engine start; {s['process_s']:.1f} s with interpreter and model load{extra})")
    lines.append(f"  latency at batch 1, ms     p50      p95   ({r['iterations']} iterations, {r['torch_threads']} torch thread(s))")
    for key, label in (("spatial_batch1_ms", "spatial net"), ("temporal_batch1_ms", "temporal net"), ("both_batch1_ms", "both nets")):
        lines.append(f"    {label:<20s} {r[key]['p50']:8.2f} {r[key]['p95']:8.2f}")
    b = r["batched"]
    if "error" in b:
        lines.append(f"  batch {b['batch']}: not run: {b['error']}")
    else:
        lines.append(
            f"  batch {b['batch']}: both nets p50 {b['ms_per_batch']['p50']:.2f} ms per batch = {b['frames_per_s']:.1f} frames/s "
            f"(p95 {b['ms_per_batch']['p95']:.2f} ms; first calls at this size {b['warmup_s']:.2f} s)"
        )
    return "\n".join(lines) + "\n"


def _start_only(argv: list[str]) -> int:
    """The second start, in a fresh interpreter: prints its figures as one JSON line."""
    from ..logs import setup_logging

    p = argparse.ArgumentParser(prog="twostream bench --start-only")
    p.add_argument("--start-only", action="store_true")
    add_model_options(p)
    a = p.parse_args(argv)
    setup_logging(False)
    try:
        model = _load(a.model)
        eng, start = _start(model, a.engine, a.device, None if a.precision == "auto" else a.precision == "fp16")
        eng.close()
    except UserError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    sys.stdout.write(json.dumps(start) + "\n")
    return 0


def register(sub: argparse._SubParsersAction, commands: dict) -> None:
    p = sub.add_parser("bench", help="engine start-up time (build, then cached load) and net latency / throughput here")
    add_model_options(p)
    p.add_argument("--batch", type=int, default=8, help="batch size of the throughput figure (default 8)")
    p.add_argument("--iterations", type=int, default=50, help="timed iterations per latency figure (default 50)")
    p.add_argument("--cold-cache", action="store_true", help="start with empty TensorRT, ONNX and inductor caches, so the first start is a build")
    p.add_argument("--no-second-start", action="store_true", help="skip the second start in a fresh process")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    commands["bench"] = cmd_bench


if __name__ == "__main__":
    raise SystemExit(_start_only(sys.argv[1:]))
