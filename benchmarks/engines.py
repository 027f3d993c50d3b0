"""Engine benchmark: the same two nets through every engine, timed and compared with eager PyTorch.

    python benchmarks/engines.py            # full (about 10 minutes on 2 CPU cores)
    python benchmarks/engines.py --quick    # short version

For the default fast model (its trunk at its input size; resnet18_050 at 112 px when none is
shipped) and the paper's CNN-M-2048 at 224 px, both with L=10 (a 20-channel flow stack), at batch
1 and 8, measures for each engine (`torch` eager, `torchscript`, `compile`, and on a CUDA GPU
`tensorrt` and the fp16 variants):
- ms per iteration, median (one iteration = the spatial and the temporal net on a batch, as the
  runtime's `Engine.__call__` runs them) and ms per frame;
- build + warm-up seconds (where compilation happens);
- the max abs difference of its softmax scores from eager fp32's on the same inputs.
Engines are built as `create_engine` builds them (on a CPU: the two nets run at once, one core each)
and timed round-robin, one iteration of each in turn, so load changes touch them alike.
Rows that need a CUDA GPU say so instead of giving numbers. Writes benchmarks/results/engines.json,
engines.png and engines.md.

Untrained nets score every input almost uniformly (their BatchNorm statistics shrink the features
to ~1e-8), which would hide any disagreement; an untrained model gets BatchNorm statistics
measured on random inputs and a head scaled to logits of std ~3 first, so the scores depend on
the input. A trained model is used as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import busy_note, finish, informative  # noqa: E402
from common import machine as common_machine  # noqa: E402
from realtime.nets.checkpoint import ModelConfig, TwoStreamModel  # noqa: E402
from realtime.nets.engines import create_engine  # noqa: E402
from realtime.stream.flow import FlowSettings  # noqa: E402
from realtime.nets.models_store import default_model  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
NO_GPU = "no CUDA GPU here"
SHORT = {"torch": "eager", "torchscript": "script", "compile": "compile", "tensorrt": "TRT"}  # plot labels
# (engine, fp16): what the issue asks to compare; the fp16 and tensorrt rows need CUDA.
VARIANTS = (("torch", False), ("torchscript", False), ("compile", False), ("torch", True), ("compile", True), ("tensorrt", True))


def machine() -> dict:
    return common_machine(torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)


def paper_model(num_classes: int = 12) -> TwoStreamModel:
    cfg = ModelConfig(
        labels=[f"class{i}" for i in range(num_classes)],
        spatial_arch="cnn_m_2048",
        temporal_arch="cnn_m_2048",
        input_size=224,
        clip_length=10,
        flow=FlowSettings(width=256, height=256),
        trained=False,
        provenance={"name": "cnn_m_2048 (untrained, for timing)"},
    )
    return TwoStreamModel.create(cfg, seed=0)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def bench_model(label: str, model: TwoStreamModel, batches: tuple[int, ...], iterations: int, device: str) -> list[dict]:
    """Every engine on the same inputs; timed round-robin (one iteration of each in turn) so that a
    change in the machine's load touches every engine alike and the ratios to eager stay fair."""
    cfg = model.config
    s, n = cfg.input_size, cfg.temporal_channels
    rows = []
    for batch in batches:
        gen = torch.Generator().manual_seed(batch)
        xs, xt = torch.randn(batch, 3, s, s, generator=gen), torch.randn(batch, n, s, s, generator=gen)
        engines: list[tuple[dict, object]] = []
        for name, half in VARIANTS:
            row = {
                "net": label,
                "arch": f"{cfg.spatial_arch}/{cfg.temporal_arch}",
                "input_size": s,
                "L": cfg.clip_length,
                "batch": batch,
                "engine": name,
                "precision": "fp16" if half else "fp32",
                "device": device,
            }
            rows.append(row)
            if (half or name == "tensorrt") and device != "cuda":
                row["status"] = NO_GPU
                print(f"  {label} b{batch} {name} {row['precision']}: {NO_GPU}", flush=True)
                continue
            t0 = time.perf_counter()
            try:
                eng = create_engine(model, name, device, half)  # builds and warms up at batch 1
                for _ in range(2):  # compile engines compile again for each new batch size
                    eng(xs, xt)
                _sync(device)
            except Exception as e:  # e.g. torch-tensorrt not installed, or a compiler error: report it in the row, go on
                row["status"] = f"failed: {str(e).splitlines()[0][:200]}"
                print(f"  {label} b{batch} {name} {row['precision']}: {row['status']}", flush=True)
                continue
            row["build_s"] = round(time.perf_counter() - t0, 2)
            engines.append((row, eng))
        times: dict[int, list[float]] = {id(r): [] for r, _ in engines}
        outputs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for _ in range(iterations):
            for row, eng in engines:
                t0 = time.perf_counter()
                outputs[id(row)] = eng(xs, xt)  # numpy scores: the copy back to the host is part of the time
                _sync(device)
                times[id(row)].append(time.perf_counter() - t0)
        reference = None
        for row, eng in engines:
            eng.close()
            ms = np.array(times[id(row)]) * 1e3
            out = outputs[id(row)]
            row.update(
                status="ok",
                iterations=iterations,
                ms_per_iter_median=round(float(np.median(ms)), 3),
                ms_per_iter_p90=round(float(np.percentile(ms, 90)), 3),
                ms_per_frame=round(float(np.median(ms)) / batch, 3),
            )
            if reference is None:  # the first variant is eager fp32: the reference for speed and scores
                reference = (row["ms_per_iter_median"], out)
            row["speedup_vs_eager"] = round(reference[0] / row["ms_per_iter_median"], 3)
            row["max_abs_diff_vs_eager"] = {"spatial": float(np.abs(out[0] - reference[1][0]).max()), "temporal": float(np.abs(out[1] - reference[1][1]).max())}
            row["max_score"] = round(float(max(out[0].max(), out[1].max())), 3)  # near 1/classes would mean uninformative scores
            d = max(row["max_abs_diff_vs_eager"].values())
            print(
                f"  {label} b{batch} {row['engine']} {row['precision']}: {row['ms_per_iter_median']:.1f} ms/iter "
                f"({row['speedup_vs_eager']:.2f}x eager), build {row['build_s']:.1f} s, max |diff| {d:.1e}",
                flush=True,
            )
        del engines
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| net | input | batch | engine | precision | ms / iteration (median) | ms / frame | vs eager | max abs diff of softmax vs eager | build + warm-up s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        head = f"| {r['arch']} | {r['input_size']} px, L={r['L']} | {r['batch']} | {r['engine']} | {r['precision']} |"
        if r["status"] != "ok":
            lines.append(f"{head} {r['status']} | - | - | - | - |")
            continue
        d = max(r["max_abs_diff_vs_eager"].values())
        lines.append(f"{head} {r['ms_per_iter_median']:.1f} | {r['ms_per_frame']:.1f} | {r['speedup_vs_eager']:.2f}x | {d:.1e} | {r['build_s']:.1f} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["net"], r["arch"], r["input_size"], r["batch"]) for r in rows}, key=lambda g: (g[0], g[3]))
    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups), 3.8), squeeze=False)
    for ax, (net, arch, size, batch) in zip(axes[0], groups):
        sel = [r for r in rows if (r["net"], r["batch"]) == (net, batch)]
        names = [f"{SHORT[r['engine']]}\n{r['precision']}" for r in sel]
        vals = [r.get("ms_per_frame", 0.0) if r["status"] == "ok" else 0.0 for r in sel]
        bars = ax.bar(names, vals, color=["#2a7" if r["status"] == "ok" else "#ddd" for r in sel])
        for b, r in zip(bars, sel):
            if r["status"] != "ok":
                ax.text(b.get_x() + b.get_width() / 2, 0, "no GPU" if r["status"] == NO_GPU else "failed", rotation=90, ha="center", va="bottom", fontsize=7)
        ax.set_title(f"{arch.split('/')[0]} {size} px, batch {batch}", fontsize=9)
        ax.set_ylabel("ms per frame, both nets (median)")
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations")
    ap.add_argument("--device", default="auto", help="auto (cuda when present, else cpu), cpu or cuda")
    ap.add_argument("--out", default=str(RESULTS / "engines.json"))
    args = ap.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device cuda: {NO_GPU} (torch {torch.__version__})")
    on_gpu = device == "cuda"
    fast = informative(default_model())
    paper = informative(paper_model())
    fast_iters = (20 if args.quick else 60) * (5 if on_gpu else 1)
    paper_iters = (3 if args.quick else 8) * (20 if on_gpu else 1)
    res: dict = {
        "machine": machine(),
        "device": device,
        "gpu_rows": "measured" if on_gpu else NO_GPU,
        "fast_model": {"name": fast.config.provenance.get("name"), "trained": fast.config.trained},
        "rows": [],
    }
    print(
        f"{device}; {os.cpu_count()} cores; load average {res['machine']['load_avg_at_start']}" + ("" if on_gpu else f"; fp16 and tensorrt rows: {NO_GPU}"),
        flush=True,
    )
    cfg = fast.config
    res["rows"] += bench_model("fast", fast, (1, 8), fast_iters, device)
    res["rows"] += bench_model("paper", paper, (1, 8), paper_iters, device)
    finish(res["machine"])
    res["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    m = res["machine"]
    where = f"{m['gpu'] or m['cpu']}, {m['cores']} cores, torch {m['torch']}, load average {m['load_avg_at_start'][0]:.1f} at start"
    md = (
        table(res["rows"]) + f"\n\nfast model: {cfg.provenance.get('name')} ({cfg.spatial_arch} at {cfg.input_size} px); "
        f"one iteration = spatial + temporal net on the batch; {device}; {where}\n"
    )
    md += busy_note(res["machine"])
    print(md)
    out.with_suffix(".md").write_text(md)
    try:
        plot(res["rows"], out.with_suffix(".png"), f"engines on {device} ({where})")
    except ImportError:
        print("matplotlib not installed: no plot (pip install 'twostream[train]')")


if __name__ == "__main__":
    main()
