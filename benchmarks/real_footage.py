"""Real footage: what a user gets from `train` and from teach mode on real clips of people.

    python benchmarks/real_footage.py                                   # ../shared/data/dev/ud810_ps7
    python benchmarks/real_footage.py --data DIR [--data DIR2 ...]      # any folder with UCF-style lists
    python benchmarks/real_footage.py --only baseline shipped           # a subset of the rows

For each dataset (a folder per class with classInd.txt / trainlist01.txt / testlist01.txt), every
step is a command a user runs, and the test split is never trained on:
- `train`: `twostream train --data D --stream both` with the defaults, then `twostream evaluate`
  on the test list: spatial / temporal / deployed (what `twostream run` outputs) top-1, time taken;
- `teach`: the training clips copied into a folder per class, `twostream train --from default`
  on them, then `twostream evaluate` on the same test list;
- `baseline`: the reference the issue measured: frozen ImageNet EfficientNet-Lite0 features
  (160 px, 8 frames per clip, centre square) and a logistic regression (scikit-learn), spatial only;
- `shipped`: the shipped model (trained/default, none of whose classes are real actions) run with
  `twostream run --json` on every test clip and on the two sample clips in ../shared/data: the
  share of ready frames it calls "no known action" (label null).
Flow caches and models go to a work folder outside the repository (`--work`, default a temp dir);
the dataset folders are only read. Writes benchmarks/results/real_footage.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
SHARED = ROOT.parent / "shared" / "data"
ROWS = ("train", "teach", "baseline", "shipped")
sys.path.insert(0, str(ROOT))
from common import busy_note, finish, machine, twostream  # noqa: E402


def lists(data: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, test) as (class folder, clip path relative to data)."""

    def read(name: str) -> list[tuple[str, str]]:
        rows = [line.split()[0] for line in (data / name).read_text().splitlines() if line.strip()]
        return [(r.split("/")[0], r) for r in rows]

    return read("trainlist01.txt"), read("testlist01.txt")


def evaluate(model: Path, data: Path, cache: Path, work: Path, name: str) -> dict:
    out = work / f"{name}-eval.json"
    twostream("evaluate", "--model", str(model), "--data", str(data), "--cache", str(cache), "--json", str(out), "--no-progress")
    ev = json.loads(out.read_text())
    dep = ev.get("deployed", {})
    return {
        "videos": ev["videos"],
        "spatial": ev.get("spatial", {}).get("top1"),
        "temporal": ev.get("temporal", {}).get("top1"),
        "fused_avg": ev.get("fusion_avg", {}).get("top1"),
        "deployed": dep.get("top1"),
        "deployed_mode": dep.get("mode"),
        "spatial_weight": dep.get("spatial_weight"),
        "min_score": dep.get("min_score"),
    }


