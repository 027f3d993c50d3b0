"""`train`'s options and their defaults (TrainOptions; TeachOptions for `train --from`): the one place they live.
The command line (realtime/cli/train.py) builds its defaults from these dataclasses; imports nothing heavy, so
`twostream --help` stays fast."""

from __future__ import annotations

import shlex
import sys
from dataclasses import MISSING, dataclass, field, fields

from ..options import CLIP_LENGTH, FLOW_ALGORITHM, FLOW_PRESET, FLOW_SIZE, INPUT_SIZE, SPATIAL_ARCH, TEMPORAL_ARCH


@dataclass
class TrainOptions:
    data: str
    out: str
    stream: str = "both"
    arch: str | None = None  # both streams' architecture, when given (overrides the two below)
    spatial_arch: str = SPATIAL_ARCH
    temporal_arch: str = TEMPORAL_ARCH
    size: int = INPUT_SIZE
    work_size: int = FLOW_SIZE
    clip_length: int = CLIP_LENGTH
    flow_algorithm: str = FLOW_ALGORITHM
    flow_preset: str = FLOW_PRESET
    epochs: int | None = None  # exactly this many epochs when given; by default a budget of steps (below)
    steps: int | None = None  # optimiser steps per stream; default max(min_steps, 30 epochs' worth)
    min_steps: int = 300  # a small dataset still gets enough steps (48 clips x 30 epochs would be ~45)
    batch: int = 32
    seed: int = 0
    lr: float = 0.02
    finetune_lr: float = 0.002  # a net that starts from ImageNet weights (BatchNorm statistics kept)
    finetune_fraction: float = 0.3  # of a pre-trained net's layers (the last ones) that fine-tuning trains; 1: all
    momentum: float = 0.9
    weight_decay: float = 1e-4
    dropout: float = 0.2
    label_smoothing: float = 0.1
    schedule: str = "cosine"
    repeats: int = 1  # samples drawn per clip per epoch
    transitions: float = 0.0  # of the temporal stream's training stacks: another class's motion, then this clip's start (make model: 0.5)
    val_fraction: float = 0.2  # of each class's training clips: early stopping, fusion, the unknown threshold
    train_list: str | None = None
    test_list: str | None = None
    class_index: str | None = None
    split: int = 1
    data2: str | None = None  # a second dataset for multi-task training (its own head)
    init: str = "auto"  # auto: ImageNet for an efficientnet_lite0 spatial net, else none; imagenet; none; PATH
    resume: bool = False
    cache: str | None = None
    workers: int = 2  # flow-cache worker processes
    loader_workers: int = 0
    device: str = "auto"
    amp: bool = True
    eval_samples: int = 25
    ten_crop: bool = False
    svm_samples: int = 5
    max_steps: int | None = None
    progress: bool = True
    evaluate: bool = True
    fp16_weights: bool = False  # store weights as fp16 (half the size); metrics are measured on the rounded weights
    command: str = field(default_factory=lambda: " ".join(shlex.quote(a) for a in ["twostream", *sys.argv[1:]]))

    def __post_init__(self) -> None:
        if self.arch:
            self.spatial_arch = self.temporal_arch = self.arch


# -- teaching new classes (`train --from MODEL`, realtime/train/teach.py) --
MIN_CLIPS = 4  # per class: at least 3 to fit on and 1 to check on
RECOMMENDED_CLIPS = 10
FINETUNE_MODES = ("heads", "all")


@dataclass
class TeachOptions:
    data: str
    base: str | None = None  # checkpoint to start from (default: the shipped model)
    out: str | None = None  # default: user_models_dir()/<data folder name>-<date>
    finetune: str = "heads"  # "heads": new classifier heads only; "all": then the whole nets
    epochs: int = 3  # whole-net epochs with finetune="all"
    held_out: float = 0.2  # fraction of each class's clips kept for the accuracy figure
    min_clips: int = MIN_CLIPS
    positions: int = 20  # frames / flow stacks sampled per training clip
    crops: int = 4  # random crops (with scale jitter) per position, besides the centre crop
    seed: int = 0
    workers: int = 2
    device: str = "cpu"
    command: str = field(default_factory=lambda: " ".join(shlex.quote(a) for a in ["twostream", *sys.argv[1:]]))


def default(name: str, options: type = TrainOptions) -> object:
    """The default of `name` in TrainOptions (or TeachOptions), for the command line's options and help."""
    f = next(f for f in fields(options) if f.name == name)
    if f.default is MISSING:
        raise KeyError(f"{options.__name__}.{name} has no default")
    return f.default
