"""GPU benchmark: one prepared command that verifies every CUDA path and measures the GPU bars.

    python benchmarks/gpu.py --out DIR                          # on a CUDA GPU: about 7 minutes (--budget-s 420)
    python benchmarks/gpu.py --out DIR --device cpu --quick     # the same code on a CPU, tiny sizes (a smoke test)

Writes DIR/gpu.json (every number, the machine), DIR/gpu.md (tables, the bars), DIR/gpu.png (when
matplotlib imports) and DIR/gpu.log (what every section printed). Five sections, each in its own
process under a share of one global deadline (`--budget-s`): a section that runs out of time skips
what is left with the reason recorded, one that hangs is killed at its share and keeps what it had
saved, one that fails is recorded with its error, and the rest still run. The JSON and markdown are
rewritten after every section, so a run cut short still leaves results.

1. `correctness`: each CUDA engine (`torch` and `compile`, fp32 and fp16; `compile` is CUDA graphs,
   mode reduce-overhead, on a GPU; `onnxruntime` when realtime.nets.engines has it and ONNX Runtime's
   CUDAExecutionProvider is present) against eager fp32 on the CPU: max abs difference of the
   softmax scores on the same inputs, bound 1e-3 (fp32) / 1e-2 (fp16), pass or fail per row; also
   called from a second thread, as the pipeline's infer thread calls it (CUDA graph trees are per
   thread), whether the nets are channels_last, and how many CUDA graphs were recorded.
2. `paper`: CNN-M-2048 at 224 px, L = 10 (random weights made input-dependent) through the real
   `Pipeline` on `synthetic:demo` at 30 fps and as fast as possible, per engine: p50/p95/p99 of the
   flow, infer and total (capture -> fused scores) latency; bar p99 < 5 ms with the fastest engine.
   The nets alone (inputs already on the device): compile fp16 and eager fp16 against eager fp32 at
   batch 1, 16 and 64; bar compile fp16 >= 3x eager fp32.
3. `multistream`: `MultiPipeline` with N synthetic 30 fps sources, N = 4, 8, 16, ... while the worst
   stream's p95 < 33 ms and no frame is dropped (the first second excluded); the largest N, GPU
   utilisation (torch.cuda.utilization, else nvidia-smi) and CPU utilisation. Bar: >= 16 for the
   shipped fast model; CNN-M's figure too. Engine: eager fp16 (`compile` pads every batch to N and
   recompiles for each N, which the time box cannot afford; `--multistream-engine compile` tries it).
4. `breakdown`: where one frame's time goes at batch 1: DIS flow, RGB and flow-stack building on the
   CPU, frame upload, flow-stack upload, each net, scores back to the host, fusion; timed with CUDA
   events and with synchronize around each piece. And the upload pattern a GPU-side ring of L flow
   fields would use (only the newest field sent per frame, the stack assembled on the GPU) against
   today's whole 2L-channel stack: both measured, and their stacks compared.
5. `tensorrt`: "not available on the device image (no TensorRT wheel)" unless torch_tensorrt
   imports; then the engine's correctness row as in section 1. The engine's code is not changed here.

On a CPU (`--device cpu`), every section runs the same code on the CPU; rows that need CUDA say
"no CUDA device" instead of numbers, and `--quick` uses a small stand-in for CNN-M and short runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import informative  # noqa: E402
from realtime.nets.familiarity import split  # noqa: E402

SECTIONS = ("correctness", "paper", "multistream", "breakdown", "tensorrt")
SHARES = {"correctness": 0.25, "paper": 0.30, "multistream": 0.27, "breakdown": 0.12, "tensorrt": 0.06}
NO_CUDA = "no CUDA device"
BOUNDS = {"fp32": 1e-3, "fp16": 1e-2}  # max abs difference of softmax scores from eager fp32 on the CPU
TRT_NOTE = "not available on the device image (no TensorRT wheel)"
BAR_P99_MS = 5.0
BAR_SPEEDUP = 3.0
BAR_STREAMS = 16
STREAM_P95_MS = 33.0
SOURCE_SIZE = "320x240"


# ------------------------------------------------------------------------------------------------
# small helpers
def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def clean(obj: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(clean(data), indent=2) + "\n")
    tmp.replace(path)


def pct(values: list[float]) -> dict:
    """p50/p95/p99 (and count) of values in ms."""
    import numpy as np

    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(np.asarray(values, np.float64), [50, 95, 99])
    return {"n": len(values), "p50": round(float(p50), 3), "p95": round(float(p95), 3), "p99": round(float(p99), 3)}


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def machine_busy_seconds() -> float | None:
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def sync(cuda: bool) -> None:
    if cuda:
        import torch

        torch.cuda.synchronize()


def nvidia_smi(query: str) -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, f"--query-gpu={query}", "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0].strip() if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


# ------------------------------------------------------------------------------------------------
# models
def fast_model():  # type: ignore[no-untyped-def]
    """The shipped fast model (trained/default; an untrained resnet18_050 at 112 px when none is shipped)."""
    from realtime.nets.models_store import default_model

    return informative(default_model())


def paper_model(quick: bool):  # type: ignore[no-untyped-def]
    """CNN-M-2048 at 224 px, L = 10, random weights; with --quick a small stand-in (same L, 64 px)."""
    from realtime.nets.checkpoint import ModelConfig, TwoStreamModel
    from realtime.stream.flow import FlowSettings

    labels = [f"class{i}" for i in range(12)]
    if quick:
        cfg = ModelConfig(
            labels=labels,
            spatial_arch="mobilenet_v2_035",
            temporal_arch="mobilenet_v2_035",
            input_size=64,
            clip_length=10,
            flow=FlowSettings(width=72, height=72),
            trained=False,
            provenance={"name": "stand-in for CNN-M-2048 (--quick: mobilenet_v2_035 at 64 px, L=10, untrained)"},
        )
    else:
        cfg = ModelConfig(
            labels=labels,
            spatial_arch="cnn_m_2048",
            temporal_arch="cnn_m_2048",
            input_size=224,
            clip_length=10,
            flow=FlowSettings(width=256, height=256),
            trained=False,
            provenance={"name": "cnn_m_2048 (untrained, input-dependent scores, for timing)"},
        )
    return informative(TwoStreamModel.create(cfg, seed=0))


def describe_model(model) -> dict:  # type: ignore[no-untyped-def]
    c = model.config
    return {
        "name": c.provenance.get("name", "model"),
        "arch": f"{c.spatial_arch}/{c.temporal_arch}",
        "input_size": c.input_size,
        "L": c.clip_length,
        "flow": f"{c.flow.algorithm} {c.flow.preset} at {c.flow.width}x{c.flow.height}",
        "trained": c.trained,
    }


# ------------------------------------------------------------------------------------------------
# engines
def ort_unavailable(cuda: bool) -> str | None:
    """Why the onnxruntime engine cannot be tried here (None: it can)."""
    from realtime.nets.engines import ENGINES

    if "onnxruntime" not in ENGINES:
        return "not available: realtime.nets.engines has no 'onnxruntime' engine (yet)"
    try:
        import onnxruntime
    except Exception as e:  # noqa: BLE001 - any import failure means the same here
        return f"not available: onnxruntime does not import ({first_line(e)})"
    providers = list(onnxruntime.get_available_providers())
    if cuda and "CUDAExecutionProvider" not in providers:
        return f"not available: ONNX Runtime {onnxruntime.__version__} has no CUDAExecutionProvider (providers: {', '.join(providers)})"
    return None


def trt_unavailable(cuda: bool) -> str | None:
    if importlib.util.find_spec("torch_tensorrt") is None:
        return TRT_NOTE if cuda else f"not available: torch_tensorrt is not installed; {NO_CUDA}"
    try:
        import torch_tensorrt  # noqa: F401
    except Exception as e:  # noqa: BLE001
        return f"not available: torch_tensorrt is installed but does not import ({first_line(e)})"
    return None if cuda else NO_CUDA


def variant_key(name: str, half: bool) -> str:
    return f"{name} {'fp16' if half else 'fp32'}"


def unavailable(S: "Section", name: str, half: bool) -> str | None:
    """Why engine `name` at this precision is not run on this device (None: run it)."""
    if half and not S.cuda:
        return NO_CUDA
    if name == "onnxruntime":
        return ort_unavailable(S.cuda)
    if name == "tensorrt":
        return trt_unavailable(S.cuda)
    if name == "compile" and not S.cuda and S.quick:
        return "skipped: compile on a CPU builds C++ for tens of seconds per net; run without --quick"
    return None


def build_engine(S: "Section", model, name: str, half: bool, max_batch: int = 1):  # type: ignore[no-untyped-def]
    from realtime.nets.engines import create_engine

    return create_engine(model, name, S.device, half, max_batch=max_batch)


def close_engine(eng) -> None:  # type: ignore[no-untyped-def]
    try:
        eng.close()
    finally:
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def channels_last(eng) -> bool | None:  # type: ignore[no-untyped-def]
    import torch

    try:
        net = getattr(eng.spatial, "_orig_mod", eng.spatial)
        w = next(p for p in net.parameters() if p.dim() == 4)
        return bool(w.is_contiguous(memory_format=torch.channels_last))
    except Exception:  # noqa: BLE001 - TorchScript / TensorRT / ONNX Runtime nets have no plain parameters
        return None


def cudagraphs_recorded() -> int | None:
    """CUDA graphs inductor recorded in the calling thread (its graph trees are per thread)."""
    try:
        import torch
        from torch._inductor import cudagraph_trees as ct

        mgr = ct.get_manager(torch.cuda.current_device(), create_if_none_exists=False)
        if mgr is None:
            return 0
        n, stack = 0, list(mgr.get_roots())
        while stack:
            node = stack.pop()
            n += 1
            stack.extend(c for cs in node.children.values() for c in cs)
        return n
    except Exception:  # noqa: BLE001 - internal API: report unknown
        return None


def cudagraph_skips() -> int | None:
    try:
        from torch._dynamo.utils import counters

        return int(counters["inductor"]["cudagraph_skips"])
    except Exception:  # noqa: BLE001
        return None


def raise_recompile_limit(at_least: int) -> int | None:
    """compile specialises on shapes, and the spatial and temporal nets share one forward's code: batches 1, 16 and 64
    of both are six entries, near dynamo's default limit (8), past which it would fall back to eager silently."""
    try:
        import torch._dynamo

        cfg = torch._dynamo.config
        for name in ("recompile_limit", "cache_size_limit"):
            if hasattr(cfg, name):
                setattr(cfg, name, max(int(getattr(cfg, name)), at_least))
                return int(getattr(cfg, name))
    except Exception:  # noqa: BLE001
        pass
    return None


