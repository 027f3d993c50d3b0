"""The option blocks the commands share: --model/--engine/--device/--precision (one block, one help text,
one meaning of --model everywhere: resolved by `realtime.nets.models_store.resolve_model`), --fusion,
and what `run` and `serve` hand a pipeline."""

from __future__ import annotations

import argparse
from typing import Any

from ..options import ENGINES, FUSION_MODES, PRECISIONS
from ..stream.cuts import CUT_THRESHOLD

MODEL_HELP = "a checkpoint directory, 'default' (the shipped model, or $TWOSTREAM_MODEL), or the name of a model you taught (train --from); default: default"


def add_model_options(p: argparse.ArgumentParser | argparse._ArgumentGroup, *, model_help: str = MODEL_HELP, remembered: bool = False) -> None:
    """--model, --engine, --device, --precision. `remembered` (the GUI): no defaults here, the last ones used apply."""
    last = "the last one used, else " if remembered else ""
    p.add_argument("--model", help=model_help)
    p.add_argument(
        "--engine", default=None if remembered else "auto", choices=ENGINES, help=f"inference back end (default: {last}auto, the fastest that works here)"
    )
    p.add_argument("--device", default=None if remembered else "auto", help=f"auto, cpu, cuda or cuda:N (default: {last}auto)")
    if not remembered:
        p.add_argument("--precision", choices=PRECISIONS, default="auto", help="fp16 needs CUDA (default: fp16 on CUDA, fp32 on CPU)")


def add_fusion_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fusion", choices=FUSION_MODES, help="score fusion (default: the model's)")


def add_cut_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cut-threshold",
        type=float,
        default=CUT_THRESHOLD,
        metavar="D",
        help=f"a frame whose colour histogram is this far from the previous one's (0..1) starts a new shot: smoothing restarts and "
        f"the spatial stream leads for the first frames (default {CUT_THRESHOLD}; 1 = off)",
    )


def half(args: argparse.Namespace) -> bool | None:
    """--precision as the engines take it: None (auto), True (fp16), False (fp32)."""
    return None if args.precision == "auto" else args.precision == "fp16"


def stream_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options `run` and `serve` share, as Pipeline and MultiPipeline take them."""
    return dict(
        engine=args.engine,
        device=args.device,
        half=half(args),
        fusion=args.fusion,
        smoothing=args.smoothing,
        realtime=args.realtime,
        max_frames=args.max_frames,
        source_timeout=args.timeout,
        min_score=args.min_score,
        cut_threshold=args.cut_threshold,
    )
