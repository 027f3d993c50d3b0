"""Late fusion of the two streams' class scores, and smoothing over recent frames."""

from __future__ import annotations

import numpy as np

from ..nets.checkpoint import FUSION_MODES, FusionConfig
from ..errors import UserError
from .cuts import CUT_RAMP


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def l2_normalise(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), 1e-12)


class Fusion:
    """Fuse per-stream softmax scores: average, weighted average, or the checkpoint's linear SVM.

    The SVM (paper, sec. 6) scores the stacked L2-normalised softmax vectors; its decision values
    go through a softmax so every mode yields a distribution for display and smoothing.
    """

    def __init__(self, config: FusionConfig, mode: str | None = None, spatial_weight: float | None = None, min_score: float | None = None):
        self.mode = mode or config.mode
        # "no known action" below this fused top score: the model's calibrated threshold unless overridden
        self.min_score = config.min_score if min_score is None else float(min_score)
        if not 0.0 <= self.min_score <= 1.0:
            raise UserError(f"--min-score {self.min_score} is outside 0..1 (0: always name the top class)")
        # a frame unlike the training frames is unknown too, unless the caller asked to always name the top class
        self.min_familiarity = 0.0 if min_score == 0 else config.min_familiarity
        if self.mode not in FUSION_MODES:
            raise UserError(f"unknown fusion '{self.mode}': choose one of {', '.join(FUSION_MODES)}")
        if self.mode == "svm" and config.svm_weight is None:
            raise UserError("this model has no fitted SVM fusion: use --fusion avg or weighted")
        self.spatial_weight = 0.5 if self.mode == "avg" else (config.spatial_weight if spatial_weight is None else spatial_weight)
        if not 0.0 <= self.spatial_weight <= 1.0:
            raise UserError(f"spatial weight {self.spatial_weight} is outside 0..1")
        if self.mode == "svm":
            self._w = np.asarray(config.svm_weight, np.float32)
            self._b = np.asarray(config.svm_bias, np.float32)

    def __call__(self, spatial: np.ndarray, temporal: np.ndarray | None, since_cut: int | None = None) -> np.ndarray:
        """Scores (..., C) from each stream -> fused (..., C). Before the temporal stream is ready, spatial alone.

        `since_cut`: frames since a shot cut (0: this frame starts a new shot; None: no cut). For the
        first CUT_RAMP frames of a shot the temporal stream's stack is mostly the previous shot's
        motion, so a weighted or average fusion that uses both streams hands its weight to the spatial
        stream and takes it back a frame at a time. A model that deploys one stream alone (weight 0 or
        1) or the SVM keeps its fusion as it is.
        """
        if temporal is None:
            return spatial
        if self.mode == "svm":
            both = np.concatenate([l2_normalise(spatial), l2_normalise(temporal)], axis=-1)
            return softmax(both @ self._w.T + self._b)
        w = self.spatial_weight
        if since_cut is not None and since_cut < CUT_RAMP and 0.0 < w < 1.0:
            w = 1.0 - (1.0 - w) * since_cut / CUT_RAMP
        return w * spatial + (1.0 - w) * temporal


class Smoother:
    """The last `window` score vectors averaged, each weighted by its own top score (window 1 = off).

    A frame with flat scores (the actor out of view, motion blur, a shot's first frames) carries
    little evidence and moves the average little; a confident frame moves it more. Kept in
    preallocated rings.
    """

    def __init__(self, num_classes: int, window: int = 8):
        if window < 1:
            raise UserError(f"smoothing window must be >= 1 frame, got {window}")
        self._ring = np.zeros((window, num_classes), np.float64)  # weighted scores
        self._weights = np.zeros(window, np.float64)
        self._sum = np.zeros(num_classes, np.float64)
        self._total = 0.0
        self._n = 0
        self._head = 0

    @property
    def window(self) -> int:
        return self._ring.shape[0]

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        if self.window == 1:
            return np.asarray(scores, np.float32)
        if self._n == self.window:
            self._sum -= self._ring[self._head]
            self._total -= self._weights[self._head]
        else:
            self._n += 1
        weight = max(float(np.max(scores)), 1e-6)
        np.multiply(scores, weight, out=self._ring[self._head])
        self._weights[self._head] = weight
        self._sum += self._ring[self._head]
        self._total += weight
        self._head = (self._head + 1) % self.window
        return (self._sum / self._total).astype(np.float32)

    def reset(self) -> None:
        self._sum[:] = 0
        self._total = 0.0
        self._n = 0
        self._head = 0