def in_thread(fn: Callable[[], Any], timeout: float) -> Any:
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            box["error"] = e

    t = threading.Thread(target=run, name="gpu-bench-worker", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"the call from a second thread did not return within {timeout:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


# ------------------------------------------------------------------------------------------------
# a section, run in its own process
class Section:
    def __init__(self, name: str, args: argparse.Namespace, deadline: float, path: Path | None):
        self.name, self.args, self.deadline, self.path = name, args, deadline, path
        self.device = args.device
        self.cuda = args.device == "cuda"
        self.quick = args.quick
        self.t0 = time.time()
        self.result: dict = {"section": name, "device": self.device, "status": "running"}
        if not self.cuda:
            self.result["cuda"] = NO_CUDA

    def left(self) -> float:
        return self.deadline - time.time()

    def save(self) -> None:
        self.result["elapsed_s"] = round(time.time() - self.t0, 1)
        if self.path is not None:
            write_json(self.path, self.result)

    def log(self, msg: str) -> None:
        print(f"[{self.name} {time.time() - self.t0:6.1f}s] {msg}", flush=True)

    def step(self, target: dict | list, key: str | None, fn: Callable[[], dict], need_s: float = 0.0, base: dict | None = None) -> dict:
        """Run one time-boxed, exception-isolated step; its record goes to target[key] (a dict) or is appended (a list)."""
        rec: dict = dict(base or {})
        if isinstance(target, list):
            target.append(rec)
        else:
            target[key] = rec  # type: ignore[index]
        left = self.left()
        if left < need_s:
            rec["status"] = f"skipped: the section's time box was reached ({max(left, 0):.0f} s left, about {need_s:.0f} s needed)"
            self.log(f"{key or rec}: {rec['status']}")
            self.save()
            return rec
        t0 = time.perf_counter()
        try:
            rec.update(fn())
            rec.setdefault("status", "ok")
        except Exception as e:  # noqa: BLE001 - one failing step must not stop the others
            rec["status"] = f"failed: {type(e).__name__}: {first_line(e)}"
            rec["traceback"] = traceback.format_exc(limit=12)[-4000:]
            self.log(f"{key or rec.get('engine', '')}: {rec['status']}")
        rec["step_s"] = round(time.perf_counter() - t0, 2)
        self.save()
        return rec


# ------------------------------------------------------------------------------------------------
# 1. correctness
def make_inputs(model, n: int, seed: int = 7) -> list:  # type: ignore[no-untyped-def]
    import torch

    cfg = model.config
    s, c = cfg.input_size, cfg.temporal_channels
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(1, 3, s, s, generator=gen), torch.randn(1, c, s, s, generator=gen)) for _ in range(n)]


def reference_scores(model, inputs) -> list:  # type: ignore[no-untyped-def]
    """Eager fp32 on the CPU: the reference every engine is compared with."""
    from realtime.nets.engines import create_engine

    ref = create_engine(model, "torch", "cpu", False)
    try:
        return [ref(xs, xt) for xs, xt in inputs]
    finally:
        ref.close()


def max_diff(outs: list, ref: list) -> dict:
    import numpy as np

    return {
        "spatial": float(max(np.abs(o[0] - r[0]).max() for o, r in zip(outs, ref))),
        "temporal": float(max(np.abs(o[1] - r[1]).max() for o, r in zip(outs, ref))),
    }


