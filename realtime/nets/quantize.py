"""int8 nets for the CPU: ONNX Runtime static quantisation, calibrated on the model's own training clips.

    twostream quantize --model trained/default --data data/procedural
    twostream run clip.mp4 --engine onnxruntime-int8      # auto picks it on a CPU when it kept the accuracy

Both nets are exported as the `onnxruntime` engine exports them (graphs ending in the softmax, the
spatial one with its familiarity column) and quantised: convolutions to int8 (QDQ, per-channel int8
weights, uint8 activations, MinMax ranges), the heads and the familiarity similarity left in fp32.
The calibration inputs are the nets' real inputs: frames and flow stacks of `clips` training clips,
built exactly as the pipeline builds them (the training flow cache). Then both variants score the
held-out clips with the paper's protocol and the model's own fusion; the files go into the checkpoint
directory (`int8/spatial.onnx`, `int8/temporal.onnx`, `int8/int8.json` with those figures and a
fingerprint of the weights, so a retrained model never runs stale int8 nets).

`auto` picks `onnxruntime-int8` on a CPU only when, on those held-out clips, both the deployed top-1 and the
share of frames `run` names rightly (through the "no known action" gates) are within `MAX_LOSS` of fp32's.
ONNX files are data (protobuf): loading them runs no code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import UserError

if TYPE_CHECKING:
    from ..train.cache import FlowCache
    from ..train.datasets import Clip
    from .checkpoint import ModelConfig, TwoStreamModel

Net = Callable[[np.ndarray], np.ndarray]  # a graph in an InferenceSession: inputs -> its output

log = logging.getLogger("twostream")
INT8_DIR = "int8"
META_FILE = "int8.json"
MAX_LOSS = 0.01  # deployed top-1 the int8 nets may lose against fp32 on the held-out clips for auto to pick them
FORMAT = 1


def weights_fingerprint(directory: Path) -> str:
    from .checkpoint import WEIGHTS_FILE

    h = hashlib.sha256()
    with open(directory / WEIGHTS_FILE, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


def load_int8(directory: Path) -> dict | None:
    """The checkpoint's int8 nets ({"spatial": bytes, "temporal": bytes, "meta": dict}) when they were made
    from these very weights; None when there are none, or they are stale or unreadable (logged)."""
    folder = directory / INT8_DIR
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError("unknown format")
        if meta.get("weights") != weights_fingerprint(directory):
            log.info("%s: its int8 nets were made from other weights (re-run twostream quantize); not used", directory)
            return None
        nets = meta.get("nets", ["spatial", "temporal"])
        return {**{role: (folder / f"{role}.onnx").read_bytes() for role in nets}, "meta": meta}
    except (OSError, ValueError) as e:
        log.warning("%s: int8 nets unreadable (%s); not used", directory, e)
        return None


VARIANTS = {"int8": ("spatial", "temporal"), "int8_temporal": ("temporal",)}  # which nets run in int8, most first


def int8_keeps_accuracy(meta: dict | None, variant: str | None = None) -> bool:
    """Both what `evaluate` reports (clip top-1 with the model's fusion) and what `run` shows frame by frame
    (frames named and right through the model's "no known action" gates) within MAX_LOSS of fp32, for
    `variant` (default: the one the metadata chose)."""
    if not meta:
        return False
    variant = variant or meta.get("variant") or "int8"
    held = meta.get("held_out", {})
    for key in ("deployed_top1", "frames_named_right"):
        fp32, int8 = held.get(key, {}).get("fp32"), held.get(key, {}).get(variant)
        if not (isinstance(fp32, (int, float)) and isinstance(int8, (int, float)) and int8 >= fp32 - MAX_LOSS):
            return False
    return True


def _graph(model: TwoStreamModel, role: str, path: Path) -> Path:
    """The fp32 graph the onnxruntime engine runs: softmax scores (and the familiarity column)."""
    import torch

    from .export import INPUT_NAMES, OPSET, _export_one, _Scores, exportable
    from .familiarity import WithFamiliarity

    cfg = model.config
    net: torch.nn.Module = model.spatial if role == "spatial" else model.temporal
    if role == "spatial" and model.prototypes is not None:
        net = WithFamiliarity(model.spatial, model.prototypes)
    chans = 3 if role == "spatial" else cfg.temporal_channels
    example = torch.zeros(2, chans, cfg.input_size, cfg.input_size)
    with torch.inference_mode(False), torch.no_grad():
        _export_one(_Scores(exportable(net, example)), example, path, INPUT_NAMES[role], "torchscript", OPSET)
    return path


def _quantise(fp32: Path, out: Path, inputs: np.ndarray, input_name: str) -> None:
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.starts = iter(range(0, len(inputs), 8))

        def get_next(self) -> dict | None:
            i = next(self.starts, None)
            return None if i is None else {input_name: inputs[i : i + 8]}

    pre = out.with_name(out.stem + "-pre.onnx")
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    quantize_static(
        str(pre),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        op_types_to_quantize=["Conv"],
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    pre.unlink(missing_ok=True)


def _session(data: bytes | str) -> Net:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, (os.cpu_count() or 2) // 2)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


def _position_scores(run: Net, clips: list[Clip], root: Path, cache: FlowCache, cfg: ModelConfig, role: str, samples: int) -> list[np.ndarray]:
    """Per clip, the graph's output at each test position (class scores, and the familiarity column for the spatial net)."""
    from ..train.data import stream_input_batches

    return [run(stream_input_batches(c.key(root), cache, cfg, role, samples, False)) for c in clips]


def _frames_named_right(cfg: ModelConfig, spatial: list[np.ndarray], temporal: list[np.ndarray], labels: np.ndarray) -> tuple[float, float]:
    """Share of held-out positions that `run` would name rightly, and share it would call no known action
    (the model's fusion, threshold and familiarity gate; positions of the two streams paired in order)."""
    from ..stream.fusion import Fusion

    fusion, n = Fusion(cfg.fusion), cfg.num_classes
    right = unknown = total = 0
    for s, t, y in zip(spatial, temporal, labels):
        k = min(len(s), len(t))
        fused = fusion(s[:k, :n], t[:k])
        known = fused.max(1) >= fusion.min_score
        if s.shape[1] > n:
            known &= s[:k, n] >= fusion.min_familiarity
        right += int((known & (fused.argmax(1) == y)).sum())
        unknown += int((~known).sum())
        total += k
    return round(right / max(total, 1), 4), round(unknown / max(total, 1), 4)


def quantize(
    model_dir: str | Path, data: str | Path, cache: str | Path | None = None, clips: int = 48, samples: int = 10, seed: int = 0, variant: str | None = None
) -> dict:
    """Write int8 nets into `model_dir` (see the module doc); returns the metadata written.

    `variant` ("int8": both nets, "int8_temporal": the temporal net only) forces which nets are kept in
    int8; by default the one with the most int8 nets that keeps the accuracy (auto runs it), else both."""
    if variant is not None and variant not in VARIANTS:
        raise UserError(f"unknown int8 variant '{variant}': one of {', '.join(VARIANTS)}")
    forced = variant
    try:
        import onnxruntime  # noqa: F401
        from onnxruntime import quantization  # noqa: F401
    except ImportError as e:
        raise UserError(f"quantize needs onnxruntime ({e}): pip install onnx onnxruntime") from None
    from .checkpoint import load_checkpoint
    from ..stream.fusion import Fusion
    from .models_store import model_path
    from ..train.cache import FlowCache
    from ..train.datasets import Clip, open_dataset

    directory = model_path(model_dir)
    model = load_checkpoint(directory)
    cfg = model.config
    if not cfg.trained:
        raise UserError(f"{directory}: the model is untrained; quantise a trained one")
    ds = open_dataset(data, seed=seed)
    unknown = sorted(set(ds.classes) - set(cfg.labels))
    if unknown:
        raise UserError(f"{data}: the model does not know {len(unknown)} of the dataset's classes ({', '.join(unknown[:4])})")
    remap = {i: cfg.labels.index(c) for i, c in enumerate(ds.classes)}
    t0 = time.monotonic()
    rng = np.random.default_rng(seed)
    train = [ds.train[int(i)] for i in rng.permutation(len(ds.train))[:clips]]
    held_out = ds.test or [c for c in ds.train if c not in train]
    flow_cache = FlowCache(cache or Path(data) / ".twostream-cache", cfg.flow)
    flow_cache.build(train + held_out, ds.root, progress=False)
    train = flow_cache.available(train, ds.root)
    held_out = [Clip(c.path, remap[c.label]) for c in flow_cache.available(held_out, ds.root)]
    if not train or not held_out:
        raise UserError(f"{data}: no readable clips to calibrate on and to check against")
    from .export import INPUT_NAMES
    from ..train.data import stream_input_batches

    labels = np.array([c.label for c in held_out])
    scores: dict[str, dict[str, list[np.ndarray]]] = {"fp32": {}, "int8": {}}
    folder = directory / INT8_DIR
    with tempfile.TemporaryDirectory(prefix="twostream-int8-") as work:
        for role in ("spatial", "temporal"):
            fp32 = _graph(model, role, Path(work) / f"{role}.onnx")
            inputs = np.concatenate([stream_input_batches(c.key(ds.root), flow_cache, cfg, role, 4, False) for c in train])
            _quantise(fp32, Path(work) / f"{role}-int8.onnx", inputs, INPUT_NAMES[role])
            for variant, path in (("fp32", fp32), ("int8", Path(work) / f"{role}-int8.onnx")):
                scores[variant][role] = _position_scores(_session(str(path)), held_out, ds.root, flow_cache, cfg, role, samples)
        folder.mkdir(exist_ok=True)
        for role in ("spatial", "temporal"):
            os.replace(Path(work) / f"{role}-int8.onnx", folder / f"{role}.onnx.tmp")
    scores["int8_temporal"] = {"spatial": scores["fp32"]["spatial"], "temporal": scores["int8"]["temporal"]}
    top1, frames = {}, {}
    n = cfg.num_classes
    for variant, s in scores.items():
        sp = np.stack([v[:, :n].mean(0) for v in s["spatial"]])
        tp = np.stack([v.mean(0) for v in s["temporal"]])
        fused = Fusion(cfg.fusion)(sp, tp)
        top1[variant] = {"spatial": _top1(sp, labels), "temporal": _top1(tp, labels), "deployed": _top1(fused, labels), "_pred": np.argmax(fused, 1)}
        frames[variant] = _frames_named_right(cfg, s["spatial"], s["temporal"], labels)
    import onnxruntime as ort

    meta = {
        "format": FORMAT,
        "weights": weights_fingerprint(directory),
        "onnxruntime": ort.__version__,
        "quantisation": "static QDQ, Conv only: per-channel int8 weights, uint8 activations, MinMax calibration",
        "calibration": {"data": str(data), "clips": len(train), "positions_per_clip": 4},
        "held_out": {
            "clips": len(held_out),
            "positions_per_clip": samples,
            "deployed_top1": {v: top1[v]["deployed"] for v in top1},
            "stream_top1": {v: {k: top1[v][k] for k in ("spatial", "temporal")} for v in top1},
            "changed_clips": {v: int((top1[v]["_pred"] != top1["fp32"]["_pred"]).sum()) for v in VARIANTS},
            "frames_named_right": {v: frames[v][0] for v in frames},
            "frames_no_known_action": {v: frames[v][1] for v in frames},
        },
        "seconds": round(time.monotonic() - t0, 1),
    }
    # the variant with the most int8 nets that keeps the accuracy; none: both nets in int8 for an explicit
    # --engine onnxruntime-int8, and auto keeps fp32
    kept = [v for v in VARIANTS if int8_keeps_accuracy(meta, v)]
    meta["variant"] = forced or (kept[0] if kept else "int8")
    meta["nets"] = list(VARIANTS[meta["variant"]])
    meta["auto_uses_it"] = meta["variant"] in kept
    for role in ("spatial", "temporal"):
        if role in meta["nets"]:
            os.replace(folder / f"{role}.onnx.tmp", folder / f"{role}.onnx")
        else:
            (folder / f"{role}.onnx.tmp").unlink()
            (folder / f"{role}.onnx").unlink(missing_ok=True)
    (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def _top1(scores: np.ndarray, labels: np.ndarray) -> float:
    return round(float((np.argmax(scores, 1) == labels).mean()), 4)
