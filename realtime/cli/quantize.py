"""`twostream quantize --model M --data D`: int8 nets for the CPU, calibrated and checked (realtime.nets.quantize)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from .options import MODEL_HELP


def cmd_quantize(args: argparse.Namespace) -> int:
    from ..nets.quantize import INT8_DIR, MAX_LOSS, VARIANTS, quantize

    meta = quantize(args.model, args.data, args.cache, args.clips, args.samples, variant={"auto": None, "both": "int8", "temporal": "int8_temporal"}[args.nets])
    dep, h = meta["held_out"]["deployed_top1"], meta["held_out"]
    nr, nk = h["frames_named_right"], h["frames_no_known_action"]
    figures = "; ".join(f"{v}: deployed top-1 {dep[v]:.3f}, frames named and right {nr[v]:.1%}, no known action {nk[v]:.1%}" for v in ("fp32", *VARIANTS))
    nets = " and ".join(meta["nets"])
    sys.stderr.write(
        f"int8 {nets} net(s) written to {model_path_str(args.model)}/{INT8_DIR}/ in {meta['seconds']:.0f} s; held-out {h['clips']} clips: "
        f"{figures}; "
        + (
            f"auto runs the {nets} net(s) in int8 on a CPU\n"
            if meta["auto_uses_it"]
            else f"auto will NOT use them (every variant loses more than {MAX_LOSS:.0%}); --engine onnxruntime-int8 still runs them\n"
        )
    )
    from ..train.card import add_int8_to_card

    add_int8_to_card(Path(model_path_str(args.model)), meta, " ".join(shlex.quote(a) for a in ["twostream", *sys.argv[1:]]))
    print(json.dumps(meta))
    return 0


def model_path_str(arg: str) -> str:
    from ..nets.models_store import model_path

    return str(model_path(arg))


def register(sub: argparse._SubParsersAction, commands: dict) -> None:
    p = sub.add_parser("quantize", help="int8 nets for the CPU (ONNX Runtime), calibrated on the training clips, checked on held-out ones")
    p.add_argument("--model", default="default", help=MODEL_HELP)
    p.add_argument("--data", required=True, help="the dataset the model was trained on (a folder per class or UCF-style lists)")
    p.add_argument("--cache", help="flow cache directory (default DATA/.twostream-cache)")
    p.add_argument("--clips", type=int, default=48, help="training clips to calibrate on (default 48)")
    p.add_argument("--samples", type=int, default=10, help="positions per held-out clip for the accuracy check (default 10)")
    p.add_argument(
        "--nets",
        choices=("auto", "both", "temporal"),
        default="auto",
        help="which nets to keep in int8 (default auto: both if that keeps the accuracy, else the temporal one if that does)",
    )
    commands["quantize"] = cmd_quantize
