"""The `twostream` command line. User errors print one line and exit 2; nothing prints a traceback for them."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Callable

from .errors import UserError
from .options import add_fusion_option, add_model_options, stream_options

log = logging.getLogger("twostream")
EXIT_USER_ERROR = 2


def cmd_run(args: argparse.Namespace) -> int:
    from .io.annotate import AnnotatedWriter, annotate
    from .stream.pipeline import Pipeline, Prediction

    if args.max_frames is not None and args.max_frames < 1:
        raise UserError("--max-frames must be at least 1")
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


def cmd_info(args: argparse.Namespace) -> int:
    from .info import gather_info, format_info

    info = gather_info(probe_cameras=not args.no_cameras)
    sys.stdout.write(json.dumps(info, indent=2) + "\n" if args.json else format_info(info))
    return 0


MIN_SCORE_HELP = (
    "a frame whose fused top score is below S is 'no known action' (label null in --json); "
    "default: the threshold the model calibrated at training time; 0 always names the top class"
)

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"run": cmd_run, "info": cmd_info}


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="twostream", description="Live two-stream action recognition on a camera, stream or file.")
    parser.add_argument("--version", action="version", version=f"twostream {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="more log lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="recognise actions on a source, one prediction per frame")
    run.add_argument(
        "source",
        nargs="?",
        default="synthetic:demo",
        help="0 or /dev/video0 (camera), rtsp://..., http(s)://..., a video file, or synthetic:NAME (default: synthetic:demo)",
    )
    add_model_options(run)
    add_fusion_option(run)
    run.add_argument("--spatial-weight", type=float, help="weight of the spatial stream for --fusion weighted (0..1)")
    run.add_argument("--smoothing", type=int, default=8, help="average the fused scores over this many frames (1 = off; default 8)")
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

    info = sub.add_parser("info", help="versions, cameras, CUDA/TensorRT, video back ends, and the engine auto would pick")
    info.add_argument("--json", action="store_true")
    info.add_argument("--no-cameras", action="store_true", help="skip probing /dev/video*")

    for register in _EXTRA_COMMANDS:
        register(sub, COMMANDS)
    return parser


# The trainer and the GUI add their sub-commands through a `register(subparsers, commands)` function;
# their modules import nothing heavy at load time, so `twostream --help` stays fast.
SUBCOMMAND_MODULES = (
    "realtime.train.cli",
    "realtime.nets.export",
    "realtime.io.record",
    "realtime.stream.multistream",
    "realtime.bench",
    "realtime.nets.quantize",
)
ENTRY_POINTS = "twostream.commands"  # other packages add commands here: the desktop app (gui/, pyproject.toml) registers `gui`


def _register_optional() -> list[Callable]:
    import importlib

    from importlib.metadata import entry_points

    out = []
    for name in SUBCOMMAND_MODULES:
        try:
            out.append(importlib.import_module(name).register)
        except ModuleNotFoundError as e:
            if e.name is None or not name.startswith(e.name):  # a real bug inside the module: let it show
                raise
    for ep in sorted(entry_points(group=ENTRY_POINTS), key=lambda e: e.name):
        try:
            out.append(ep.load())
        except ModuleNotFoundError as e:  # registered by a package that is no longer there
            if e.name is None or not ep.value.startswith(e.name):
                raise
    return out


_EXTRA_COMMANDS = _register_optional()


def main(argv: list[str] | None = None) -> int:
    from .logs import setup_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if not args.command:
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return COMMANDS[args.command](args)
    except UserError as e:
        from .logs import scrub

        sys.stderr.write(f"twostream {args.command}: error: {scrub(str(e))}\n")
        return EXIT_USER_ERROR
    except BrokenPipeError:  # `twostream run --json | head`: the reader left; not an error
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
