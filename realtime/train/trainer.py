"""Offline training of the spatial and temporal nets (separately, as in the paper), then fusion.

    twostream train --data ROOT --stream both --out DIR

Writes DIR as a checkpoint that `twostream run --model DIR` accepts, plus train logs (CSV), the
evaluation metrics (JSON), a confusion matrix (PNG) and a model card. Multi-GPU / multi-node via
`torchrun ... -m realtime.cli train ...` (DistributedDataParallel; gloo on CPUs).
"""

from __future__ import annotations

import csv
import datetime
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from ..nets.checkpoint import CONFIG_FILE, FusionConfig, ModelConfig, TwoStreamModel, load_checkpoint
from ..nets.engines import resolve_device
from ..errors import CheckpointError, UserError
from ..stream.flow import FlowSettings
from ..nets.models import ARCHITECTURES, ActionNet, classifier_layer, create_model
from .cache import FlowCache
from .card import write_model_card
from .distributed import barrier, rank_and_world, setup_distributed
from .pretrained import init_source, load_init
from .options import TrainOptions  # noqa: F401  (re-exported: the one place the training defaults live)
from .data import StreamSamples
from .datasets import Clip, VideoDataset, open_dataset
from .evaluate import (
    calibrate_min_score,
    choose_fusion,
    evaluate_model,
    fit_svm,
    save_confusion_png,
    spatial_features,
    trained_streams,
    video_scores,
    write_metrics,
)
from .procedural import _progress
from .sgd import Batch, SGDLoop, StepOutcome, collate

log = logging.getLogger("twostream")
STREAMS = ("spatial", "temporal")
DEFAULT_EPOCHS = 30  # the step budget's floor for a large dataset, when --epochs and --steps are not given


# -- training one stream ------------------------------------------------------------
class MultiTaskNet(nn.Module):
    """One trunk, one head per dataset (the paper's multi-task learning)."""

    def __init__(self, trunk: ActionNet, extra_classes: int, dropout: float):
        super().__init__()
        self.trunk = trunk
        self.head2 = nn.Sequential(nn.Dropout(dropout), nn.Linear(classifier_layer(trunk).in_features, extra_classes))

    def forward(self, x: torch.Tensor, task: int = 0) -> torch.Tensor:
        f = self.trunk.forward_features(x)
        return self.trunk.head(f) if task == 0 else self.head2(f)


def _schedule(opts: TrainOptions, total_steps: int) -> Callable[[int], float]:
    warm = min(100, max(1, total_steps // 20))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if opts.schedule == "step":
            return 0.1 ** sum(step >= total_steps * f for f in (0.5, 0.75))
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total_steps - warm))))

    return factor


