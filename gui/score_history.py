"""The recent fused scores behind the timeline: a ring written by the controller's reader thread, read by the Qt thread."""

from __future__ import annotations

import threading

import numpy as np


class ScoreHistory:
    """Timestamps, fused scores and verdicts of recent predictions, for the timeline. Written by one thread, read by another."""

    def __init__(self, capacity: int = 1200) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._ts = np.zeros(capacity, np.float64)
        self._scores = np.zeros((capacity, 0), np.float32)
        self._min = np.zeros(capacity, np.float32)  # each prediction's "no known action" threshold
        self._known = np.ones(capacity, bool)  # each prediction's verdict (the threshold, and whether the frame looked familiar)
        self._labels: tuple[str, ...] = ()
        self._n = 0
        self._head = 0

    def reset(self, labels: tuple[str, ...]) -> None:
        with self._lock:
            self._labels = labels
            self._scores = np.zeros((self.capacity, len(labels)), np.float32)
            self._n = self._head = 0

    def append(self, ts: float, scores: np.ndarray, min_score: float = 0.0, known: bool | None = None) -> None:
        with self._lock:
            if scores.shape[0] != self._scores.shape[1]:
                return
            self._ts[self._head] = ts
            self._scores[self._head] = scores
            self._min[self._head] = min_score
            self._known[self._head] = bool(scores.max() >= min_score) if known is None else known
            self._head = (self._head + 1) % self.capacity
            self._n = min(self._n + 1, self.capacity)

    def window(self, since: float) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray, np.ndarray]:
        """(timestamps, scores (N, C), labels, thresholds, known) of the predictions captured after `since`, oldest first:
        each one's fused scores, its "no known action" threshold and whether it was known, read together."""
        with self._lock:
            order = (np.arange(self._n) + self._head - self._n) % self.capacity
            keep = order[self._ts[order] > since]
            return self._ts[keep], self._scores[keep], self._labels, self._min[keep], self._known[keep]

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    def __len__(self) -> int:
        return self._n
