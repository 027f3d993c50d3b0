"""`twostream export`: both nets as ONNX with a dynamic batch axis, plus a JSON sidecar, for serving elsewhere.

    twostream export --model trained/default --onnx out/
    -> out/spatial.onnx  out/temporal.onnx  out/twostream.json

Each graph ends in a softmax, so it outputs the same class scores as the runtime's engines, ready
for the fusion the sidecar describes. The inputs are the normalised net inputs that
`realtime.stream.preprocess` builds; the sidecar says how, with every fact from the checkpoint that a
server needs to feed and fuse the nets (labels, normalisation, flow settings, L, fusion).

Exporter: torch.onnx's TorchScript-based path (`dynamo=False`), which needs only the `onnx`
package; `--exporter dynamo` uses torch.export instead and needs `onnxscript` too. When ONNX
Runtime is installed, the export is checked against torch (batch 1 and 3) before it is reported.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import TwoStreamModel
from ..errors import UserError
from ..options import ONNX_DYNAMO_MIN_OPSET, ONNX_EXPORTERS, ONNX_OPSET, ONNX_SIDECAR, ONNX_TOLERANCE

log = logging.getLogger("twostream")
FORMAT = "twostream-onnx"
VERSION = 1
SIDECAR, OPSET, DYNAMO_MIN_OPSET, TOLERANCE, EXPORTERS = ONNX_SIDECAR, ONNX_OPSET, ONNX_DYNAMO_MIN_OPSET, ONNX_TOLERANCE, ONNX_EXPORTERS
VERIFY_BATCHES = (1, 3)
INPUT_NAMES = {"spatial": "rgb", "temporal": "flow"}
OUTPUT_NAME = "scores"


class _Scores(nn.Module):
    """A net followed by softmax: the graph outputs what `Engine.__call__` returns."""

    def __init__(self, net: nn.Module):
        from .familiarity import WithFamiliarity

        super().__init__()
        self.net = net
        self.familiarity = isinstance(net, WithFamiliarity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.familiarity:  # class scores, then the familiarity column as it is
            out = self.net(x)
            return torch.cat([torch.softmax(out[:, :-1], dim=-1), out[:, -1:]], 1)
        return torch.softmax(self.net(x), dim=-1)


class _FixedAdaptivePool2d(nn.Module):
    """Adaptive max/avg pooling for one known input size, written as slices and reductions.

    ONNX has no adaptive pooling; both torch exporters refuse it when the input side is not a
    multiple of the output side (CNN-M-2048 below 224 px, e.g. 5x5 to 6x6). The input size is fixed at
    export (only the batch axis is dynamic), so the bins are constants.
    """

    def __init__(self, in_size: tuple[int, int], out_size: tuple[int, int], kind: str):
        super().__init__()
        self.kind = kind
        self.rows = [(math.floor(i * in_size[0] / out_size[0]), math.ceil((i + 1) * in_size[0] / out_size[0])) for i in range(out_size[0])]
        self.cols = [(math.floor(j * in_size[1] / out_size[1]), math.ceil((j + 1) * in_size[1] / out_size[1])) for j in range(out_size[1])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduce = (lambda t: t.amax(dim=(-2, -1))) if self.kind == "max" else (lambda t: t.mean(dim=(-2, -1)))
        rows = [torch.stack([reduce(x[..., r0:r1, c0:c1]) for c0, c1 in self.cols], dim=-1) for r0, r1 in self.rows]
        return torch.stack(rows, dim=-2)


def _pair(size: int | tuple[int | None, int | None] | None, like: tuple[int, int]) -> tuple[int, int]:
    a, b = (size, size) if isinstance(size, int) or size is None else size
    return (like[0] if a is None else a, like[1] if b is None else b)


def exportable(net: nn.Module, example: torch.Tensor) -> nn.Module:
    """A copy of `net` (eval) that ONNX can express for inputs shaped like `example`, same outputs."""
    net = copy.deepcopy(net).eval().float()
    seen: dict[str, tuple[int, int]] = {}
    pools = {name: m for name, m in net.named_modules() if isinstance(m, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d))}
    if not pools:
        return net
    hooks = [m.register_forward_pre_hook(lambda _m, args, name=name: seen.__setitem__(name, tuple(args[0].shape[-2:]))) for name, m in pools.items()]
    with torch.no_grad():
        net(example)
    for h in hooks:
        h.remove()
    for name, m in pools.items():
        if name not in seen:
            continue
        in_size = seen[name]
        out_size = _pair(m.output_size, in_size)
        if in_size[0] % out_size[0] == 0 and in_size[1] % out_size[1] == 0:
            continue  # the exporters handle this case natively
        parent_name, _, attr = name.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        setattr(parent, attr, _FixedAdaptivePool2d(in_size, out_size, "max" if isinstance(m, nn.AdaptiveMaxPool2d) else "avg"))
    return net


def _input_channels(net: nn.Module) -> int:
    return next(m for m in net.modules() if isinstance(m, nn.Conv2d)).in_channels


def _export_one(net: nn.Module, example: torch.Tensor, path: Path, input_name: str, exporter: str, opset: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    quiet = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # torch marks the TorchScript-based exporter deprecated; it is the one that needs no onnxscript
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            if exporter == "torchscript":
                torch.onnx.export(
                    net,
                    (example,),
                    str(tmp),
                    dynamo=False,
                    opset_version=opset,
                    do_constant_folding=True,
                    input_names=[input_name],
                    output_names=[OUTPUT_NAME],
                    dynamic_axes={input_name: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                )
            else:
                program = torch.onnx.export(
                    net,
                    (example,),
                    dynamo=True,
                    opset_version=opset,
                    input_names=[input_name],
                    output_names=[OUTPUT_NAME],
                    dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
                    verbose=False,
                )
                if program is None:
                    raise RuntimeError("torch.onnx.export (dynamo) returned no program")
                program.save(str(tmp))
        tmp.replace(path)
    except OSError:
        raise
    except Exception as e:  # an operator the exporter cannot express: say which file and what, not a traceback
        raise UserError(
            f"{path.name}: torch.onnx ({exporter}) cannot export this net: {str(e).strip().splitlines()[0][:200]}; "
            f"try --exporter {'dynamo' if exporter == 'torchscript' else 'torchscript'}"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
        for q, level in zip(quiet, levels):
            q.setLevel(level)


def resolve_opset(exporter: str, opset: int | None) -> int:
    if opset is None:
        return DYNAMO_MIN_OPSET if exporter == "dynamo" else OPSET
    if opset < 13:
        raise UserError(f"--opset {opset} is too old: use 13 or newer (default {OPSET})")
    if exporter == "dynamo" and opset < DYNAMO_MIN_OPSET:
        raise UserError(f"--exporter dynamo writes opset {DYNAMO_MIN_OPSET} or newer, not {opset}; use --exporter torchscript for opset {opset}")
    return opset


def _file_opset(path: Path) -> int:
    """The default-domain opset a written .onnx file declares."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def check_exporter(exporter: str) -> None:
    if exporter not in EXPORTERS:
        raise UserError(f"unknown exporter '{exporter}': choose one of {', '.join(EXPORTERS)}")
    try:
        import onnx  # noqa: F401  (torch.onnx writes the file through it)
    except ImportError:
        raise UserError("ONNX export needs the 'onnx' package, which is not installed: pip install 'twostream[export]'") from None
    if exporter == "dynamo":
        try:
            import onnxscript  # noqa: F401
        except ImportError:
            raise UserError(
                "--exporter dynamo needs the 'onnxscript' package, which is not installed: pip install onnxscript, or use --exporter torchscript"
            ) from None


