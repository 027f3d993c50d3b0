"""The paper's test protocol, per-stream and fused metrics, SVM fusion, and the confusion matrix."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..nets.checkpoint import FusionConfig, ModelConfig, TwoStreamModel
from ..errors import UserError
from ..stream.fusion import Fusion, l2_normalise
from ..nets.models import ActionNet, classifier_layer
from .cache import FlowCache
from .data import protocol_crops, stream_input_batches
from .datasets import Clip
from .procedural import _progress

log = logging.getLogger("twostream")
STREAMS = ("spatial", "temporal")


def trained_streams(config: ModelConfig) -> tuple[str, ...]:
    """The streams of a checkpoint that have been trained: both for a finished model; one after `train --stream X`."""
    if config.trained:
        return STREAMS
    done = set(config.provenance.get("streams_trained", []))
    return tuple(s for s in STREAMS if s in done)


@torch.inference_mode()
def video_scores(
    net: nn.Module,
    clips: list[Clip],
    root: Path,
    cache: FlowCache,
    config: ModelConfig,
    stream: str,
    samples: int = 25,
    ten_crop: bool = False,
    device: torch.device | str = "cpu",
    batch: int = 128,
    progress: bool = False,
    per_position: list | None = None,
) -> np.ndarray:
    """(videos, classes): softmax scores averaged over the protocol's positions and crops.

    `per_position`, when given a list, receives each video's (positions, classes) scores (crops
    averaged): what single frames score, for calibrating the "no known action" threshold."""
    net = net.eval().to(device)
    out = np.zeros((len(clips), config.num_classes), np.float32)
    crops = protocol_crops(config, ten_crop)
    flipped = np.array([f for _, _, f in crops])
    mirror = np.argsort(config.flip_permutation())  # a flipped crop's score for class k belongs to mirror(k)
    bar = _progress(len(clips), "videos", progress)
    for i, clip in enumerate(clips):
        x = torch.from_numpy(stream_input_batches(clip.key(root), cache, config, stream, samples, ten_crop))
        probs = (
            torch.cat(
                [torch.softmax(net(x[j : j + batch].to(device).contiguous(memory_format=torch.channels_last)).float(), -1) for j in range(0, len(x), batch)]
            )
            .cpu()
            .numpy()
        )
        is_flipped = np.tile(flipped, len(probs) // len(crops))
        probs[is_flipped] = probs[is_flipped][:, mirror]
        out[i] = probs.mean(0)
        if per_position is not None:
            per_position.append(probs.reshape(-1, len(crops), probs.shape[1]).mean(1))
        bar.update(1)
    bar.close()
    return out


def accuracy(scores: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, float]:
    """top-1, top-5 and mean class accuracy (0..1)."""
    if len(labels) == 0:
        return {"top1": float("nan"), "top5": float("nan"), "mean_class": float("nan")}
    pred = scores.argmax(1)
    k = min(5, num_classes)
    top5 = (np.argsort(-scores, 1)[:, :k] == labels[:, None]).any(1)
    per_class = [float((pred[labels == c] == c).mean()) for c in range(num_classes) if (labels == c).any()]
    return {"top1": round(float((pred == labels).mean()), 4), "top5": round(float(top5.mean()), 4), "mean_class": round(float(np.mean(per_class)), 4)}


WEIGHT_GRID = tuple(round(float(w), 2) for w in np.linspace(0, 1, 11))
UNKNOWN_QUANTILE = 0.02  # of correctly recognised held-out frames that the threshold may call unknown


def _nll(p: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-6, 1)).mean())


def _frame_pairs(spatial_frames: list[np.ndarray], temporal_frames: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each clip's frame scores with the nearest flow stack's scores beside them."""
    out = []
    for s, t in zip(spatial_frames, temporal_frames):
        j = np.round(np.linspace(0, len(t) - 1, len(s))).astype(int)
        out.append((s, t[j]))
    return out