def _loader(samples: StreamSamples, opts: TrainOptions, epoch: int, rank: int, world: int) -> list[list[int]]:
    """Batches of sample indices for this epoch and this rank: seeded, sharded, no repeats within an epoch."""
    order = np.random.default_rng([opts.seed, epoch, 7]).permutation(len(samples))
    order = order[rank::world]
    batch = opts.batch
    if len(order) >= batch:
        order = order[: len(order) // batch * batch]  # drop the ragged end: BatchNorm needs > 1 sample
    return [order[i : i + batch].tolist() for i in range(0, len(order), batch)]


def _batches(samples: StreamSamples, batches: list[list[int]], samples2: StreamSamples | None, batches2: list[list[int]] | None) -> Iterator[Batch]:
    """This epoch's batches, collated as the loop asks for them; with a second task, its batches cycle alongside."""
    for b, idx in enumerate(batches):
        x, y = collate(samples, idx)
        task2 = collate(samples2, batches2[b % len(batches2)]) if samples2 is not None and batches2 else None
        yield Batch(x, y, task2)


@dataclass
class _EpochFigures:
    """An epoch's running loss and accuracy, for the bar and the log."""

    seen: int = 0
    correct: int = 0
    loss_sum: float = 0.0

    def add(self, s: StepOutcome) -> None:
        self.seen += len(s.labels)
        self.correct += int((s.logits.argmax(1) == s.labels).sum())
        self.loss_sum += s.loss.item() * len(s.labels)


def freeze_head_of(net: nn.Module, trainable: float) -> int:
    """Freeze the first layers of a pre-trained net, leaving the last `trainable` share of its weight
    tensors (and the classifier) to fine-tune: early layers hold generic features, and on a CPU
    their backward pass at full resolution is most of a step's cost. Returns the tensors left trainable."""
    params = list(net.named_parameters())
    keep = max(1, math.ceil(trainable * len(params)))
    for _, p in params[: len(params) - keep]:
        p.requires_grad_(False)
    return keep


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def linear_probe(net: ActionNet, samples: StreamSamples, device: torch.device, seed: int, l2: float = 1e-3) -> None:
    """Fit the net's classifier on its frozen features (multinomial logistic regression, L-BFGS):
    a pre-trained net starts fine-tuning from a head that already fits, so the first steps do not
    tear its features apart with a random head's gradients."""
    from .teach import _features, fit_head, set_head

    net.eval().to(device)
    xs, ys = [], []
    for i in range(0, len(samples), 64):
        x, y = collate(samples, list(range(i, min(len(samples), i + 64))))
        xs.append(_features(net, x.numpy(), device))
        ys.append(y.numpy())
    old = classifier_layer(net)
    head = fit_head(np.concatenate(xs), np.concatenate(ys), old.out_features, l2, seed)
    new = nn.Linear(old.in_features, old.out_features).to(device)
    new.load_state_dict(head.state_dict())
    set_head(net, new)


def validation_scores(
    net: nn.Module, clips: list[Clip], ds: VideoDataset, cache: FlowCache, config: ModelConfig, stream: str, device: torch.device, samples: int = 5
) -> tuple[float, float]:
    """(accuracy, mean log-loss) on the validation clips: what picks the best point of a run."""
    scores = video_scores(net, clips, ds.root, cache, config, stream, samples, device=device)
    labels = np.array([c.label for c in clips])
    p = np.clip(scores[np.arange(len(labels)), labels], 1e-6, 1)
    return float((scores.argmax(1) == labels).mean()), float(-np.log(p).mean())


def train_stream(
    stream: str,
    net: ActionNet,
    train_clips: list[Clip],
    val_clips: list[Clip],
    ds: VideoDataset,
    cache: FlowCache,
    config: ModelConfig,
    opts: TrainOptions,
    device: torch.device,
    out: Path,
    extra: tuple[list[Clip], VideoDataset, FlowCache, int] | None = None,
    pretrained: bool = False,
) -> tuple[ActionNet, nn.Module | None, list[dict]]:
    """Train one stream's net for a budget of optimiser steps; returns (net, second head or None, history).

    With validation clips, the net is scored on them several times during the run and the best
    point (accuracy, then log-loss) is what is returned: early stopping and model selection on clips
    the net does not train on. A pre-trained net (`pretrained`) first gets a fitted linear head
    (that point is a candidate too), then every layer is fine-tuned at `finetune_lr` with its
    BatchNorm statistics kept."""
    import copy

    rank, world = rank_and_world()
    main = rank == 0
    # Without --epochs an epoch is at least 8 batches: a small dataset gets fewer, longer epochs (and fewer resume points and evaluations)
    repeats = opts.repeats
    if opts.epochs is None and len(train_clips) * repeats < 8 * opts.batch:
        repeats = math.ceil(8 * opts.batch / max(1, len(train_clips)))
    samples = StreamSamples(train_clips, ds.root, cache, config, stream, train=True, seed=opts.seed, repeats=repeats, transitions=opts.transitions)
    samples2 = None
    if extra is not None:
        clips2, ds2, cache2, n2 = extra
        samples2 = StreamSamples(clips2, ds2.root, cache2, config, stream, train=True, seed=opts.seed + 1, repeats=opts.repeats)
        model: nn.Module = MultiTaskNet(net, n2, opts.dropout)
    else:
        model = net
    model = model.to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack memory_format on Module.to
    steps_per_epoch = max(1, len(_loader(samples, opts, 0, rank, world)))
    if opts.steps is not None:
        total = opts.steps
    elif opts.epochs is not None:
        total = steps_per_epoch * opts.epochs
    else:
        total = max(opts.min_steps, steps_per_epoch * DEFAULT_EPOCHS)
    if opts.max_steps is not None:
        total = min(total, opts.max_steps)
    epochs = max(1, math.ceil(total / steps_per_epoch))
    lr = opts.finetune_lr if pretrained else opts.lr
    if pretrained and opts.finetune_fraction < 1:
        freeze_head_of(net, opts.finetune_fraction)
    optimiser = torch.optim.SGD(_param_groups(model, opts.weight_decay), lr=lr, momentum=opts.momentum, nesterov=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, _schedule(opts, total))
    use_amp = opts.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    resume_path = out / ".resume" / f"{stream}.pt"
    start_epoch, step, history = 0, 0, []
    if opts.resume and resume_path.is_file():
        state = torch.load(resume_path, map_location="cpu", weights_only=True)  # restricted unpickler
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, step, history = state["epoch"] + 1, state["step"], json.loads(state["history"])
        if main:
            log.info("%s: resuming after epoch %d (step %d)", stream, start_epoch, step)
    elif pretrained and extra is None:
        linear_probe(
            net,
            StreamSamples(
                train_clips, ds.root, cache, config, stream, train=True, seed=opts.seed + 11, repeats=max(2, math.ceil(256 / max(1, len(train_clips))))
            ),
            device,
            opts.seed,
        )
        for group, fresh in zip(optimiser.param_groups, _param_groups(model, opts.weight_decay)):  # the new head's tensors
            group["params"] = fresh["params"]
    best: tuple[tuple[float, float], int, dict] | None = None
    eval_every = max(1, epochs // 8)

    def consider(at_step: int) -> tuple[float, float]:
        nonlocal best
        acc, nll = validation_scores(net, val_clips, ds, cache, config, stream, device)
        if best is None or (acc, -nll) > best[0]:
            best = ((acc, -nll), at_step, copy.deepcopy(net.state_dict()))
        return acc, nll  # the loop puts the net back in training mode (BatchNorm kept) at its next epoch

    if val_clips and main and start_epoch == 0 and pretrained:
        acc, nll = consider(0)
        log.info("%s: linear head on the ImageNet features: validation acc %.3f (%d clips)", stream, acc, len(val_clips))
    train_model = model
    if world > 1:
        train_model = nn.parallel.DistributedDataParallel(model, find_unused_parameters=extra is not None)
    loop = SGDLoop(
        train_model,
        optimiser,
        device,
        nn.CrossEntropyLoss(label_smoothing=opts.label_smoothing),
        scheduler,
        scaler,
        clip_norm=5.0 if pretrained else None,  # a fitted head is confident: one odd crop makes a huge step
        frozen_batchnorm=pretrained,
        channels_last=device.type == "cpu",
        step=step,
        total=total,
    )
    log_path = out / f"train_log_{stream}.csv"
    if start_epoch == 0:
        log_path.unlink(missing_ok=True)  # a fresh run's log, not appended to an earlier run's
    for epoch in range(start_epoch, epochs):
        if loop.done:
            break
        samples.set_epoch(epoch)
        batches = _loader(samples, opts, epoch, rank, world)
        batches2 = _loader(samples2, opts, epoch, rank, world) if samples2 is not None else None
        figures = _EpochFigures()
        t0 = time.perf_counter()
        bar = _progress(len(batches), "batch", opts.progress and main)
        if hasattr(bar, "set_description"):
            bar.set_description(f"{stream} {epoch + 1}/{epochs}")

        def on_step(s: StepOutcome) -> None:
            figures.add(s)
            bar.update(1)
            bar.set_postfix(
                loss=f"{figures.loss_sum / figures.seen:.3f}",
                acc=f"{figures.correct / figures.seen:.3f}",
                clips_s=f"{figures.seen * world / (time.perf_counter() - t0):.0f}",
            )

        loop.run(_batches(samples, batches, samples2, batches2), on_step)
        step = loop.step
        bar.close()
        elapsed = time.perf_counter() - t0
        if not main:
            continue
        last = epoch == epochs - 1 or step >= total
        val_acc = val_nll = float("nan")
        if val_clips and ((epoch + 1) % eval_every == 0 or last):
            val_acc, val_nll = consider(step)
        row = {
            "epoch": epoch + 1,
            "step": step,
            "lr": round(float(scheduler.get_last_lr()[0]), 6),
            "loss": round(figures.loss_sum / max(figures.seen, 1), 4),
            "train_acc": round(figures.correct / max(figures.seen, 1), 4),
            "val_acc": round(val_acc, 4),
            "val_loss": round(val_nll, 4),
            "clips_per_s": round(figures.seen * world / max(elapsed, 1e-9), 1),
            "seconds": round(elapsed, 2),
        }
        history.append(row)
        _append_csv(log_path, row)
        log.info(
            "%s epoch %d/%d (step %d/%d): loss %.3f, train acc %.3f, validation acc %.3f, %.0f clips/s",
            stream,
            epoch + 1,
            epochs,
            step,
            total,
            row["loss"],
            row["train_acc"],
            row["val_acc"],
            row["clips_per_s"],
        )
        resume_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch,
                "step": step,
                "history": json.dumps(history),
            },
            resume_path.with_suffix(".tmp"),
        )
        resume_path.with_suffix(".tmp").replace(resume_path)
    if best is not None and extra is None:
        (acc, neg_nll), best_step, state = best
        net.load_state_dict(state)
        if main:
            log.info("%s: kept step %d of %d (validation acc %.3f, log-loss %.3f on %d clips)", stream, best_step, step, acc, -neg_nll, len(val_clips))
        if history:
            history[-1] = {**history[-1], "kept_step": best_step, "kept_val_acc": round(acc, 4)}
    for p in net.parameters():
        p.requires_grad_(True)
    head2 = model.head2 if isinstance(model, MultiTaskNet) else None
    return net.cpu().eval(), (head2.cpu() if head2 is not None else None), history


