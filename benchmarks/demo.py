"""What `twostream run` shows with the shipped model, frame by frame: on `synthetic:demo` (its own world) and on
real clips of people (none of its classes), per engine, same run.

    python benchmarks/demo.py                 # 1200 demo frames; real clips from ../shared/data
    python benchmarks/demo.py --frames 600 --engines onnxruntime
    python benchmarks/demo.py --seeds 1 2 3     # and a row over 3 x 1200 frames of clips `run` never shows

synthetic:demo (labelled synthetic): the share of ready frames (both streams) whose top class is right,
that are named and right, named and wrong, or "no known action"; the top-class accuracy by frames
since the action last changed (the nets see the last L flow fields and the scores are smoothed over
8 frames, so the first frames after a change still show the previous action), and how many of the changes the
shot-cut detector found (and how many cuts it found where there was none). Real clips: the share
of ready frames shown as "no known action" (all of them should be: the model knows none of these
actions). Writes benchmarks/results/demo.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import busy_note, finish, machine  # noqa: E402
from realtime.nets.models_store import default_model  # noqa: E402
from realtime.stream.cuts import CUT_THRESHOLD  # noqa: E402
from realtime.stream.pipeline import Pipeline  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BINS = ((0, 4), (4, 10), (10, 20), (20, 10**9))


def demo(model, engine: str, frames: int, smoothing: int = 8, seeds: tuple[int, ...] = (0,), cut_threshold: float = CUT_THRESHOLD) -> dict:
    """`frames` frames of synthetic:demo per seed (seed 0 is what `twostream run` shows), pooled."""
    rows = []
    changes = cuts_right = cuts_wrong = 0
    for seed in seeds:
        last, since = None, 0
        src = f"synthetic:demo?fps=0&seed={seed}"
        with Pipeline(src, model, engine=engine, max_frames=frames, file_batch=1, smoothing=smoothing, cut_threshold=cut_threshold) as p:
            for pred in p:
                changed = last is not None and pred.truth != last
                changes += changed
                cuts_right += changed and pred.since_cut == 0
                cuts_wrong += not changed and pred.since_cut == 0
                since = 0 if pred.truth != last else since + 1
                last = pred.truth
                if pred.ready:
                    rows.append((pred.top_label == pred.truth, pred.known, pred.label == pred.truth, since))
            name = p.engine.describe()
    a = np.array(rows, dtype=object)
    top, known, right, since_change = (a[:, i].astype(bool) if i < 3 else a[:, i].astype(int) for i in range(4))
    by = {
        f"{lo}-{hi - 1 if hi < 10**9 else 'on'}": round(float(top[(since_change >= lo) & (since_change < hi)].mean()), 4)
        for lo, hi in BINS
        if ((since_change >= lo) & (since_change < hi)).any()
    }
    return {
        "engine": name,
        "smoothing": smoothing,
        "cut_threshold": cut_threshold,
        "seeds": list(seeds),
        "changes_of_clip": changes,
        "cuts_found_at_changes": cuts_right,
        "cuts_found_elsewhere": cuts_wrong,
        "ready_frames": len(rows),
        "top_right": round(float(top.mean()), 4),
        "named_right": round(float((known & right).mean()), 4),
        "named_wrong": round(float((known & ~right).mean()), 4),
        "unknown": round(float((~known).mean()), 4),
        "top_right_by_frames_since_change": by,
    }


def real(model, engine: str, clips: list[Path], smoothing: int = 8, cut_threshold: float = CUT_THRESHOLD) -> dict:
    ready = unknown = cuts = 0
    per = {}
    for c in clips:
        n = u = 0
        with Pipeline(str(c), model, engine=engine, smoothing=smoothing, cut_threshold=cut_threshold) as p:
            for pred in p:
                cuts += pred.since_cut == 0
                if pred.ready:
                    n += 1
                    u += not pred.known
        per[c.name] = round(u / max(n, 1), 4)
        ready, unknown = ready + n, unknown + u
    return {"clips": len(clips), "ready_frames": ready, "unknown": round(unknown / max(ready, 1), 4), "cuts_found": cuts, "per_clip": per}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1200)
    ap.add_argument("--engines", nargs="+", default=["onnxruntime", "onnxruntime-int8"])
    ap.add_argument("--real", nargs="*", help="real clips (default: the two samples in ../shared/data and the dev set's test clips)")
    ap.add_argument("--smoothing", type=int, nargs="+", default=[8], help="smoothing windows to run the demo with (default 8, what `run` uses)")
    ap.add_argument(
        "--cut-threshold",
        type=float,
        nargs="+",
        default=[CUT_THRESHOLD],
        help=f"shot-cut thresholds to run with (default {CUT_THRESHOLD}, what `run` uses; 1 = cut detection off)",
    )
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        action="append",
        help="another row over the demo with these seeds, pooled (e.g. --seeds 1 2 3: 3 x --frames more frames, clips never shown by `run`)",
    )
    ap.add_argument("--out", default=str(RESULTS / "demo.json"))
    args = ap.parse_args()
    model = default_model()
    clips = [Path(c) for c in args.real] if args.real is not None else sorted(SHARED.glob("*.avi")) + sorted(SHARED.glob("*.mp4"))
    if args.real is None:
        dev = SHARED / "dev" / "ud810_ps7"
        if (dev / "testlist01.txt").is_file():
            clips += [dev / line.split()[0] for line in (dev / "testlist01.txt").read_text().splitlines() if line.strip()]
    res: dict = {
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "model": model.config.provenance.get("name"),
        "runs": {},
    }
    for eng in args.engines:
        for sm in args.smoothing:
            for ct in args.cut_threshold:
                key = eng + ("" if args.smoothing == [8] else f", smoothing {sm}") + ("" if ct == CUT_THRESHOLD else f", cut threshold {ct:g}")
                res["runs"][key] = {"synthetic_demo": demo(model, eng, args.frames, sm, (0,), ct), "real": real(model, eng, clips, sm, ct) if clips else None}
                print(key, json.dumps(res["runs"][key]), flush=True)
                for seeds in args.seeds or []:
                    k = f"{key}, seeds {' '.join(map(str, seeds))}"
                    res["runs"][k] = {"synthetic_demo": demo(model, eng, args.frames, sm, tuple(seeds), ct), "real": None}
                    print(k, json.dumps(res["runs"][k]), flush=True)
    finish(res["machine"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    lines = [
        "| engine | synthetic:demo ready frames | top class right | named and right | named and wrong | no known action | "
        "top right by frames since the action changed | shot cuts found: at changes / elsewhere | real clips: frames shown as no known action (cuts found) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for eng, r in res["runs"].items():
        d, rl = r["synthetic_demo"], r["real"]
        by = ", ".join(f"{k}: {v:.0%}" for k, v in d["top_right_by_frames_since_change"].items())
        sm_note = "" if d.get("smoothing", 8) == 8 else f", smoothing {d['smoothing']}"
        if d.get("cut_threshold", CUT_THRESHOLD) != CUT_THRESHOLD:
            sm_note += ", cut detection off" if d["cut_threshold"] >= 1 else f", cut threshold {d['cut_threshold']:g}"
        if d.get("seeds", [0]) != [0]:
            sm_note += f", demo seeds {' '.join(map(str, d['seeds']))}"
        cuts = f"{d['cuts_found_at_changes']} of {d['changes_of_clip']} / {d['cuts_found_elsewhere']}" if "changes_of_clip" in d else "-"
        real_cell = f"{rl['unknown']:.1%} of {rl['ready_frames']} ({rl['clips']} clips; {rl.get('cuts_found', '-')} cuts)" if rl else "-"
        lines.append(
            f"| {d['engine']}{sm_note} | {d['ready_frames']} | {d['top_right']:.1%} | {d['named_right']:.1%} | {d['named_wrong']:.1%} | "
            f"{d['unknown']:.1%} | {by} | {cuts} | {real_cell} |"
        )
    lines.append(
        "\nsynthetic:demo figures are synthetic (the model's own procedural world); real clips are people doing actions the shipped model does not know."
    )
    lines.append(busy_note(res["machine"]))
    print("\n".join(lines))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