def choose_fusion(
    spatial: np.ndarray, temporal: np.ndarray, labels: np.ndarray, frames: tuple[list[np.ndarray], list[np.ndarray]] | None = None
) -> tuple[float, dict]:
    """The spatial weight of the deployed fusion, from scores the nets did not train on.

    Fusion must never make the answer worse than the better stream: a weight strictly between 0
    and 1 is kept only when it gets more of these clips right than the better stream alone (a mix
    that only lowers the log-loss may be blending in noise); otherwise the better stream alone is
    deployed (weight 1 = spatial, 0 = temporal). Weights that get as many clips right are told
    apart by how many single frames they get right (`frames`: each clip's per-frame scores, what
    the live view shows one by one), then by log-loss. Returns (weight, the figures it was chosen on)."""
    pairs = _frame_pairs(*frames) if frames is not None else None
    table = {}
    for w in WEIGHT_GRID:
        fused = w * spatial + (1 - w) * temporal
        frame_acc = float(np.mean(np.concatenate([(w * s + (1 - w) * t).argmax(1) == y for (s, t), y in zip(pairs, labels)]))) if pairs else 0.0
        table[w] = (float((fused.argmax(1) == labels).mean()), _nll(fused, labels), frame_acc)
    key = lambda w: (table[w][0], table[w][2], -table[w][1], -abs(w - 0.5))  # noqa: E731  # ties: the more even mix
    single = max((0.0, 1.0), key=key)
    mixed = max((w for w in WEIGHT_GRID if 0 < w < 1), key=key)
    beats = table[mixed][0] > table[single][0]  # strictly more clips right: a lower log-loss alone may be noise mixed in
    weight = mixed if beats else single
    report = {
        "clips": int(len(labels)),
        "spatial": table[1.0][0],
        "temporal": table[0.0][0],
        "best_mixed_weight": mixed,
        "best_mixed": table[mixed][0],
        "spatial_weight": weight,
        "chosen": deployed_mode(weight),
        **({"frame_top1": {"spatial": round(table[1.0][2], 4), "temporal": round(table[0.0][2], 4), "chosen": round(table[weight][2], 4)}} if pairs else {}),
        "why": (
            "a mix beats the better stream alone on these clips"
            if beats
            else "no mix beats the better stream alone on these clips: that stream alone is deployed"
        ),
    }
    return weight, report


def deployed_mode(spatial_weight: float, mode: str = "weighted") -> str:
    if mode != "weighted":
        return mode
    return "spatial" if spatial_weight >= 1 else "temporal" if spatial_weight <= 0 else "weighted"


def calibrate_min_score(
    spatial_frames: list[np.ndarray], temporal_frames: list[np.ndarray], labels: np.ndarray, spatial_weight: float, quantile: float = UNKNOWN_QUANTILE
) -> tuple[float, dict]:
    """The "no known action" threshold on the fused top score of a single frame, from clips the nets
    did not train on: the score that makes the most right calls (a right frame named, a wrong one
    held back), never so high that more than `quantile` of the right frames are held back. Where
    these frames are all recognised there is nothing to hold back and the threshold is 0: a
    threshold set from saturated scores would hold back the frames of a new person or room, whose
    scores are right but lower. Returns (threshold, figures)."""
    tops, right = [], []
    for (s, t), y in zip(_frame_pairs(spatial_frames, temporal_frames), labels):
        fused = spatial_weight * s + (1 - spatial_weight) * t
        tops.append(fused.max(1))
        right.append(fused.argmax(1) == y)
    top, ok = np.concatenate(tops), np.concatenate(right)
    if not ok.any():
        return 0.0, {"frames": int(len(top)), "note": "no held-out frame was recognised: no threshold"}
    cap = float(np.quantile(top[ok], quantile))
    candidates = np.concatenate([[0.0], np.unique(top[top <= cap])])
    calls = [int((top[ok] >= c).sum() + (top[~ok] < c).sum()) for c in candidates]
    threshold = float(candidates[int(np.argmax(calls))])  # the first best: the lowest such threshold
    return round(threshold, 4), {
        "frames": int(len(top)),
        "wrong_frames": int((~ok).sum()),
        "cap_quantile": quantile,
        "threshold": round(threshold, 4),
        "correct_frames_below": round(float((top[ok] < threshold).mean()), 4),
        "wrong_frames_below": round(float((top[~ok] < threshold).mean()), 4) if (~ok).any() else None,
    }


