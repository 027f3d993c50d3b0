"""The one SGD loop: optimiser steps over batches, for offline training (trainer.py) and teach mode's fine-tuning (teach.py).

Each caller keeps its own hyper-parameters (optimiser, schedule, clipping, AMP, loss) and its own batch order; the loop
only does what every step does: forward, loss, zero_grad, backward, optional clipping, optimiser and scheduler step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from .data import StreamSamples

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Batch:
    x: torch.Tensor
    y: torch.Tensor
    task2: tuple[torch.Tensor, torch.Tensor] | None = None  # a second task's (x, y) (multi-task training): its loss is added


@dataclass
class StepOutcome:
    step: int  # optimiser steps taken so far, this one included
    logits: torch.Tensor  # the first task's, detached
    labels: torch.Tensor
    loss: torch.Tensor  # detached


def collate(samples: StreamSamples, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*(samples[i] for i in indices))
    # numpy, not torch.stack: a copy this size gains nothing from threads, and torch's OpenMP
    # threads spin-wait badly when other processes share the cores (measured: 2.6 s for 32 MB).
    return torch.from_numpy(np.stack([x.numpy() for x in xs])), torch.tensor(ys)


def freeze_batchnorm(net: nn.Module) -> None:
    """Keep a pre-trained net's BatchNorm statistics: a few dozen clips cannot re-estimate them."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


class SGDLoop:
    """Optimiser steps over batches of one model, counted across calls to `run` (one call per epoch).

    `model` is what the forward pass goes through (a DistributedDataParallel wrapper is fine); `scaler` turns on
    fp16 autocast when it is enabled; `clip_norm` clips the gradients' total norm; `frozen_batchnorm` keeps
    BatchNorm statistics; `channels_last` puts inputs in that memory format; `total` is the step budget."""

    def __init__(
        self,
        model: nn.Module,
        optimiser: torch.optim.Optimizer,
        device: torch.device,
        loss_fn: LossFn,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        scaler: torch.amp.GradScaler | None = None,
        clip_norm: float | None = None,
        frozen_batchnorm: bool = False,
        channels_last: bool = False,
        step: int = 0,
        total: int | None = None,
    ):
        self.model, self.optimiser, self.device, self.loss_fn, self.scheduler = model, optimiser, device, loss_fn, scheduler
        self.scaler = scaler if scaler is not None else torch.amp.GradScaler(device.type, enabled=False)  # disabled: a pass-through
        self.clip_norm, self.frozen_batchnorm, self.channels_last = clip_norm, frozen_batchnorm, channels_last
        self.step, self.total = step, total

    @property
    def done(self) -> bool:
        return self.total is not None and self.step >= self.total

    def train_mode(self) -> None:
        self.model.train()
        if self.frozen_batchnorm:
            freeze_batchnorm(self.model)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def step_on(self, batch: Batch) -> StepOutcome:
        """One optimiser step on one batch."""
        x, y = self._input(batch.x), batch.y.to(self.device)
        with torch.enable_grad():  # a caller may run under no_grad (a UI thread); a training step needs autograd
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.scaler.is_enabled()):
                logits = self.model(x)
                loss = self.loss_fn(logits.float(), y)
                if batch.task2 is not None:
                    x2, y2 = batch.task2
                    loss = loss + self.loss_fn(self.model(self._input(x2), 1).float(), y2.to(self.device))  # the paper sums the tasks' losses
            self.optimiser.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.clip_norm is not None:
                self.scaler.unscale_(self.optimiser)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
            self.scaler.step(self.optimiser)
            self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        self.step += 1
        return StepOutcome(self.step, logits.detach(), y, loss.detach())

    def run(self, batches: Iterable[Batch], on_step: Callable[[StepOutcome], None] | None = None) -> None:
        """Steps over `batches` (pulled one at a time, so a lazy iterable loads only what is used) until they or the budget run out."""
        self.train_mode()
        if self.done:
            return
        for batch in batches:
            outcome = self.step_on(batch)
            if on_step is not None:
                on_step(outcome)
            if self.done:
                return
