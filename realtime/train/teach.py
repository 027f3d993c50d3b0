"""Teaching the recognizer new classes from a few recorded clips, in minutes on a CPU.

    twostream train --data RECORDINGS --from trained/default [--finetune heads|all] [--out DIR]

Starts from a trained two-stream model and replaces what it predicts: its trunks turn each frame
and each stack of L flow fields into features, and new classifier heads are fitted on the features
of the recorded clips (the paper's "fine-tune the last layer" on a small dataset). Optionally the
whole nets are then fine-tuned for a few epochs. A held-out part of the recorded clips (never used
for fitting) gives the accuracy figure; the fusion weight is chosen by cross-validation on the
training clips only. The result is an ordinary checkpoint plus a model card.

Flow and frames come from the same flow cache as full training, computed with the runtime's own
flow code, so a taught model sees at run time exactly what it was taught on.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from ..nets.checkpoint import FusionConfig, ModelConfig, TwoStreamModel, load_checkpoint
from ..errors import UserError
from ..nets.models import ActionNet, classifier_layer
from ..nets.models_store import user_models_dir  # noqa: F401  (re-exported: where taught models go)
from ..stream.preprocess import centre_crop, flow_input, rgb_input
from .cache import FlowCache
from .data import StreamSamples, flow_window, protocol_positions, zero_flow_codes
from .datasets import Clip, VideoDataset, read_folder
from ..nets.familiarity import calibrate, familiarity_of, other_world_features, prototypes_from
from .evaluate import deployed_mode
from .events import TrainEvent
from .options import FINETUNE_MODES, MIN_CLIPS, RECOMMENDED_CLIPS, TeachOptions  # noqa: F401  (re-exported: teach's defaults live there)
from .sgd import Batch, SGDLoop, StepOutcome, collate

log = logging.getLogger("twostream")
STREAMS = ("spatial", "temporal")
ProgressFn = Callable[[TrainEvent], None]


class _Progress:
    """Turns stage progress into one overall fraction and `TrainEvent`s for a UI."""

    def __init__(self, fn: ProgressFn | None, weights: dict[str, float], cancel: threading.Event | None):
        self.fn, self.cancel = fn, cancel
        total = sum(weights.values())
        self.spans, start = {}, 0.0
        for k, w in weights.items():
            self.spans[k] = (start / total, w / total)
            start += w
        self.t0 = time.monotonic()

    def __call__(self, stage: str, done: float, total: float, message: str, accuracy: dict[str, float] | None = None, out: str | None = None) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise UserError("training cancelled")
        lo, span = self.spans[stage]
        frac = lo + span * (done / total if total else 1.0)
        if self.fn is not None:
            self.fn(TrainEvent(stage, round(min(1.0, frac), 4), message, round(time.monotonic() - self.t0, 2), accuracy, out))


def check_clips(root: Path, min_clips: int = MIN_CLIPS) -> dict[str, int]:
    """Clips per class of a recording directory; a clear UserError when there is too little to learn from."""
    from .datasets import _videos_in

    if not root.is_dir():
        raise UserError(f"{root}: no such recording directory (record clips with: twostream record SOURCE --label NAME --to {root})")
    counts = {d.name: len(_videos_in(d)) for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".") and d.name != "splits"}
    short = {k: v for k, v in counts.items() if v < min_clips}
    if short:
        what = ", ".join(f"'{k}' has {v}" for k, v in short.items())
        raise UserError(
            f"too few clips to learn from: {what}; record at least {min_clips} clips per class "
            f"({RECOMMENDED_CLIPS} recommended), e.g. twostream record SOURCE --label {next(iter(short))} --clips "
            f"{max(min_clips, RECOMMENDED_CLIPS) - next(iter(short.values()))} --to {root}"
        )
    if len(counts) < 2:
        raise UserError(
            f"{root}: {len(counts)} class{'' if len(counts) == 1 else 'es'} recorded; teaching needs at least 2 "
            "(record clips of another action with --label OTHER)"
        )
    return counts


# -- features --------------------------------------------------------------------
def _crops(cfg: ModelConfig, rng: np.random.Generator, n: int) -> list[tuple[int, int, int]]:
    """(top, left, size): the centre crop, then `n` random crops with scale jitter (no flips: a user's
    classes may include an action and its mirror image)."""
    s, h, w = cfg.input_size, cfg.flow.height, cfg.flow.width
    out = [(*centre_crop(cfg.flow, s), s)]
    for _ in range(n):
        c = int(rng.integers(s, min(h, w) + 1))
        out.append((int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1)), c))
    return out


def _inputs(key: str, cache: FlowCache, cfg: ModelConfig, stream: str, positions: np.ndarray, crops: list[tuple[int, int, int]]) -> np.ndarray:
    if stream == "spatial":
        rgb = cache.load(key, "rgb")
        idx = np.clip(positions, 0, len(rgb) - 1)
        return np.stack([rgb_input(rgb[t], cfg, top, left, crop_size=c) for t in idx for top, left, c in crops])
    codes = cache.load(key, "flow")
    if len(codes) == 0:
        codes = zero_flow_codes(cfg)
    return np.stack(
        [flow_input(codes, cfg, top, left, order=flow_window(len(codes), int(st), cfg.clip_length), crop_size=c) for st in positions for top, left, c in crops]
    )


@torch.inference_mode()
def _features(net: ActionNet, x: np.ndarray, device: torch.device, batch: int = 64) -> np.ndarray:
    feats = [
        net.forward_features(torch.from_numpy(x[i : i + batch]).to(device).contiguous(memory_format=torch.channels_last)).float().cpu()
        for i in range(0, len(x), batch)
    ]
    return torch.cat(feats).numpy()


def extract(
    model: TwoStreamModel, clips: list[Clip], root: Path, cache: FlowCache, train: bool, opts: TeachOptions, device: torch.device, report: Callable[[int], None]
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per stream: (features, labels, clip number). Training clips get several positions x crops;
    held-out clips the paper's test protocol (25 positions, centre crop), as `evaluate` does."""
    cfg = model.config
    out: dict[str, list] = {s: [[], [], []] for s in STREAMS}
    rng = np.random.default_rng([opts.seed, 7])
    for n, clip in enumerate(clips):
        key = clip.key(root)
        for stream in STREAMS:
            net = model.spatial if stream == "spatial" else model.temporal
            if stream == "spatial":
                count = len(cache.load(key, "rgb"))
            else:
                count = max(1, len(cache.load(key, "flow")) - cfg.clip_length + 1)
            pos = protocol_positions(count, opts.positions if train else 25)
            crops = _crops(cfg, rng, opts.crops if train else 0)
            f = _features(net, _inputs(key, cache, cfg, stream, pos, crops), device)
            out[stream][0].append(f)
            out[stream][1].append(np.full(len(f), clip.label))
            out[stream][2].append(np.full(len(f), n))
        report(n + 1)
    return {s: (np.concatenate(v[0]), np.concatenate(v[1]), np.concatenate(v[2])) for s, v in out.items()}