@torch.inference_mode()
def quick_accuracy(net: nn.Module, val: StreamSamples, device: torch.device, batch: int = 64) -> float:
    """Held-out accuracy on one centre sample per clip: the cheap per-epoch figure."""
    net.eval()
    correct = 0
    for i in range(0, len(val), batch):
        x, y = collate(val, list(range(i, min(len(val), i + batch))))
        x = x.to(device)
        if device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        correct += int((net(x).argmax(1).cpu() == y).sum())
    net.train()
    return correct / max(1, len(val))


def _append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


# -- the whole job ------------------------------------------------------------------
def _config_for(opts: TrainOptions, classes: list[str]) -> ModelConfig:
    from ..nets import imagenet

    for arch in (opts.spatial_arch, opts.temporal_arch):
        if arch not in ARCHITECTURES:
            raise UserError(f"unknown architecture '{arch}': choose one of {', '.join(ARCHITECTURES)}")
    if not 16 <= opts.size <= opts.work_size:
        raise UserError(f"--size {opts.size} must be between 16 and the working size {opts.work_size}")
    flow = FlowSettings(algorithm=opts.flow_algorithm, preset=opts.flow_preset, width=opts.work_size, height=opts.work_size)
    cfg = ModelConfig(
        labels=list(classes), spatial_arch=opts.spatial_arch, temporal_arch=opts.temporal_arch, input_size=opts.size, clip_length=opts.clip_length, flow=flow
    )
    if opts.spatial_arch == imagenet.ARCH:  # the Lite nets' own input normalisation, whatever the init
        cfg.rgb_mean, cfg.rgb_std = imagenet.MEAN, imagenet.STD
    return cfg