def verify(path: Path, net: nn.Module, channels: int, size: int, batches: tuple[int, ...] = VERIFY_BATCHES, seed: int = 0) -> float:
    """Max abs difference of softmax scores between ONNX Runtime running `path` and torch running `net`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for b in batches:
        x = torch.randn(b, channels, size, size, generator=gen)
        with torch.no_grad():
            expected = torch.softmax(net(x).float(), -1).numpy()
        got = session.run(None, {name: x.numpy()})[0]
        if got.shape != expected.shape:
            raise UserError(f"{path}: ONNX Runtime gives shape {got.shape} for batch {b}, torch {expected.shape}; the export is broken")
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def sidecar(model: TwoStreamModel) -> dict[str, Any]:
    """What a server needs besides the two graphs: how to build their inputs and fuse their outputs."""
    cfg = model.config
    s, n = cfg.input_size, cfg.clip_length
    f = cfg.flow
    nets = {}
    for role, arch, chans in (("spatial", cfg.spatial_arch, 3), ("temporal", cfg.temporal_arch, cfg.temporal_channels)):
        nets[role] = {
            "file": f"{role}.onnx",
            "arch": arch,
            "input": {"name": INPUT_NAMES[role], "shape": ["batch", chans, s, s], "dtype": "float32", "layout": "NCHW"},
            "output": {
                "name": OUTPUT_NAME,
                "shape": ["batch", cfg.num_classes],
                "dtype": "float32",
                "meaning": "softmax class scores, in the order of 'labels'",
            },
        }
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": cfg.provenance.get("name"),
        "trained": cfg.trained,
        "provenance": cfg.provenance,
        "metrics": cfg.metrics,
        "labels": list(cfg.labels),
        "input_size": s,
        "clip_length": n,
        "temporal_channels": cfg.temporal_channels,
        "rgb_mean": list(cfg.rgb_mean),
        "rgb_std": list(cfg.rgb_std),
        "flow": f.to_dict(),
        "flow_scale": cfg.flow_scale,
        "subtract_mean_flow": cfg.subtract_mean_flow,
        "fusion": {"mode": cfg.fusion.mode, "spatial_weight": cfg.fusion.spatial_weight, "svm_weight": cfg.fusion.svm_weight, "svm_bias": cfg.fusion.svm_bias},
        "nets": nets,
        "preprocessing": {
            "frame": f"resize each frame to the flow working size {f.width}x{f.height} (cv2.INTER_AREA), then take the centre {s}x{s} crop",
            "spatial": "newest frame's crop in RGB order, x / 255, minus rgb_mean, divided by rgb_std (per channel)",
            "temporal": (
                f"the last L={n} flow fields between consecutive working-size grey frames, made with 'flow' "
                f"(OpenCV {f.algorithm}{'/' + f.preset if f.algorithm == 'dis' else ''}), clipped to +-{f.bound:g} px, "
                "quantised to uint8 and dequantised; centre crop; channels x0, y0, x1, y1, ... oldest first; "
                "each channel's mean subtracted when subtract_mean_flow; divided by flow_scale"
            ),
            "fusion": (
                "avg: (spatial + temporal) / 2; weighted: w * spatial + (1 - w) * temporal with w = spatial_weight; "
                "svm: softmax(W @ [spatial / |spatial|, temporal / |temporal|] + b) with W = svm_weight, b = svm_bias; "
                "until L flow fields exist (start of a stream, after a gap), the spatial scores alone"
            ),
        },
    }


def export_onnx(model: TwoStreamModel, out_dir: str | Path, exporter: str = "torchscript", opset: int | None = None, check: bool = True) -> dict[str, Any]:
    """Write OUT/spatial.onnx, OUT/temporal.onnx and OUT/twostream.json; returns the sidecar written.

    `opset` None: 17 for the TorchScript-based exporter, 18 for dynamo. With `check` and ONNX
    Runtime installed, both files are run against torch and refused when their softmax scores
    differ by more than TOLERANCE.
    """
    check_exporter(exporter)
    opset = resolve_opset(exporter, opset)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory; give --onnx a directory to write the export into")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{out}: cannot create the output directory ({e.strerror})") from None
    cfg = model.config
    s = cfg.input_size
    meta = sidecar(model)
    try:
        import onnxruntime
    except ImportError:
        onnxruntime = None
        if check:
            log.warning("onnxruntime is not installed: the export is not checked against torch (pip install 'twostream[export]')")
    diffs: dict[str, float] = {}
    for role, net in (("spatial", model.spatial), ("temporal", model.temporal)):
        chans = _input_channels(net)
        example = torch.zeros(2, chans, s, s)  # batch 2: a batch of 1 could be traced as a constant
        wrapped = _Scores(exportable(net, example))
        path = out / meta["nets"][role]["file"]
        try:
            _export_one(wrapped, example, path, INPUT_NAMES[role], exporter, opset)
        except OSError as e:
            raise UserError(f"{path}: cannot write ({e.strerror})") from None
        if check and onnxruntime is not None:
            diffs[role] = verify(path, net.eval(), chans, s)
            if diffs[role] > TOLERANCE:
                path.unlink()
                raise UserError(
                    f"{path}: ONNX Runtime's scores differ from torch's by {diffs[role]:.2e} (> {TOLERANCE:g}); "
                    "removed. Try the other --exporter, or report this model's architecture"
                )
        meta["nets"][role]["bytes"] = path.stat().st_size
    meta["export"] = {
        "exporter": f"torch.onnx ({'dynamo=True, torch.export' if exporter == 'dynamo' else 'dynamo=False, TorchScript-based'})",
        "opset": _file_opset(out / meta["nets"]["spatial"]["file"]),
        "torch": torch.__version__,
        "checked": (
            {"onnxruntime": onnxruntime.__version__, "batches": list(VERIFY_BATCHES), "tolerance": TOLERANCE, "max_abs_diff": diffs} if diffs else None
        ),
    }
    tmp = out / (SIDECAR + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    tmp.replace(out / SIDECAR)
    return meta
