"""`twostream export --onnx DIR`: both nets as ONNX (dynamic batch) plus a JSON sidecar (realtime.nets.export)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..errors import UserError
from ..options import ONNX_DYNAMO_MIN_OPSET, ONNX_EXPORTERS, ONNX_OPSET, ONNX_SIDECAR, ONNX_TOLERANCE
from .options import MODEL_HELP

log = logging.getLogger("twostream")


def cmd_export(args: argparse.Namespace) -> int:
    from ..nets.export import check_exporter, export_onnx, resolve_opset  # torch: only when exporting, so the CLI starts fast
    from ..nets.models_store import resolve_model

    check_exporter(args.exporter)  # the cheap checks first, before a model loads
    resolve_opset(args.exporter, args.opset)
    if Path(args.onnx).exists() and not Path(args.onnx).is_dir():
        raise UserError(
            f"{args.onnx}: exists and is not a directory; give --onnx a directory to write the export into"
        )  # before a model loads: a missing package is the cheapest thing to report
    model = resolve_model(args.model)
    cfg = model.config
    name = cfg.provenance.get("name", args.model)
    if not cfg.trained:
        log.warning("this model is UNTRAINED (random weights): its export is good for testing a server, not for predictions")
    meta = export_onnx(model, args.onnx, exporter=args.exporter, opset=args.opset, check=not args.no_check)
    out = Path(args.onnx)
    sizes = ", ".join(f"{out / n['file']} ({n['bytes'] / 1e6:.1f} MB)" for n in meta["nets"].values())
    checked = meta["export"]["checked"]
    check_line = (
        f"ONNX Runtime {checked['onnxruntime']} matches torch within {max(checked['max_abs_diff'].values()):.1e} "
        f"(max abs diff of softmax scores, batch {' and '.join(map(str, checked['batches']))}; bound {ONNX_TOLERANCE:g})"
        if checked
        else "not checked against torch (onnxruntime not installed, or --no-check)"
    )
    sys.stderr.write(
        f"exported {name}: {sizes}, {out / ONNX_SIDECAR}; batch axis dynamic, input {cfg.input_size} px, opset {meta['export']['opset']}; {check_line}\n"
    )
    return 0


def register(sub: argparse._SubParsersAction, commands: dict) -> None:
    p = sub.add_parser("export", help="write both nets as ONNX (dynamic batch) plus a JSON sidecar, for Triton / DeepStream / trtexec")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--onnx", required=True, metavar="OUT_DIR", help="directory to write spatial.onnx, temporal.onnx and twostream.json into")
    p.add_argument("--opset", type=int, help=f"ONNX opset (default {ONNX_OPSET}; {ONNX_DYNAMO_MIN_OPSET} with --exporter dynamo)")
    p.add_argument(
        "--exporter",
        choices=ONNX_EXPORTERS,
        default="torchscript",
        help="torch.onnx path: torchscript (dynamo=False; needs onnx) or dynamo (torch.export; needs onnxscript too)",
    )
    p.add_argument("--no-check", action="store_true", help="skip running the files in ONNX Runtime against torch")
    commands["export"] = cmd_export
