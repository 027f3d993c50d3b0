"""`twostream gui [SOURCE]`: registered into the main CLI. Imports nothing heavy until the command runs."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from realtime import add_model_options, UserError


def register(subparsers: argparse._SubParsersAction, commands: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    p = subparsers.add_parser(
        "gui",
        help="the desktop app: live video, live optical flow, per-stream scores and stats",
        description="Open the twostream window on a source. Settings (source, model, engine, fusion, layout) are remembered between runs; see docs/gui.md.",
    )
    p.add_argument(
        "source",
        nargs="?",
        help="0 or /dev/video0 (camera), rtsp://..., http(s)://..., a video file, or synthetic:NAME (default: the last source used, else synthetic:demo)",
    )
    add_model_options(
        p, remembered=True, model_help="a checkpoint directory, 'default', or the name of a model you taught (default: the last one used, else default)"
    )
    p.add_argument(
        "--min-score",
        type=float,
        metavar="S",
        help="a frame whose fused top score is below S shows 'no known action' (default: the last threshold you set, "
        "else each model's own calibrated one; 0 always names the top class)",
    )
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a stream to open or deliver a frame")
    p.add_argument("--settings", metavar="FILE", help="read and write settings in this .ini file instead of the per-user one")
    commands["gui"] = cmd_gui


def cmd_gui(args: argparse.Namespace) -> int:
    min_score = getattr(args, "min_score", None)
    if min_score is not None and not 0.0 <= min_score <= 1.0:
        raise UserError(f"--min-score {min_score:g} is outside 0..1 (0: always name the top class)")
    try:
        from PyQt6 import QtWidgets  # noqa: F401
        import pyqtgraph  # noqa: F401
    except ImportError as e:
        raise UserError(f"the desktop app needs PyQt6 and pyqtgraph ({e.name or 'PyQt6'} is missing): pip install 'twostream[gui]'") from None
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")):
        raise UserError(
            "no display to open a window on (neither DISPLAY nor WAYLAND_DISPLAY is set); "
            "run it in a desktop session, or headless with QT_QPA_PLATFORM=offscreen"
        )
    from realtime import ENGINES

    if args.engine is not None and args.engine not in ENGINES:
        raise UserError(f"unknown engine '{args.engine}': choose one of {', '.join(ENGINES)}")
    from .app import run

    return run(args.source, args.model, args.engine, args.device, args.timeout, args.settings, min_score)