@torch.inference_mode()
def spatial_features(
    net: ActionNet, clips: list[Clip], root: Path, cache: FlowCache, config: ModelConfig, samples: int = 5, device: torch.device | str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """(features, clip number) of the spatial net at the protocol's positions, centre crop."""
    net = net.eval().to(device)
    feats, owner = [], []
    for i, clip in enumerate(clips):
        x = torch.from_numpy(stream_input_batches(clip.key(root), cache, config, "spatial", samples, False))
        feats.append(net.forward_features(x.to(device).contiguous(memory_format=torch.channels_last)).float().cpu().numpy())
        owner.append(np.full(len(x), i))
    width = classifier_layer(net).in_features
    return (np.concatenate(feats) if feats else np.zeros((0, width), np.float32)), (np.concatenate(owner) if owner else np.zeros(0, int))


def fit_svm(spatial: np.ndarray, temporal: np.ndarray, labels: np.ndarray, num_classes: int, c: float = 1.0) -> FusionConfig:
    """A linear SVM on stacked L2-normalised softmax scores (the paper's fusion), one-vs-rest."""
    try:
        from sklearn.svm import LinearSVC
    except ImportError:
        raise UserError("SVM fusion needs scikit-learn: pip install 'twostream[train]'") from None
    x = np.concatenate([l2_normalise(spatial), l2_normalise(temporal)], 1)
    present = np.unique(labels)
    svm = LinearSVC(C=c, max_iter=20000).fit(x, labels)
    w = np.zeros((num_classes, x.shape[1]), np.float32)
    b = np.full(num_classes, -1e3, np.float32)  # classes absent from training never win
    if len(present) == 2:  # sklearn keeps one hyperplane for two classes
        w[present[1]], b[present[1]] = svm.coef_[0], svm.intercept_[0]
        w[present[0]], b[present[0]] = -svm.coef_[0], -svm.intercept_[0]
    else:
        w[present], b[present] = svm.coef_, svm.intercept_
    return FusionConfig(mode="svm", svm_weight=w.tolist(), svm_bias=b.tolist())


def evaluate_model(
    model: TwoStreamModel,
    test: list[Clip],
    root: Path,
    cache: FlowCache,
    samples: int = 25,
    ten_crop: bool = False,
    device: str | torch.device = "cpu",
    train_scores: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    progress: bool = True,
) -> tuple[dict, np.ndarray]:
    """Metrics per trained stream, and fused (average, weighted, SVM) when both are trained. Returns (metrics, scores).

    A model with one stream trained so far (`train --stream X`) is scored on that stream alone: an untrained
    net's scores are chance, and fusing them in would hide what the trained one does.
    """
    cfg = model.config
    streams = trained_streams(cfg)
    if not streams:
        raise UserError("this model has no trained stream yet: train it first (twostream train --data DIR --stream both)")
    labels = np.array([c.label for c in test])
    scores = {st: video_scores(getattr(model, st), test, root, cache, cfg, st, samples, ten_crop, device, progress=progress) for st in streams}
    n = cfg.num_classes
    metrics: dict = {
        "videos": len(test),
        "protocol": {"samples_per_video": samples, "crops": 10 if ten_crop else 1},
        "streams": list(streams),
        **{st: accuracy(v, labels, n) for st, v in scores.items()},
    }
    if len(streams) == 1:
        fused = scores[streams[0]]
        metrics["deployed"] = {**accuracy(fused, labels, n), "mode": streams[0], "spatial_weight": 1.0 if streams[0] == "spatial" else 0.0}
        metrics["confusion"] = confusion(fused, labels, n).tolist()
        return metrics, fused
    s, t = scores["spatial"], scores["temporal"]
    avg = Fusion(FusionConfig("avg"))(s, t)
    metrics["fusion_avg"] = accuracy(avg, labels, n)
    fused = avg
    if cfg.fusion.mode == "weighted":  # the model's own fusion (chosen on clips the nets did not train on)
        fused = Fusion(cfg.fusion)(s, t)
        metrics["fusion_weighted"] = {**accuracy(fused, labels, n), "spatial_weight": cfg.fusion.spatial_weight}
    # A checkpoint carries fitted SVM weights whatever its default mode is.
    svm_cfg = FusionConfig("svm", svm_weight=cfg.fusion.svm_weight, svm_bias=cfg.fusion.svm_bias) if cfg.fusion.svm_weight is not None else None
    if train_scores is not None:
        svm_cfg = fit_svm(*train_scores, n)
    if svm_cfg is not None:
        svm = Fusion(svm_cfg)(s, t)
        metrics["fusion_svm"] = accuracy(svm, labels, n)
        metrics["_svm"] = svm_cfg
        if cfg.fusion.mode == "svm":
            fused = svm
    else:
        metrics["fusion_svm"] = {"top1": None, "note": "no SVM fitted in this model"}
    metrics["deployed"] = deployed_metrics(cfg.fusion, s, t, labels, n)
    metrics["confusion"] = confusion(fused, labels, n).tolist()
    return metrics, fused


def deployed_metrics(fusion: FusionConfig, spatial: np.ndarray, temporal: np.ndarray, labels: np.ndarray, n: int) -> dict:
    """The figure for exactly what `twostream run` outputs with this fusion (clip level; the live
    "no known action" threshold is reported beside it, not applied)."""
    fused = Fusion(fusion)(spatial, temporal)
    return {
        **accuracy(fused, labels, n),
        "mode": deployed_mode(fusion.spatial_weight, fusion.mode),
        "spatial_weight": 0.5 if fusion.mode == "avg" else fusion.spatial_weight,
        "min_score": fusion.min_score,
    }


def confusion(scores: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((n, n), np.int64)
    np.add.at(m, (labels, scores.argmax(1)), 1)
    return m


def save_confusion_png(matrix: list[list[int]], classes: list[str], path: Path, title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib not installed: no confusion matrix plot (pip install 'twostream[train]')")
        return False
    m = np.asarray(matrix, np.float64)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    size = max(5.0, 0.45 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    if len(classes) <= 30:
        for i in range(len(classes)):
            for j in range(len(classes)):
                if m[i, j]:
                    ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=7, color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_metrics(metrics: dict, path: Path, classes: list[str]) -> None:
    clean = {k: v for k, v in metrics.items() if not k.startswith("_")}
    clean["classes"] = classes
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean, indent=2) + "\n")
