"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def twostream(*args: str) -> subprocess.CompletedProcess:
    """Run a `twostream` command as a user does (the project's CLI, in a fresh process); raise on failure."""
    r = subprocess.run([sys.executable, "-m", "realtime.cli", *args], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"
        raise RuntimeError(f"twostream {' '.join(args[:3])} failed: {last}")
    return r


def cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine(gpu: str | None = None, **extra: object) -> dict:
    """The machine a figure came from, in the form run_all.py's SUMMARY.md reads; pass it to `finish` at the end."""
    import torch

    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        **extra,
        "load_avg_at_start": [round(v, 2) for v in os.getloadavg()],
        "cpu_at_start": _cpu_times(),
    }


def _cpu_times() -> dict:
    """CPU seconds the whole machine was busy, CPU seconds this process and its reaped children used, and the clock."""
    busy = None
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...: everything but idle and iowait is busy
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    t = os.times()
    return {"machine_busy_s": busy, "own_s": t.user + t.system + t.children_user + t.children_system, "t": time.monotonic()}


def finish(m: dict) -> dict:
    """Close `machine(...)`'s record: the load average at the end and how many cores other work kept busy meanwhile.

    The load average counts the benchmark's own threads, so a benchmark that keeps both cores busy looks "busy"
    by it; `other_cores_busy` is the machine's busy CPU time less this process's (and its finished children's),
    per second of the run: work that was not the benchmark's.
    """
    m["load_avg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    start, end = m.pop("cpu_at_start", None), _cpu_times()
    if start and start["machine_busy_s"] is not None and end["machine_busy_s"] is not None:
        wall = end["t"] - start["t"]
        other = (end["machine_busy_s"] - start["machine_busy_s"]) - (end["own_s"] - start["own_s"])
        m["other_cores_busy"] = round(max(0.0, other) / wall, 2) if wall > 0 else None
        m["run_s"] = round(wall, 1)
    return m


def busy_note(m: dict) -> str:
    """A line saying the machine was busy, when it was: absolute times are then inflated, ratios less so.

    Judged by the cores other work kept busy during the run when `finish` measured it (a quarter of the
    cores or more), else by the load average (which counts the benchmark itself).
    """
    other = m.get("other_cores_busy")
    cores = m["cores"] or 1
    if other is not None:
        if other < 0.25 * cores:
            return ""
        why = f"other work kept {other:.1f} of {cores} cores busy on average during the run"
    else:
        load = max(m["load_avg_at_start"][0], m.get("load_avg_at_end", [0])[0])
        if load <= 0.75 * cores:
            return ""
        why = f"load average up to {load:.1f} on {cores} cores, other work running"
    return f"\n**Measured on a busy machine** ({why}): absolute times are inflated and noisy; compare the ratios measured in the same run.\n"


def informative(model, seed: int = 1):  # type: ignore[no-untyped-def]
    """An untrained model made to give input-dependent scores; a trained one as is.

    An untrained net's BatchNorm statistics (mean 0, var 1) shrink its features to ~1e-8, so every input
    scores uniformly and any two engines "agree": statistics are measured on random inputs and the head
    scaled so the logits have std ~3."""
    import copy

    import torch
    from torch import nn

    from realtime.nets.models import classifier_layer

    if model.config.trained:
        return model
    model = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    s = model.config.input_size
    for net, chans in ((model.spatial, 3), (model.temporal, model.config.temporal_channels)):
        x = torch.randn(4, chans, s, s, generator=gen)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the calibration batch
        net.train()
        with torch.no_grad():
            if any(isinstance(m, nn.BatchNorm2d) for m in net.modules()):
                net(x)
            net.eval()
            head = classifier_layer(net)
            head.weight.mul_(3.0 / max(float(net(x).std()), 1e-12))
    return model
