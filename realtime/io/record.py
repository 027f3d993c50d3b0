"""Recording short labelled clips from any source: the data for teaching the recognizer new actions.

    twostream record SOURCE --label NAME --clips N --seconds S --to DIR

Clips land in `DIR/<label>/<label>_NNN.avi` (Motion-JPEG at quality 95, the codec `make-dataset`
writes), so a recording directory is an ordinary folder-per-class dataset for `twostream train`.
A clip is written under a hidden `.partial` name and renamed only when complete: an interrupted
recording never leaves a short clip among the good ones. Deleting moves a clip to `DIR/.deleted/`
(hidden folders are not part of the dataset), so nothing is lost by a wrong click.

`Recorder` is the same schedule (countdown, clip, gap, next clip) for the command line and the
desktop app: it is fed frames as they arrive, from whatever thread reads the source.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..errors import UserError

log = logging.getLogger("twostream")
CLIP_SUFFIX = ".avi"
FOURCC = "MJPG"
QUALITY = 95
DELETED = ".deleted"
DEFAULT_FPS = 30.0  # when a source does not say its rate
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_CLIP_NAME = re.compile(r"^(?P<label>.+)_(?P<n>\d{3,})$")


def check_label(name: str) -> str:
    """A class name usable as a folder name on every OS: letters, digits, '_' and '-', at most 64."""
    name = name.strip()
    if not _LABEL.match(name):
        raise UserError(f"class name {name!r} is not usable: use letters, digits, '_' or '-' (start with a letter or digit, at most 64)")
    return name


def clip_frames(seconds: float, fps: float | None) -> int:
    """Frames in a clip of `seconds` at the source's rate (DEFAULT_FPS when it has none); at least 2."""
    if not seconds > 0:
        raise UserError(f"clip length must be more than 0 seconds (got {seconds})")
    return max(2, round(seconds * (fps or DEFAULT_FPS)))


class ClipWriter:
    """Writes exactly `frames` frames to `path`; the file appears under its name only once complete."""

    def __init__(self, path: Path, frames: int, fps: float):
        self.path, self.frames, self.fps = Path(path), frames, fps
        self.partial = self.path.with_name(f".{self.path.stem}.partial{CLIP_SUFFIX}")
        self.written = 0
        self._writer: cv2.VideoWriter | None = None

    def write(self, frame: np.ndarray) -> bool:
        """Add one BGR frame; True once the clip is complete (and saved)."""
        if self._writer is None:
            h, w = frame.shape[:2]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter.fourcc(*FOURCC), self.fps, (w, h))
            if not self._writer.isOpened():
                self._writer = None
                raise UserError(f"{self.path.parent}: cannot write video there (is the folder writable?)")
            self._writer.set(cv2.VIDEOWRITER_PROP_QUALITY, QUALITY)
            self._size = (w, h)
        if (frame.shape[1], frame.shape[0]) != self._size:  # a source that changed resolution mid-clip
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(frame)
        self.written += 1
        if self.written >= self.frames:
            self._writer.release()
            self._writer = None
            self.partial.replace(self.path)
            return True
        return False

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self.partial.unlink(missing_ok=True)


@dataclass
class ClipInfo:
    path: Path
    label: str
    frames: int
    fps: float

    @property
    def seconds(self) -> float:
        return self.frames / self.fps if self.fps else 0.0