def split_validation(clips: list[Clip], fraction: float, seed: int) -> tuple[list[Clip], list[Clip]]:
    """(fit, validation): `fraction` of each class's training clips, for early stopping, fusion and the
    unknown threshold. A class with fewer than 3 clips gives none. Clips of one UCF-101 group
    (`_gNN_`: the same person and scene) stay on one side, so validation is not flattered by near-copies."""
    import re

    if fraction <= 0:
        return clips, []
    rng = np.random.default_rng([seed, 23])
    fit, val = [], []
    for label in sorted({c.label for c in clips}):
        members = [c for c in clips if c.label == label]
        groups: dict[str, list[Clip]] = {}
        for c in members:
            m = re.search(r"_g\d+_", c.path.name)
            groups.setdefault(m.group(0) if m else c.path.name, []).append(c)
        keys = [list(groups)[i] for i in rng.permutation(len(groups))]
        # at least 2 per class once a class has 5 clips: one validation clip per class decides nothing
        want = max(round(fraction * len(members)), 2 if len(members) >= 5 else 1) if len(members) >= 3 else 0
        taken = 0
        for k in keys:
            if taken >= want or want == 0 or len(keys) < 2:
                fit += groups[k]
            else:
                val += groups[k]
                taken += len(groups[k])
    return fit, val


