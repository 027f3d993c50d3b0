"""Flow method against temporal-stream accuracy: one temporal net trained from scratch on each method's flow.

    python benchmarks/flow_accuracy.py            # 30 train + 10 test clips per class, 5 epochs (17 minutes measured on 2 CPU cores)
    python benchmarks/flow_accuracy.py --quick    # 6 + 3 clips per class, 1 epoch, 5 stacks per test video: checks the machinery, says nothing about accuracy (about 1 minute)

The speed side of the flow benchmark (benchmarks/flow.py) says what each method costs per frame;
this says what it does to recognition. For DIS ultrafast / fast / medium and Farneback, all at the
same working size (128 px), with the commands a user runs:
- `twostream make-dataset` once (a reduced procedural dataset outside the repository, reused when
  it is already there with the same sizes; `--data DIR`);
- per method, `twostream train --stream temporal --flow-algorithm A --flow-preset P` from scratch,
  the same seed and the same schedule (epochs, batch, learning rate) for all, with a flow cache of
  its own that is built in the run (so its build time is measured, never reused from an earlier run);
- `twostream evaluate` on the test split (the paper's protocol: 25 flow stacks per video). A train
  run of one stream does not evaluate (it evaluates only a model whose two nets are trained), so
  the untrained spatial net's figures in that output are ignored here.
Records the temporal stream's top-1, top-5 and mean class accuracy, the flow-cache build time, the
training time, and the flow ms per frame at 128 px from results/flow.json when present (measured by
flow.py, in its own run). Writes benchmarks/results/flow_accuracy.json, .md and .png.

One seed and a small test set: read differences of a few points as noise (the table says what one
test clip is worth and the binomial standard error of each figure).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
METHODS = (("DIS ultrafast", "dis", "ultrafast"), ("DIS fast", "dis", "fast"), ("DIS medium", "dis", "medium"), ("Farneback", "farneback", None))
WORK_SIZE = 128
STILL_CLASSES = ("hold_star", "hold_cross", "hold_ring")  # differ only in the shape of a still object: invisible to flow
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import busy_note, finish, machine  # noqa: E402


def twostream(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "realtime.cli", *args], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"twostream {' '.join(args)} failed (exit {r.returncode}): {r.stderr.strip()[-2000:]}")
    return r


def dataset(data: Path, train_clips: int, test_clips: int) -> dict:
    """Reuse `data` when it holds the procedural dataset at these sizes; otherwise write it (make-dataset resumes)."""
    expected = f"twostream procedural dataset: 12 classes, {train_clips} train + {test_clips} test clips per class, 32 frames at 320x240, dataset seed 0."
    readme, lists = data / "README.txt", (data / "trainlist01.txt", data / "testlist01.txt")
    if readme.is_file() and readme.read_text().splitlines()[0] == expected and all(p.is_file() for p in lists):
        names = [line.split()[0] for p in lists for line in p.read_text().splitlines() if line.strip()]
        if len(names) == 12 * (train_clips + test_clips) and all((data / n).is_file() for n in names):
            return {"path": str(data), "reused": True, "build_s": None}
    t0 = time.monotonic()
    twostream("make-dataset", "--out", str(data), "--train-clips", str(train_clips), "--test-clips", str(test_clips), "--no-progress")
    return {"path": str(data), "reused": False, "build_s": round(time.monotonic() - t0, 1)}


def flow_speed() -> dict:
    """ms per frame at the working size, per method, from flow.py's last run (None when absent)."""
    path = RESULTS / "flow.json"
    if not path.is_file():
        return {"source": None, "rows": {}}
    d = json.loads(path.read_text())
    rows = {r["method"]: r["ms_per_frame_median"] for r in d.get("rows", []) if r.get("status") == "ok" and r.get("size") == WORK_SIZE}
    m = d.get("machine", {})
    return {"source": f"results/flow.json, measured {d.get('measured_at')} on {m.get('cpu')} ({m.get('cores')} cores), "
                      f"load average {m.get('load_avg_at_start', [float('nan')])[0]:.1f} at start", "rows": rows}


