"""Flow benchmark: each dense-flow method's time per frame against its error on exactly known motion.

    python benchmarks/flow.py            # full (about 2 minutes on 2 CPU cores)
    python benchmarks/flow.py --quick    # short version

For OpenCV DIS (presets ultrafast / fast / medium), Farneback (the parameters the runtime uses)
and TV-L1 (only when OpenCV's contrib module `cv2.optflow` is installed), at working sizes 96,
128 and 224 px (square, as `FlowSettings` makes them), on procedural clips whose true flow is known
exactly (realtime.io.synthetic: a textured object moving over a textured background, a shaking
camera, changing light, noise and blur):
- ms per frame, median: what the flow thread does per frame through `FlowEstimator.push`
  (grey, resize to the working size, flow), on 320x240 source frames; clip by clip, every method
  in turn, so a change in the machine's load touches them all alike;
- end-point error on the moving object (the clip's `object_mask`) and on the whole frame. Errors are
  in source pixels (the estimate is scaled back to 320x240 with `resize_flow`) so that sizes
  compare; the working-size figure is in the JSON too.
Writes benchmarks/results/flow.json, flow.png (speed against accuracy) and flow.md.

What each method does to the temporal stream's accuracy on the procedural test set is measured by
benchmarks/flow_accuracy.py: it needs a temporal net trained on each method's flow (a model degrades
on flow made another way), i.e. one training run per method.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import busy_note, finish, machine  # noqa: E402
from realtime.stream.flow import FlowEstimator, FlowSettings, end_point_error, resize_flow  # noqa: E402
from realtime.io.synthetic import SyntheticClip  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (96, 128, 224)
SOURCE = (320, 240)
CLASSES = ("swipe_right", "circle_cw", "push", "wave", "swipe_up", "hold_star")  # every kind of motion, and a still object
TVL1_MISSING = "not installed: TV-L1 lives in OpenCV's contrib module cv2.optflow (pip install opencv-contrib-python-headless)"


class TVL1Estimator(FlowEstimator):
    """OpenCV's Dual TV-L1 (the paper's flow method), behind the runtime's estimator interface."""

    def __init__(self, settings: FlowSettings):
        super().__init__(settings)
        self._tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()

    def between(self, prev_grey: np.ndarray, next_grey: np.ndarray) -> np.ndarray:
        return self._tvl1.calc(prev_grey, next_grey, None)


def methods() -> list[tuple[str, FlowSettings | None, type[FlowEstimator] | None]]:
    out: list = [(f"DIS {p}", FlowSettings("dis", p), FlowEstimator) for p in ("ultrafast", "fast", "medium")]
    out.append(("Farneback", FlowSettings("farneback"), FlowEstimator))
    out.append(("TV-L1", FlowSettings("dis"), TVL1Estimator) if hasattr(cv2, "optflow") else ("TV-L1", None, None))
    return out


def clips(n: int) -> list[SyntheticClip]:
    return [SyntheticClip(CLASSES[i % len(CLASSES)], seed=1000 + i, width=SOURCE[0], height=SOURCE[1]) for i in range(n)]