def live(model: Path, data: Path) -> dict:
    """What `twostream run` shows on the test clips, frame by frame: named and right, named and wrong, no known action."""
    _, test = lists(data)
    right = wrong = unknown = 0
    for cls, rel in test:
        r = twostream("run", str(data / rel), "--model", str(model), "--json", "-q")
        for p in (json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")):
            if p["ready"]:
                right, wrong, unknown = right + (p["label"] == cls), wrong + (p["label"] not in (None, cls)), unknown + (p["label"] is None)
    n = max(1, right + wrong + unknown)
    return {
        "ready_frames": right + wrong + unknown,
        "named_right": round(right / n, 4),
        "named_wrong": round(wrong / n, 4),
        "no_known_action": round(unknown / n, 4),
    }


def row_train(data: Path, work: Path, cache: Path, extra: tuple[str, ...] = (), name: str = "train") -> dict:
    out = work / f"{name}-model"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.monotonic()
    twostream("train", "--data", str(data), "--cache", str(cache), "--stream", "both", "--out", str(out), "--no-progress", *extra)
    seconds = time.monotonic() - t0
    return {
        **evaluate(out, data, cache, work, name),
        "seconds": round(seconds, 1),
        "train_args": list(extra),
        "live": live(out, data),
        "fusion_choice": json.loads((out / "model.json").read_text())["provenance"].get("fusion_choice", {}),
    }


def row_teach(data: Path, work: Path, cache: Path) -> dict:
    rec, out = work / "teach-clips", work / "teach-model"
    shutil.rmtree(rec, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    train, _ = lists(data)
    for cls, rel in train:  # a recording folder holds copies, as `twostream record` would have written them
        (rec / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy2(data / rel, rec / cls / Path(rel).name)
    t0 = time.monotonic()
    twostream("train", "--data", str(rec), "--from", "default", "--out", str(out), "--no-progress")
    seconds = time.monotonic() - t0
    card = json.loads((out / "metrics.json").read_text())
    return {
        **evaluate(out, data, cache, work, "teach"),
        "seconds": round(seconds, 1),
        "live": live(out, data),
        "fusion_choice": card["cross_validation"].get("fusion_choice", {}),
    }


def row_baseline(data: Path) -> dict:
    """Frozen ImageNet EfficientNet-Lite0 features + logistic regression, spatial only (the issue's reference)."""
    import cv2
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    from realtime.nets.imagenet import imagenet_classifier

    net = imagenet_classifier()
    torch.set_grad_enabled(False)
    classes = [line.split()[1] for line in (data / "classInd.txt").read_text().splitlines() if line.strip()]

    def features(rel: str) -> np.ndarray:
        cap = cv2.VideoCapture(str(data / rel))
        frames = []
        while True:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(f)
        cap.release()
        idx = np.linspace(0, len(frames) - 1, 8).round().astype(int)
        xs = []
        for i in idx:
            f = frames[i]
            h, w = f.shape[:2]
            s = min(h, w)
            sq = f[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s, ::-1]
            sq = cv2.resize(np.ascontiguousarray(sq), (160, 160), interpolation=cv2.INTER_AREA)
            xs.append(((sq.astype(np.float32) - 127) / 128).transpose(2, 0, 1))
        return net.forward_features(torch.from_numpy(np.stack(xs))).numpy()

    t0 = time.monotonic()
    train, test = lists(data)
    xtr = [features(rel) for _, rel in train]
    ytr = np.concatenate([[classes.index(c)] * len(f) for (c, _), f in zip(train, xtr)])
    clf = LogisticRegression(max_iter=2000, C=1.0).fit(np.concatenate(xtr), ytr)
    correct = sum(int(clf.predict_proba(features(rel)).mean(0).argmax() == classes.index(c)) for c, rel in test)
    return {"videos": len(test), "spatial": round(correct / len(test), 4), "seconds": round(time.monotonic() - t0, 1)}


def row_shipped(data: Path, work: Path) -> dict:
    """The shipped model on real footage of people: the share of ready frames it calls "no known action"."""
    _, test = lists(data)
    clips = [data / rel for _, rel in test] + [p for p in sorted(SHARED.glob("*")) if p.suffix in (".avi", ".mp4")]
    per_clip: dict = {}
    ready = unknown = 0
    for clip in clips:
        r = twostream("run", str(clip), "--json", "-q")
        preds = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
        rd = [p for p in preds if p["ready"]]
        unk = sum(p["label"] is None for p in rd)
        per_clip[clip.name] = {
            "ready_frames": len(rd),
            "no_known_action": unk,
            "top_named": max({p["label"] for p in rd if p["label"]} or {None}, key=lambda lab: sum(p["label"] == lab for p in rd) if lab else -1),
        }
        ready, unknown = ready + len(rd), unknown + unk
    return {"clips": len(clips), "ready_frames": ready, "no_known_action": unknown, "share_unknown": round(unknown / max(1, ready), 4), "per_clip": per_clip}


def table(results: dict) -> str:
    lines = [
        "| dataset | what the user does | spatial | temporal | deployed (what `run` shows) | mode | live frames: named and right / no known action | time |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def f(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else "–" if v is None else str(v)

    for name, r in results["datasets"].items():
        rows = [("train", "`train --stream both` (defaults)"), ("teach", "`train --from default` (teach)")]
        rows += [(k, f"variant: `train --stream both {' '.join(v.get('train_args', []))}`") for k, v in r.items() if k.startswith("variant:")]
        for key, what in rows:
            x = r.get(key)
            if isinstance(x, dict) and "error" not in x:
                mode = f"{x['deployed_mode']} (w={x['spatial_weight']:.1f})" if x.get("deployed_mode") else "–"
                lv = x.get("live")
                frames = f"{lv['named_right']:.0%} / {lv['no_known_action']:.0%} of {lv['ready_frames']}" if lv else "–"
                lines.append(
                    f"| {name} | {what} | {f(x['spatial'])} | {f(x['temporal'])} | **{f(x['deployed'])}** | {mode} | {frames} | {x['seconds']:.0f} s |"
                )
            elif isinstance(x, dict):
                lines.append(f"| {name} | {what} | failed: {x['error']} | | | | | |")
        b = r.get("baseline")
        if isinstance(b, dict) and "error" not in b:
            lines.append(
                f"| {name} | reference: frozen ImageNet Lite0 features + logistic regression (spatial only) | {f(b['spatial'])} | – | – | – | – | {b['seconds']:.0f} s |"
            )
        s = r.get("shipped")
        if isinstance(s, dict) and "error" not in s:
            lines.append(
                f'| {name} | shipped model on real footage of people ({s["clips"]} clips): frames shown as "no known action" | '
                f"{s['no_known_action']}/{s['ready_frames']} = **{s['share_unknown']:.0%}** | | | | | |"
            )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", default=[str(SHARED / "dev" / "ud810_ps7")], help="dataset folders with UCF-style lists")
    ap.add_argument("--only", nargs="+", choices=ROWS, default=list(ROWS))
    ap.add_argument("--work", help="folder for flow caches and models (default: a temporary folder, removed after)")
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--quick", action="store_true", help="accepted for run_all.py; the rows are already minutes long")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="also train with these extra train options, e.g. 'full-finetune=--finetune-fraction 1' (a measured choice)",
    )
    args = ap.parse_args()
    m = machine()
    results: dict = {"machine": m, "datasets": {}}
    tmp = None
    work_root = Path(args.work) if args.work else Path(tmp := tempfile.mkdtemp(prefix="twostream-real-"))
    try:
        for d in args.data:
            data = Path(d).resolve()
            if not (data / "trainlist01.txt").is_file():
                raise SystemExit(f"{data}: needs classInd.txt, trainlist01.txt and testlist01.txt (UCF-style lists)")
            work = work_root / data.name
            work.mkdir(parents=True, exist_ok=True)
            cache = work / "cache"
            r: dict = {}
            for key in args.only:
                t0 = time.monotonic()
                try:
                    r[key] = (
                        row_train(data, work, cache)
                        if key == "train"
                        else row_teach(data, work, cache)
                        if key == "teach"
                        else row_baseline(data)
                        if key == "baseline"
                        else row_shipped(data, work)
                    )
                except Exception as e:  # one failing row is reported; the others still run
                    r[key] = {"error": str(e)[:300]}
                print(f"{data.name} {key}: {json.dumps(r[key])[:400]} ({time.monotonic() - t0:.0f} s)", flush=True)
            for v in args.variant:
                name, _, extra = v.partition("=")
                t0 = time.monotonic()
                try:
                    r[f"variant:{name}"] = row_train(data, work, cache, tuple(extra.split()), name=f"variant-{name}")
                except Exception as e:
                    r[f"variant:{name}"] = {"error": str(e)[:300]}
                print(f"{data.name} variant {name}: {json.dumps(r[f'variant:{name}'])[:400]} ({time.monotonic() - t0:.0f} s)", flush=True)
            results["datasets"][data.name] = r
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    finish(m)
    md = table(results)
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "real_footage.json").write_text(json.dumps(results, indent=2) + "\n")
    note = busy_note(m)
    (out / "real_footage.md").write_text(
        "# Real footage\n\n`python benchmarks/real_footage.py` on "
        + ", ".join(results["datasets"])
        + f"; {m['cpu']}, {m['cores']} cores, torch {m['torch']}.\n{note}\n"
        + md
        + "\n"
    )
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
