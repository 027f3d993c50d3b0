"""CPU engine options against fp32 ONNX Runtime: int8 static quantisation and OpenVINO, speed and top-1, same run.

    python benchmarks/int8.py                 # the shipped model on the procedural held-out set, and a model
                                              # trained on the real dev set (--real-model) on its test list
    python benchmarks/int8.py --quick         # fewer clips and positions

For each model, both nets are exported to ONNX (fp32, logits, dynamic batch) and:
- **int8**: ONNX Runtime static quantisation (QDQ, per-channel int8 weights, uint8 activations, MinMax
  calibration) calibrated on frames and flow stacks of the model's own training clips
  (`--calibration-clips` of them, 4 positions each), exactly the inputs the pipeline builds;
- **OpenVINO** (pip `openvino`, when installed): the fp32 ONNX file compiled for its CPU plugin, with
  fp32 inference forced (`INFERENCE_PRECISION_HINT=f32`) and with the plugin's default, which is bf16
  on a CPU that has bf16 instructions (this one does);
Speed: each net alone, batch 1 and 8, one thread (as the pipeline gives each net), median of
alternating rounds. Accuracy: the paper's test protocol (positions per clip, centre crop) through
each variant, the model's own fusion applied: per stream and deployed top-1, and how many clip
predictions change against fp32.
Writes benchmarks/results/int8.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import busy_note, finish, machine  # noqa: E402
from realtime.nets.checkpoint import TwoStreamModel, load_checkpoint  # noqa: E402
from realtime.nets.export import OPSET, _export_one, exportable  # noqa: E402
from realtime.nets.models_store import default_model  # noqa: E402
from realtime.train.cache import FlowCache  # noqa: E402
from realtime.train.data import stream_input_batches  # noqa: E402
from realtime.train.datasets import open_dataset  # noqa: E402
from realtime.train.evaluate import accuracy, deployed_metrics, video_scores  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
STREAMS = ("spatial", "temporal")


class Session(nn.Module):
    """An ONNX Runtime or OpenVINO net standing in for a torch net in `video_scores` (logits out)."""

    def __init__(self, run):  # type: ignore[no-untyped-def]
        super().__init__()
        self.run = run

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.run(x.contiguous().numpy())))


def ort_runner(path: Path, threads: int = 1):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


def openvino_runner(path: Path, threads: int = 1, precision: str | None = None):  # type: ignore[no-untyped-def]
    """precision None: the CPU plugin's default (bf16 on CPUs with bf16 instructions); "f32": fp32 throughout."""
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", **({"INFERENCE_PRECISION_HINT": precision} if precision else {})}
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    request = compiled.create_infer_request()  # one request reused, as a pipeline would
    return lambda x: request.infer([x])[0]


def export_logits(net: nn.Module, chans: int, size: int, path: Path, input_name: str) -> Path:
    example = torch.zeros(2, chans, size, size)
    with torch.no_grad():
        _export_one(exportable(net, example), example, path, input_name, "torchscript", OPSET)
    return path


def calibration_inputs(model: TwoStreamModel, ds, cache: FlowCache, stream: str, clips: int, seed: int = 0) -> np.ndarray:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    chosen = [ds.train[i] for i in rng.permutation(len(ds.train))[:clips]]
    return np.concatenate([stream_input_batches(c.key(ds.root), cache, model.config, stream, 4, False) for c in chosen])


def quantise(fp32: Path, out: Path, inputs: np.ndarray, input_name: str) -> Path:
    """What `twostream quantize` does to each net (realtime.nets.quantize), on the logits graph."""
    from realtime.nets.quantize import _quantise

    _quantise(fp32, out, inputs, input_name)
    return out


def speed(runners: dict, chans: int, size: int, rounds: int, iters: int) -> dict:
    """Median ms per batch for each variant, batch 1 and 8, variants alternating within each round."""
    out: dict = {}
    for batch in (1, 8):
        x = np.random.default_rng(0).standard_normal((batch, chans, size, size)).astype(np.float32)
        times: dict[str, list[float]] = {k: [] for k in runners}
        for run in runners.values():
            run(x), run(x)
        for _ in range(rounds):
            for k, run in runners.items():
                for _ in range(iters):
                    t0 = time.perf_counter()
                    run(x)
                    times[k].append(time.perf_counter() - t0)
        out[str(batch)] = {k: round(float(np.median(v)) * 1e3, 3) for k, v in times.items()}
    return out


