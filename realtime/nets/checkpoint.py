"""Self-describing two-stream checkpoints: a directory holding `model.json` and `weights.safetensors`.

`model.json` owns every fact a net needs at run time (architecture, input size, labels,
normalisation, flow settings, L, fusion, metrics); the weights are plain tensors in safetensors,
which cannot carry code, so loading a checkpoint never runs anything from it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, UserError
from ..stream.flow import FlowSettings
from .models import ARCHITECTURES, ActionNet, create_model
from ..options import CLIP_LENGTH, FUSION_MODES, INPUT_SIZE, SPATIAL_ARCH, TEMPORAL_ARCH

FORMAT = "twostream-checkpoint"
VERSION = 1
CONFIG_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MAX_LABELS = 10_000
PROTOTYPES_KEY = "familiarity.prototypes"
# JSON types of model.json's fields: a hostile or hand-edited file must fail with a message, not a TypeError.
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "labels": list,
    "spatial_arch": str,
    "temporal_arch": str,
    "input_size": int,
    "clip_length": int,
    "subtract_mean_flow": bool,
    "flow": dict,
    "rgb_mean": list,
    "rgb_std": list,
    "flow_scale": (int, float),
    "fusion": dict,
    "trained": bool,
    "metrics": dict,
    "provenance": dict,
}
_FLOW_TYPES: dict[str, type | tuple[type, ...]] = {"algorithm": str, "preset": str, "width": int, "height": int, "bound": (int, float), "levels": int}


@dataclass
class FusionConfig:
    mode: str = "avg"
    spatial_weight: float = 0.5  # used by "weighted"; "avg" is 0.5
    svm_weight: list[list[float]] | None = None  # (classes, 2*classes) on L2-normalised [spatial, temporal] scores
    svm_bias: list[float] | None = None
    # "no known action" below this fused top score (0: never); calibrated at training time on clips
    # the nets did not train on, adjustable at run time (--min-score)
    min_score: float = 0.0
    # ... or whose spatial features are less like every class's prototype than this (0: never;
    # realtime.nets.familiarity), calibrated the same way
    min_familiarity: float = 0.0


@dataclass
class ModelConfig:
    """Everything about a two-stream model except its weights."""

    labels: list[str]
    spatial_arch: str = SPATIAL_ARCH
    temporal_arch: str = TEMPORAL_ARCH
    input_size: int = INPUT_SIZE  # nets see a centre crop of this side from the working-size frame / flow
    clip_length: int = CLIP_LENGTH  # L: flow fields per temporal input (2L channels)
    subtract_mean_flow: bool = True
    flow: FlowSettings = field(default_factory=FlowSettings)
    rgb_mean: tuple[float, ...] = IMAGENET_MEAN
    rgb_std: tuple[float, ...] = IMAGENET_STD
    flow_scale: float = 1.0  # flow (px) is divided by this before the temporal net
    fusion: FusionConfig = field(default_factory=FusionConfig)
    # Classes that become each other when mirrored (swipe_left <-> swipe_right): a horizontal flip
    # swaps their labels in training and their scores in 10-crop testing.
    flip_pairs: list[list[str]] = field(default_factory=list)
    trained: bool = True
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def temporal_channels(self) -> int:
        return 2 * self.clip_length

    def flip_permutation(self) -> list[int]:
        """Class index -> the class a mirrored clip of it shows (itself unless in a flip pair)."""
        perm = list(range(self.num_classes))
        index = {name: i for i, name in enumerate(self.labels)}
        for a, b in self.flip_pairs:
            if a in index and b in index:
                perm[index[a]], perm[index[b]] = index[b], index[a]
        return perm

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["flow"] = self.flow.to_dict()
        return {"format": FORMAT, "version": VERSION, **d}

    @classmethod
    def from_json(cls, d: dict[str, Any], where: str) -> "ModelConfig":
        if d.get("format") != FORMAT:
            raise CheckpointError(f'{where}: not a twostream checkpoint (no \'"format": "{FORMAT}"\' in {CONFIG_FILE})')
        if not isinstance(d.get("version", 0), int):
            raise CheckpointError(f"{where}: {CONFIG_FILE} does not describe a model ('version' is not a number)")
        if d.get("version", 0) > VERSION:
            raise CheckpointError(f"{where}: checkpoint version {d.get('version')} is newer than this twostream reads ({VERSION}); upgrade twostream")
        try:
            d = dict(d)
            d.pop("format"), d.pop("version")
            _check_json_types(d)
            d["flow"] = FlowSettings.from_dict(d.get("flow", {}))
            d["fusion"] = FusionConfig(**d.get("fusion", {}))
            d["rgb_mean"], d["rgb_std"] = tuple(d.get("rgb_mean", IMAGENET_MEAN)), tuple(d.get("rgb_std", IMAGENET_STD))
            cfg = cls(**d)
        except (TypeError, ValueError, UserError) as e:
            raise CheckpointError(f"{where}: {CONFIG_FILE} does not describe a model ({e})") from None
        cfg.validate(where)
        return cfg

    def validate(self, where: str) -> None:
        """Refuse a config whose parts do not fit together."""
        problems = []
        if not self.labels or len(set(self.labels)) != len(self.labels) or not all(isinstance(x, str) and x for x in self.labels):
            problems.append("labels must be distinct non-empty names")
        if len(self.labels) > MAX_LABELS:  # the heads are built before the weights are checked: bound their size
            problems.append(f"{len(self.labels)} labels is more than the {MAX_LABELS} twostream supports")
        for role, arch in (("spatial", self.spatial_arch), ("temporal", self.temporal_arch)):
            if arch not in ARCHITECTURES:
                problems.append(f"unknown {role} architecture '{arch}'")
        if not 1 <= self.clip_length <= 64:
            problems.append(f"clip_length L={self.clip_length} is outside 1..64")
        if not (16 <= self.flow.width <= 2048 and 16 <= self.flow.height <= 2048):
            problems.append(f"flow working size {self.flow.width}x{self.flow.height} is outside 16..2048")
        if not (math.isfinite(self.flow.bound) and self.flow.bound > 0):
            problems.append("flow bound must be a number > 0")
        if not 16 <= self.input_size <= min(self.flow.width, self.flow.height):
            problems.append(f"input_size {self.input_size} does not fit in the {self.flow.width}x{self.flow.height} working size")
        if len(self.rgb_mean) != 3 or len(self.rgb_std) != 3 or min(self.rgb_std) <= 0:
            problems.append("rgb_mean/rgb_std must have 3 values, std > 0")
        if not (self.flow_scale > 0 and math.isfinite(self.flow_scale)):
            problems.append("flow_scale must be > 0")
        f = self.fusion
        if f.mode not in FUSION_MODES:
            problems.append(f"unknown fusion mode '{f.mode}'")
        if not 0 <= f.spatial_weight <= 1:
            problems.append("fusion spatial_weight must be in 0..1")
        if not (isinstance(f.min_score, (int, float)) and 0 <= f.min_score <= 1):
            problems.append("fusion min_score must be in 0..1")
        if not (isinstance(f.min_familiarity, (int, float)) and -1 <= f.min_familiarity <= 1):
            problems.append("fusion min_familiarity must be in -1..1")
        if f.mode == "svm":
            n = self.num_classes
            if f.svm_weight is None or f.svm_bias is None or len(f.svm_weight) != n or any(len(r) != 2 * n for r in f.svm_weight) or len(f.svm_bias) != n:
                problems.append(f"SVM fusion parameters do not fit {n} labels (need weight {n}x{2 * n} and bias {n})")
        if problems:
            raise CheckpointError(f"{where}: " + "; ".join(problems))


@dataclass
class TwoStreamModel:
    """A spatial and a temporal net with the config that says how to feed and fuse them."""

    config: ModelConfig
    spatial: ActionNet
    temporal: ActionNet
    prototypes: torch.Tensor | None = None  # (classes, features) unit vectors of the spatial net's features (realtime.nets.familiarity)
    int8: dict | None = None  # int8 ONNX nets made from these weights (realtime.nets.quantize), for the onnxruntime-int8 engine

    @classmethod
    def create(cls, config: ModelConfig, seed: int | None = None) -> "TwoStreamModel":
        """Fresh (untrained) nets for `config`."""
        if seed is not None:
            torch.manual_seed(seed)
        spatial = create_model(config.spatial_arch, config.num_classes, 3)
        temporal = create_model(config.temporal_arch, config.num_classes, config.temporal_channels)
        return cls(config, spatial.eval(), temporal.eval())

    def save(self, directory: str | Path, half: bool = False) -> Path:
        """Write the checkpoint directory; `half` stores weights as fp16 (half the size)."""
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for role, net in (("spatial", self.spatial), ("temporal", self.temporal)):
            for k, v in net.state_dict().items():
                v = v.detach().cpu()
                tensors[f"{role}.{k}"] = (v.half() if half and v.is_floating_point() else v).contiguous()
        if self.prototypes is not None:
            tensors[PROTOTYPES_KEY] = self.prototypes.detach().float().cpu().contiguous()
        tmp = out / (WEIGHTS_FILE + ".tmp")
        save_file(tensors, str(tmp))
        tmp.replace(out / WEIGHTS_FILE)
        (out / CONFIG_FILE).write_text(json.dumps(self.config.to_json(), indent=2) + "\n")
        return out


def load_checkpoint(path: str | Path, flow: FlowSettings | None = None, labels: list[str] | None = None) -> TwoStreamModel:
    """Load a checkpoint directory (or its model.json). Never executes code from the files.

    `flow` and `labels`, when given, are what the caller's data or runtime use; a checkpoint that
    was trained with other ones is refused, saying what does not fit.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    directory = p.parent if p.name == CONFIG_FILE else p
    where = str(directory)
    if not directory.exists():
        raise CheckpointError(f"{where}: no such model directory (give a directory holding {CONFIG_FILE} and {WEIGHTS_FILE})")
    if directory.is_file():
        raise CheckpointError(
            f"{where}: is a file, not a checkpoint directory (one holding {CONFIG_FILE} and {WEIGHTS_FILE}); "
            "twostream never unpickles .pt/.pth files, which can run code"
        )
    if not (directory / CONFIG_FILE).is_file():
        raise CheckpointError(f"{where}: not a twostream checkpoint ({CONFIG_FILE} is missing)")
    try:
        raw = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("top level is not an object")
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: absurdly deep nesting
        raise CheckpointError(f"{where}: {CONFIG_FILE} is corrupt ({e.__class__.__name__}); re-export or re-train the model") from None
    config = ModelConfig.from_json(raw, where)
    if flow is not None and flow != config.flow:
        raise CheckpointError(
            f"{where}: trained with flow {_describe_flow(config.flow)} but asked to run with {_describe_flow(flow)}; "
            "a temporal net degrades on flow made another way: use the model's settings or retrain"
        )
    if labels is not None and list(labels) != list(config.labels):
        raise CheckpointError(
            f"{where}: labels do not fit: the model has {len(config.labels)} ({', '.join(config.labels[:5])}...), "
            f"expected {len(labels)} ({', '.join(list(labels)[:5])}...)"
        )
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{where}: {WEIGHTS_FILE} is missing")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{where}: {WEIGHTS_FILE} is corrupt or truncated ({str(e).splitlines()[0][:120]})") from None
    model = TwoStreamModel.create(config)
    for role, net, chans in (("spatial", model.spatial, 3), ("temporal", model.temporal, config.temporal_channels)):
        state = {k[len(role) + 1 :]: v for k, v in tensors.items() if k.startswith(role + ".")}
        expected = net.state_dict()
        missing = sorted(set(expected) - set(state))
        if missing:
            raise CheckpointError(f"{where}: {role} weights are missing {len(missing)} tensors (e.g. {missing[0]}) for {getattr(config, role + '_arch')}")
        conv_key = next(k for k, v in expected.items() if v.ndim == 4)
        head_key = [k for k, v in expected.items() if v.ndim == 2][-1]
        if state[conv_key].shape[1] != expected[conv_key].shape[1]:
            raise CheckpointError(f"{where}: {role} net takes {state[conv_key].shape[1]} input channels but the config needs {chans}")
        if state[head_key].shape[0] != expected[head_key].shape[0]:
            raise CheckpointError(f"{where}: {role} head has {state[head_key].shape[0]} outputs for {config.num_classes} labels")
        wrong = [k for k, v in expected.items() if state[k].shape != v.shape]
        not_float = next((k for k, v in expected.items() if v.is_floating_point() and not state[k].is_floating_point()), None)
        if not_float is not None:
            raise CheckpointError(f"{where}: {role} weights do not fit: {not_float} holds {state[not_float].dtype} values, expected floats")
        broken = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
        if broken is not None:
            raise CheckpointError(f"{where}: {role} weights hold NaN or infinite values ({broken}); the training run diverged or the file is damaged")
        if wrong:
            k = wrong[0]
            raise CheckpointError(
                f"{where}: {role} weights do not fit {getattr(config, role + '_arch')}: {k} is {tuple(state[k].shape)}, expected {tuple(expected[k].shape)}"
            )
        net.load_state_dict({k: state[k].to(v.dtype) for k, v in expected.items()})
        net.eval()
    protos = tensors.get(PROTOTYPES_KEY)
    if protos is not None:
        from .models import classifier_layer

        dim = classifier_layer(model.spatial).in_features
        if protos.ndim != 2 or protos.shape[1] != dim or not 1 <= protos.shape[0] <= MAX_LABELS:
            raise CheckpointError(f"{where}: {PROTOTYPES_KEY} is {tuple(protos.shape)}, expected (prototypes, {dim}) for the spatial net's features")
        if not bool(torch.isfinite(protos).all()):
            raise CheckpointError(f"{where}: {PROTOTYPES_KEY} holds NaN or infinite values; re-train the model")
        model.prototypes = protos.float()
    elif config.fusion.min_familiarity > 0:
        raise CheckpointError(f"{where}: the fusion needs familiarity prototypes ({PROTOTYPES_KEY}) that {WEIGHTS_FILE} lacks")
    from .quantize import load_int8

    model.int8 = load_int8(directory)
    return model


def _check_json_types(d: dict[str, Any]) -> None:
    """Raise TypeError naming the first field of model.json whose JSON type is wrong."""

    def check(table: dict[str, type | tuple[type, ...]], values: dict[str, Any], prefix: str = "") -> None:
        for key, kind in table.items():
            if key in values:
                v = values[key]
                if not isinstance(v, kind) or (isinstance(v, bool) and kind in (int, (int, float))):
                    raise TypeError(f"'{prefix}{key}' is a JSON {type(v).__name__}")

    check(_JSON_TYPES, d)
    if not all(isinstance(x, str) for x in d.get("labels", [])):
        raise TypeError("'labels' must be a list of names")
    for key in ("rgb_mean", "rgb_std"):
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in d.get(key, [])):
            raise TypeError(f"'{key}' must be a list of numbers")
    check(_FLOW_TYPES, d.get("flow", {}), "flow.")


def _describe_flow(f: FlowSettings) -> str:
    preset = f"/{f.preset}" if f.algorithm == "dis" else ""
    return f"{f.algorithm}{preset} at {f.width}x{f.height}, bound {f.bound:g} px"
