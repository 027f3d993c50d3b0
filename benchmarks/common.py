"""Helpers shared by the benchmark scripts."""
from __future__ import annotations

import os
import platform


def cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine(gpu: str | None = None) -> dict:
    """The machine a figure came from, in the form run_all.py's SUMMARY.md reads."""
    import torch

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "gpu": gpu, "python": platform.python_version(),
            "torch": torch.__version__, "platform": platform.platform(), "load_avg_at_start": [round(v, 2) for v in os.getloadavg()]}


def busy_note(m: dict) -> str:
    """A line saying the machine was busy, when it was: absolute times are then inflated, ratios less so."""
    load = max(m["load_avg_at_start"][0], m.get("load_avg_at_end", [0])[0])
    if load <= 0.75 * (m["cores"] or 1):
        return ""
    return (f"\n**Measured on a busy machine** (load average up to {load:.1f} on {m['cores']} cores, other work running): "
            "absolute times are inflated and noisy; compare the ratios measured in the same run.\n")
