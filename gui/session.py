"""What the window asks the controller to run (RunRequest) and what it is told about the run (SessionInfo)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunRequest:
    """What the user asked to run. `source` None keeps the open source; `model` "" is the default model."""

    source: str | None
    model: str = ""
    engine: str = "auto"
    device: str = "auto"
    swap: bool = False  # change the model inside the running Pipeline (Pipeline.swap_model): same source, same threads


@dataclass(frozen=True)
class SessionInfo:
    """What the window shows about the running pipeline. Names are safe to display."""

    source_name: str
    source_kind: str
    source_fps: float | None
    model_key: str
    model_name: str
    trained: bool
    labels: tuple[str, ...]
    clip_length: int
    engine: str
    device: str
    precision: str
    fusion_mode: str
    spatial_weight: float
    has_svm: bool
    smoothing: int
    accuracy: str = ""  # the checkpoint's own held-out result, e.g. "held-out top-1 97.5% (fusion_avg)"
    min_score: float = 0.0  # "no known action" below this fused top score: the threshold in use
    model_min_score: float = 0.0  # the model's own calibrated threshold (0: it never says "no known action")
    min_score_set: bool = False  # the user's threshold (True) or the model's own (False)
    familiarity: bool = False  # frames unlike the model's training frames are "no known action" too


def held_out_accuracy(metrics: dict, fusion_mode: str) -> str:
    """The fused held-out top-1 a checkpoint reports for this fusion mode (or any), as a short phrase; "" if none."""
    if not isinstance(metrics, dict):  # an old or hand-edited model.json
        return ""
    keys: tuple[str, ...] = (f"fusion_{fusion_mode}", "fusion_avg", "fusion_svm", "fused")
    if isinstance(metrics.get("deployed"), dict) and fusion_mode == "weighted":  # the model's own fusion: what it was chosen and measured as
        keys = ("deployed", *keys)
    for key in keys:
        entry = metrics.get(key)
        if isinstance(entry, dict) and isinstance(top1 := entry.get("top1"), (int, float)):
            what = f"deployed: {entry.get('mode')}" if key == "deployed" else key.replace("_", " ")
            return f"held-out top-1 {top1:.1%} ({what})"
    return ""
