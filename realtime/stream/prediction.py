"""What a pipeline says about one frame: the fused, smoothed scores, both streams' own, timings and status."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NO_KNOWN_ACTION = "no known action"


@dataclass
class Prediction:
    """What the pipeline says about one frame. Scores are probabilities over `labels`."""

    index: int
    capture_ts: float  # time.monotonic() when the frame was read
    flow_ts: float  # flow and net inputs ready
    infer_ts: float  # fused scores ready
    labels: list[str]
    fused: np.ndarray  # fused and smoothed
    spatial: np.ndarray
    temporal: np.ndarray | None  # None until L flow fields exist
    dropped: int = 0  # frames dropped so far, all stages
    status: str = "ok"
    frame: np.ndarray | None = None  # the BGR frame as read
    flow: np.ndarray | None = None  # newest flow field (H, W, 2) px at the working size
    truth: str | None = None  # ground-truth label, for synthetic sources
    since_cut: int | None = None  # frames since the last shot cut (0: this frame starts a new shot; None: none yet)
    min_score: float = 0.0  # below this fused top score the frame shows "no known action"
    familiarity: float | None = None  # how like the training frames the spatial net finds this one (realtime.nets.familiarity)
    min_familiarity: float = 0.0  # ... below which it is "no known action" too

    @property
    def ready(self) -> bool:
        """Both streams contributed (L flow fields were available)."""
        return self.temporal is not None

    @property
    def known(self) -> bool:
        """The evidence names a class: the fused top score reaches the model's calibrated threshold, and
        the frame looks like the frames the model was trained on."""
        return self.score >= self.min_score and (self.familiarity is None or self.familiarity >= self.min_familiarity)

    @property
    def top_label(self) -> str:
        """The best-scoring class, known or not."""
        return self.labels[int(np.argmax(self.fused))]

    @property
    def label(self) -> str | None:
        """The recognised class, or None: no known action (the scores stay available)."""
        return self.top_label if self.known else None

    @property
    def display_label(self) -> str:
        return self.top_label if self.known else NO_KNOWN_ACTION

    @property
    def score(self) -> float:
        return float(np.max(self.fused))

    @property
    def latency_ms(self) -> float:
        return (self.infer_ts - self.capture_ts) * 1e3

    def top(self, k: int = 5, which: str = "fused") -> list[tuple[str, float]]:
        scores = getattr(self, which)
        if scores is None:
            return []
        order = np.argsort(scores)[::-1][:k]
        return [(self.labels[i], float(scores[i])) for i in order]

    def to_dict(self, k: int = 5) -> dict:
        return {
            "frame": self.index,
            "label": self.label,
            "score": round(self.score, 4),
            "known": self.known,
            "min_score": round(self.min_score, 4),
            **({"familiarity": round(self.familiarity, 4), "min_familiarity": round(self.min_familiarity, 4)} if self.familiarity is not None else {}),
            "top": [{"label": lab, "score": round(s, 4)} for lab, s in self.top(k)],
            "spatial_top": [{"label": lab, "score": round(s, 4)} for lab, s in self.top(3, "spatial")],
            "temporal_top": [{"label": lab, "score": round(s, 4)} for lab, s in self.top(3, "temporal")],
            "ready": self.ready,
            "status": self.status,
            "cut": self.since_cut == 0,
            "capture_ts": round(self.capture_ts, 6),
            "latency_ms": {
                "flow": round((self.flow_ts - self.capture_ts) * 1e3, 3),
                "infer": round((self.infer_ts - self.flow_ts) * 1e3, 3),
                "total": round(self.latency_ms, 3),
            },
            "dropped": self.dropped,
            **({"truth": self.truth} if self.truth is not None else {}),
        }