def _check_options(opts: TrainOptions) -> None:
    if opts.stream not in ("spatial", "temporal", "both"):
        raise UserError(f"--stream must be spatial, temporal or both, not {opts.stream}")
    for name in ("epochs", "batch", "clip_length", "repeats"):
        if getattr(opts, name) is not None and getattr(opts, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    if opts.lr <= 0 or opts.finetune_lr <= 0:
        raise UserError("--lr and --finetune-lr must be > 0")
    if opts.steps is not None and opts.steps < 1:
        raise UserError("--steps must be at least 1")
    if not 0 <= opts.val_fraction < 1:
        raise UserError("--val-fraction must be in 0..1 (0: no validation slice)")
    if not 0 <= opts.transitions <= 1:
        raise UserError("--transitions must be in 0..1 (a share of the temporal stream's training stacks; 0: off)")
    if opts.schedule not in ("cosine", "step"):
        raise UserError("--schedule must be cosine or step")


def train(opts: TrainOptions) -> dict:
    """Run a training job end to end; returns the metrics (empty when evaluation was skipped)."""
    _check_options(opts)
    device = resolve_device(opts.device)
    rank, world = setup_distributed(device)
    main = rank == 0
    torch.manual_seed(opts.seed)
    np.random.seed(opts.seed % 2**32)
    out = Path(opts.out)
    ds = open_dataset(opts.data, opts.split, opts.class_index, opts.train_list, opts.test_list, seed=opts.seed)
    if main:
        log.info("%s", ds.summary())
        out.mkdir(parents=True, exist_ok=True)
    config = _config_for(opts, ds.classes)
    config.flip_pairs = ds.flip_pairs
    if main and ds.flip_pairs:
        log.info("mirror pairs (a flip swaps their labels): %s", ", ".join("/".join(p) for p in ds.flip_pairs))
    model = _start_model(out, config, opts)
    config = model.config
    cache = FlowCache(opts.cache or Path(opts.data) / ".twostream-cache", config.flow)
    t_cache = time.perf_counter()
    if main:
        report = cache.build(ds.train + ds.test, ds.root, workers=opts.workers, progress=opts.progress)
        log.info("%s", report.line())
    barrier()
    train_clips, test_clips = cache.available(ds.train, ds.root), cache.available(ds.test, ds.root)
    skipped = len(ds.train) + len(ds.test) - len(train_clips) - len(test_clips)
    if not train_clips:
        raise UserError(f"{opts.data}: none of the {len(ds.train)} training clips could be read")
    extra = None
    if opts.data2:
        ds2 = open_dataset(opts.data2, opts.split, seed=opts.seed)
        cache2 = FlowCache(Path(opts.data2) / ".twostream-cache", config.flow)
        if main:
            log.info("multi-task second dataset: %s", ds2.summary())
            log.info("%s", cache2.build(ds2.train + ds2.test, ds2.root, workers=opts.workers, progress=opts.progress).line())
        barrier()
        extra = (cache2.available(ds2.train, ds2.root), ds2, cache2, len(ds2.classes))
    cache_s = time.perf_counter() - t_cache
    fit_clips, val_clips = split_validation(train_clips, opts.val_fraction, opts.seed)
    if main:
        log.info(
            "training on %d clips, %d held back for validation (early stopping, fusion, the unknown threshold)%s",
            len(fit_clips),
            len(val_clips),
            "" if val_clips else ": too few clips per class for a validation slice",
        )
    streams = STREAMS if opts.stream == "both" else (opts.stream,)
    trained = set(model.config.provenance.get("streams_trained", []))
    timings = {"flow_cache_s": round(cache_s, 1)}
    heads2 = {}
    for stream in streams:
        net = getattr(model, stream)
        chans = 3 if stream == "spatial" else config.temporal_channels
        arch = config.spatial_arch if stream == "spatial" else config.temporal_arch
        source = init_source(stream, arch, opts.init)
        if (
            opts.init == "imagenet"
            and source is None
            and not any(init_source(s_, a_, "imagenet") for s_, a_ in (("spatial", config.spatial_arch), ("temporal", config.temporal_arch)))
        ):
            raise UserError(
                f"--init imagenet: ImageNet weights exist for efficientnet_lite0 only, not {config.spatial_arch}/{config.temporal_arch}; "
                "use --spatial-arch efficientnet_lite0, --init PATH or --init none"
            )
        resuming = opts.resume and (out / ".resume" / f"{stream}.pt").is_file()
        if source is not None and not resuming:
            n = load_init(net, source, chans)
            if main:
                log.info("%s: initialised %d tensors from %s%s", stream, n, source, " (cross-modality first conv)" if chans != 3 else "")
        t0 = time.perf_counter()
        net, head2, history = train_stream(stream, net, fit_clips, val_clips, ds, cache, config, opts, device, out, extra, pretrained=source is not None)
        setattr(model, stream, net)
        if head2 is not None:
            heads2[stream] = head2
        timings[f"{stream}_train_s"] = round(time.perf_counter() - t0, 1)
        trained.add(stream)
        model.config.provenance["streams_trained"] = sorted(trained)
        model.config.provenance.setdefault("init", {})[stream] = source or "none"
        model.config.provenance.setdefault("history", {})[stream] = history[-1] if history else {}
        model.config.trained = trained == set(STREAMS)
        if main:
            model.save(out)
    if opts.fp16_weights:
        for net in (model.spatial, model.temporal):
            net.half().float()  # round now, so the fusion and evaluation below use the weights that ship
    metrics: dict = {}
    if main and model.config.trained:
        model.config.fusion = fit_fusion(model, fit_clips, val_clips, ds, cache, opts, device)
    if main and "spatial" in trained_streams(model.config):
        model.config.fusion.min_familiarity = fit_familiarity(model, fit_clips, val_clips, ds, cache, device)
    if main and trained_streams(model.config) and opts.evaluate and test_clips:  # one stream so far: scored on its own
        t0 = time.perf_counter()
        metrics, _ = evaluate_model(model, test_clips, ds.root, cache, opts.eval_samples, opts.ten_crop, device, None, opts.progress)
        metrics.pop("_svm", None)
        timings["evaluate_s"] = round(time.perf_counter() - t0, 1)
        metrics["skipped_unreadable_clips"] = skipped
        metrics["fusion_choice"] = model.config.provenance.get("fusion_choice", {})
        write_metrics(metrics, out / "metrics.json", ds.classes)
        what = f"deployed ({metrics['deployed']['mode']})"
        save_confusion_png(metrics["confusion"], ds.classes, out / "confusion.png", f"{what}, {len(test_clips)} test videos")
        model.config.metrics = {k: v for k, v in metrics.items() if k not in ("confusion",)}
    if main:
        model.config.provenance.update(
            {
                "name": out.name,
                "dataset": ds.name,
                "train_clips": len(fit_clips),
                "validation_clips": len(val_clips),
                "test_clips": len(test_clips),
                "command": opts.command,
                "options": {k: v for k, v in asdict(opts).items() if k not in ("command", "progress")},
                "timings": timings,
                "date": datetime.date.today().isoformat(),
                "torch": torch.__version__,
            }
        )
        model.save(out, half=opts.fp16_weights)
        if heads2:
            assert extra is not None  # a second head comes only from a second dataset
            _save_second_task(model, heads2, extra, out)
        write_model_card(out, model.config, ds, metrics)
        log.info("saved %s%s", out, "" if model.config.trained else f" (streams trained so far: {', '.join(sorted(trained))})")
    if world > 1:
        barrier()
        torch.distributed.destroy_process_group()
    return metrics


def fit_familiarity(model: TwoStreamModel, fit_clips: list[Clip], val_clips: list[Clip], ds: VideoDataset, cache: FlowCache, device: torch.device) -> float:
    """Class prototypes of the spatial net's features (from the training clips), and the familiarity
    below which a frame is unlike them (`realtime.nets.familiarity.calibrate`: between the validation
    frames, or the training frames when there are none, and frames of the procedural world when
    that is not the training world). Sets `model.prototypes`; returns the threshold."""
    from ..nets.familiarity import FAMILIARITY_QUANTILE, calibrate, familiarity_of, other_world_features, prototypes_from

    cfg = model.config
    f, owner = spatial_features(model.spatial, fit_clips, ds.root, cache, cfg, device=device)
    labels = np.array([c.label for c in fit_clips])[owner]
    model.prototypes = prototypes_from(f, labels, cfg.num_classes)
    check = spatial_features(model.spatial, val_clips, ds.root, cache, cfg, device=device)[0] if val_clips else f
    other = familiarity_of(other_world_features(model.spatial, cfg), model.prototypes)
    threshold = calibrate(familiarity_of(check, model.prototypes), other)
    cfg.provenance.setdefault("fusion_choice", {})["familiarity"] = {
        "prototypes": cfg.num_classes,
        "threshold": threshold,
        "quantile": FAMILIARITY_QUANTILE,
        "procedural_world_p95": round(float(np.quantile(other, 0.95)), 4),
        "frames": int(len(check)),
        "on": "validation frames" if val_clips else "training frames (no validation clips)",
    }
    log.info(
        'familiarity: a frame whose spatial features are less like every class\'s than %.3f is "no known action" (the 1st percentile of %d %s)',
        threshold,
        len(check),
        "validation frames" if val_clips else "training frames",
    )
    return threshold


def fit_fusion(
    model: TwoStreamModel, fit_clips: list[Clip], val_clips: list[Clip], ds: VideoDataset, cache: FlowCache, opts: TrainOptions, device: torch.device
) -> FusionConfig:
    """The deployed fusion and the "no known action" threshold, from the validation clips (scores the
    nets did not train on; never saturated training-set scores). Without validation clips: the
    average, no threshold, and the SVM fitted on training scores as before."""
    cfg = model.config
    if not val_clips:
        fusion = FusionConfig(mode="avg")
        if opts.svm_samples > 0:
            labels = np.array([c.label for c in fit_clips])
            s = video_scores(model.spatial, fit_clips, ds.root, cache, cfg, "spatial", opts.svm_samples, device=device)
            t = video_scores(model.temporal, fit_clips, ds.root, cache, cfg, "temporal", opts.svm_samples, device=device)
            svm = fit_svm(s, t, labels, cfg.num_classes)
            fusion.svm_weight, fusion.svm_bias = svm.svm_weight, svm.svm_bias
        cfg.provenance["fusion_choice"] = {"why": "no validation clips (too few training clips per class): average fusion, no unknown threshold"}
        return fusion
    labels = np.array([c.label for c in val_clips])
    frames: dict[str, list] = {"spatial": [], "temporal": []}
    scores = {
        st: video_scores(getattr(model, st), val_clips, ds.root, cache, cfg, st, opts.eval_samples, device=device, per_position=frames[st]) for st in STREAMS
    }
    weight, choice = choose_fusion(scores["spatial"], scores["temporal"], labels, (frames["spatial"], frames["temporal"]))
    threshold, calib = calibrate_min_score(frames["spatial"], frames["temporal"], labels, weight)
    fusion = FusionConfig(mode="weighted", spatial_weight=weight, min_score=threshold)
    if opts.svm_samples > 0 and len(np.unique(labels)) >= 2:
        svm = fit_svm(scores["spatial"], scores["temporal"], labels, cfg.num_classes)  # on validation scores, for --fusion svm
        fusion.svm_weight, fusion.svm_bias = svm.svm_weight, svm.svm_bias
    cfg.provenance["fusion_choice"] = {**choice, "unknown": calib}
    log.info(
        "fusion: %s (spatial weight %.1f; validation top-1 spatial %.3f, temporal %.3f, best mix %.3f on %d clips); "
        '"no known action" below a fused score of %.2f',
        choice["chosen"],
        weight,
        choice["spatial"],
        choice["temporal"],
        choice["best_mixed"],
        len(val_clips),
        threshold,
    )
    return fusion


def _start_model(out: Path, config: ModelConfig, opts: TrainOptions) -> TwoStreamModel:
    """Continue the checkpoint in `out` when training one stream into it; else fresh nets."""
    if (out / CONFIG_FILE).is_file() and opts.stream != "both":
        try:
            model = load_checkpoint(out, flow=config.flow, labels=config.labels)
        except CheckpointError as e:
            raise UserError(f"{out} holds a model that does not fit this training job ({e}); use another --out") from None
        if (model.config.spatial_arch, model.config.input_size, model.config.clip_length) != (config.spatial_arch, config.input_size, config.clip_length):
            raise UserError(
                f"{out} holds a {model.config.spatial_arch} model at {model.config.input_size} px, L={model.config.clip_length}; "
                "train with the same --arch/--size/--L or use another --out"
            )
        for stream in STREAMS:  # carry dropout settings into the loaded nets
            _set_dropout(getattr(model, stream), opts.dropout)
        return model
    torch.manual_seed(opts.seed)
    spatial = create_model(config.spatial_arch, config.num_classes, 3, dropout=opts.dropout)
    temporal = create_model(config.temporal_arch, config.num_classes, config.temporal_channels, dropout=opts.dropout)
    config.trained = False
    return TwoStreamModel(config, spatial, temporal)


def _set_dropout(net: nn.Module, p: float) -> None:
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.p = p


def _save_second_task(model: TwoStreamModel, heads2: dict, extra: tuple, out: Path) -> None:
    import copy

    _, ds2, _, _ = extra
    cfg2 = copy.deepcopy(model.config)
    cfg2.labels = list(ds2.classes)
    cfg2.metrics = {}
    cfg2.fusion = FusionConfig()
    cfg2.trained = set(heads2) == set(STREAMS)
    model2 = TwoStreamModel.create(cfg2)
    for stream, head in heads2.items():
        net2 = getattr(model2, stream)
        own = getattr(model, stream).state_dict()
        trunk = {k: v for k, v in own.items() if k in net2.state_dict() and net2.state_dict()[k].shape == v.shape}
        net2.load_state_dict(trunk, strict=False)
        lin = classifier_layer(net2)
        lin.load_state_dict(head[-1].state_dict())
    model2.save(out / "task2")
    log.info("saved the second task's model (%d classes of %s) to %s", len(ds2.classes), ds2.name, out / "task2")