def one_method(name: str, algorithm: str, preset: str | None, data: Path, work: Path, epochs: int, seed: int, samples: int) -> dict:
    tag = name.lower().replace(" ", "-")
    cache, model, ev = work / f"cache-{tag}", work / f"model-{tag}", work / f"eval-{tag}.json"
    for p in (cache, model):
        shutil.rmtree(p, ignore_errors=True)  # a fresh net and a fresh cache: both are measured
    cmd = ["train", "--data", str(data), "--cache", str(cache), "--stream", "temporal", "--flow-algorithm", algorithm,
           *(["--flow-preset", preset] if preset else []), "--work-size", str(WORK_SIZE), "--epochs", str(epochs), "--seed", str(seed), "--out", str(model), "--no-eval", "--no-progress"]
    t0 = time.monotonic()
    twostream(*cmd)
    train_wall = time.monotonic() - t0
    t0 = time.monotonic()
    twostream("evaluate", "--model", str(model), "--data", str(data), "--cache", str(cache), "--json", str(ev), "--samples", str(samples), "--no-progress")
    eval_wall = time.monotonic() - t0
    cfg = json.loads((model / "model.json").read_text())
    timings = cfg["provenance"]["timings"]
    metrics = json.loads(ev.read_text())
    with open(model / "train_log_temporal.csv", newline="") as f:
        history = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    shutil.rmtree(cache, ignore_errors=True)  # hundreds of MB per method
    return {"method": name, "algorithm": algorithm, "preset": preset, "flow_settings": cfg["flow"],
            "command": "twostream " + " ".join(cmd), "test_videos": metrics["videos"], "protocol": metrics["protocol"],
            "temporal": metrics["temporal"], "flow_cache_s": timings["flow_cache_s"], "train_s": timings["temporal_train_s"],
            "train_command_wall_s": round(train_wall, 1), "evaluate_wall_s": round(eval_wall, 1),
            "final_epoch": history[-1] if history else None, "val_acc_per_epoch": [h["val_acc"] for h in history],
            "clips_per_s_per_epoch": [h["clips_per_s"] for h in history]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="6 + 3 clips per class, 1 epoch, 5 flow stacks per test video: checks the machinery only")
    ap.add_argument("--train-clips", type=int, help="training clips per class (default 30; --quick 6)")
    ap.add_argument("--test-clips", type=int, help="test clips per class (default 10; --quick 3)")
    ap.add_argument("--epochs", type=int, help="epochs for every method (default 5; --quick 1)")
    ap.add_argument("--samples", type=int, help="flow stacks per test video (default 25, the paper's protocol; --quick 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, help="procedural dataset directory, reused when it matches "
                                              "(default /tmp/twostream-flow-accuracy/data-TRAINxTEST; never inside the repository)")
    ap.add_argument("--work", type=Path, help="keep the models and evaluation files here (default: a temporary directory, removed)")
    ap.add_argument("--out", type=Path, default=RESULTS / "flow_accuracy.json")
    args = ap.parse_args()
    train_clips = args.train_clips or (6 if args.quick else 30)
    test_clips = args.test_clips or (3 if args.quick else 10)
    epochs = args.epochs or (1 if args.quick else 5)
    samples = args.samples or (5 if args.quick else 25)
    data = args.data or Path(tempfile.gettempdir()) / "twostream-flow-accuracy" / f"data-{train_clips}x{test_clips}"
    if data.resolve().is_relative_to(ROOT):
        raise SystemExit(f"{data}: inside the repository; give --data a directory outside it (the dataset is hundreds of MB)")
    t_start = time.monotonic()
    res: dict = {"benchmark": "flow_accuracy", "quick": args.quick, "machine": machine(),
                 "dataset": {"classes": 12, "train_clips_per_class": train_clips, "test_clips_per_class": test_clips, "frames_per_clip": 32},
                 "schedule": {"epochs": epochs, "seed": args.seed, "stream": "temporal", "work_size": WORK_SIZE, "eval_samples_per_video": samples,
                              "other_options": "twostream train defaults (resnet18_050 at 112 px, L=10, batch 32, lr 0.02, cosine)"}}
    print(f"{'QUICK: ' if args.quick else ''}{train_clips} train + {test_clips} test clips per class, 12 classes, {_n(epochs, 'epoch')}, seed {args.seed}; "
          f"load average {res['machine']['load_avg_at_start']}", flush=True)
    res["dataset"].update(dataset(data, train_clips, test_clips))
    print(f"dataset {data}: {'reused' if res['dataset']['reused'] else 'written in %.0f s' % res['dataset']['build_s']}", flush=True)
    speed = flow_speed()
    res["flow_speed_source"] = speed["source"]
    work = args.work or Path(tempfile.mkdtemp(prefix="twostream-flow-accuracy-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for name, algorithm, preset in METHODS:
            r = one_method(name, algorithm, preset, data, work, epochs, args.seed, samples)
            r["flow_ms_per_frame"] = speed["rows"].get(name)
            rows.append(r)
            t = r["temporal"]
            print(f"  {name}: temporal top-1 {t['top1']:.3f}, mean class {t['mean_class']:.3f} on {r['test_videos']} videos; "
                  f"flow cache {r['flow_cache_s']:.0f} s, training {r['train_s']:.0f} s", flush=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    res["rows"] = rows
    finish(res["machine"])
    res["wall_s"] = round(time.monotonic() - t_start, 1)
    res["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    md = table(res)
    out.with_suffix(".md").write_text(md + "\n")
    plot(res, out.with_suffix(".png"))
    print(md)
    print(f"written {out}, {out.with_suffix('.md')} and {out.with_suffix('.png')} in {res['wall_s'] / 60:.1f} min")
    return 0


def table(res: dict) -> str:
    d, s, m = res["dataset"], res["schedule"], res["machine"]
    n = res["rows"][0]["test_videos"] if res["rows"] else 0
    lines = []
    if res["quick"]:
        lines += ["**QUICK RUN** (`--quick`): a handful of clips, one epoch, 5 flow stacks per test video; checks the machinery, says nothing about accuracy.", ""]
    lines += ["| flow method (128 px) | temporal top-1 (± std. error) | mean class | top-5 | train acc., last epoch | flow ms / frame | flow cache build | training |",
              "|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        t = r["temporal"]
        se = math.sqrt(t["top1"] * (1 - t["top1"]) / max(r["test_videos"], 1))
        ms = f"{r['flow_ms_per_frame']:.2f}" if r["flow_ms_per_frame"] is not None else "-"
        last = f"{r['final_epoch']['train_acc']:.3f}" if r["final_epoch"] else "-"
        lines.append(f"| {r['method']} | {t['top1']:.3f} (± {se:.3f}) | {t['mean_class']:.3f} | {t['top5']:.3f} | {last} | {ms} | "
                     f"{r['flow_cache_s']:.0f} s | {r['train_s']:.0f} s |")
    frames = 12 * (d["train_clips_per_class"] + d["test_clips_per_class"]) * d["frames_per_clip"]
    lines += ["",
              f"One temporal net per method, trained from scratch: {d['train_clips_per_class']} train clips per class x 12 classes, "
              f"{_n(s['epochs'], 'epoch')}, seed {s['seed']}, otherwise `twostream train` defaults; tested on {n} videos "
              f"({d['test_clips_per_class']} per class, {s['eval_samples_per_video']} flow stacks each): one video is {100 / max(n, 1):.2f} points. "
              f"Three of the 12 classes ({', '.join(STILL_CLASSES)}) differ only in a still object's shape, which flow cannot see, "
              "so a perfect temporal stream scores about 0.83.",
              f"Flow cache build: frames and flow of all {frames} frames by 2 worker processes (video decoding and writing included). "
              f"Training: the temporal net's {_n(s['epochs'], 'epoch')}{_contention(res['rows'])}. Flow ms / frame: {res['flow_speed_source'] or 'no results/flow.json: run benchmarks/flow.py'}.",
              "",
              f"{m['cpu']}, {m['cores']} cores, torch {m['torch']}, load average {m['load_avg_at_start'][0]:.1f} at start and "
              f"{m['load_avg_at_end'][0]:.1f} at the end; whole run {res['wall_s'] / 60:.1f} min.", busy_note(m)]
    return "\n".join(lines)


def _contention(rows: list[dict]) -> str:
    """Every method trains the same net on the same number of samples: a large spread in time is other work on the machine."""
    rates = [e for r in rows for e in r.get("clips_per_s_per_epoch", [])]
    if not rates or max(rates) < 2 * min(rates):
        return ""
    return (f" (the same work for every method, yet epochs ran at {min(rates):.0f} to {max(rates):.0f} clips/s: "
            "other processes shared the cores, so these times say nothing about the flow method)")


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"


def plot(res: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install 'twostream[train]')")
        return
    rows = res["rows"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for r in rows:
        t, n = r["temporal"], r["test_videos"]
        se = math.sqrt(t["top1"] * (1 - t["top1"]) / max(n, 1))
        x = r["flow_ms_per_frame"]
        if x is None:
            continue
        a.errorbar([x], [t["top1"]], yerr=[se], fmt="o", capsize=3, label=r["method"])
        a.annotate(r["method"], (x, t["top1"]), textcoords="offset points", xytext=(5, 4), fontsize=7)
    a.axhline(0.83, color="#999", ls=":", lw=1)
    a.annotate("ceiling: 3 still classes look alike to flow", (0.01, 0.84), xycoords=("axes fraction", "data"), fontsize=7, color="#666")
    a.set_xscale("log")
    a.set(xlabel=f"flow ms per frame at {WORK_SIZE} px (benchmarks/flow.py; log scale)", ylabel="temporal top-1 on the test split", ylim=(0, 1))
    a.set_title("accuracy against flow cost; bars: binomial std. error", fontsize=9)
    xs = range(len(rows))
    b.bar([x - 0.2 for x in xs], [r["flow_cache_s"] for r in rows], 0.4, label="flow cache build", color="#48c")
    b.bar([x + 0.2 for x in xs], [r["train_s"] for r in rows], 0.4, label="training", color="#e73")
    b.set_xticks(list(xs), [r["method"] for r in rows], fontsize=8)
    b.set(ylabel="seconds")
    if _contention(rows):
        b.set_title("times not comparable: other work shared the cores during part of the run", fontsize=8)
    b.legend(fontsize=8)
    d, s = res["dataset"], res["schedule"]
    fig.suptitle(f"{'QUICK RUN: ' if res['quick'] else ''}temporal stream per flow method: {d['train_clips_per_class']}+{d['test_clips_per_class']} clips/class, "
                 f"{_n(s['epochs'], 'epoch')}, seed {s['seed']}, {res['machine']['cores']} cores", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
