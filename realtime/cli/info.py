"""`twostream info`: versions, cameras, CUDA/TensorRT, video back ends, and the engine auto would pick."""

from __future__ import annotations

import argparse
import json
import sys


def cmd_info(args: argparse.Namespace) -> int:
    from ..info import gather_info, format_info

    info = gather_info(probe_cameras=not args.no_cameras)
    sys.stdout.write(json.dumps(info, indent=2) + "\n" if args.json else format_info(info))
    return 0


def register(sub: argparse._SubParsersAction, commands: dict) -> None:
    info = sub.add_parser("info", help="versions, cameras, CUDA/TensorRT, video back ends, and the engine auto would pick")
    info.add_argument("--json", action="store_true")
    info.add_argument("--no-cameras", action="store_true", help="skip probing /dev/video*")
    commands["info"] = cmd_info
