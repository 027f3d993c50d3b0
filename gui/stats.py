"""What the Stats panel says, as plain text: no Qt here, so it is tested without a window (tests/test_gui_stats.py).

`info` is the running session's `gui.session.SessionInfo` (read by attribute only).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .session import SessionInfo

WARN = "#ffb13b"  # the colour of a row that needs the user's eye (drops, an untrained model)


def model_title(info: SessionInfo) -> str:
    """The model's name, marked UNTRAINED when it is (once: the fallback's own name already says so)."""
    if info.trained or "untrained" in info.model_name.lower():
        return info.model_name
    return f"{info.model_name} (UNTRAINED)"


def threshold_text(info: SessionInfo) -> str:
    """The "no known action" threshold in use and whose it is, e.g. "below 0.42 (model)", "below 0.90 (yours; model 0.42)"."""
    whose = f"yours; model {info.model_min_score:.2f}" if info.min_score_set else "model"
    unfamiliar = " or unlike its training frames" if info.familiarity else ""
    if info.min_score > 0:
        return f"below {info.min_score:.2f}{unfamiliar} ({whose})"
    return f"unlike its training frames ({whose}; score threshold 0)" if info.familiarity else f"never: threshold 0 ({whose})"


def stats_rows(st: dict, rates: tuple[float, float, float], display_fps: float, unknown_fraction: float, window_s: float) -> list[tuple[str, str, str | None]]:
    """(row, text, colour or None) for each Stats row, from the controller's stats `st`, the stage rates
    (captured, flowed, predicted frames per second), the display rate and the timeline's unknown share."""
    info = st["info"]
    nominal = f" of {info.source_fps:g}" if info.source_fps else ""
    p50, p95 = st["latency_p50"], st["latency_p95"]
    d = st["dropped"]
    total = sum(d.values())
    gated = info.min_score > 0 or info.familiarity
    return [
        ("capture", f"{rates[0]:5.1f}{nominal}", None),
        ("flow", f"{rates[1]:5.1f}", None),
        ("infer", f"{rates[2]:5.1f}", None),
        ("display", f"{display_fps:5.1f}", None),
        ("latency", "–" if math.isnan(p50) else f"{p50:5.1f} / {p95:5.1f} ms", None),
        ("dropped", f"{total}" + (f"  (capture {d['capture']}, infer {d['infer']}, output {d['output']})" if total else ""), WARN if total else None),
        ("engine", f"{info.engine} ({info.precision})", None),
        ("device", info.device, None),
        ("model", f"{model_title(info)}, {len(info.labels)} classes" + (f", {info.accuracy}" if info.accuracy else ""), None if info.trained else WARN),
        ("unknown", threshold_text(info) + (f" · {unknown_fraction:.0%} of the last {window_s:g} s" if gated else ""), None),
        ("source", f"{info.source_name}  [{st['status']}]", None),
    ]