def check_engine(S: Section, model, name: str, half: bool, inputs: list, ref: list) -> dict:  # type: ignore[no-untyped-def]
    """One correctness row: build, compare with the CPU reference (this thread and a second one), time."""
    import numpy as np
    import torch

    if S.cuda:  # page-locked, as the pipeline's work buffers are for a CUDA engine
        inputs = [(xs.pin_memory(), xt.pin_memory()) for xs, xt in inputs]
    t0 = time.perf_counter()
    skips0 = cudagraph_skips() if name == "compile" else None
    eng = build_engine(S, model, name, half)
    row: dict = {"build_s": round(time.perf_counter() - t0, 2), "engine_describe": eng.describe()}
    try:
        prec = "fp16" if getattr(eng, "half", half) else "fp32"
        row["precision"] = prec
        outs = [eng(xs, xt) for xs, xt in inputs]
        d = max_diff(outs, ref)
        bound = BOUNDS[prec]
        row.update(
            max_abs_diff=d,
            bound=bound,
            passed=max(d.values()) <= bound,
            max_score=round(float(max(o[0].max() for o in outs)), 4),
            channels_last=channels_last(eng),
        )
        times = []
        for _ in range(10 if S.quick else 30):
            t = time.perf_counter()
            eng(*inputs[0])  # scores come back as numpy: the copy to the host ends the call
            times.append((time.perf_counter() - t) * 1e3)
        row["ms_per_call"] = pct(times)
        if name == "compile" and S.cuda:
            row["cuda_graphs"] = {
                "mode": "reduce-overhead",
                "recorded_in_main_thread": cudagraphs_recorded(),
                "skips": (cudagraph_skips() or 0) - (skips0 or 0) if skips0 is not None else None,
            }

        def from_thread() -> dict:  # as Pipeline's infer thread calls the engine it was given
            t = time.perf_counter()
            first = eng(*inputs[0])
            first_ms = (time.perf_counter() - t) * 1e3
            more = [eng(xs, xt) for xs, xt in inputs]
            tt = []
            for _ in range(5):
                t = time.perf_counter()
                eng(*inputs[0])
                tt.append((time.perf_counter() - t) * 1e3)
            out = {"first_call_ms": round(first_ms, 3), "then_ms_p50": round(float(np.median(tt)), 3), "max_abs_diff": max_diff([first] + more, [ref[0]] + ref)}
            if name == "compile" and S.cuda:
                out["cuda_graphs_recorded_in_thread"] = cudagraphs_recorded()
            return out

        th = in_thread(from_thread, timeout=max(30.0, S.left()))
        th["passed"] = max(th["max_abs_diff"].values()) <= bound
        row["second_thread"] = th
        row["passed"] = bool(row["passed"] and th["passed"])
        row["status"] = (
            "ok" if row["passed"] else f"FAILED: max abs diff {max(d.values()):.2e} (thread: {max(th['max_abs_diff'].values()):.2e}) > bound {bound:g}"
        )
        if S.cuda:
            row["gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    finally:
        close_engine(eng)
    S.log(
        f"{name} {row.get('precision')}: {row.get('status')} (max |diff| {max(row.get('max_abs_diff', {'x': float('nan')}).values()):.2e}, "
        f"build {row['build_s']:.1f} s)"
    )
    return row


def sec_correctness(S: Section) -> None:
    import torch

    S.result["bounds"] = BOUNDS
    S.result["reference"] = "eager fp32 (engine torch) on the CPU, same inputs, batch 1"
    if S.cuda:
        S.result["tf32"] = {
            "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn.benchmark": torch.backends.cudnn.benchmark,
        }
    rows: list = S.result.setdefault("rows", [])
    models: dict = {}
    S.step(S.result, "models", lambda: _load_models(S, models), need_s=5)
    # most important first: the fast model's and the paper net's fp16 paths, then fp32, then onnxruntime
    plan = [
        ("fast", "torch", False),
        ("fast", "torch", True),
        ("fast", "compile", True),
        ("paper", "torch", True),
        ("paper", "compile", True),
        ("paper", "torch", False),
        ("fast", "compile", False),
        ("paper", "compile", False),
        ("fast", "onnxruntime", False),
    ]
    refs: dict = {}
    for label, name, half in plan:
        if label not in models:
            rows.append({"model": label, "engine": name, "precision": "fp16" if half else "fp32", "status": "skipped: model not built"})
            continue
        model = models[label]
        base = {"model": label, "arch": describe_model(model)["arch"], "engine": name, "precision": "fp16" if half else "fp32", "device": S.device}
        why = unavailable(S, name, half)
        if why is not None:
            rows.append({**base, "status": why})
            S.save()
            continue
        if label not in refs:
            inputs = make_inputs(model, 2 if S.quick else 3)
            refs[label] = (inputs, reference_scores(model, inputs))
        inputs, ref = refs[label]
        need = {"compile": 40.0 if label == "fast" else 25.0, "onnxruntime": 20.0}.get(name, 5.0)
        S.step(rows, None, lambda m=model, n=name, h=half, i=inputs, r=ref: check_engine(S, m, n, h, i, r), need_s=need, base=base)
    ran = [r for r in rows if "passed" in r]
    S.result["bars"] = {
        "correctness": {
            "rows_run": len(ran),
            "passed": sum(bool(r["passed"]) for r in ran),
            "failed": [f"{r['model']} {r['engine']} {r['precision']}" for r in ran if not r["passed"]],
            "not_run": [f"{r['model']} {r['engine']} {r['precision']}: {r['status']}" for r in rows if "passed" not in r],
        }
    }


def _load_models(S: Section, models: dict) -> dict:
    t0 = time.perf_counter()
    models["fast"] = fast_model()
    models["paper"] = paper_model(S.quick)
    return {"fast": describe_model(models["fast"]), "paper": describe_model(models["paper"]), "build_s": round(time.perf_counter() - t0, 2)}


# ------------------------------------------------------------------------------------------------
# 2. the paper-size two-stream: the pipeline and the nets alone
def run_pipeline(model, eng, fps: int, frames: int, warm: int) -> dict:  # type: ignore[no-untyped-def]
    """The real Pipeline on synthetic:demo; stage latencies from every Prediction (the first `warm` left out)."""
    from realtime.stream.pipeline import Pipeline

    p = Pipeline(f"synthetic:demo?fps={fps}&size={SOURCE_SIZE}&seed=0", model, engine=eng, max_frames=frames)
    recs = []
    c0, t0 = cpu_seconds(), time.perf_counter()
    with p:
        for pred in p:
            recs.append((pred.index, pred.ready, pred.capture_ts, pred.flow_ts, pred.infer_ts))
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    summ = p.summary()
    steady = [r for r in recs[warm:] if r[1]]  # both streams ran: the frames the bar is about
    out = {
        "source": f"synthetic:demo?fps={fps}&size={SOURCE_SIZE}",
        "frames": len(recs),
        "frames_measured": len(steady),
        "warm_up_frames_left_out": min(warm, len(recs)),
        "fps": summ["fps"],
        "dropped": summ["dropped"],
        "latency_ms": {
            "flow": pct([(r[3] - r[2]) * 1e3 for r in steady]),
            "infer": pct([(r[4] - r[3]) * 1e3 for r in steady]),
            "total": pct([(r[4] - r[2]) * 1e3 for r in steady]),
        },
        "compute_ms": summ["compute_ms"],
        "pipeline_summary_latency_ms": summ["latency_ms"],
        "cpu_cores_busy": round(cpu / max(wall, 1e-9), 2),
        "wall_s": round(wall, 2),
    }
    if fps == 0:
        out["note"] = "as fast as possible: the source is read without loss, so latency includes queueing; compute_ms is each stage's own time"
    return out


def time_nets(S: Section, eng, batch: int, iters: int) -> dict:  # type: ignore[no-untyped-def]
    """Both nets on a device-resident batch (as Engine hands it to them); CUDA events on a GPU."""
    import numpy as np
    import torch

    cfg = eng.config
    s, c = cfg.input_size, cfg.temporal_channels
    xs = torch.randn(batch, 3, s, s).to(eng.device, eng.dtype).contiguous(memory_format=torch.channels_last)
    xt = torch.randn(batch, c, s, s).to(eng.device, eng.dtype).contiguous(memory_format=torch.channels_last)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for _ in range(3):  # a new batch size: compile builds it, CUDA graphs warm up then record
            eng.spatial(xs), eng.temporal(xt)
        sync(S.cuda)
        warm_s = time.perf_counter() - t0
        times = []
        for _ in range(iters):
            if S.cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                eng.spatial(xs), eng.temporal(xt)
                b.record()
                b.synchronize()
                times.append(a.elapsed_time(b))
            else:
                t = time.perf_counter()
                eng.spatial(xs), eng.temporal(xt)
                times.append((time.perf_counter() - t) * 1e3)
    med = float(np.median(times))
    return {
        "batch": batch,
        "iterations": iters,
        "ms_per_batch": pct(times),
        "ms_per_frame_p50": round(med / batch, 4),
        "frames_per_s": round(batch * 1e3 / med, 1),
        "warm_up_s": round(warm_s, 2),
        "timer": "CUDA events" if S.cuda else "perf_counter",
    }


def sec_paper(S: Section) -> None:
    holder: dict = {}

    def load() -> dict:
        t0 = time.perf_counter()
        holder["model"] = paper_model(S.quick)
        return {**describe_model(holder["model"]), "build_s": round(time.perf_counter() - t0, 2)}

    S.step(S.result, "model", load, need_s=5)
    if "model" not in holder:
        return
    model = holder["model"]
    S.result["dynamo_recompile_limit"] = raise_recompile_limit(16)
    cands = [("compile", True), ("torch", True), ("onnxruntime", False), ("tensorrt", True), ("torch", False)]
    if not S.cuda:
        cands.append(("compile", False))
    engines: dict = {}
    S.result["engines"] = {}
    for name, half in cands:
        key = variant_key(name, half)
        why = unavailable(S, name, half)
        if why is None and not S.cuda and name in ("onnxruntime", "tensorrt"):
            why = "skipped on a CPU: this section is about the GPU paths (benchmarks/pipeline.py measures the CPU engines)"
        if why is not None:
            S.result["engines"][key] = {"status": why}
            continue

        def build(n: str = name, h: bool = half, k: str = key) -> dict:
            t0 = time.perf_counter()
            engines[k] = build_engine(S, model, n, h)
            return {"describe": engines[k].describe(), "build_s": round(time.perf_counter() - t0, 2)}

        S.step(S.result["engines"], key, build, need_s={"compile": 30.0, "tensorrt": 120.0, "onnxruntime": 40.0}.get(name, 5.0))
        S.log(f"engine {key}: {S.result['engines'][key].get('status')} ({S.result['engines'][key].get('build_s', '-')} s)")
    try:
        # the pipeline at batch 1 first: the headline bar
        seconds = 1.0 if S.quick else 8.0
        fps = 30
        frames, warm = int(fps * seconds), (12 if S.quick else 30)
        asap_frames = 30 if S.quick else 300
        S.result["pipeline"] = {}
        pipe_keys = [k for k in engines if k != "torch fp32" or not S.cuda]
        for key in pipe_keys:
            rec = S.result["pipeline"].setdefault(key, {})
            S.step(rec, "paced_30fps", lambda k=key: run_pipeline(model, engines[k], fps, frames, warm), need_s=seconds + 4)
            S.step(rec, "as_fast_as_possible", lambda k=key: run_pipeline(model, engines[k], 0, asap_frames, warm), need_s=5)
            p = rec["paced_30fps"].get("latency_ms", {}).get("total", {})
            S.log(
                f"pipeline {key} at 30 fps: total p50/p95/p99 {p.get('p50')}/{p.get('p95')}/{p.get('p99')} ms, "
                f"as fast as possible {rec['as_fast_as_possible'].get('fps')} fps"
            )
        # the nets alone, device-resident inputs
        batches = (1, 4) if S.quick else (1, 16, 64)
        nets_keys = [k for k in ("torch fp32", "torch fp16", "compile fp16", "compile fp32") if k in engines]
        S.result["nets_alone"] = {}
        for batch in batches:
            rec = S.result["nets_alone"].setdefault(str(batch), {})
            for key in ("torch fp32", "torch fp16", "compile fp16"):
                if key not in engines:
                    rec[key] = {"status": S.result["engines"].get(key, {}).get("status", "not built")}
                    continue
                iters = 5 if S.quick else max(30, 400 // batch)
                S.step(rec, key, lambda k=key, b=batch, it=iters: time_nets(S, engines[k], b, it), need_s=25 if key.startswith("compile") else 4)
            ref = rec.get("torch fp32", {}).get("ms_per_batch", {}).get("p50")
            for key in nets_keys:
                r = rec.get(key, {})
                if ref and r.get("ms_per_batch", {}).get("p50"):
                    r["speedup_vs_eager_fp32"] = round(ref / r["ms_per_batch"]["p50"], 2)
            S.log(f"nets alone batch {batch}: " + ", ".join(f"{k} {rec[k].get('ms_per_batch', {}).get('p50')} ms" for k in rec))
            S.save()
    finally:
        for eng in engines.values():
            close_engine(eng)
    # bars
    paced = {k: v.get("paced_30fps", {}).get("latency_ms", {}).get("total", {}).get("p99") for k, v in S.result.get("pipeline", {}).items()}
    paced = {k: v for k, v in paced.items() if v is not None}
    bars: dict = {}
    if paced:
        best = min(paced, key=paced.get)  # type: ignore[arg-type]
        bars["pipeline_p99_ms"] = {
            "bar": f"p99 capture->fused scores < {BAR_P99_MS:g} ms at 30 fps, fastest engine",
            "engine": best,
            "p99_ms": paced[best],
            "met": paced[best] < BAR_P99_MS,
            "all_engines": paced,
        }
    else:
        bars["pipeline_p99_ms"] = {"bar": f"p99 < {BAR_P99_MS:g} ms", "met": None, "note": "not measured"}
    sp = {}
    for batch, rec in S.result.get("nets_alone", {}).items():
        v = rec.get("compile fp16", {}).get("speedup_vs_eager_fp32")
        sp[batch] = {"speedup": v, "met": (v >= BAR_SPEEDUP) if v is not None else None}
    bars["compile_fp16_vs_eager_fp32"] = {"bar": f">= {BAR_SPEEDUP:g}x, nets alone", "by_batch": sp}
    if not S.cuda:
        for b in bars.values():
            b["note"] = f"{NO_CUDA}: CPU figures, the bars are for a CUDA GPU"
    S.result["bars"] = bars


# ------------------------------------------------------------------------------------------------
# 3. multi-stream
class GpuSampler(threading.Thread):
    """GPU utilisation (percent of time a kernel ran), sampled while a run goes on."""

    def __init__(self, cuda: bool, period: float = 0.25):
        super().__init__(name="gpu-bench-util", daemon=True)
        self.period, self.samples, self.method = period, [], None
        self._stop_ev = threading.Event()
        self.why = NO_CUDA if not cuda else "unknown"
        if cuda:
            self._read = self._pick()

    def _pick(self) -> Callable[[], float] | None:
        import torch

        try:
            torch.cuda.utilization()
            self.method = "torch.cuda.utilization (NVML)"
            return lambda: float(torch.cuda.utilization())
        except Exception as e:  # noqa: BLE001 - pynvml missing or NVML refused
            why = first_line(e)
        if nvidia_smi("utilization.gpu") is not None:
            self.method = "nvidia-smi"
            return lambda: float(nvidia_smi("utilization.gpu") or "nan")
        self.why = f"unknown (torch.cuda.utilization: {why}; no nvidia-smi)"
        return None

    def run(self) -> None:
        if self.method is None:
            return
        while not self._stop_ev.wait(self.period):
            try:
                self.samples.append(self._read())
            except Exception:  # noqa: BLE001
                pass

    def result(self) -> dict | str:
        self._stop_ev.set()
        if self.is_alive():
            self.join(2.0)
        vals = [v for v in self.samples if v == v]
        if self.method is None:
            return self.why
        if not vals:
            return f"unknown (no samples from {self.method})"
        return {"mean_pct": round(sum(vals) / len(vals), 1), "max_pct": round(max(vals), 1), "samples": len(vals), "method": self.method}


def run_multi(S: Section, model, eng, n: int, fps: int, seconds: float, warm_s: float) -> dict:  # type: ignore[no-untyped-def]
    from realtime.stream.multistream import MultiPipeline

    srcs = [f"synthetic:demo?fps={fps}&seed={i}&size={SOURCE_SIZE}" for i in range(n)]
    mp = MultiPipeline(srcs, model, engine=eng, max_frames=int(fps * seconds))
    mp.start()  # sources opened, batch warm-up done
    sampler = GpuSampler(S.cuda)
    sampler.start()
    c0, m0, t0 = cpu_seconds(), machine_busy_seconds(), time.monotonic()
    lat: list[list[float]] = [[] for _ in range(n)]
    warm_end = t0 + warm_s
    drops_at_warm = None
    try:
        for pred in mp:
            now = time.monotonic()
            if drops_at_warm is None and now >= warm_end:
                drops_at_warm = sum(sum(st.dropped.values()) for st in mp.streams)
            if pred.capture_ts >= warm_end:
                lat[pred.stream].append((pred.infer_ts - pred.capture_ts) * 1e3)
    finally:
        wall = time.monotonic() - t0
        cpu, m1 = cpu_seconds() - c0, machine_busy_seconds()
        mp.stop()
    gpu = sampler.result()
    summ = mp.summary()
    per = [pct(v) for v in lat]
    drops = sum(sum(s["dropped"].values()) for s in summ["streams"])
    cores = os.cpu_count() or 1
    worst_p95 = max((p["p95"] for p in per if p["p95"] is not None), default=None)
    out = {
        "streams": n,
        "fps": fps,
        "seconds": seconds,
        "warm_up_s_left_out": warm_s,
        "fps_per_stream": {"min": min(s["fps"] for s in summ["streams"]), "mean": round(sum(s["fps"] for s in summ["streams"]) / n, 2)},
        "latency_ms_worst_stream": {
            "p50": max((p["p50"] for p in per if p["p50"] is not None), default=None),
            "p95": worst_p95,
            "p99": max((p["p99"] for p in per if p["p99"] is not None), default=None),
        },
        "dropped": drops,
        "dropped_after_warm_up": drops - (drops_at_warm or 0) if drops_at_warm is not None else drops,
        "failed_streams": summ["failed"],
        "batch_size": summ["batch_size"],
        "batch_compute_ms": summ["batch_compute_ms"],
        "cpu": {
            "process_cores_busy": round(cpu / max(wall, 1e-9), 2),
            "process_pct_of_machine": round(100 * cpu / max(wall, 1e-9) / cores, 1),
            "machine_pct_busy": round(100 * (m1 - m0) / max(wall, 1e-9) / cores, 1) if m0 is not None and m1 is not None else None,
        },
        "gpu_utilisation": gpu,
        "wall_s": round(wall, 2),
    }
    ok_fps = out["fps_per_stream"]["min"] >= 0.9 * fps
    out["passed"] = bool(worst_p95 is not None and worst_p95 < STREAM_P95_MS and out["dropped_after_warm_up"] == 0 and not summ["failed"] and ok_fps)
    return out


def sec_multistream(S: Section) -> None:
    name = S.args.multistream_engine
    half = S.cuda
    S.result["engine"] = variant_key(name, half)
    S.result["criterion"] = (
        f"worst stream's p95 capture->prediction < {STREAM_P95_MS:g} ms, no frame dropped and every stream at >= 90% of "
        f"30 fps, the first second of each run left out; N doubles from {1 if S.quick else 4} while it holds"
    )
    seconds = 1.0 if S.quick else 6.0
    warm_s = 0.3 if S.quick else 1.0
    start_n, n_max = (1, 2) if S.quick else (4, S.args.multistream_max)
    S.result["models"] = {}
    plan = [("fast", fast_model, 0.6), ("paper", lambda: paper_model(S.quick), 1.0)]
    for label, make, share in plan:
        rec = S.result["models"].setdefault(label, {})
        sub_deadline = time.time() + S.left() * share
        holder: dict = {}

        def load(mk: Callable = make) -> dict:
            t0 = time.perf_counter()
            holder["model"] = mk()
            why = unavailable(S, name, half)
            if why is not None:
                raise RuntimeError(f"engine {name}: {why}")
            holder["engine"] = build_engine(S, holder["model"], name, half, max_batch=n_max)
            return {**describe_model(holder["model"]), "engine": holder["engine"].describe(), "build_s": round(time.perf_counter() - t0, 2)}

        S.step(rec, "model", load, need_s=10)
        if "engine" not in holder:
            continue
        runs: list = rec.setdefault("runs", [])
        try:
            n, down = start_n, False  # doubling up from start_n; if start_n fails, halving down to the largest that passes
            while 1 <= n <= n_max:
                if time.time() + seconds + 5 > sub_deadline:
                    runs.append({"streams": n, "status": f"skipped: this model's share of the time box was reached (before N={n})"})
                    break
                r = S.step(
                    runs, None, lambda k=n: run_multi(S, holder["model"], holder["engine"], k, 30, seconds, warm_s), need_s=seconds + 3, base={"streams": n}
                )
                S.log(
                    f"{label} N={n}: worst p95 {r.get('latency_ms_worst_stream', {}).get('p95')} ms, dropped {r.get('dropped_after_warm_up')} "
                    f"(all {r.get('dropped')}), fps min {r.get('fps_per_stream', {}).get('min')}, GPU {r.get('gpu_utilisation')}, "
                    f"CPU {r.get('cpu', {}).get('machine_pct_busy')}% -> {'pass' if r.get('passed') else 'stop'}"
                )
                if r.get("passed"):
                    if down:
                        break
                    n *= 2
                elif (n == start_n or down) and n > 1 and r.get("status") == "ok":
                    down, n = True, n // 2
                else:
                    break
        finally:
            close_engine(holder["engine"])
        passing = [r["streams"] for r in runs if r.get("passed")]
        rec["largest_n"] = max(passing) if passing else 0
        rec["stopped_by"] = next(
            (r.get("status") if r.get("status") != "ok" else "criterion failed" for r in runs if not r.get("passed")), f"reached --multistream-max {n_max}"
        )
    fast = S.result["models"].get("fast", {}).get("largest_n")
    S.result["bars"] = {
        "multistream_fast": {
            "bar": f">= {BAR_STREAMS} streams at 30 fps, shipped fast model",
            "largest_n": fast,
            "met": (fast >= BAR_STREAMS) if fast is not None else None,
        },
        "multistream_paper": {"largest_n": S.result["models"].get("paper", {}).get("largest_n"), "note": "reported, no bar"},
    }
    if not S.cuda:
        S.result["bars"]["multistream_fast"]["note"] = f"{NO_CUDA}: CPU figures, the bar is for a CUDA GPU"


# ------------------------------------------------------------------------------------------------
# 4. where the time goes, and the GPU flow ring
class Timer:
    """Times pieces: wall clock with synchronize around each piece, and CUDA events on a GPU."""

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.wall: dict[str, list[float]] = {}
        self.events: dict[str, list[float]] = {}

    def __call__(self, key: str, fn: Callable[[], Any], gpu: bool = True) -> Any:
        import torch

        sync(self.cuda)
        use_ev = self.cuda and gpu
        if use_ev:
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
        t = time.perf_counter()
        out = fn()
        if use_ev:
            b.record()
        sync(self.cuda)
        self.wall.setdefault(key, []).append((time.perf_counter() - t) * 1e3)
        if use_ev:
            self.events.setdefault(key, []).append(a.elapsed_time(b))
        return out

    def report(self) -> dict:
        return {k: {"wall_ms": pct(v), **({"cuda_event_ms": pct(self.events[k])} if k in self.events else {})} for k, v in self.wall.items()}


def clip_frames(cfg, n: int) -> list:  # type: ignore[no-untyped-def]
    from realtime.stream.preprocess import to_working_size
    from realtime.io.synthetic import SyntheticSource

    src = SyntheticSource("demo", fps=0, size=tuple(int(v) for v in SOURCE_SIZE.split("x")), seed=3)  # type: ignore[arg-type]
    return [to_working_size(src.read(), cfg.flow) for _ in range(n)]


def breakdown_engine(S: Section, model, eng, iters: int) -> dict:  # type: ignore[no-untyped-def]
    """One frame's way through the GPU path, each piece timed on its own (batch 1)."""
    import torch

    from realtime.stream.buffers import FlowRing
    from realtime.stream.flow import FlowEstimator
    from realtime.stream.fusion import Fusion, Smoother
    from realtime.stream.preprocess import centre_crop, flow_input, rgb_input

    cfg = model.config
    frames = clip_frames(cfg, iters + cfg.clip_length + 2)
    est, ring = FlowEstimator(cfg.flow), FlowRing(cfg.flow, cfg.clip_length)
    top, left = centre_crop(cfg.flow, cfg.input_size)
    s_, c_ = cfg.input_size, cfg.temporal_channels
    rgb_host = torch.zeros(1, 3, s_, s_, pin_memory=S.cuda)  # the pipeline's work buffers: page-locked for a CUDA engine
    flow_host = torch.zeros(1, c_, s_, s_, pin_memory=S.cuda)
    rgb_np, flow_np = rgb_host.numpy()[0], flow_host.numpy()[0]
    fusion, smoother = Fusion(cfg.fusion), Smoother(cfg.num_classes, 8)
    to_dev = getattr(eng, "_to_device", None) or (lambda x: x.to(eng.device, non_blocking=True).to(eng.dtype).contiguous(memory_format=torch.channels_last))
    T = Timer(S.cuda)
    for f in frames[: cfg.clip_length + 1]:  # fill the ring
        flow = est.push(f)
        if flow is not None:
            ring.push(flow)
    with torch.inference_mode():
        for i in range(3):  # warm: CUDA graphs of this thread, allocator, cuDNN
            eng(rgb_host, flow_host)
            softmax_s = split(eng.spatial(to_dev(rgb_host)), eng.has_familiarity)[0]
            softmax_t = torch.softmax(eng.temporal(to_dev(flow_host)).float(), -1)
        del softmax_s, softmax_t
        for f in frames[cfg.clip_length + 1 :]:
            flow = T("cpu: DIS flow (grey, flow)", lambda: est.push(f), gpu=False)
            T("cpu: flow into ring (quantise)", lambda: ring.push(flow), gpu=False)
            T("cpu: rgb_input", lambda: rgb_input(f, cfg, top, left, out=rgb_np), gpu=False)
            T("cpu: flow_input (whole 2L stack)", lambda: flow_input(ring.codes, cfg, top, left, out=flow_np, order=ring.order()), gpu=False)
            xs = T("upload: frame (3 ch)", lambda: to_dev(rgb_host))
            xt = T(f"upload: flow stack ({cfg.temporal_channels} ch)", lambda: to_dev(flow_host))
            s = T("net: spatial + softmax", lambda: split(eng.spatial(xs), eng.has_familiarity)[0])  # (and familiarity, when the model has it)
            t = T("net: temporal + softmax", lambda: torch.softmax(eng.temporal(xt).float(), -1))
            sn, tn = T("download: both score vectors", lambda: (s.cpu().numpy()[0], t.cpu().numpy()[0]))
            T("cpu: fusion + smoothing", lambda: smoother(fusion(sn, tn)), gpu=False)
            T("whole engine call (upload, nets, download)", lambda: eng(rgb_host, flow_host))
    rep = T.report()
    pieces = [k for k in rep if not k.startswith("whole")]
    total = sum(rep[k]["wall_ms"]["p50"] for k in pieces)
    return {
        "engine": eng.describe(),
        "iterations": len(frames) - cfg.clip_length - 1,
        "pieces": rep,
        "sum_of_pieces_p50_ms": round(total, 3),
        "cuda_events": "used" if S.cuda else NO_CUDA,
        "note": "wall_ms: perf_counter with synchronize before and after the piece; cuda_event_ms: device time between two events",
    }


def ring_comparison(S: Section, model, iters: int) -> dict:  # type: ignore[no-untyped-def]
    """Today's upload (the whole (2L, S, S) float stack, rebuilt on the CPU every frame) against a GPU-side ring
    of L normalised fields that gets only the newest field per frame, as float32 or as its uint8 codes."""
    import numpy as np
    import torch

    from realtime.stream.buffers import FlowRing
    from realtime.stream.flow import FlowEstimator
    from realtime.stream.preprocess import centre_crop, flow_input

    cfg = model.config
    L, S_, C = cfg.clip_length, cfg.input_size, cfg.temporal_channels
    dev = torch.device(S.device)
    dtype = torch.float16 if S.cuda else torch.float32
    frames = clip_frames(cfg, iters + L + 2)
    est, ring = FlowEstimator(cfg.flow), FlowRing(cfg.flow, L)
    top, left = centre_crop(cfg.flow, S_)
    pin = S.cuda
    stack_host = torch.empty(1, C, S_, S_, pin_memory=pin)
    field_host = torch.empty(2, S_, S_, pin_memory=pin)
    codes_host = torch.empty(S_, S_, 2, dtype=torch.uint8, pin_memory=pin)
    gring = torch.zeros(L, 2, S_, S_, device=dev, dtype=dtype)  # normalised fields, slot = FlowRing's slot
    gring8 = torch.zeros(L, 2, S_, S_, device=dev, dtype=dtype)
    fl = cfg.flow
    step = float(2 * fl.bound / (fl.levels - 1))
    inv_scale = 1.0 / cfg.flow_scale
    T = Timer(S.cuda)

    def newest_field_cpu(slot: int) -> None:  # the one field flow_input would build, on the CPU
        codes = ring.codes[slot, top : top + S_, left : left + S_]
        out = field_host.numpy()
        for c in range(2):
            fl.dequantise(codes[..., c], out=out[c])
            if cfg.subtract_mean_flow:
                out[c] -= out[c].mean(dtype=np.float32)
            out[c] *= np.float32(inv_scale)

    def assemble(g: torch.Tensor, head: int) -> torch.Tensor:  # oldest first, as ring.order(): slots head..L-1, 0..head-1
        return torch.cat([g[head:], g[:head]]).reshape(1, C, S_, S_).contiguous(memory_format=torch.channels_last)

    def upload_field(slot: int) -> None:
        gring[slot].copy_(field_host.to(dev, non_blocking=True))

    def upload_codes(slot: int) -> None:
        f = codes_host.to(dev, non_blocking=True).permute(2, 0, 1).float().mul_(step).sub_(fl.bound)
        if cfg.subtract_mean_flow:
            f -= f.mean(dim=(1, 2), keepdim=True)
        gring8[slot].copy_(f.mul_(inv_scale))

    for f in frames[: L + 1]:
        flow = est.push(f)
        if flow is not None:
            ring.push(flow)
    for slot in range(L):  # the GPU rings start full, as the CPU one is
        newest_field_cpu(slot)
        upload_field(slot)
        codes_host.numpy()[:] = ring.codes[slot, top : top + S_, left : left + S_]
        upload_codes(slot)
    diffs = []
    with torch.inference_mode():
        for i, f in enumerate(frames[L + 1 :]):
            ring.push(est.push(f))
            order = ring.order()
            head, slot = int(order[0]), int(order[-1])  # the oldest field's slot, the newest's
            # A: today
            T("A cpu: flow_input, whole stack", lambda: flow_input(ring.codes, cfg, top, left, out=stack_host.numpy()[0], order=ring.order()), gpu=False)
            a = T("A gpu: upload whole stack + cast", lambda: stack_host.to(dev, non_blocking=True).to(dtype).contiguous(memory_format=torch.channels_last))
            # B: newest field, float32
            T("B cpu: newest field only", lambda: newest_field_cpu(slot), gpu=False)
            T("B gpu: upload 2 ch into ring", lambda: upload_field(slot))
            b = T("B gpu: assemble stack from ring", lambda: assemble(gring, head))
            # B8: newest field as uint8 codes, normalised on the GPU
            T("B8 cpu: copy newest field's codes", lambda: np.copyto(codes_host.numpy(), ring.codes[slot, top : top + S_, left : left + S_]), gpu=False)
            T("B8 gpu: upload codes, normalise into ring", lambda: upload_codes(slot))
            b8 = T("B8 gpu: assemble stack from ring", lambda: assemble(gring8, head))
            if i < 5:
                diffs.append((float((a.float() - b.float()).abs().max()), float((a.float() - b8.float()).abs().max())))
    rep = T.report()

    def total(prefix: str) -> float:
        return round(sum(v["wall_ms"]["p50"] for k, v in rep.items() if k.startswith(prefix + " ")), 4)

    def total_events(prefix: str) -> float | None:  # CPU pieces by the clock, GPU pieces by CUDA events: no synchronize costs
        if not S.cuda:
            return None
        return round(sum((v.get("cuda_event_ms") or v["wall_ms"])["p50"] for k, v in rep.items() if k.startswith(prefix + " ")), 4)

    totals = {"A_whole_stack": total("A"), "B_newest_field_float": total("B"), "B8_newest_field_uint8": total("B8")}
    totals_ev = {"A_whole_stack": total_events("A"), "B_newest_field_float": total_events("B"), "B8_newest_field_uint8": total_events("B8")}
    best = min(("B_newest_field_float", "B8_newest_field_uint8"), key=lambda k: totals[k])
    saving = totals["A_whole_stack"] - totals[best]
    bytes_per_frame = {"A_whole_stack": C * S_ * S_ * 4, "B_newest_field_float": 2 * S_ * S_ * 4, "B8_newest_field_uint8": 2 * S_ * S_}
    return {
        "model": describe_model(model)["arch"],
        "input_size": S_,
        "L": L,
        "dtype_on_device": str(dtype).replace("torch.", ""),
        "pieces": rep,
        "per_frame_p50_ms": totals,
        "per_frame_p50_ms_gpu_by_events": totals_ev if S.cuda else NO_CUDA,
        "upload_bytes_per_frame": bytes_per_frame,
        "max_abs_diff_vs_whole_stack": {"B": max(d[0] for d in diffs), "B8": max(d[1] for d in diffs)} if diffs else None,
        "verdict": {
            "best_ring": best,
            "saving_ms_per_frame": round(saving, 4),
            "saving_pct_of_5ms_budget": round(100 * saving / BAR_P99_MS, 1),
            "pays": bool(saving > 0.05 * BAR_P99_MS),
            "rule": "pays when it saves more than 5% of the 5 ms budget per frame (sum of the p50 of each pattern's pieces)",
        },
        "note": "a real ring needs a slot per stack in flight (the next field overwrites the oldest slot while the nets may read it); "
        "this measures the transfer and assembly only",
    }


def sec_breakdown(S: Section) -> None:
    iters = 10 if S.quick else 60
    S.result["models"] = {}
    for label, make in (("paper", lambda: paper_model(S.quick)), ("fast", fast_model)):
        rec = S.result["models"].setdefault(label, {})
        holder: dict = {}

        def load(mk: Callable = make) -> dict:
            holder["model"] = mk()
            return describe_model(holder["model"])

        S.step(rec, "model", load, need_s=5)
        if "model" not in holder:
            continue
        model = holder["model"]
        rec["ring"] = {}
        S.step(rec, "ring", lambda: ring_comparison(S, model, iters), need_s=5)
        rv = rec["ring"].get("verdict", {})
        S.log(
            f"{label} ring: {rec['ring'].get('per_frame_p50_ms')} -> {rv.get('best_ring')} saves {rv.get('saving_ms_per_frame')} ms "
            f"({'pays' if rv.get('pays') else 'does not pay'})"
        )
        rec["engines"] = {}
        for name, half in (("torch", True), ("compile", True)) if S.cuda else (("torch", False),):
            key = variant_key(name, half)

            def one(n: str = name, h: bool = half) -> dict:
                eng = build_engine(S, model, n, h)
                try:
                    return breakdown_engine(S, model, eng, iters)
                finally:
                    close_engine(eng)

            S.step(rec["engines"], key, one, need_s=30 if name == "compile" else 5)
            r = rec["engines"][key]
            S.log(
                f"{label} {key}: sum of pieces p50 {r.get('sum_of_pieces_p50_ms')} ms; "
                + "; ".join(f"{k} {v['cuda_event_ms']['p50'] if 'cuda_event_ms' in v else v['wall_ms']['p50']}" for k, v in r.get("pieces", {}).items())
            )
        if not S.cuda:
            rec["engines"]["compile fp16"] = {"status": NO_CUDA}
            rec["engines"]["torch fp16"] = {"status": NO_CUDA}
    ring = S.result["models"].get("paper", {}).get("ring", {}).get("verdict")
    S.result["bars"] = {"gpu_ring": {"question": "would sending only the newest flow field (GPU-side ring) pay, CNN-M at 224 px", "verdict": ring}}


# ------------------------------------------------------------------------------------------------
# 5. TensorRT
def sec_tensorrt(S: Section) -> None:
    why = trt_unavailable(S.cuda)
    S.result["engine_code"] = "realtime/nets/engines.py TensorRTEngine, written against torch-tensorrt's documentation; not changed by this script"
    if why is not None:
        S.result.update(available=False, tensorrt=why)
        S.result["bars"] = {"tensorrt": why}
        return
    import torch_tensorrt

    S.result.update(available=True, torch_tensorrt=torch_tensorrt.__version__)
    try:
        import tensorrt

        S.result["tensorrt_version"] = tensorrt.__version__
    except Exception as e:  # noqa: BLE001
        S.result["tensorrt_version"] = f"tensorrt does not import: {first_line(e)}"
    os.environ.setdefault("TWOSTREAM_CACHE", tempfile.mkdtemp(prefix="gpu-bench-trt-"))
    rows: list = S.result.setdefault("rows", [])
    model = fast_model()
    inputs = make_inputs(model, 3)
    ref = reference_scores(model, inputs)
    S.step(
        rows,
        None,
        lambda: check_engine(S, model, "tensorrt", True, inputs, ref),
        need_s=60,
        base={"model": "fast", "arch": describe_model(model)["arch"], "engine": "tensorrt", "precision": "fp16"},
    )
    r = rows[-1]
    S.result["bars"] = {"tensorrt": r.get("status")}


SECTION_FUNCS: dict[str, Callable[[Section], None]] = {
    "correctness": sec_correctness,
    "paper": sec_paper,
    "multistream": sec_multistream,
    "breakdown": sec_breakdown,
    "tensorrt": sec_tensorrt,
}


def child_main(args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.device == "cpu" and args.quick and args.child != "tensorrt":
        import torch

        # a smoke test: torch's thread pool stalls for seconds per op when other work shares a small machine
        torch.set_num_threads(1)
    S = Section(args.child, args, args.deadline, Path(args.result))
    S.save()
    try:
        SECTION_FUNCS[args.child](S)
        if S.result["status"] == "running":
            S.result["status"] = "ok"
    except Exception as e:  # noqa: BLE001 - recorded; the parent goes on with the next section
        S.result["status"] = f"failed: {type(e).__name__}: {first_line(e)}"
        S.result["traceback"] = traceback.format_exc(limit=12)[-4000:]
        S.log(S.result["status"])
    S.save()
    return 0


# ------------------------------------------------------------------------------------------------
# the parent: machine, time boxes, reports
def describe_machine(device: str) -> dict:
    import torch

    from common import machine

    extra: dict = {"device": device, "torch_cuda": torch.version.cuda}
    gpu = None
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        gpu = torch.cuda.get_device_name(0)
        extra.update(
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            compute_capability=f"{props.major}.{props.minor}",
            multiprocessors=props.multi_processor_count,
            cudnn=torch.backends.cudnn.version(),
            driver=nvidia_smi("driver_version") or "unknown (no nvidia-smi)",
        )
    try:
        import triton

        extra["triton"] = triton.__version__
    except Exception:  # noqa: BLE001
        extra["triton"] = None
    try:
        import onnxruntime

        extra["onnxruntime"] = f"{onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})"
    except Exception:  # noqa: BLE001
        extra["onnxruntime"] = None
    return machine(gpu, **extra)


def run_section(name: str, args: argparse.Namespace, timeout: float, log_file, tmp: Path) -> dict:  # type: ignore[no-untyped-def]
    """The section in a fresh process: soft deadline inside it, hard kill at `timeout`."""
    path = tmp / f"{name}.json"
    margin = min(20.0, 0.15 * timeout)
    deadline = time.time() + timeout - margin
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        name,
        "--result",
        str(path),
        "--deadline",
        f"{deadline:.3f}",
        "--device",
        args.device,
        "--multistream-engine",
        args.multistream_engine,
        "--multistream-max",
        str(args.multistream_max),
    ]
    if args.quick:
        cmd.append("--quick")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env, cwd=str(ROOT), start_new_session=True)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            log_file.write(line)
            log_file.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    killed = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        killed = True
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    reader.join(2.0)
    try:
        res = json.loads(path.read_text())
    except (OSError, ValueError):
        res = {"section": name}
    res["wall_s"] = round(time.time() - t0, 1)
    res["time_box_s"] = round(timeout, 1)
    if killed:
        res["status"] = f"timed out: killed at its time box ({timeout:.0f} s); the results it had saved are kept"
    elif proc.returncode != 0:
        res["status"] = f"failed: the section's process exited with {proc.returncode}" + (
            f" ({res['status']})" if res.get("status") not in (None, "running") else ""
        )
    elif res.get("status") in (None, "running"):
        res["status"] = "failed: the section's process ended without a result"
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="folder for gpu.json, gpu.md, gpu.png, gpu.log (required)")
    ap.add_argument("--device", default="auto", help="auto (cuda when present), cuda or cpu")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and short runs (a smoke test; a small stand-in for CNN-M)")
    ap.add_argument("--budget-s", type=float, default=420.0, help="global deadline in seconds for all sections (default 420)")
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="which sections to run (default all)")
    ap.add_argument(
        "--multistream-engine",
        default="torch",
        choices=("torch", "compile", "torchscript"),
        help="engine for the multi-stream section (default torch: eager, fp16 on CUDA)",
    )
    ap.add_argument("--multistream-max", type=int, default=128, help="largest N the multi-stream section tries (default 128)")
    # internal: one section in this process
    ap.add_argument("--child", choices=SECTIONS, help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(args)
    if not args.out:
        ap.error("--out DIR is required")
    t_start = time.time()
    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            print(f"gpu benchmark: --device {args.device} asked for, but this torch ({torch.__version__}) sees no CUDA device", file=sys.stderr)
            return 2
        args.device = "cuda"
    elif args.device != "cpu":
        ap.error("--device must be auto, cuda or cpu")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res: dict = {
        "script": "benchmarks/gpu.py",
        "argv": sys.argv[1:],
        "device": args.device,
        "quick": args.quick,
        "budget_s": args.budget_s,
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": describe_machine(args.device),
        "sections": {name: {"status": "pending"} for name in args.sections},
    }
    if args.device != "cuda":
        res["cuda"] = NO_CUDA
    m = res["machine"]
    print(
        f"gpu benchmark on {m['gpu'] or m['cpu']} ({m['cores']} cores), torch {m['torch']} (CUDA {m.get('torch_cuda')}), "
        f"budget {args.budget_s:.0f} s, sections {', '.join(args.sections)}",
        flush=True,
    )
    write_reports(res, out)
    tmp = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    try:
        with open(out / "gpu.log", "w") as log_file:
            for i, name in enumerate(args.sections):
                left = args.budget_s - (time.time() - t_start)
                rest = sum(SHARES[n] for n in args.sections[i:])
                timeout = left * SHARES[name] / rest
                if timeout < 15:
                    res["sections"][name] = {"status": f"skipped: no time left in the global budget ({max(left, 0):.0f} s of {args.budget_s:.0f} s)"}
                else:
                    print(f"== section {name}: time box {timeout:.0f} s", flush=True)
                    res["sections"][name] = run_section(name, args, timeout, log_file, tmp)
                    print(f"== section {name}: {res['sections'][name]['status']} in {res['sections'][name]['wall_s']:.0f} s", flush=True)
                res["elapsed_s"] = round(time.time() - t_start, 1)
                write_reports(res, out, png=not args.quick)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from common import finish

    finish(res["machine"])
    res["finished_at"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    res["elapsed_s"] = round(time.time() - t_start, 1)
    write_reports(res, out, png=True)
    print((out / "gpu.md").read_text(), flush=True)
    return 0


# ------------------------------------------------------------------------------------------------
# reports
def collect_bars(res: dict) -> dict:
    bars: dict = {}
    for name, sec in res["sections"].items():
        for k, v in (sec.get("bars") or {}).items():
            bars[k] = v
    return bars


def fmt(v: Any, spec: str = ".2f") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, (int, float)):
        return format(v, spec)
    return str(v)


def _met(v: Any) -> str:
    return "-" if v is None else ("met" if v else "**NOT met**")


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [
        "# GPU benchmark (`benchmarks/gpu.py`)",
        "",
        f"Machine: {m.get('gpu') or 'no GPU'}"
        + (f" ({m.get('gpu_memory_gib')} GiB, compute {m.get('compute_capability')}, driver {m.get('driver')}, cuDNN {m.get('cudnn')})" if m.get("gpu") else "")
        + f"; CPU {m['cpu']}, {m['cores']} cores; Python {m['python']}, torch {m['torch']} (CUDA {m.get('torch_cuda')}), "
        f"triton {m.get('triton')}, onnxruntime {m.get('onnxruntime')}.",
        f"Run {res['started_at']}, device `{res['device']}`{' (--quick: small stand-in models, short runs)' if res['quick'] else ''}, "
        f"budget {res['budget_s']:.0f} s, took {fmt(res.get('elapsed_s'), '.0f')} s."
        + (f" Other work kept {m['other_cores_busy']} cores busy on average." if m.get("other_cores_busy") is not None else ""),
        "",
    ]
    if res["device"] != "cuda":
        lines += [f"**{NO_CUDA}**: every row that needs CUDA says so; the figures below are CPU figures and test no GPU bar.", ""]
    lines += ["## Sections", "", "| section | status | time (s) of its box |", "|---|---|---|"]
    for name, sec in res["sections"].items():
        lines.append(f"| {name} | {sec.get('status')} | {fmt(sec.get('wall_s'), '.0f')} / {fmt(sec.get('time_box_s'), '.0f')} |")
    b = collect_bars(res)
    lines += ["", "## Bars", "", "| bar | figure | verdict |", "|---|---|---|"]
    if "pipeline_p99_ms" in b:
        x = b["pipeline_p99_ms"]
        lines.append(
            f"| paper two-stream (CNN-M-2048, 224 px, L=10) through Pipeline at 30 fps: p99 < {BAR_P99_MS:g} ms, fastest engine | "
            f"{fmt(x.get('p99_ms'))} ms ({x.get('engine', '-')}) | {_met(x.get('met'))} |"
        )
    if "compile_fp16_vs_eager_fp32" in b:
        for batch, x in b["compile_fp16_vs_eager_fp32"].get("by_batch", {}).items():
            lines.append(
                f"| nets alone, compile fp16 vs eager fp32, batch {batch}: >= {BAR_SPEEDUP:g}x | {fmt(x.get('speedup')) + 'x' if x.get('speedup') is not None else '-'} | {_met(x.get('met'))} |"
            )
    if "multistream_fast" in b:
        x = b["multistream_fast"]
        lines.append(
            f"| multi-stream, shipped fast model: >= {BAR_STREAMS} sources at 30 fps (p95 < 33 ms, no drop) | {fmt(x.get('largest_n'), 'd')} | {_met(x.get('met'))} |"
        )
    if "multistream_paper" in b:
        lines.append(f"| multi-stream, CNN-M-2048 (reported) | {fmt(b['multistream_paper'].get('largest_n'), 'd')} | - |")
    if "correctness" in b:
        x = b["correctness"]
        lines.append(
            f"| correctness against eager fp32 on the CPU | {x['passed']} of {x['rows_run']} rows pass | "
            f"{'all pass' if x['passed'] == x['rows_run'] and x['rows_run'] else ('failed: ' + ', '.join(x['failed']) if x['failed'] else '-')} |"
        )
    if "gpu_ring" in b and b["gpu_ring"].get("verdict"):
        v = b["gpu_ring"]["verdict"]
        lines.append(
            f"| GPU flow ring (newest field only) instead of the whole stack, CNN-M | saves {fmt(v.get('saving_ms_per_frame'), '.3f')} ms/frame "
            f"({v.get('best_ring')}) | {'pays' if v.get('pays') else 'does not pay'} |"
        )
    if "tensorrt" in b:
        lines.append(f"| TensorRT | {b['tensorrt']} | - |")
    if res["device"] != "cuda" and b:
        lines += ["", f"({NO_CUDA}: the verdicts above are CPU figures against GPU bars.)"]
    lines += md_correctness(res["sections"].get("correctness", {})) + md_paper(res["sections"].get("paper", {}))
    lines += md_multistream(res["sections"].get("multistream", {})) + md_breakdown(res["sections"].get("breakdown", {}))
    t = res["sections"].get("tensorrt")
    if t:
        lines += ["", "## 5. TensorRT", "", f"{t.get('tensorrt') or t.get('bars', {}).get('tensorrt') or t.get('status')}", "", f"{t.get('engine_code', '')}"]
    failed = [(n, s) for n, s in res["sections"].items() if str(s.get("status", "")).startswith(("failed", "timed out"))]
    if failed:
        lines += ["", "## Failures", ""]
        for n, s in failed:
            lines += [f"- **{n}**: {s.get('status')}"]
            if s.get("traceback"):
                lines += ["", "```", s["traceback"].strip()[-1500:], "```"]
    return "\n".join(lines) + "\n"


def md_correctness(sec: dict) -> list[str]:
    if not sec.get("rows"):
        return []
    lines = [
        "",
        "## 1. Correctness (softmax scores against eager fp32 on the CPU, batch 1)",
        "",
        "| model | engine | precision | status | max abs diff spatial / temporal | bound | second thread | channels_last | CUDA graphs | build s | ms per call p50 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sec["rows"]:
        d = r.get("max_abs_diff") or {}
        th = r.get("second_thread") or {}
        tdiff = max(th["max_abs_diff"].values()) if th.get("max_abs_diff") else None
        cg = r.get("cuda_graphs")
        cgs = f"{cg.get('recorded_in_main_thread')} main / {th.get('cuda_graphs_recorded_in_thread')} thread, skips {cg.get('skips')}" if cg else "-"
        lines.append(
            f"| {r.get('arch', r.get('model'))} | {r.get('engine')} | {r.get('precision')} | {r.get('status')} | "
            f"{fmt(d.get('spatial'), '.1e')} / {fmt(d.get('temporal'), '.1e')} | {fmt(r.get('bound'), 'g')} | "
            f"{fmt(tdiff, '.1e')} (first call {fmt(th.get('first_call_ms'), '.1f')} ms) | {fmt(r.get('channels_last'))} | {cgs} | "
            f"{fmt(r.get('build_s'), '.1f')} | {fmt((r.get('ms_per_call') or {}).get('p50'), '.2f')} |"
        )
    if sec.get("tf32"):
        lines += ["", f"TF32 settings during the run (torch defaults, as the engines run): {sec['tf32']}"]
    return lines


def md_paper(sec: dict) -> list[str]:
    if not sec.get("model"):
        return []
    mdl = sec.get("model", {})
    lines = [
        "",
        f"## 2. Paper-size two-stream: {mdl.get('name', '-')} ({mdl.get('arch', '-')}, {mdl.get('input_size', '-')} px, L={mdl.get('L', '-')}, "
        f"flow {mdl.get('flow', '-')})",
        "",
    ]
    eng = sec.get("engines", {})
    if eng:
        lines += ["Engines: " + "; ".join(f"{k}: {v.get('status')}" + (f" (build {v['build_s']:.1f} s)" if "build_s" in v else "") for k, v in eng.items()), ""]
    pipe = sec.get("pipeline", {})
    if pipe:
        lines += [
            f"Pipeline on `synthetic:demo` ({SOURCE_SIZE}), latency from each Prediction's timestamps, ready frames only, warm-up frames left out:",
            "",
            "| engine | run | fps | dropped | flow p50/p95/p99 ms | infer p50/p95/p99 ms | total p50/p95/p99 ms | flow / infer compute p50 ms |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for k, rec in pipe.items():
            for run in ("paced_30fps", "as_fast_as_possible"):
                r = rec.get(run, {})
                if r.get("status") != "ok":
                    lines.append(f"| {k} | {run} | {r.get('status')} | | | | | |")
                    continue
                lt = r["latency_ms"]
                trip = lambda p: f"{fmt(p.get('p50'))} / {fmt(p.get('p95'))} / {fmt(p.get('p99'))}"  # noqa: E731
                cm = r.get("compute_ms", {})
                lines.append(
                    f"| {k} | {run.replace('_', ' ')} | {fmt(r.get('fps'), '.1f')} | {sum(r.get('dropped', {}).values())} | {trip(lt['flow'])} | "
                    f"{trip(lt['infer'])} | {trip(lt['total'])} | {fmt(cm.get('flow', {}).get('p50'))} / {fmt(cm.get('infer', {}).get('p50'))} |"
                )
    nets = sec.get("nets_alone", {})
    if nets:
        lines += [
            "",
            "Nets alone (spatial + temporal on a device-resident batch; CUDA events on a GPU):",
            "",
            "| batch | engine | ms per batch p50 / p99 | ms per frame | frames/s | vs eager fp32 | warm-up s |",
            "|---|---|---|---|---|---|---|",
        ]
        for batch, rec in nets.items():
            for k, r in rec.items():
                if r.get("status") != "ok":
                    lines.append(f"| {batch} | {k} | {r.get('status')} | | | | |")
                    continue
                lines.append(
                    f"| {batch} | {k} | {fmt(r['ms_per_batch']['p50'], '.3f')} / {fmt(r['ms_per_batch']['p99'], '.3f')} | {fmt(r['ms_per_frame_p50'], '.4f')} | "
                    f"{fmt(r['frames_per_s'], '.0f')} | {fmt(r.get('speedup_vs_eager_fp32'))}{'x' if r.get('speedup_vs_eager_fp32') is not None else ''} | {fmt(r.get('warm_up_s'), '.1f')} |"
                )
    return lines


def md_multistream(sec: dict) -> list[str]:
    if not sec.get("models"):
        return []
    lines = [
        "",
        f"## 3. Multi-stream (`MultiPipeline`, engine {sec.get('engine')})",
        "",
        f"Criterion: {sec.get('criterion')}.",
        "",
        "| model | N | status | fps per stream min / mean | worst p50 / p95 / p99 ms | dropped (after warm-up / all) | mean batch | batch compute p50 ms | GPU util | CPU (process cores / machine %) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, rec in sec["models"].items():
        mdl = rec.get("model", {})
        for r in rec.get("runs", []):
            if "latency_ms_worst_stream" not in r:
                lines.append(f"| {mdl.get('arch', label)} | {r.get('streams')} | {r.get('status')} | | | | | | | |")
                continue
            lw, g, c = r["latency_ms_worst_stream"], r.get("gpu_utilisation"), r.get("cpu", {})
            gs = f"{g['mean_pct']}% (max {g['max_pct']}%)" if isinstance(g, dict) else str(g)
            lines.append(
                f"| {mdl.get('arch', label)} | {r['streams']} | {'pass' if r.get('passed') else 'stop'} | {fmt(r['fps_per_stream']['min'], '.1f')} / "
                f"{fmt(r['fps_per_stream']['mean'], '.1f')} | {fmt(lw['p50'])} / {fmt(lw['p95'])} / {fmt(lw['p99'])} | {r['dropped_after_warm_up']} / {r['dropped']} | "
                f"{fmt(r['batch_size'].get('mean'))} | {fmt(r['batch_compute_ms'].get('p50'))} | {gs} | {fmt(c.get('process_cores_busy'))} / {fmt(c.get('machine_pct_busy'), '.0f')}% |"
            )
        lines.append(
            f"| **{mdl.get('arch', label)}** | **largest N: {fmt(rec.get('largest_n'), 'd')}** | {rec.get('stopped_by', rec.get('model', {}).get('status', ''))} | | | | | | | |"
        )
    return lines


def md_breakdown(sec: dict) -> list[str]:
    if not sec.get("models"):
        return []
    lines = ["", "## 4. Where the time goes (batch 1, one frame)", ""]
    for label, rec in sec["models"].items():
        mdl = rec.get("model", {})
        for key, r in rec.get("engines", {}).items():
            if r.get("status") != "ok":
                lines += [f"- {mdl.get('arch', label)}, {key}: {r.get('status')}"]
                continue
            lines += [
                "",
                f"{mdl.get('arch', label)} at {mdl.get('input_size')} px, {r['engine']}; sum of the pieces' p50: {fmt(r['sum_of_pieces_p50_ms'], '.3f')} ms",
                "",
                "| piece | wall p50 / p99 ms (synchronized) | CUDA events p50 / p99 ms |",
                "|---|---|---|",
            ]
            for k, v in r["pieces"].items():
                ev = v.get("cuda_event_ms")
                lines.append(
                    f"| {k} | {fmt(v['wall_ms']['p50'], '.3f')} / {fmt(v['wall_ms']['p99'], '.3f')} | "
                    + (f"{fmt(ev['p50'], '.3f')} / {fmt(ev['p99'], '.3f')}" if ev else "-")
                    + " |"
                )
        ring = rec.get("ring", {})
        if ring.get("status") == "ok":
            v = ring["verdict"]
            lines += [
                "",
                f"Flow-stack upload patterns, {ring['model']} at {ring['input_size']} px, L={ring['L']} ({ring['dtype_on_device']} on the device):",
                "",
                "| pattern | per frame p50 ms (sum of its pieces, synchronized) | same, GPU pieces by CUDA events | bytes uploaded per frame |",
                "|---|---|---|---|",
            ]
            ev = ring.get("per_frame_p50_ms_gpu_by_events")
            for k, ms in ring["per_frame_p50_ms"].items():
                lines.append(f"| {k} | {fmt(ms, '.4f')} | {fmt(ev.get(k), '.4f') if isinstance(ev, dict) else ev} | {ring['upload_bytes_per_frame'][k]} |")
            lines += [
                "",
                f"Max abs difference of the assembled stacks from today's: {ring.get('max_abs_diff_vs_whole_stack')}. "
                f"Verdict: {v['best_ring']} saves {fmt(v['saving_ms_per_frame'], '.4f')} ms per frame ({fmt(v['saving_pct_of_5ms_budget'], '.1f')}% of 5 ms): "
                f"{'pays' if v['pays'] else 'does not pay'} ({v['rule']}).",
            ]
        elif ring:
            lines += [f"- ring comparison, {label}: {ring.get('status')}"]
    return lines


def draw_png(res: dict, path: Path) -> str | None:
    """The PNG; returns why it was not drawn (None when it was)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:  # noqa: BLE001
        return f"no PNG: matplotlib does not import here ({first_line(e)})"
    secs = res["sections"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    (a, b), (c, d) = axes
    rows = [r for r in secs.get("correctness", {}).get("rows", []) if r.get("max_abs_diff")]
    if rows:
        names = [f"{r.get('model')} {r['engine']}\n{r['precision']}" for r in rows]
        vals = [max(max(r["max_abs_diff"].values()), 1e-12) for r in rows]
        a.bar(range(len(rows)), vals, color=["#2a7" if r.get("passed") else "#c33" for r in rows])
        a.set_xticks(range(len(rows)), names, fontsize=7)
        a.set_yscale("log")
        for bound, ls in ((BOUNDS["fp32"], ":"), (BOUNDS["fp16"], "--")):
            a.axhline(bound, color="#888", ls=ls, lw=1)
    a.set_title("1. max abs diff of softmax vs eager fp32 CPU (lines: bounds)", fontsize=9)
    pipe = secs.get("paper", {}).get("pipeline", {})
    keys = [k for k, v in pipe.items() if v.get("paced_30fps", {}).get("status") == "ok"]
    if keys:
        import numpy as np

        x = np.arange(len(keys))
        for i, q in enumerate(("p50", "p95", "p99")):
            b.bar(x + (i - 1) * 0.27, [pipe[k]["paced_30fps"]["latency_ms"]["total"][q] or 0 for k in keys], 0.27, label=q)
        b.set_xticks(x, keys, fontsize=8)
        b.axhline(BAR_P99_MS, color="r", ls=":", label=f"{BAR_P99_MS:g} ms bar")
        b.legend(fontsize=7)
    b.set_title("2. paper two-stream via Pipeline at 30 fps: capture->scores ms", fontsize=9)
    for label, rec in secs.get("multistream", {}).get("models", {}).items():
        runs = [r for r in rec.get("runs", []) if "latency_ms_worst_stream" in r]
        if runs:
            c.plot(
                [r["streams"] for r in runs],
                [r["latency_ms_worst_stream"]["p95"] or 0 for r in runs],
                "o-",
                label=f"{label} ({rec.get('model', {}).get('arch')})",
            )
    c.axhline(STREAM_P95_MS, color="r", ls=":", label="33 ms")
    c.set_xscale("log", base=2)
    c.set_xlabel("sources at 30 fps")
    c.set_ylabel("worst stream p95 ms")
    c.legend(fontsize=7)
    c.set_title("3. multi-stream", fontsize=9)
    eng = next(((k, v) for k, v in secs.get("breakdown", {}).get("models", {}).get("paper", {}).get("engines", {}).items() if v.get("status") == "ok"), None)
    if eng:
        pieces = {k: (v.get("cuda_event_ms") or v["wall_ms"])["p50"] or 0 for k, v in eng[1]["pieces"].items() if not k.startswith("whole")}
        d.barh(list(pieces), list(pieces.values()), color="#37a")
        d.tick_params(axis="y", labelsize=7)
        d.set_xlabel("ms (p50; CUDA events where on the GPU)")
        d.set_title(f"4. one frame's pieces, paper model, {eng[0]}", fontsize=9)
    else:
        d.set_title("4. breakdown: no data", fontsize=9)
    m = res["machine"]
    fig.suptitle(f"benchmarks/gpu.py on {m.get('gpu') or m['cpu']} ({m['cores']} cores), torch {m['torch']}, {res['started_at']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def write_reports(res: dict, out: Path, png: bool = False) -> None:
    """gpu.json and gpu.md (and gpu.png when `png`), rewritten whole each time."""
    res["bars"] = collect_bars(res)
    if png:
        try:
            note = draw_png(res, out / "gpu.png")
        except Exception as e:  # noqa: BLE001 - a plot must never cost the results
            note = f"no PNG: plotting failed ({type(e).__name__}: {first_line(e)})"
        res["png"] = note or "gpu.png"
    write_json(out / "gpu.json", res)
    md = markdown(res)
    if png and res.get("png") != "gpu.png":
        md += f"\n{res['png']}\n"
    (out / "gpu.md").write_text(md)


if __name__ == "__main__":
    sys.exit(main())
