"""Helpers shared by the benchmark scripts."""
from __future__ import annotations


def busy_note(m: dict) -> str:
    """A line saying the machine was busy, when it was: absolute times are then inflated, ratios less so."""
    load = max(m["load_avg_at_start"][0], m.get("load_avg_at_end", [0])[0])
    if load <= 0.75 * (m["cores"] or 1):
        return ""
    return (f"\n**Measured on a busy machine** (load average up to {load:.1f} on {m['cores']} cores, other work running): "
            "absolute times are inflated and noisy; compare the ratios measured in the same run.\n")
