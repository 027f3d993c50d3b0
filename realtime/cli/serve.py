"""`twostream serve SOURCE...`: several sources in one process, both nets batched across them (realtime.stream.multistream)."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import UserError
from .options import add_cut_option, add_fusion_option, add_model_options, stream_options


def cmd_serve(args: argparse.Namespace) -> int:
    if args.max_frames is not None and args.max_frames < 1:
        raise UserError("--max-frames must be at least 1")
    if not args.keep_going:  # a missing file refuses the start: say so before torch and the model load
        from ..io.sources import check_source

        for number, source in enumerate(args.sources):
            try:
                check_source(source)
            except UserError as e:
                raise UserError(f"stream {number}: {e}") from None
    from ..stream.multistream import MultiPipeline, StreamPrediction

    mp = MultiPipeline(args.sources, args.model, keep_going=args.keep_going, **stream_options(args))
    mp.announce(args.model, f", {len(mp.streams)} sources")
    out = sys.stdout

    def show(pred: StreamPrediction) -> None:
        if args.json:
            out.write(json.dumps(pred.to_dict(args.top_k)) + "\n")
        elif not args.quiet:
            mark = "" if pred.ready else "  (spatial only)"
            out.write(f"stream {pred.stream:2d} frame {pred.index:6d}  {pred.display_label:<14s} {pred.score:5.2f}  {pred.latency_ms:6.1f} ms{mark}\n")

    interrupted = mp.run_to_end(show)
    out.flush()
    summary = mp.summary()
    if args.json:
        sys.stderr.write(json.dumps({"summary": summary}) + "\n")
    else:
        sys.stderr.write(format_summary(summary))
    if interrupted:
        return 130
    return 1 if summary["failed"] else 0


def format_summary(s: dict) -> str:
    lines = [
        f"summary: {s['frames']} predictions from {len(s['streams'])} streams, {s['fps_total']:.1f} fps in all; "
        f"{s['batches']} batches of {s['batch_size']['mean']:.2f} streams on average (max {s['batch_size']['max']}), "
        f"batch compute p50 {s['batch_compute_ms']['p50']:.1f} ms; engine {s['engine']}; model {s['model']}"
        + ("" if s["trained"] else " (UNTRAINED: predictions are meaningless)"),
        "  stream  status     frames    fps   latency p50 / p95 / p99 ms   dropped (capture/infer/output)  source",
    ]
    for st in s["streams"]:
        lat = st["latency_ms"]["total"]
        d = st["dropped"]
        lines.append(
            f"  {st['stream']:6d}  {st['status']:<9s} {st['frames']:7d} {st['fps']:6.1f}   "
            f"{lat['p50']:7.1f} {lat['p95']:7.1f} {lat['p99']:7.1f}          {sum(d.values()):6d} ({d['capture']}/{d['infer']}/{d['output']})"
            f"{'':14s}{st['source']}"
        )
        if st.get("error"):
            lines.append(f"          error: {st['error']}")
    return "\n".join(lines) + "\n"


def register(sub: argparse._SubParsersAction, commands: dict) -> None:
    p = sub.add_parser("serve", help="serve several sources in one process, batching both nets across them")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="one or more of: 0 or /dev/videoN, rtsp://..., http(s)://..., a video file, synthetic:NAME")
    add_model_options(p)
    add_fusion_option(p)
    add_cut_option(p)
    p.add_argument(
        "--smoothing",
        type=int,
        default=8,
        help="average the fused scores over this many frames per stream, each weighted by its top score (1 = off; default 8)",
    )
    p.add_argument(
        "--min-score",
        type=float,
        metavar="S",
        help="a prediction whose fused top score is below S is 'no known action' (default: the model's calibrated threshold; 0: never)",
    )
    p.add_argument("--max-frames", type=int, metavar="N", help="stop each stream after N frames")
    p.add_argument("--realtime", action="store_true", help="pace files at their own fps (and drop frames like a camera)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a stream to open or deliver a frame")
    p.add_argument("--keep-going", action="store_true", help="serve the sources that open when some cannot be opened (each reported)")
    p.add_argument("--json", action="store_true", help="one JSON object per prediction on stdout (with its stream); the summary goes to stderr")
    p.add_argument("--top-k", type=int, default=5, help="labels per prediction in --json")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-prediction lines, only the summary")
    commands["serve"] = cmd_serve
