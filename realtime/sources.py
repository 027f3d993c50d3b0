"""One string names any input: a camera, a network stream, a video file, or the built-in synthetic source.

`open_source("0")`, `open_source("rtsp://user:pass@cam/1")`, `open_source("clip.mp4")`,
`open_source("synthetic:demo?fps=30")`. Every source reads BGR uint8 frames and has a
`name` that is safe to print: credentials in URLs are redacted everywhere.
"""
from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import cv2
import numpy as np

from .errors import SourceError, UserError

SourceKind = Literal["camera", "stream", "file", "synthetic"]
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
_SECRET_QUERY_KEYS = re.compile(r"pass|pwd|token|key|secret|auth|sig", re.IGNORECASE)
# FFmpeg options that keep a live stream at the newest frame instead of queueing backlog.
LOW_LATENCY_FFMPEG = "fflags;nobuffer|flags;low_delay|threads;1|max_delay;0"
_ffmpeg_env_lock = threading.Lock()


def redact(text: str) -> str:
    """Return `text` with URL credentials and secret-looking query values replaced by ***."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if not parts.scheme or not parts.netloc:
        return text
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(f"{k}=***" if _SECRET_QUERY_KEYS.search(k) else f"{k}={v}" for k, v in pairs)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source string. `target` may hold credentials; print `name`, never `target`."""

    kind: SourceKind
    target: str
    name: str
    options: dict[str, str] = field(default_factory=dict)


def parse_source(text: str | int) -> SourceSpec:
    """Parse what a user typed into a SourceSpec, or raise UserError saying what is accepted."""
    text = str(text).strip()
    if not text:
        raise UserError("empty source: give a camera index (0), /dev/videoN, rtsp://..., a video file or synthetic:NAME")
    if text.isdigit():
        return SourceSpec("camera", text, f"camera {text}")
    if text.startswith("/dev/video"):
        return SourceSpec("camera", text, text)
    if text.startswith("synthetic:") or text == "synthetic":
        rest = text.partition(":")[2] or "demo"
        name, _, query = rest.partition("?")
        return SourceSpec("synthetic", name or "demo", f"synthetic:{name or 'demo'}", dict(parse_qsl(query)))
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme in STREAM_SCHEMES:
        return SourceSpec("stream", text, redact(text))
    if scheme and scheme != "file":
        raise UserError(
            f"unknown source scheme '{scheme}://' in {redact(text)}: use rtsp://, http(s)://, a file path, "
            "a camera index or synthetic:NAME"
        )
    path = text[len("file://"):] if scheme == "file" else text
    return SourceSpec("file", path, path)


class FrameSource:
    """A source of BGR uint8 frames. `read()` returns None at the end of the stream."""

    name: str = "source"
    fps: float | None = None  # nominal frames per second, when the source knows it
    is_live: bool = True  # live sources drop old frames; files are read without loss
    frame_count: int | None = None

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OpenCVSource(FrameSource):
    """Camera, network stream or video file through OpenCV's video I/O."""

    def __init__(self, spec: SourceSpec, realtime: bool = False, timeout_s: float = 5.0):
        self.spec = spec
        self.name = spec.name
        self.timeout_s = timeout_s
        self._cap = self._open(spec, timeout_s)
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if spec.kind == "file" and count > 0 else None
        self.is_live = spec.kind != "file" or realtime
        self._pace = spec.kind == "file" and realtime and self.fps is not None
        self._next_due: float | None = None
        self._frames_read = 0

    @staticmethod
    def _open(spec: SourceSpec, timeout_s: float) -> cv2.VideoCapture:
        timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(timeout_s * 1000), cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(timeout_s * 1000)]
        if spec.kind == "camera":
            target: str | int = int(spec.target) if spec.target.isdigit() else spec.target
            if isinstance(target, str) and not Path(target).exists():
                raise SourceError(f"{spec.name}: no such camera device; run 'twostream info' to list the cameras that open")
            cap = cv2.VideoCapture(target, cv2.CAP_V4L2) if os.name == "posix" else cv2.VideoCapture(target)
            if not cap.isOpened():
                raise SourceError(f"{spec.name}: camera could not be opened; run 'twostream info' to list the cameras that open")
            return cap
        if spec.kind == "file":
            path = Path(spec.target)
            if not path.exists():
                raise SourceError(f"{spec.name}: no such file")
            if path.is_dir():
                raise SourceError(f"{spec.name}: is a directory, not a video file")
            cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, timeouts)
            if not cap.isOpened():
                raise SourceError(f"{spec.name}: cannot be decoded as video (unsupported or corrupt file)")
            return cap
        options = LOW_LATENCY_FFMPEG
        if spec.target.lower().startswith("rtsp"):
            options = "rtsp_transport;tcp|" + options
        # OpenCV reads this variable at open time only; the lock keeps concurrent opens from mixing options.
        with _ffmpeg_env_lock:
            previous = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS")
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = options
            try:
                cap = cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG, timeouts)
            finally:
                if previous is None:
                    os.environ.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS", None)
                else:
                    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = previous
        if not cap.isOpened():
            raise SourceError(f"{spec.name}: stream could not be opened within {timeout_s:.1f} s (check the address and that the server is up)")
        return cap

    def read(self) -> np.ndarray | None:
        ok, frame = self._cap.read()
        if not ok or frame is None:
            if self.spec.kind == "file" and self._frames_read == 0:
                raise SourceError(f"{self.name}: no decodable frame in the file (empty, truncated or corrupt)")
            return None
        self._frames_read += 1
        if self._pace:
            now = time.monotonic()
            if self._next_due is None:
                self._next_due = now
            elif self._next_due > now:
                time.sleep(self._next_due - now)
            self._next_due = max(self._next_due, now - 1.0) + 1.0 / self.fps
        return to_bgr(frame)

    def close(self) -> None:
        self._cap.release()


def to_bgr(frame: np.ndarray) -> np.ndarray:
    """Bring grey, BGRA or 16-bit frames to 3-channel BGR uint8."""
    if frame.dtype != np.uint8:
        frame = cv2.convertScaleAbs(frame, alpha=255.0 / max(1, int(np.iinfo(frame.dtype).max))) if frame.dtype.kind in "ui" else np.clip(frame * 255, 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.shape[2] == 1:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    return frame


def open_source(source: str | int | SourceSpec, realtime: bool = False, timeout_s: float = 5.0) -> FrameSource:
    """Open any input a user can name. Raises SourceError (a UserError) with a one-line reason."""
    spec = source if isinstance(source, SourceSpec) else parse_source(source)
    if spec.kind == "synthetic":
        from .synthetic import SyntheticSource

        return SyntheticSource.from_spec(spec)
    return OpenCVSource(spec, realtime=realtime, timeout_s=timeout_s)


def probe_cameras(max_index: int = 4) -> list[str]:
    """Return the camera names (index and device path) that open and give a frame."""
    found = []
    candidates = sorted(str(p) for p in Path("/dev").glob("video*")) if Path("/dev").exists() else []
    for dev in candidates[: max_index * 2]:
        cap = cv2.VideoCapture(dev, cv2.CAP_V4L2)
        try:
            if cap.isOpened() and cap.read()[0]:
                w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
                found.append(f"{dev} ({w}x{h})")
        finally:
            cap.release()
    return found
