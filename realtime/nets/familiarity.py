"""How familiar a frame looks to the spatial net: the evidence behind "no known action" for inputs
unlike anything the model was trained on.

A model keeps one prototype per class: the mean direction of its spatial net's features over the
training frames of that class. A frame's familiarity is the largest cosine similarity between its
features and a prototype. Softmax scores cannot say this: a net trained on one world gives
confident scores to frames of another (the shipped model called a woman applying eye make-up
`hold_ring` with spatial score 1.00), while in feature space such frames sit far from every
prototype. The net and the similarity run as one module, so every engine computes it in the same
pass as the class scores, as an extra output column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .models import ActionNet

if TYPE_CHECKING:
    from .checkpoint import ModelConfig

FAMILIARITY_QUANTILE = 0.01  # of held-out in-distribution frames the threshold may call unfamiliar


class WithFamiliarity(nn.Module):
    """A net whose output is its class logits plus one last column: the frame's familiarity."""

    prototypes: torch.Tensor  # a buffer: saved with the module, moved with it

    def __init__(self, net: ActionNet, prototypes: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("prototypes", F.normalize(prototypes.float(), dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.net.forward_features(x)
        logits = self.net.head(f)
        familiarity = (F.normalize(f, dim=1) @ self.prototypes.to(f.dtype).T).amax(1, keepdim=True)
        return torch.cat([logits, familiarity.to(logits.dtype)], 1)


def split(out: torch.Tensor, extra: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(softmax class scores, familiarity or None) from a prepared spatial net's output."""
    if not extra:
        return torch.softmax(out.float(), -1), None
    return torch.softmax(out[:, :-1].float(), -1), out[:, -1].float()


def prototypes_from(features: np.ndarray, labels: np.ndarray, classes: int) -> torch.Tensor:
    """One unit-length mean feature direction per class (a class with no frames gets the overall mean)."""
    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    overall = f.mean(0)
    protos = np.stack([f[labels == c].mean(0) if (labels == c).any() else overall for c in range(classes)])
    return F.normalize(torch.from_numpy(protos.astype(np.float32)), dim=1)


def familiarity_of(features: np.ndarray, prototypes: torch.Tensor) -> np.ndarray:
    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return (f @ prototypes.numpy().T).max(1)


def calibrate(familiarity: np.ndarray, other_world: np.ndarray | None = None, quantile: float = FAMILIARITY_QUANTILE) -> float:
    """The familiarity threshold: halfway between frames like the training ones (the `quantile` of
    `familiarity`, held-out in-distribution frames) and frames of another world (the 95th
    percentile of `other_world`), so that a new person or room, less familiar than the held-out
    frames but far more than another world, is still known. Without another world below the
    training frames (the model was trained on it), the `quantile` itself."""
    if not len(familiarity):
        return 0.0
    low = float(np.quantile(familiarity, quantile))
    if other_world is not None and len(other_world):
        far = float(np.quantile(other_world, 0.95))
        if far < low:
            return round((low + far) / 2, 4)
    return round(low, 4)


def other_world_features(net: ActionNet, config: ModelConfig, frames: int = 48, seed: int = 12345) -> np.ndarray:
    """Spatial features of frames from the built-in procedural world (no data needed): the 'other
    world' reference for a model trained on real footage. (For a model trained on the procedural
    world itself they are familiar, and `calibrate` then ignores them.)"""
    from ..stream.preprocess import centre_crop, rgb_input, to_working_size
    from ..io.synthetic import CLASSES, SyntheticClip

    top, left = centre_crop(config.flow, config.input_size)
    xs = []
    for i in range(frames):
        clip = SyntheticClip(CLASSES[i % len(CLASSES)], seed + i, 320, 240)
        xs.append(rgb_input(to_working_size(clip.frame(i % 30), config.flow), config, top, left))
    net = net.eval()
    with torch.inference_mode():
        x = torch.from_numpy(np.stack(xs))
        return net.forward_features(x.to(next(net.parameters()).device)).float().cpu().numpy()