class Meter:
    """One method at one working size: its time per frame and its errors, accumulated clip by clip."""

    def __init__(self, settings: FlowSettings, estimator: type[FlowEstimator], size: int):
        self.settings = FlowSettings(settings.algorithm, settings.preset, size, size, settings.bound)
        self.estimator, self.size = estimator, size
        self.times: list[float] = []
        self.epe: dict[str, list[float]] = {"object": [], "frame": [], "object_working": [], "frame_working": []}

    def run_clip(self, frames: list[np.ndarray], truths: list[np.ndarray], masks: list[np.ndarray]) -> None:
        size = self.size
        est = self.estimator(self.settings)
        est.push(frames[0])
        for t in range(1, len(frames)):
            t0 = time.perf_counter()
            flow = est.push(frames[t])
            self.times.append(time.perf_counter() - t0)
            truth, inside = truths[t - 1], masks[t - 1]
            err = np.linalg.norm(resize_flow(flow, SOURCE) - truth, axis=-1)  # in source pixels: comparable across sizes
            self.epe["frame"].append(float(err.mean()))
            if inside.any():
                self.epe["object"].append(float(err[inside].mean()))
            truth_work = resize_flow(truth, (size, size))
            inside_work = cv2.resize(inside.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0
            self.epe["frame_working"].append(end_point_error(flow, truth_work))
            if inside_work.any():
                self.epe["object_working"].append(float(np.linalg.norm(flow - truth_work, axis=-1)[inside_work].mean()))

    def result(self) -> dict:
        ms = np.array(self.times) * 1e3
        e = {k: round(float(np.mean(v)), 3) for k, v in self.epe.items()}
        return {
            "frames": len(self.times),
            "ms_per_frame_median": round(float(np.median(ms)), 3),
            "ms_per_frame_p90": round(float(np.percentile(ms, 90)), 3),
            "epe_object_px": e["object"],
            "epe_frame_px": e["frame"],
            "epe_object_working_px": e["object_working"],
            "epe_frame_working_px": e["frame_working"],
        }


def table(rows: list[dict], ref: dict) -> str:
    lines = [
        "| method | working size | ms / frame (median) | EPE on the object (px) | EPE whole frame (px) | EPE on the object (working px) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['method']} | - | {r['status']} | - | - | - |")
            continue
        lines.append(
            f"| {r['method']} | {r['size']} | {r['ms_per_frame_median']:.2f} | {r['epe_object_px']:.2f} | {r['epe_frame_px']:.2f} | {r['epe_object_working_px']:.2f} |"
        )
    lines.append(
        f"\nEPE in 320x240 source pixels unless marked; {ref['frames']} frame pairs per row from {ref['clips']} procedural clips; "
        f"reference: zero flow scores {ref['zero_flow_epe_object_px']:.2f} px on the object, {ref['zero_flow_epe_frame_px']:.2f} px whole frame"
    )
    return "\n".join(lines)


def plot(rows: list[dict], ref: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, zero, what in (
        (axes[0], "epe_object_px", ref["zero_flow_epe_object_px"], "on the moving object"),
        (axes[1], "epe_frame_px", ref["zero_flow_epe_frame_px"], "whole frame"),
    ):
        for method in dict.fromkeys(r["method"] for r in rows if r["status"] == "ok"):
            sel = [r for r in rows if r["method"] == method and r["status"] == "ok"]
            ax.plot([r["ms_per_frame_median"] for r in sel], [r[key] for r in sel], "o-", label=method)
            for r in sel:
                ax.annotate(str(r["size"]), (r["ms_per_frame_median"], r[key]), textcoords="offset points", xytext=(4, 3), fontsize=7)
        ax.axhline(zero, color="#999", ls=":", label="zero flow")
        ax.set_xscale("log")
        ax.set_xlabel("ms per frame (median; log scale)")
        ax.set_ylabel("end-point error (px at 320x240)")
        ax.set_title(f"error {what}; labels: working size", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer clips and frames")
    ap.add_argument("--out", default=str(RESULTS / "flow.json"))
    args = ap.parse_args()
    n_clips, n_frames = (6, 8) if args.quick else (12, 20)
    data = []
    for clip in clips(n_clips):
        frames = [clip.frame(t) for t in range(n_frames)]
        data.append((frames, [clip.flow(t) for t in range(n_frames - 1)], [clip.object_mask(t) > 127 for t in range(n_frames - 1)]))
    zero_obj = float(np.mean([np.linalg.norm(tr, axis=-1)[m].mean() for _, trs, ms in data for tr, m in zip(trs, ms) if m.any()]))
    zero_all = float(np.mean([np.linalg.norm(tr, axis=-1).mean() for _, trs, _ in data for tr in trs]))
    res: dict = {
        "machine": machine(opencv=cv2.__version__, opencv_threads=cv2.getNumThreads()),
        "reference": {
            "clips": n_clips,
            "frames": n_clips * (n_frames - 1),
            "source": f"{SOURCE[0]}x{SOURCE[1]}",
            "classes": list(CLASSES),
            "zero_flow_epe_object_px": round(zero_obj, 3),
            "zero_flow_epe_frame_px": round(zero_all, 3),
        },
        "temporal_accuracy": "measured separately by benchmarks/flow_accuracy.py (one temporal net trained per flow method)",
        "rows": [],
    }
    print(
        f"{n_clips} clips x {n_frames - 1} frame pairs at {SOURCE[0]}x{SOURCE[1]}; {os.cpu_count()} cores, OpenCV {cv2.__version__} "
        f"({cv2.getNumThreads()} threads); load average {res['machine']['load_avg_at_start']}",
        flush=True,
    )
    meters: list[tuple[str, FlowSettings, Meter]] = []
    missing: list[dict] = []
    for name, settings, estimator in methods():
        if settings is None or estimator is None:
            missing.append({"method": name, "status": TVL1_MISSING})
            print(f"  {name}: {TVL1_MISSING}", flush=True)
            continue
        meters += [(name, settings, Meter(settings, estimator, size)) for size in SIZES]
    # Clip by clip, every method in turn: a change in the machine's load touches them all alike.
    for clip_data in data:
        for _, _, meter in meters:
            meter.run_clip(*clip_data)
    for name, settings, meter in meters:
        r = {
            "method": name,
            "algorithm": settings.algorithm,
            "preset": settings.preset if settings.algorithm == "dis" else None,
            "size": meter.size,
            "status": "ok",
            **meter.result(),
        }
        res["rows"].append(r)
        print(
            f"  {name} at {meter.size}: {r['ms_per_frame_median']:.2f} ms/frame, EPE object {r['epe_object_px']:.2f} px, frame {r['epe_frame_px']:.2f} px",
            flush=True,
        )
    res["rows"] += missing
    finish(res["machine"])
    res["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    m = res["machine"]
    where = f"{m['cpu']}, {m['cores']} cores, OpenCV {m['opencv']}, load average {m['load_avg_at_start'][0]:.1f} at start"
    md = (
        table(res["rows"], res["reference"])
        + f"\n\n{where}. Each method's effect on the temporal stream's accuracy: benchmarks/flow_accuracy.py (a net trained per method).\n"
    )
    md += busy_note(res["machine"])
    print(md)
    out.with_suffix(".md").write_text(md)
    try:
        plot(res["rows"], res["reference"], out.with_suffix(".png"), f"dense flow: speed against accuracy on procedural clips with exact flow ({where})")
    except ImportError:
        print("matplotlib not installed: no plot (pip install 'twostream[train]')")


if __name__ == "__main__":
    main()