def measure_model(label: str, model: TwoStreamModel, data: Path, cache_dir: Path, work: Path, args: argparse.Namespace) -> dict:
    cfg = model.config
    ds = open_dataset(data)
    remap = {i: cfg.labels.index(c) for i, c in enumerate(ds.classes)}
    cache = FlowCache(cache_dir, cfg.flow)
    test = ds.test if not args.quick else ds.test[:: max(1, len(ds.test) // 24)]
    cache.build(ds.train + test, ds.root, progress=False)
    from realtime.train.datasets import Clip

    test = [Clip(c.path, remap[c.label]) for c in cache.available(test, ds.root)]
    labels = np.array([c.label for c in test])
    res: dict = {
        "model": cfg.provenance.get("name", label),
        "arch": f"{cfg.spatial_arch}/{cfg.temporal_arch}",
        "data": data.name,
        "test_clips": len(test),
        "samples_per_clip": args.samples,
        "calibration_clips": args.calibration_clips,
        "streams": {},
    }
    scores: dict[str, dict[str, np.ndarray]] = {}
    for stream in STREAMS:
        net = getattr(model, stream).eval()
        chans = cfg.temporal_channels if stream == "temporal" else 3
        name = "rgb" if stream == "spatial" else "flow"
        fp32 = export_logits(net, chans, cfg.input_size, work / f"{label}-{stream}.onnx", name)
        t0 = time.perf_counter()
        int8 = quantise(fp32, work / f"{label}-{stream}-int8.onnx", calibration_inputs(model, ds, cache, stream, args.calibration_clips), name)
        quant_s = time.perf_counter() - t0
        runners = {"onnxruntime fp32": ort_runner(fp32), "onnxruntime int8": ort_runner(int8)}
        try:
            runners["openvino fp32"] = openvino_runner(fp32, precision="f32")
            runners["openvino default (bf16 here)"] = openvino_runner(fp32)
        except ImportError:
            res["openvino"] = "not installed (pip install openvino)"
        entry: dict = {
            "quantise_s": round(quant_s, 1),
            "size_mb": {"fp32": round(fp32.stat().st_size / 2**20, 2), "int8": round(int8.stat().st_size / 2**20, 2)},
        }
        entry["ms_per_batch"] = speed(runners, chans, cfg.input_size, args.rounds, args.iters)
        scores[stream] = {}
        for k, run in runners.items():
            v = video_scores(Session(run), test, ds.root, cache, cfg, stream, args.samples)
            scores[stream][k] = v
            entry.setdefault("top1", {})[k] = accuracy(v, labels, cfg.num_classes)["top1"]
        res["streams"][stream] = entry
        print(f"{label} {stream}: {json.dumps(entry)}", flush=True)
    ref = None
    res["deployed"] = {}
    for k in scores["spatial"]:
        d = deployed_metrics(cfg.fusion, scores["spatial"][k], scores["temporal"][k], labels, cfg.num_classes)
        pred = np.argmax(_fused(cfg, scores, k), 1)
        ref = pred if ref is None else ref
        res["deployed"][k] = {"top1": d["top1"], "mode": d["mode"], "changed_clips": int((pred != ref).sum())}
    return res


def _fused(cfg, scores: dict, k: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    from realtime.stream.fusion import Fusion

    return Fusion(cfg.fusion)(scores["spatial"][k], scores["temporal"][k])


def report(res: dict, out: Path) -> None:
    lines = [
        "| model / data | net | variant | ms batch 1 | ms batch 8 | stream top-1 | deployed top-1 (clips changed vs fp32) |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in res["models"]:
        for stream, e in m["streams"].items():
            for k in e["ms_per_batch"]["1"]:
                dep = m["deployed"].get(k, {})
                lines.append(
                    f"| {m['model']} / {m['data']} ({m['test_clips']} clips) | {stream} | {k} | {e['ms_per_batch']['1'][k]:.2f} | "
                    f"{e['ms_per_batch']['8'][k]:.2f} | {e['top1'][k]:.3f} | "
                    f"{dep.get('top1', float('nan')):.3f} ({dep.get('changed_clips', '-')}) |"
                )
    lines.append(
        "\nOne thread per net, median ms per batch over alternating rounds; top-1 with the paper's protocol "
        f"({res['models'][0]['samples_per_clip']} positions per clip, centre crop), the model's own fusion for deployed."
    )
    lines.append(busy_note(res["machine"]))
    text = "\n".join(lines)
    print(text)
    out.with_suffix(".md").write_text(text + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--procedural", default=str(ROOT / "data" / "procedural"), help="the shipped model's dataset (twostream make-dataset)")
    ap.add_argument("--real-data", default=str(ROOT.parent / "shared" / "data" / "dev" / "ud810_ps7"))
    ap.add_argument("--real-model", help="a model trained on --real-data (twostream train --data DIR ...); that row is skipped without it")
    ap.add_argument("--cache", default=tempfile.gettempdir() + "/twostream-int8-cache", help="flow cache of --real-data (never inside that read-only folder)")
    ap.add_argument("--samples", type=int, help="positions per test clip (default 25; 5 with --quick)")
    ap.add_argument("--calibration-clips", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--out", default=str(RESULTS / "int8.json"))
    args = ap.parse_args()
    args.samples = args.samples or (5 if args.quick else 25)
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    res: dict = {"machine": machine(), "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "models": []}
    import onnxruntime

    res["onnxruntime"] = onnxruntime.__version__
    try:
        import openvino

        res["openvino"] = openvino.__version__
    except ImportError:
        res["openvino"] = None
    with tempfile.TemporaryDirectory(prefix="twostream-int8-") as work:
        # the procedural set is ours (generated, gitignored): its own cache; the real set is read-only: a cache elsewhere
        jobs = [("shipped", default_model(), Path(args.procedural), Path(args.procedural) / ".twostream-cache")]
        if args.real_model:
            jobs.append(("real", load_checkpoint(args.real_model), Path(args.real_data), Path(args.cache)))
        for label, model, data, cache in jobs:
            res["models"].append(measure_model(label, model, data, cache, Path(work), args))
    finish(res["machine"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    report(res, out)


if __name__ == "__main__":
    main()