class ClipLibrary:
    """A recording directory: one folder per class, clips inside. Lists, names, deletes and restores clips."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def classes(self) -> dict[str, list[Path]]:
        """Class name -> its clips (sorted), for every class folder, including empty ones."""
        if not self.root.is_dir():
            return {}
        out = {}
        for d in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            out[d.name] = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() == CLIP_SUFFIX and not p.name.startswith("."))
        return out

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.classes().items()}

    def add_class(self, label: str) -> Path:
        d = self.root / check_label(label)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def next_path(self, label: str) -> Path:
        """The next free `<label>_NNN.avi` (numbers are never reused, even after a delete)."""
        d = self.root / check_label(label)
        used = [
            int(m["n"])
            for p in [*d.glob(f"*{CLIP_SUFFIX}"), *(self.root / DELETED / label).glob(f"*{CLIP_SUFFIX}")]
            if (m := _CLIP_NAME.match(p.stem.split("~")[0])) and m["label"] == label
        ]
        return d / f"{label}_{max(used, default=0) + 1:03d}{CLIP_SUFFIX}"

    def delete(self, clip: str | Path) -> Path:
        """Move a clip out of the dataset into DIR/.deleted/<label>/; returns where it went."""
        p = Path(clip)
        if not p.is_absolute() and not p.exists():
            p = self.root / p
        if not p.is_file() or p.parent.parent.resolve() != self.root.resolve():
            raise UserError(f"{clip}: not a clip of {self.root}")
        dest_dir = self.root / DELETED / p.parent.name
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / p.name
        if dest.exists():
            dest = dest_dir / f"{p.stem}~{time.strftime('%Y%m%d-%H%M%S')}{p.suffix}"
        p.replace(dest)
        return dest

    def restore(self, deleted: str | Path) -> Path:
        """Put a deleted clip back into its class folder."""
        p = Path(deleted)
        if not p.is_file() or p.parent.parent.name != DELETED:
            raise UserError(f"{deleted}: not a deleted clip")
        dest = self.root / p.parent.name / (p.stem.split("~")[0] + p.suffix)
        if dest.exists():
            dest = self.next_path(p.parent.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        p.replace(dest)
        return dest

    @staticmethod
    def info(path: str | Path) -> ClipInfo:
        cap = cv2.VideoCapture(str(path))
        try:
            frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        finally:
            cap.release()
        p = Path(path)
        return ClipInfo(p, p.parent.name, frames, fps)


@dataclass
class RecorderState:
    """What a UI shows: the phase, the clip being made, the countdown, what has been saved."""

    phase: str = "idle"  # idle | countdown | recording | gap | done | cancelled | failed
    clip: int = 0  # 1-based number of the clip being made (or last made)
    clips: int = 0
    countdown_left: float = 0.0
    frames_written: int = 0
    frames_per_clip: int = 0
    saved: list[Path] = field(default_factory=list)
    error: str = ""


class Recorder:
    """Countdown, then `clips` clips of `seconds` each with `gap` seconds between them, from fed frames.

    `feed(frame)` is called with every frame the source delivers (any thread); it returns False once
    the plan is complete. Timing of the countdown and gaps is by the clock; clip lengths are by frame
    count (seconds x the source's fps), so every clip has the same length whatever the load.
    `on_change(state)` is called after each phase change and each saved clip, with the (live) state object.
    """

    def __init__(
        self,
        library: ClipLibrary,
        label: str,
        clips: int,
        seconds: float,
        fps: float | None,
        countdown: float = 3.0,
        gap: float = 1.0,
        on_change: Callable[[RecorderState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if clips < 1:
            raise UserError(f"--clips must be at least 1 (got {clips})")
        if countdown < 0 or gap < 0:
            raise UserError("countdown and gap cannot be negative")
        self.library, self.label = library, check_label(label)
        self.fps = fps or DEFAULT_FPS
        self.seconds, self.countdown, self.gap = seconds, countdown, gap
        self.state = RecorderState(clips=clips, frames_per_clip=clip_frames(seconds, fps))
        self.on_change, self.clock = on_change, clock
        self._writer: ClipWriter | None = None
        self._until = 0.0
        self._lock = threading.RLock()  # on_change may call cancel() from the feeding thread

    @property
    def active(self) -> bool:
        return self.state.phase in ("countdown", "recording", "gap")

    def start(self) -> "Recorder":
        self.library.add_class(self.label)
        self._enter("countdown", self.countdown)
        return self

    def feed(self, frame: np.ndarray) -> bool:
        with self._lock:
            st = self.state
            if st.phase == "idle":
                self._enter("countdown", self.countdown)
            if st.phase in ("countdown", "gap") and self.clock() >= self._until:
                self._begin_clip()
            if st.phase == "recording":
                assert self._writer is not None
                try:
                    done = self._writer.write(frame)
                except Exception as e:  # disk full, folder removed: stop, keep what was saved
                    self._writer.abort()
                    st.phase, st.error = "failed", str(e)
                    self._notify()
                    return False
                st.frames_written = self._writer.written
                if done:
                    st.saved.append(self._writer.path)
                    self._writer = None
                    if len(st.saved) >= st.clips:
                        st.phase = "done"
                        self._notify()
                        return False
                    self._enter("gap", self.gap)
            elif st.phase in ("countdown", "gap"):
                st.countdown_left = max(0.0, self._until - self.clock())
            return self.active

    def cancel(self) -> None:
        """Stop now; a clip being written is discarded, saved clips stay."""
        with self._lock:
            if self._writer is not None:
                self._writer.abort()
                self._writer = None
            if self.active or self.state.phase == "idle":
                self.state.phase = "cancelled"
                self._notify()

    def _enter(self, phase: str, seconds: float) -> None:
        self.state.phase = phase
        self._until = self.clock() + seconds
        self.state.countdown_left = seconds
        if seconds <= 0:  # no wait: the very next frame starts the clip
            self._until = -float("inf")
        self._notify()

    def _begin_clip(self) -> None:
        st = self.state
        st.clip = len(st.saved) + 1
        st.phase, st.frames_written, st.countdown_left = "recording", 0, 0.0
        self._writer = ClipWriter(self.library.next_path(self.label), st.frames_per_clip, self.fps)
        self._notify()

    def _notify(self) -> None:
        if self.on_change is not None:  # the live state object: a UI on another thread reads its newest values
            self.on_change(self.state)
