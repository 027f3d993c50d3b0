"""The flow cache: each clip's frames and flow, computed once with the runtime's own flow code.

Entries live under `<cache>/flow-<key>/`, where the key hashes the FlowSettings: changing any flow
setting uses a new directory, so a net never trains on flow made another way. Each clip becomes
one `.npz` (zlib, lossless) holding the working-size BGR frames and the uint8 flow codes exactly
as the live FlowRing stores them. Built by parallel worker processes, atomically per clip, so an
interrupted build resumes where it stopped; a clip whose video changed is recomputed.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import sys
import threading
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..stream.flow import FlowSettings
from ..stream.preprocess import FlowFrontEnd
from ..io.sources import to_bgr
from .datasets import Clip
from .procedural import _progress

log = logging.getLogger("twostream")
CACHE_FORMAT = 1


def settings_key(flow: FlowSettings) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, **flow.to_dict()}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


@dataclass
class CacheReport:
    clips: int
    computed: int
    reused: int
    failed: dict[str, str]
    frames: int
    bytes_on_disk: int
    flow_bytes_per_frame: float
    raw_float32_bytes_per_frame: int

    def line(self) -> str:
        ratio = self.raw_float32_bytes_per_frame / max(self.flow_bytes_per_frame, 1)
        return (
            f"flow cache: {self.clips} clips ({self.computed} computed, {self.reused} reused, {len(self.failed)} unreadable and skipped), "
            f"{self.frames} frames, {self.bytes_on_disk / 1e6:.1f} MB; flow {self.flow_bytes_per_frame / 1024:.1f} KiB/frame "
            f"vs {self.raw_float32_bytes_per_frame / 1024:.0f} KiB raw float32 ({ratio:.0f}x smaller)"
        )


def _compute(args: tuple[str, str, str, dict]) -> tuple[str, str | None, int, int]:
    """Worker: decode a clip, compute flow, write the entry. Returns (key, error, frames, flow bytes)."""
    key, video, dest, flow_dict = args
    settings = FlowSettings.from_dict(flow_dict)
    cap = cv2.VideoCapture(video)
    if not cap.isOpened():
        return key, "cannot be opened as video", 0, 0
    front = FlowFrontEnd(settings)  # the live flow stage's own front end
    frames, codes = [], []
    while True:
        ok, frame = cap.read()
        if not ok or frame is None:
            break
        small, flow = front.push(to_bgr(frame))
        frames.append(small)
        if flow is not None:
            codes.append(settings.quantise(flow))
    cap.release()
    if not frames:
        return key, "no decodable frames", 0, 0
    rgb = np.stack(frames)
    fl = np.stack(codes) if codes else np.zeros((0, settings.height, settings.width, 2), np.uint8)
    out = Path(dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, rgb=rgb, flow=fl)
    tmp.replace(out)
    with zipfile.ZipFile(out) as z:  # what the flow alone costs on disk, for the report
        flow_bytes = z.getinfo("flow.npy").compress_size
    return key, None, len(frames), flow_bytes


def _die_with_parent(parent: int) -> None:
    """Pool initializer: a worker ends when the process that started it dies, however it dies.

    A training cancelled from the desktop app is killed outright; without this its flow workers
    would be left running, orphaned. Linux only (prctl PR_SET_PDEATHSIG); elsewhere a no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


