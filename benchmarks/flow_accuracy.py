"""Flow method against temporal-stream accuracy: one temporal net trained from scratch on each method's flow.

    python benchmarks/flow_accuracy.py            # 30 train + 10 test clips per class, 30 epochs, seeds 0 and 1
    python benchmarks/flow_accuracy.py --quick    # 6 + 3 clips per class, 1 epoch, 5 stacks per test video, one seed: checks the machinery, says nothing about accuracy (about 1 minute)

The speed side of the flow benchmark (benchmarks/flow.py) says what each method costs per frame;
this says what it does to recognition. For DIS ultrafast / fast / medium and Farneback, all at the
same working size (128 px), with the commands a user runs:
- `twostream make-dataset` once (a reduced procedural dataset outside the repository, reused when
  it is already there with the same sizes; `--data DIR`);
- per seed and method, `twostream train --stream temporal --flow-algorithm A --flow-preset P` from
  scratch, the same schedule (epochs, batch, learning rate) for all, with a flow cache of its own
  that is built in the run (so its build time is measured, never reused from an earlier run);
- `twostream evaluate` on the test split (the paper's protocol: 25 flow stacks per video).
Records the temporal stream's top-1, top-5 and mean class accuracy, split into the 9 moving
classes and the 3 still ones, the flow-cache build time, the training time, and the flow ms per
frame at 128 px from results/flow.json when present (measured by flow.py, in its own run). The
methods take turns within each seed, so a change in the machine's load touches them all alike.
Writes benchmarks/results/flow_accuracy.json, .md and .png.

A small test set: read differences of a few points as noise (the table says what one test clip is
worth, each figure's binomial standard error and the spread between seeds).
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
STILL_CLASSES = ("hold_star", "hold_cross", "hold_ring")  # differ only in the shape of a still object; flow sees only its tremor
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
    return {
        "source": f"results/flow.json, measured {d.get('measured_at')} on {m.get('cpu')} ({m.get('cores')} cores), "
        f"load average {m.get('load_avg_at_start', [float('nan')])[0]:.1f} at start",
        "rows": rows,
    }


def one_method(name: str, algorithm: str, preset: str | None, data: Path, work: Path, epochs: int, seed: int, samples: int) -> dict:
    tag = f"{name.lower().replace(' ', '-')}-seed{seed}"
    cache, model, ev = work / f"cache-{tag}", work / f"model-{tag}", work / f"eval-{tag}.json"
    for p in (cache, model):
        shutil.rmtree(p, ignore_errors=True)  # a fresh net and a fresh cache: both are measured
    cmd = [
        "train",
        "--data",
        str(data),
        "--cache",
        str(cache),
        "--stream",
        "temporal",
        "--flow-algorithm",
        algorithm,
        *(["--flow-preset", preset] if preset else []),
        "--work-size",
        str(WORK_SIZE),
        "--epochs",
        str(epochs),
        "--seed",
        str(seed),
        "--out",
        str(model),
        "--no-eval",
        "--no-progress",
    ]
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
    conf = metrics["confusion"]
    per_class = {c: conf[i][i] / max(sum(conf[i]), 1) for i, c in enumerate(metrics["classes"])}
    moving = [c for c in per_class if c not in STILL_CLASSES]
    return {
        "method": name,
        "seed": seed,
        "algorithm": algorithm,
        "preset": preset,
        "flow_settings": cfg["flow"],
        "per_class_top1": {c: round(v, 4) for c, v in per_class.items()},
        "moving_top1": round(sum(per_class[c] for c in moving) / len(moving), 4),
        "still_top1": round(sum(per_class[c] for c in STILL_CLASSES if c in per_class) / len(STILL_CLASSES), 4),
        "command": "twostream " + " ".join(cmd),
        "test_videos": metrics["videos"],
        "protocol": metrics["protocol"],
        "temporal": metrics["temporal"],
        "flow_cache_s": timings["flow_cache_s"],
        "train_s": timings["temporal_train_s"],
        "train_command_wall_s": round(train_wall, 1),
        "evaluate_wall_s": round(eval_wall, 1),
        "final_epoch": history[-1] if history else None,
        "val_acc_per_epoch": [h["val_acc"] for h in history],
        "clips_per_s_per_epoch": [h["clips_per_s"] for h in history],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="6 + 3 clips per class, 1 epoch, 5 flow stacks per test video: checks the machinery only")
    ap.add_argument("--train-clips", type=int, help="training clips per class (default 30; --quick 6)")
    ap.add_argument("--test-clips", type=int, help="test clips per class (default 10; --quick 3)")
    ap.add_argument("--epochs", type=int, help="epochs for every method (default 30; --quick 1)")
    ap.add_argument("--samples", type=int, help="flow stacks per test video (default 25, the paper's protocol; --quick 5)")
    ap.add_argument("--seeds", type=int, nargs="+", help="one net per method and seed (default 0 1; --quick 0)")
    ap.add_argument(
        "--data",
        type=Path,
        help="procedural dataset directory, reused when it matches (default /tmp/twostream-flow-accuracy/data-TRAINxTEST; never inside the repository)",
    )
    ap.add_argument("--work", type=Path, help="keep the models and evaluation files here (default: a temporary directory, removed)")
    ap.add_argument("--out", type=Path, default=RESULTS / "flow_accuracy.json")
    args = ap.parse_args()
    train_clips = args.train_clips or (6 if args.quick else 30)
    test_clips = args.test_clips or (3 if args.quick else 10)
    epochs = args.epochs or (1 if args.quick else 30)
    seeds = args.seeds or ([0] if args.quick else [0, 1])
    samples = args.samples or (5 if args.quick else 25)
    data = args.data or Path(tempfile.gettempdir()) / "twostream-flow-accuracy" / f"data-{train_clips}x{test_clips}"
    if data.resolve().is_relative_to(ROOT):
        raise SystemExit(f"{data}: inside the repository; give --data a directory outside it (the dataset is hundreds of MB)")
    t_start = time.monotonic()
    res: dict = {
        "benchmark": "flow_accuracy",
        "quick": args.quick,
        "machine": machine(),
        "dataset": {"classes": 12, "train_clips_per_class": train_clips, "test_clips_per_class": test_clips, "frames_per_clip": 32},
        "schedule": {
            "epochs": epochs,
            "seeds": seeds,
            "stream": "temporal",
            "work_size": WORK_SIZE,
            "eval_samples_per_video": samples,
            "other_options": "twostream train defaults (resnet18_050 at 112 px, L=10, batch 32, lr 0.02, cosine)",
        },
    }
    print(
        f"{'QUICK: ' if args.quick else ''}{train_clips} train + {test_clips} test clips per class, 12 classes, {_n(epochs, 'epoch')}, seeds {' '.join(map(str, seeds))}; "
        f"load average {res['machine']['load_avg_at_start']}",
        flush=True,
    )
    res["dataset"].update(dataset(data, train_clips, test_clips))
    print(f"dataset {data}: {'reused' if res['dataset']['reused'] else 'written in %.0f s' % res['dataset']['build_s']}", flush=True)
    speed = flow_speed()
    res["flow_speed_source"] = speed["source"]
    work = args.work or Path(tempfile.mkdtemp(prefix="twostream-flow-accuracy-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for seed in seeds:  # every method within a seed, so load drift falls on all of them
            for name, algorithm, preset in METHODS:
                r = one_method(name, algorithm, preset, data, work, epochs, seed, samples)
                r["flow_ms_per_frame"] = speed["rows"].get(name)
                rows.append(r)
                t = r["temporal"]
                print(
                    f"  seed {seed}, {name}: temporal top-1 {t['top1']:.3f} (moving classes {r['moving_top1']:.3f}, still {r['still_top1']:.3f}) "
                    f"on {r['test_videos']} videos; flow cache {r['flow_cache_s']:.0f} s, training {r['train_s']:.0f} s",
                    flush=True,
                )
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


def by_method(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["method"], []).append(r)
    return out


def table(res: dict) -> str:
    d, s, m = res["dataset"], res["schedule"], res["machine"]
    n = res["rows"][0]["test_videos"] if res["rows"] else 0
    seeds = s.get("seeds", [s.get("seed", 0)])
    lines = []
    if res["quick"]:
        lines += [
            "**QUICK RUN** (`--quick`): a handful of clips, one epoch, 5 flow stacks per test video; checks the machinery, says nothing about accuracy.",
            "",
        ]
    lines += [
        f"| flow method (128 px) | temporal top-1, seed {' / '.join(map(str, seeds))} | mean (± std. error) | moving classes (9) | still classes (3) "
        "| top-5 | train acc., last epoch | flow ms / frame | flow cache build | training |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rs in by_method(res["rows"]).items():
        mean = lambda key: sum(key(r) for r in rs) / len(rs)  # noqa: E731
        top1 = mean(lambda r: r["temporal"]["top1"])
        se = math.sqrt(top1 * (1 - top1) / max(n * len(rs), 1))
        ms = f"{rs[0]['flow_ms_per_frame']:.2f}" if rs[0]["flow_ms_per_frame"] is not None else "-"
        last = " / ".join(f"{r['final_epoch']['train_acc']:.3f}" for r in rs if r["final_epoch"]) or "-"
        per_seed = " / ".join(f"{r['temporal']['top1']:.3f}" for r in rs)
        lines.append(
            f"| {name} | {per_seed} "
            f"| **{top1:.3f}** (± {se:.3f}) | {mean(lambda r: r['moving_top1']):.3f} | {mean(lambda r: r['still_top1']):.3f} "
            f"| {mean(lambda r: r['temporal']['top5']):.3f} | {last} | {ms} | {mean(lambda r: r['flow_cache_s']):.0f} s | {mean(lambda r: r['train_s']):.0f} s |"
        )
    frames = 12 * (d["train_clips_per_class"] + d["test_clips_per_class"]) * d["frames_per_clip"]
    lines += [
        "",
        f"One temporal net per method and seed, trained from scratch: {d['train_clips_per_class']} train clips per class x 12 classes, "
        f"{_n(s['epochs'], 'epoch')}, otherwise `twostream train` defaults; tested on {n} videos "
        f"({d['test_clips_per_class']} per class, {s['eval_samples_per_video']} flow stacks each): one video is {100 / max(n, 1):.2f} points. "
        f"Moving / still: mean per-class top-1 over the 9 classes that differ in motion and over the 3 ({', '.join(STILL_CLASSES)}) "
        "that differ only in a still object's shape, which flow shows only faintly, through the object's tremor against the "
        "camera's shake (chance among the three: 0.333). Columns after the still classes are means over the seeds.",
        f"Flow cache build: frames and flow of all {frames} frames by 2 worker processes (video decoding and writing included). "
        f"Training: the temporal net's {_n(s['epochs'], 'epoch')}{_contention(res['rows'])}. Flow ms / frame: {res['flow_speed_source'] or 'no results/flow.json: run benchmarks/flow.py'}.",
        "",
        f"{m['cpu']}, {m['cores']} cores, torch {m['torch']}, load average {m['load_avg_at_start'][0]:.1f} at start and "
        f"{m['load_avg_at_end'][0]:.1f} at the end; whole run {res['wall_s'] / 60:.1f} min.",
        busy_note(m),
    ]
    return "\n".join(lines)


def _contention(rows: list[dict]) -> str:
    """Every method trains the same net on the same number of samples: a large spread in time is other work on the machine."""
    rates = [e for r in rows for e in r.get("clips_per_s_per_epoch", [])]
    if not rates or max(rates) < 2 * min(rates):
        return ""
    return (
        f" (the same work for every method, yet epochs ran at {min(rates):.0f} to {max(rates):.0f} clips/s: "
        "other processes shared the cores, so these times say nothing about the flow method)"
    )


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"


def plot(res: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("matplotlib not installed: no plot (pip install 'twostream[train]')")
        return
    rows, groups = res["rows"], by_method(res["rows"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, rs in groups.items():
        x = rs[0]["flow_ms_per_frame"]
        if x is None:
            continue
        n = sum(r["test_videos"] for r in rs)
        top1 = sum(r["temporal"]["top1"] for r in rs) / len(rs)
        se = math.sqrt(top1 * (1 - top1) / max(n, 1))
        a.errorbar([x], [top1], yerr=[se], fmt="o", capsize=3, label=name)
        a.plot([x] * len(rs), [r["temporal"]["top1"] for r in rs], "x", color="#666", ms=4)
        a.plot([x], [sum(r["moving_top1"] for r in rs) / len(rs)], "^", color="#2a7", ms=4)
        a.annotate(name, (x, top1), textcoords="offset points", xytext=(5, -10), fontsize=7)
    a.set_xscale("log")
    ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20) if any(r["flow_ms_per_frame"] and t / 2.5 <= r["flow_ms_per_frame"] <= t * 2.5 for r in rows)]
    a.set_xticks(ticks, [f"{t:g}" for t in ticks])
    a.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    a.set(xlabel=f"flow ms per frame at {WORK_SIZE} px (benchmarks/flow.py; log scale)", ylabel="temporal top-1 on the test split", ylim=(0, 1.05))
    a.set_title("o: mean top-1 ± binomial s.e.; x: each seed; ^: the 9 moving classes", fontsize=8)
    xs = range(len(groups))
    mean = lambda rs, key: sum(r[key] for r in rs) / len(rs)  # noqa: E731
    b.bar([x - 0.2 for x in xs], [mean(rs, "flow_cache_s") for rs in groups.values()], 0.4, label="flow cache build", color="#48c")
    b.bar([x + 0.2 for x in xs], [mean(rs, "train_s") for rs in groups.values()], 0.4, label="training", color="#e73")
    b.set_xticks(list(xs), list(groups), fontsize=8)
    b.set(ylabel="seconds (mean over seeds)")
    if _contention(rows):
        b.set_title("times not comparable: other work shared the cores during part of the run", fontsize=8)
    b.legend(fontsize=8)
    d, s = res["dataset"], res["schedule"]
    seeds = s.get("seeds", [s.get("seed", 0)])
    fig.suptitle(
        f"{'QUICK RUN: ' if res['quick'] else ''}temporal stream per flow method: {d['train_clips_per_class']}+{d['test_clips_per_class']} clips/class, "
        f"{_n(s['epochs'], 'epoch')}, {_n(len(seeds), 'seed')}, {res['machine']['cores']} cores",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
