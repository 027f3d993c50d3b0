"""Training progress as one typed event, shared by the trainer, the command line and the desktop app.

`twostream train --from MODEL --progress-json` writes one `TrainEvent.to_json()` line per event on
stdout; the app's Teach panel reads them back with `TrainEvent.from_json`. The last event is
`stage="done"` (with `out` and `metrics`) or `stage="error"` (with the one-line `error` a user sees),
so a reader never has to parse the trainer's log lines. Imports nothing heavy.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

STAGES = ("flow", "features", "heads", "finetune", "save", "done", "error")


@dataclass(frozen=True)
class TrainEvent:
    stage: str  # one of STAGES
    fraction: float  # 0..1 of the whole job
    message: str = ""
    elapsed_s: float | None = None
    accuracy: dict[str, float] | None = None  # held-out top-1 per stream and fused, once known
    out: str | None = None  # "done": the checkpoint directory written
    metrics: dict[str, Any] | None = None  # "done": what the model card says
    error: str | None = None  # "error": what went wrong, one line

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None})

    @classmethod
    def from_json(cls, line: str | bytes) -> "TrainEvent | None":
        """The event on one line, or None for a line that is not one (anything else a process may print)."""
        try:
            raw = json.loads(line)
        except ValueError:
            return None
        if not isinstance(raw, dict) or raw.get("stage") not in STAGES or not isinstance(raw.get("fraction"), (int, float)):
            return None
        kinds: dict[str, type | tuple[type, ...]] = {"message": str, "elapsed_s": (int, float), "accuracy": dict, "out": str, "metrics": dict, "error": str}
        fields = {k: raw[k] for k, kind in kinds.items() if isinstance(raw.get(k), kind)}
        return cls(stage=raw["stage"], fraction=float(raw["fraction"]), **fields)