# -- heads --------------------------------------------------------------------------
def fit_head(x: np.ndarray, y: np.ndarray, classes: int, l2: float, seed: int = 0) -> nn.Linear:
    """Multinomial logistic regression on features (L-BFGS, L2 penalty): the new classifier layer."""
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y).long()
    head = nn.Linear(x.shape[1], classes)
    nn.init.zeros_(head.weight), nn.init.zeros_(head.bias)
    opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=300, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(head(xt), yt) + l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return head.eval()


@torch.inference_mode()
def clip_scores(head: nn.Linear, x: np.ndarray, clip_no: np.ndarray, clips: int) -> np.ndarray:
    """(clips, classes): softmax averaged over each clip's samples, as the test protocol does."""
    p = torch.softmax(head(torch.from_numpy(x).float()), -1).numpy()
    out = np.zeros((clips, p.shape[1]), np.float32)
    np.add.at(out, clip_no, p)
    return out / np.maximum(np.bincount(clip_no, minlength=clips), 1)[:, None]


L2_GRID = (1e-4, 1e-3, 1e-2)


def cross_validate(
    feats: dict, labels: np.ndarray, classes: int, folds: int, seed: int, other_world: np.ndarray | None = None
) -> tuple[dict[str, float], float, dict, tuple[float, float]]:
    """Grouped k-fold over training clips: the L2 penalty per stream (by log-loss), the deployed fusion
    (`choose_fusion`: a mix only where it beats the better stream alone) and the "no known action"
    threshold, all from out-of-fold scores. Nothing held out is looked at.
    Returns (l2 per stream, spatial weight, figures, (min_score, min_familiarity))."""
    from .evaluate import calibrate_min_score, choose_fusion

    clips = len(labels)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(clips, int)
    for c in range(classes):  # stratified: every fold has clips of every class (when there are enough)
        members = rng.permutation(np.flatnonzero(labels == c))
        fold_of[members] = np.arange(len(members)) % folds
    oof = {s: {l2: np.zeros((clips, classes), np.float32) for l2 in L2_GRID} for s in STREAMS}
    oof_samples = {s: {l2: np.zeros((len(feats[s][0]), classes), np.float32) for l2 in L2_GRID} for s in STREAMS}
    for f in range(folds):
        test_clips = np.flatnonzero(fold_of == f)
        if len(test_clips) == 0:
            continue
        for s in STREAMS:
            x, y, g = feats[s]
            tr, te = ~np.isin(g, test_clips), np.isin(g, test_clips)
            for l2 in L2_GRID:
                head = fit_head(x[tr], y[tr], classes, l2, seed)
                with torch.inference_mode():
                    oof_samples[s][l2][te] = torch.softmax(head(torch.from_numpy(x[te]).float()), -1).numpy()
                oof[s][l2][test_clips] = clip_scores(head, x[te], g[te], clips)[test_clips]

    def nll(p: np.ndarray) -> float:
        return float(-np.log(np.clip(p[np.arange(clips), labels], 1e-6, 1)).mean())

    best_l2 = {s: min(L2_GRID, key=lambda l2: nll(oof[s][l2])) for s in STREAMS}
    sp, tp = oof["spatial"][best_l2["spatial"]], oof["temporal"][best_l2["temporal"]]
    per_clip = {s: [oof_samples[s][best_l2[s]][feats[s][2] == n] for n in range(clips)] for s in STREAMS}
    weight, choice = choose_fusion(sp, tp, labels, (per_clip["spatial"], per_clip["temporal"]))
    min_score, calib = calibrate_min_score(per_clip["spatial"], per_clip["temporal"], labels, weight)
    # familiarity: prototypes from the other folds' clips, measured on each fold's frames
    x, y, g = feats["spatial"]
    fam = np.zeros(len(x), np.float32)
    for f in range(folds):
        te = np.isin(g, np.flatnonzero(fold_of == f))
        if te.any():
            fam[te] = familiarity_of(x[te], prototypes_from(x[~te], y[~te], classes))
    other_fam = familiarity_of(other_world, prototypes_from(x, y, classes)) if other_world is not None else None
    min_familiarity = calibrate(fam, other_fam)
    calib["familiarity"] = {
        "threshold": min_familiarity,
        "frames": int(len(fam)),
        "on": "out-of-fold frames of the fitting clips",
        **({"procedural_world_p95": round(float(np.quantile(other_fam, 0.95)), 4)} if other_fam is not None else {}),
    }
    fused = weight * sp + (1 - weight) * tp
    cv = {
        "folds": folds,
        "l2": best_l2,
        "spatial": float((sp.argmax(1) == labels).mean()),
        "temporal": float((tp.argmax(1) == labels).mean()),
        "fused": float((fused.argmax(1) == labels).mean()),
        "spatial_weight": weight,
        "fusion_choice": choice,
        "unknown": calib,
    }
    return best_l2, weight, cv, (min_score, min_familiarity)


