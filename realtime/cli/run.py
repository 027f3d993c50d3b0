"""`twostream run SOURCE`: one prediction per frame on a camera, stream, file or the synthetic world."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ..errors import UserError
from .options import add_cut_option, add_fusion_option, add_model_options, stream_options

log = logging.getLogger("twostream")

MIN_SCORE_HELP = (
    "a frame whose fused top score is below S is 'no known action' (label null in --json); "
    "default: the threshold the model calibrated at training time; 0 always names the top class"
)


def cmd_run(args: argparse.Namespace) -> int:
    from ..io.sources import check_source

    if args.max_frames is not None and args.max_frames < 1:
        raise UserError("--max-frames must be at least 1")
    check_source(args.source)  # a missing file is said at once, not after torch and the model have loaded
    from ..io.annotate import AnnotatedWriter, annotate
    from ..stream.pipeline import Pipeline, Prediction

    writer = AnnotatedWriter(args.out, 30.0) if args.out else None  # validated before the model loads
    pipe = Pipeline(args.source, args.model, spatial_weight=args.spatial_weight, **stream_options(args))
    untrained = pipe.announce(args.model)
    out = sys.stdout

    def started() -> None:
        log.info("source %s%s", pipe.source_name, f" at {pipe.source.fps:g} fps" if pipe.source and pipe.source.fps else "")
        if writer is not None and pipe.source is not None and pipe.source.fps:
            writer.fps = pipe.source.fps

    def show(pred: Prediction) -> None:
        if args.json:
            out.write(json.dumps(pred.to_dict(args.top_k)) + "\n")
        elif not args.quiet:
            mark = (
                ""
                if pred.ready
                else (
                    f"  ({pred.status}: spatial only while the temporal stream rebuilds)"
                    if pred.status in ("reconnected", "resized")
                    else "  (warming up: spatial only)"
                )
            )
            t = pred.top(1, "temporal")
            out.write(
                f"frame {pred.index:6d}  {pred.display_label:<14s} {pred.score:5.2f}   spatial {pred.top(1, 'spatial')[0][0]:<14s} "
                f"temporal {(t[0][0] if t else '-'):<14s} {pred.latency_ms:6.1f} ms{mark}{untrained if pred.index == 0 else ''}\n"
            )
        if writer is not None:
            writer.write(annotate(pred, args.top_k))

    try:
        interrupted = pipe.run_to_end(show, started)
        out.flush()
    finally:
        if writer is not None:
            writer.close()
    summary = pipe.summary()
    if writer is not None:
        summary["out"] = {"path": str(writer.path), "frames": writer.frames}
    _print_summary(summary, as_json=args.json)
    return 130 if interrupted else 0


def _print_summary(s: dict, as_json: bool) -> None:
    if as_json:
        sys.stderr.write(json.dumps({"summary": s}) + "\n")
        return
    lat = s["latency_ms"]
    lines = [
        f"summary: {s['frames']} frames from {s['source']} in {s['seconds']:.2f} s = {s['fps']:.1f} fps; engine {s['engine']}; model {s['model']}"
        + ("" if s["trained"] else " (UNTRAINED: predictions are meaningless)"),
        "  latency ms        p50      p95      p99",
    ]
    for stage in ("flow", "infer", "total"):
        p = lat[stage]
        lines.append(f"  {('capture->' + stage) if stage == 'total' else stage:<14s} {p['p50']:8.2f} {p['p95']:8.2f} {p['p99']:8.2f}")
    if s.get("reconnects"):
        lines.append(f"  source: reconnected {s['reconnects']} time(s), {s.get('source_down_s', 0):.1f} s without frames")
    d = s["dropped"]
    lines.append(f"  dropped frames: {sum(d.values())} (capture {d['capture']}, infer {d['infer']}, output {d['output']})")
    if "out" in s:
        lines.append(f"  annotated video: {s['out']['path']} ({s['out']['frames']} frames)")
    sys.stderr.write("\n".join(lines) + "\n")


def register(sub: argparse._SubParsersAction, commands: dict) -> None:
    run = sub.add_parser("run", help="recognise actions on a source, one prediction per frame")
    run.add_argument(
        "source",
        nargs="?",
        default="synthetic:demo",
        help="0 or /dev/video0 (camera), rtsp://..., http(s)://..., a video file, or synthetic:NAME (default: synthetic:demo)",
    )
    add_model_options(run)
    add_fusion_option(run)
    add_cut_option(run)
    run.add_argument("--spatial-weight", type=float, help="weight of the spatial stream for --fusion weighted (0..1)")
    run.add_argument(
        "--smoothing", type=int, default=8, help="average the fused scores over this many frames, each weighted by its top score (1 = off; default 8)"
    )
    run.add_argument("--min-score", type=float, metavar="S", help=MIN_SCORE_HELP)
    run.add_argument("--json", action="store_true", help="one JSON object per prediction on stdout; the summary goes to stderr")
    run.add_argument("--out", metavar="FILE", help="write the annotated video (labels + flow inset) to FILE (.mp4 or .avi)")
    run.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    run.add_argument(
        "--realtime", action="store_true", help="pace a file at its own fps (and drop frames like a camera) instead of reading it as fast as possible"
    )
    run.add_argument("--top-k", type=int, default=5, help="labels per prediction in --json and on the video")
    run.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a stream to open or deliver a frame")
    run.add_argument("-q", "--quiet", action="store_true", help="no per-frame lines, only the summary")
    commands["run"] = cmd_run