class FlowCache:
    def __init__(self, root: str | Path, flow: FlowSettings, memory_mb: int = 6000):
        self.flow = flow
        self.dir = Path(root) / f"flow-{settings_key(flow)}"
        self._index_path = self.dir / "index.json"
        self._memory: collections.OrderedDict[tuple[str, str], np.ndarray] = collections.OrderedDict()  # (key, member) -> array, LRU
        self._memory_bytes = 0
        self._memory_limit = memory_mb * 1024 * 1024
        self._lock = threading.Lock()

    def entry(self, key: str) -> Path:
        return self.dir / (key + ".npz")

    def _load_index(self) -> dict:
        try:
            return json.loads(self._index_path.read_text())
        except (OSError, ValueError):
            return {"clips": {}, "failed": {}}

    def build(self, clips: list[Clip], root: Path, workers: int = 2, progress: bool = True, on_clip: Callable[[int, int], None] | None = None) -> CacheReport:
        """Compute the entries that are missing or stale; returns what was done.

        `on_clip(done, total)` is called after each computed clip (for a progress bar in a UI).
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "settings.json").write_text(json.dumps({"format": CACHE_FORMAT, "flow": self.flow.to_dict()}, indent=2))
        index = self._load_index()
        todo, reused = [], 0
        seen: set[str] = set()
        for clip in clips:
            key = clip.key(root)
            if key in seen:
                continue
            seen.add(key)
            st = clip.path.stat()
            stamp = [st.st_size, st.st_mtime_ns]
            if index["clips"].get(key, {}).get("source") == stamp and self.entry(key).is_file():
                reused += 1
            elif index["failed"].get(key, {}).get("source") == stamp:
                reused += 1  # known unreadable: still counted below
            else:
                todo.append((key, str(clip.path), str(self.entry(key)), self.flow.to_dict(), stamp))
        bar = _progress(len(todo), "clips", progress)
        bar.set_description("flow cache") if hasattr(bar, "set_description") else None
        jobs = [t[:4] for t in todo]
        stamps = {t[0]: t[4] for t in todo}
        results = []
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(workers, initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
                for r in pool.map(_compute, jobs, chunksize=4):
                    results.append(r)
                    bar.update(1)
                    self._record(index, r, stamps)
                    if on_clip is not None:
                        on_clip(len(results), len(jobs))
        else:
            for job in jobs:
                r = _compute(job)
                results.append(r)
                bar.update(1)
                self._record(index, r, stamps)
                if on_clip is not None:
                    on_clip(len(results), len(jobs))
        bar.close()
        self._save_index(index)
        failed = {k: v["reason"] for k, v in index["failed"].items() if k in seen}
        entries = [index["clips"][k] for k in seen if k in index["clips"]]
        frames = sum(e["frames"] for e in entries)
        flow_bytes = sum(e.get("flow_bytes", 0) for e in entries)
        disk = sum(self.entry(k).stat().st_size for k in seen if k in index["clips"] and self.entry(k).is_file())
        return CacheReport(
            len(seen), len(todo), reused, failed, frames, disk, flow_bytes / max(1, frames - len(entries)), self.flow.width * self.flow.height * 2 * 4
        )

    def _record(self, index: dict, result: tuple, stamps: dict) -> None:
        key, error, frames, flow_bytes = result
        if error:
            index["failed"][key] = {"reason": error, "source": stamps[key]}
            index["clips"].pop(key, None)
            log.warning("skipping unreadable clip %s: %s", key, error)
        else:
            index["clips"][key] = {"frames": frames, "flow_bytes": flow_bytes, "source": stamps[key]}
            index["failed"].pop(key, None)
        if len(index["clips"]) % 50 == 0:
            self._save_index(index)  # progress survives an interrupt

    def _save_index(self, index: dict) -> None:
        tmp = self._index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(index))
        tmp.replace(self._index_path)

    def available(self, clips: list[Clip], root: Path) -> list[Clip]:
        """The clips that have a cache entry (unreadable ones were skipped)."""
        index = self._load_index()["clips"]
        return [c for c in clips if c.key(root) in index]

    def load(self, key: str, member: str) -> np.ndarray:
        """One array ('rgb' or 'flow') of a clip, kept in an in-memory LRU."""
        with self._lock:
            hit = self._memory.get((key, member))
            if hit is not None:
                self._memory.move_to_end((key, member))
                return hit
        with np.load(self.entry(key)) as z:
            arr = z[member]
        with self._lock:
            self._memory[(key, member)] = arr
            self._memory_bytes += arr.nbytes
            while self._memory_bytes > self._memory_limit and len(self._memory) > 1:
                _, old = self._memory.popitem(last=False)
                self._memory_bytes -= old.nbytes
        return arr