def set_head(net: nn.Module, head: nn.Linear) -> None:
    """Put `head` in place of the net's final linear layer."""
    old = classifier_layer(net)
    for parent in net.modules():
        for name, child in parent.named_children():
            if child is old:
                setattr(parent, name, head)
                return
    raise TypeError("head not found")


# -- whole-net fine-tuning ---------------------------------------------------------
FINETUNE_BATCH = 16


def _finetune_batches(samples: StreamSamples, seed: int, epoch: int) -> Iterator[Batch]:
    """An epoch's batches in a seeded order, the ragged end kept (BatchNorm is frozen, so one sample is a batch too)."""
    order = np.random.default_rng([seed, epoch]).permutation(len(samples))
    for i in range(0, len(order), FINETUNE_BATCH):
        yield Batch(*collate(samples, order[i : i + FINETUNE_BATCH].tolist()))


def finetune_nets(
    model: TwoStreamModel, train: list[Clip], root: Path, cache: FlowCache, opts: TeachOptions, device: torch.device, report: Callable[[str, int, int], None]
) -> None:
    """A few epochs of SGD on every layer at a small learning rate, BatchNorm statistics frozen
    (a few dozen clips cannot re-estimate them)."""
    for stream in STREAMS:
        net = model.spatial if stream == "spatial" else model.temporal
        samples = StreamSamples(train, root, cache, model.config, stream, train=True, seed=opts.seed, repeats=8, flips=False)
        opt = torch.optim.SGD(net.parameters(), lr=5e-4, momentum=0.9, weight_decay=1e-4)  # 4x higher diverged in trials
        total = opts.epochs * ((len(samples) + FINETUNE_BATCH - 1) // FINETUNE_BATCH)
        loop = SGDLoop(
            net,
            opt,
            device,
            nn.functional.cross_entropy,
            clip_norm=5.0,  # the fitted heads are confident: one odd crop makes a huge step
            frozen_batchnorm=True,
            channels_last=True,
            total=total,
        )

        def step_done(s: StepOutcome) -> None:
            report(stream, s.step, total)

        for epoch in range(opts.epochs):
            samples.set_epoch(epoch)
            loop.run(_finetune_batches(samples, opts.seed, epoch), step_done)
        net.eval()


# -- the whole job -------------------------------------------------------------------
def default_out(data: Path) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return user_models_dir() / f"{data.resolve().name}-{stamp}"


def teach(opts: TeachOptions, progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> dict:
    """Fit new heads (and optionally the whole nets) on a recording directory; write the checkpoint.

    Returns the metrics (held-out top-1 per stream and fused, cross-validation, timings) with
    `out` set to the checkpoint directory. `progress(event)` gets `TrainEvent`s (realtime.train.events): `stage`, `fraction`
    (0..1 overall), `message`, and `accuracy` once there is one; `cancel` stops it between steps.
    """
    from ..nets.models_store import resolve_model

    if opts.finetune not in FINETUNE_MODES:
        raise UserError(f"--finetune must be one of {', '.join(FINETUNE_MODES)}")
    t_start = time.monotonic()
    root = Path(opts.data)
    counts = check_clips(root, opts.min_clips)
    base = resolve_model(opts.base)  # a directory, "default", or the name of a taught model
    if not base.config.trained:
        log.warning("the base model is UNTRAINED (random weights): its features will not separate your classes well")
    base_name = str(base.config.provenance.get("name", opts.base or "trained/default"))
    ds: VideoDataset = read_folder(root, test_fraction=opts.held_out, seed=opts.seed)
    classes = ds.classes
    device = torch.device(opts.device if opts.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    weights = {"flow": 3.0, "features": 5.0, "heads": 1.5, **({"finetune": 6.0 * opts.epochs} if opts.finetune == "all" else {}), "save": 1.0}
    say = _Progress(progress, weights, cancel)
    out = Path(opts.out) if opts.out else default_out(root)
    if out.exists() and any(out.iterdir()) and not (out / "model.json").is_file():
        raise UserError(f"{out}: exists and is not a checkpoint directory; choose another --out")

    # 1. frames and flow, with the runtime's flow code (cached: a second run over the same clips is quick)
    cfg = base.config
    cache = FlowCache(root / ".twostream-cache", cfg.flow)
    clips = ds.train + ds.test
    say("flow", 0, len(clips), f"computing optical flow for {len(clips)} clips")
    report = cache.build(clips, ds.root, workers=opts.workers, progress=False, on_clip=lambda d, t: say("flow", d, t, f"optical flow: clip {d}/{t}"))
    if report.failed:
        log.warning("%d clips could not be read and are left out: %s", len(report.failed), ", ".join(list(report.failed)[:3]))
    train, held = cache.available(ds.train, ds.root), cache.available(ds.test, ds.root)
    t_flow = time.monotonic() - t_start

    # 2. features from the frozen trunks
    model = TwoStreamModel(cfg, copy.deepcopy(base.spatial).eval().to(device), copy.deepcopy(base.temporal).eval().to(device))
    n_all = len(train) + len(held)
    say("features", 0, n_all, "features from the base model's nets")
    f_train = extract(model, train, ds.root, cache, True, opts, device, lambda d: say("features", d, n_all, f"features: clip {d}/{n_all}"))
    f_held = extract(
        model, held, ds.root, cache, False, opts, device, lambda d: say("features", len(train) + d, n_all, f"features: clip {len(train) + d}/{n_all}")
    )
    t_feat = time.monotonic() - t_start - t_flow

    # 3. heads: the penalty and the fusion weight by cross-validation on the training clips, then fit on all of them
    y_train = np.array([c.label for c in train])
    y_held = np.array([c.label for c in held])
    folds = int(min(4, np.bincount(y_train, minlength=len(classes)).min()))
    say("heads", 0, 3, f"fitting new classifier heads ({folds}-fold cross-validation on {len(train)} clips)")
    if folds >= 2:
        other = other_world_features(model.spatial, cfg)  # features of another world's frames: the familiarity reference
        l2, weight, cv, (min_score, min_familiarity) = cross_validate(f_train, y_train, len(classes), folds, opts.seed, other)
    else:
        l2, weight, cv, (min_score, min_familiarity) = {s: 1e-3 for s in STREAMS}, 0.5, {"folds": 0}, (0.0, 0.0)
    say("heads", 2, 3, "fitting the heads on every training clip")
    heads = {s: fit_head(f_train[s][0], f_train[s][1], len(classes), l2[s], opts.seed) for s in STREAMS}
    held_scores = {s: clip_scores(heads[s], f_held[s][0], f_held[s][2], len(held)) for s in STREAMS}
    acc = _accuracies(held_scores, y_held, weight)
    say("heads", 3, 3, f"held-out top-1 {acc['fused']:.0%} ({len(held)} clips)", accuracy=acc)

    # 4. the new model: base trunks, new heads (and optionally a few epochs on every layer)
    new_cfg = replace(
        cfg,
        labels=list(classes),
        fusion=FusionConfig("weighted", spatial_weight=weight, min_score=min_score, min_familiarity=min_familiarity),
        flip_pairs=[],
        trained=True,
    )
    model = TwoStreamModel(new_cfg, model.spatial, model.temporal, prototypes_from(f_train["spatial"][0], f_train["spatial"][1], len(classes)))
    for s, net in (("spatial", model.spatial), ("temporal", model.temporal)):
        h = nn.Linear(heads[s].in_features, len(classes)).to(device)
        h.load_state_dict(heads[s].state_dict())
        set_head(net, h)
    if opts.finetune == "all":
        from .evaluate import video_scores

        model.prototypes, new_cfg.fusion.min_familiarity = None, 0.0  # calibrated on the features the fine-tuning changes
        log.info("--finetune all: no familiarity check (its prototypes were measured on the nets before fine-tuning)")
        finetune_nets(
            model,
            train,
            ds.root,
            cache,
            opts,
            device,
            lambda s, d, t: say("finetune", (STREAMS.index(s) * t + d) / 2, t, f"fine-tuning the {s} net: step {d}/{t}"),
        )
        held_scores = {s: video_scores(model.spatial if s == "spatial" else model.temporal, held, ds.root, cache, new_cfg, s, device=device) for s in STREAMS}
        acc = _accuracies(held_scores, y_held, weight)
        say("finetune", 1, 1, f"held-out top-1 after fine-tuning {acc['fused']:.0%}", accuracy=acc)

    # 5. save (fp16, like the shipped model), reload, and measure the held-out clips on what was saved
    say("save", 0, 2, f"saving to {out}")
    train_s = round(time.monotonic() - t_start, 1)
    per_class = {c: {"clips": counts.get(c, 0), "train": int((y_train == i).sum()), "held_out": int((y_held == i).sum())} for i, c in enumerate(classes)}
    new_cfg.provenance = {
        "name": out.name,
        "taught_from": base_name,
        "finetune": opts.finetune,
        "data": str(root.resolve()),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": opts.command,
    }
    model.save(out, half=True)
    saved = load_checkpoint(out)
    from .evaluate import video_scores

    final = {s: video_scores(saved.spatial if s == "spatial" else saved.temporal, held, ds.root, cache, saved.config, s, device=device) for s in STREAMS}
    acc = _accuracies(final, y_held, weight)
    metrics = {
        "held_out": {"videos": len(held), "protocol": "25 positions per clip, centre crop", **acc},
        "cross_validation": cv,
        "classes": per_class,
        "fusion": {
            "mode": "weighted",
            "spatial_weight": weight,
            "deployed": deployed_mode(weight),
            "min_score": min_score,
            "min_familiarity": new_cfg.fusion.min_familiarity,
        },
        "finetune": opts.finetune,
        "base_model": base_name,
        "seconds": {"flow": round(t_flow, 1), "features": round(t_feat, 1), "total": train_s},
        "skipped_unreadable_clips": len(report.failed),
    }
    saved.config.metrics = {
        "held_out_top1": {k: acc[k] for k in ("spatial", "temporal", "fused")},
        "held_out_videos": len(held),
        "fusion_weighted": {"top1": acc["fused"]},
        "deployed": {"top1": acc["fused"], "mode": deployed_mode(weight), "spatial_weight": weight, "min_score": min_score},
        "teach": metrics,
    }
    (out / "model.json").write_text(json.dumps(saved.config.to_json(), indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_teach_card(out, saved.config.provenance, metrics)
    metrics["out"] = str(out)
    say("save", 2, 2, f"saved {out}: held-out top-1 {acc['fused']:.0%}", accuracy=acc, out=str(out))
    return metrics


def _accuracies(scores: dict[str, np.ndarray], labels: np.ndarray, spatial_weight: float) -> dict[str, float]:
    if len(labels) == 0:
        return {"spatial": float("nan"), "temporal": float("nan"), "fused": float("nan")}
    fused = spatial_weight * scores["spatial"] + (1 - spatial_weight) * scores["temporal"]
    return {k: round(float((v.argmax(1) == labels).mean()), 4) for k, v in (("spatial", scores["spatial"]), ("temporal", scores["temporal"]), ("fused", fused))}


def write_teach_card(out: Path, provenance: dict, metrics: dict) -> None:
    ho = metrics["held_out"]
    lines = [
        f"# {provenance['name']}",
        "",
        f"Taught on {provenance['date']} from `{provenance['taught_from']}` "
        f"({'new classifier heads' if metrics['finetune'] == 'heads' else 'new heads, then every layer fine-tuned'}) "
        f"in {metrics['seconds']['total']:.0f} s, from the clips in `{provenance['data']}`.",
        "",
        "| class | clips | used for fitting | held out |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {c} | {v['clips']} | {v['train']} | {v['held_out']} |" for c, v in metrics["classes"].items()]
    lines += [
        "",
        f"Held-out top-1 on {ho['videos']} recorded clips never used for fitting ({ho['protocol']}): "
        f"spatial {ho['spatial']:.3f}, temporal {ho['temporal']:.3f}, **fused {ho['fused']:.3f}** "
        f"(deployed: {metrics['fusion']['deployed']}, spatial weight {metrics['fusion']['spatial_weight']:.1f}, chosen by "
        f"{metrics['cross_validation'].get('folds', 0)}-fold cross-validation on the fitting clips: "
        f"{metrics['cross_validation'].get('fusion_choice', {}).get('why', 'too few clips for cross-validation')}).",
        "",
        f'"No known action" below a fused score of {metrics["fusion"]["min_score"]:.2f}, or when a frame\'s spatial features are '
        f"less like every class's than {metrics['fusion']['min_familiarity']:.3f} (both calibrated on out-of-fold scores of the "
        "fitting clips; `--min-score` changes the first, `--min-score 0` turns both off).",
        "",
        "With a few held-out clips this figure is coarse (one clip is several percent); check the model on "
        "clips recorded separately with `twostream evaluate --model THIS --data DIR --all-clips`.",
        "",
        f"Command: `{provenance['command']}`",
        "",
    ]
    (out / "MODEL_CARD.md").write_text("\n".join(lines))
