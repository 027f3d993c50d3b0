"""One string names any input: a camera, a network stream, a video file, or the built-in synthetic source.

`open_source("0")`, `open_source("rtsp://user:pass@cam/1")`, `open_source("clip.mp4")`,
`open_source("synthetic:demo?fps=30")`. Every source reads BGR uint8 frames and has a
`name` that is safe to print: credentials in URLs are redacted everywhere.

Nothing here can hang its reader: every OpenCV call runs on a capture thread under a deadline, so
a source that stops delivering without closing is noticed after `timeout_s`. A camera or live
stream that is lost is re-opened with backoff (status "reconnecting" meanwhile); a file that
stalls raises SourceError. docs/reliability.md lists the faults tested and what a user sees.
"""

from __future__ import annotations

import importlib
import logging
import os
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar
from urllib.parse import parse_qsl, urlsplit

import cv2
import numpy as np

from ..errors import SourceError, UserError
from ..logs import SECRET_KEYS

T = TypeVar("T")

log = logging.getLogger("twostream")

SourceKind = Literal["camera", "stream", "file", "synthetic"]
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
_SECRET_QUERY_KEYS = re.compile(SECRET_KEYS, re.IGNORECASE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
# FFmpeg options that keep a live stream at the newest frame instead of queueing backlog.
LOW_LATENCY_FFMPEG = "fflags;nobuffer|flags;low_delay|threads;1|max_delay;0"
# FFmpeg options for a minimal probe: the stream is usable as soon as its codec is known.
FAST_PROBE_FFMPEG = "analyzeduration;0|probesize;32"
_ffmpeg_env_lock = threading.Lock()


def redact(text: str) -> str:
    """Return `text` with URL credentials and secret-looking query values replaced by ***.

    The user part ends at the LAST '@': camera passwords often hold '/', '?', '#' or '@' unescaped,
    which a URL parser would read as the path, query or fragment and so print. Over-redacting a
    rare URL with '@' in its path is the safe side of that trade.
    """
    scheme, sep, rest = text.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return text
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    head, qmark, query = rest.partition("?")
    if not qmark:
        return f"{scheme}://{rest}"
    query, hash_, fragment = query.partition("#")
    pairs = []
    for pair in query.split("&"):
        key, eq, _ = pair.partition("=")
        pairs.append(f"{key}=***" if eq and _SECRET_QUERY_KEYS.search(key) else pair)
    return f"{scheme}://{head}?{'&'.join(pairs)}{hash_}{fragment}"


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
        raise UserError(f"unknown source scheme '{scheme}://' in {redact(text)}: use rtsp://, http(s)://, a file path, a camera index or synthetic:NAME")
    path = text[len("file://") :] if scheme == "file" else text
    return SourceSpec("file", path, path)


def check_file(spec: SourceSpec) -> Path:
    """A file source's path, or SourceError if there is no file to open there."""
    path = Path(spec.target)
    if not path.exists():
        raise SourceError(f"{spec.name}: no such file")
    if path.is_dir():
        raise SourceError(f"{spec.name}: is a directory, not a video file")
    return path


def check_source(source: str | int) -> SourceSpec:
    """What `open_source` would refuse before touching the source (a bad name, a missing file), raised
    as the same one-line SourceError; cheap, so a command says it before it loads a model."""
    spec = parse_source(source)
    if spec.kind == "file":
        check_file(spec)
    return spec


class Pacer:
    """Hands out frames at `fps`: `wait()` sleeps until the next one is due. After a stall it catches up
    at most `catch_up` seconds' worth of frames at once instead of bursting through everything it missed."""

    def __init__(self, fps: float, catch_up: float = 1.0):
        self.period = 1.0 / fps
        self.catch_up = catch_up
        self._next_due: float | None = None

    def wait(self) -> None:
        now = time.monotonic()
        if self._next_due is not None and self._next_due > now:
            time.sleep(self._next_due - now)
        self._next_due = max(self._next_due or now, now - self.catch_up) + self.period

    def reset(self) -> None:
        """The next frame goes at once (after a pause, or for a new reader)."""
        self._next_due = None


class FrameSource:
    """A source of BGR uint8 frames. `read()` returns None at the end of the stream.

    A live source that loses its stream (a camera unplugged, an RTSP server restarting) may re-open
    it inside `read()`: while it tries, `status` is "reconnecting" and `status_message` says why; each
    time it comes back `reconnects` grows, and the frames either side of that are not consecutive.
    """

    name: str = "source"
    fps: float | None = None  # nominal frames per second, when the source knows it
    is_live: bool = True  # live sources drop old frames; files are read without loss
    frame_count: int | None = None
    status: str = "ok"  # "ok", or "reconnecting" while a lost live source is being re-opened
    status_message: str = ""  # the last thing worth telling a user about this source, names redacted
    reconnects: int = 0  # times a lost stream came back
    downtime_s: float = 0.0  # seconds spent without a stream, summed over reconnects
    _cancel: threading.Event | None = None  # set by watch()
    _on_status: Callable[[str, str], None] | None = None

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def truth(self) -> str | None:
        """The ground-truth label of the frame last read, for sources that know it (the synthetic world); else None."""
        return None

    def watch(self, cancel: threading.Event | None = None, on_status: Callable[[str, str], None] | None = None) -> None:
        """Let the reader's owner cut a blocked `read()` short (`cancel`) and hear status changes.

        `on_status(status, message)` is called from inside `read()` when the source is lost
        ("reconnecting") and when it is back ("ok"). Sources that never block or reconnect ignore both.
        """
        self._cancel = cancel
        self._on_status = on_status

    def close(self) -> None:
        pass

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Backoff:
    """Waits between attempts to re-open a lost live source: immediately, then doubling up to a cap.

    The cap bounds how long a camera that is back stays unused: one wait, plus the time to open it,
    plus its next keyframe. A refused connection costs a few packets, so a short cap is cheap; a
    camera that does not answer at all is retried no faster than its open timeout. Jitter keeps many
    recognizers on one recorder from retrying in lockstep.
    """

    first_s: float = 0.1
    max_s: float = 0.5
    factor: float = 2.0
    jitter: float = 0.1  # each wait is scaled by a random factor in 1 +- jitter

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt `attempt` (1-based)."""
        if attempt <= 1:
            return 0.0
        base = min(self.max_s, self.first_s * self.factor ** (attempt - 2))
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)


class _Overrun(Exception):
    """A capture call did not return in time (or the reader was cancelled while it ran)."""

    def __init__(self, cancelled: bool):
        super().__init__("cancelled" if cancelled else "timed out")
        self.cancelled = cancelled


class _CaptureThread:
    """One cv2.VideoCapture driven from its own daemon thread.

    OpenCV's open and read can block inside C beyond any timeout asked of them (a stalled pipe, a
    camera driver, a name lookup), and a Python thread cannot be interrupted there. So every call on
    the capture runs on this thread and the reader waits at most a deadline. A capture whose call
    overran is abandoned: it releases itself when that call returns, and its thread ends.
    """

    def __init__(self) -> None:
        self.cap: cv2.VideoCapture | None = None
        self._cond = threading.Condition()
        self._job: Callable[[], object] | None = None
        self._result: tuple[bool, Any] | None = None  # (ok, what the job returned or raised)
        self._closing = False
        self._busy = False  # a job is running on the capture thread
        self._thread = threading.Thread(target=self._run, name="twostream-source", daemon=True)
        self._thread.start()

    def call(self, job: Callable[[], T], timeout: float, cancel: threading.Event | None = None) -> T:
        """Run `job` on the capture thread; its result, its exception, or _Overrun after `timeout` s."""
        with self._cond:
            if self._closing:
                raise _Overrun(cancelled=True)
            self._job, self._result = job, None
            self._cond.notify_all()
            deadline = time.monotonic() + timeout
            while self._result is None:
                left = deadline - time.monotonic()
                cancelled = cancel is not None and cancel.is_set()
                if left <= 0 or cancelled:
                    self._closing = True  # abandon: the thread releases the capture once `job` returns
                    raise _Overrun(cancelled)
                self._cond.wait(min(left, 0.05))  # wakes at once when the job ends; polls `cancel`
            ok, value = self._result
            self._result = None
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        return value

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._job is None and not self._closing:
                    self._cond.wait()
                job = self._job
                self._busy = job is not None
            if job is None:
                break
            try:
                result: tuple[bool, object] = (True, job())
            except BaseException as e:  # handed to the caller, who raises it
                result = (False, e)
            with self._cond:
                self._job, self._result, self._busy = None, result, False
                self._cond.notify_all()
        if self.cap is not None:
            self.cap.release()
            self.cap = None

    def close(self, wait: float = 1.0) -> None:
        """Release the capture on its own thread; waits up to `wait` s (less if a call is still running)."""
        with self._cond:
            self._closing = True
            busy = self._busy
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(min(wait, 0.25) if busy else wait)  # a stuck call must not hold up a stop

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


class OpenCVSource(FrameSource):
    """Camera, network stream or video file through OpenCV's video I/O.

    Every OpenCV call runs under a deadline (see _CaptureThread), so a source that stops delivering
    without closing is noticed after `timeout_s`: a file then raises SourceError; a camera or a live
    stream is re-opened with `backoff` until it is back or the reader cancels (see FrameSource.watch).
    """

    def __init__(self, spec: SourceSpec, realtime: bool = False, timeout_s: float = 5.0, backoff: Backoff | None = None):
        self.spec = spec
        self.name = spec.name
        self.timeout_s = timeout_s
        self.backoff = backoff or Backoff()
        self._cancel: threading.Event | None = None
        self._on_status: Callable[[str, str], None] | None = None
        self._closed = threading.Event()
        self._conn: _CaptureThread | None = None
        self._conn, fps, count = self._connect()
        self.fps = fps
        finite = 0 < count < 2**31  # live streams report 0, a negative or a huge count
        self.frame_count = count if finite and spec.kind in ("file", "stream") else None
        self.is_live = spec.kind != "file" or realtime
        # A live camera or stream is re-opened when lost; a file (also one served over http) just ends.
        self.reconnect_when_lost = spec.kind == "camera" or (spec.kind == "stream" and not finite)
        self._pacer = Pacer(self.fps) if spec.kind == "file" and realtime and self.fps else None
        self._frames_read = 0

    # -- opening ------------------------------------------------------------
    def _connect(self) -> tuple[_CaptureThread, float | None, int]:
        """Open the capture on a fresh capture thread: (thread, fps, frame count). Raises SourceError."""
        conn = _CaptureThread()
        spec, timeout_s = self.spec, self.timeout_s
        started = time.monotonic()

        def job() -> tuple[float | None, int]:
            conn.cap = _open_capture(spec, timeout_s)
            fps = conn.cap.get(cv2.CAP_PROP_FPS)
            count = conn.cap.get(cv2.CAP_PROP_FRAME_COUNT)
            return (float(fps) if fps and 0 < fps < 1000 else None), (int(count) if count == count and abs(count) < 2**62 else 0)

        # FFmpeg gives up at timeout_s itself; the margin lets it do so before the capture is abandoned.
        try:
            fps, count = conn.call(job, timeout_s * 1.5 + 0.5, self._cancel)
        except _Overrun as e:
            conn.close(wait=0)
            if e.cancelled:
                raise SourceError(f"{self.name}: opening was cancelled") from None
            what = "stream" if spec.kind == "stream" else spec.kind
            hint = " (a pipe with no writer, or a stalled disk or network share?)" if spec.kind == "file" else " (check the address and that the server is up)"
            raise SourceError(f"{self.name}: {what} could not be opened within {time.monotonic() - started:.1f} s{hint}") from None
        except BaseException:
            conn.close(wait=0)
            raise
        return conn, fps, count

    # -- reading ------------------------------------------------------------
    def _cancelled(self) -> bool:
        return self._closed.is_set() or (self._cancel is not None and self._cancel.is_set())

    def _grab(self, conn: _CaptureThread) -> np.ndarray | None:
        """The next frame from `conn`, None at its end; _Overrun when none came within timeout_s."""

        def job() -> np.ndarray | None:
            assert conn.cap is not None
            ok, frame = conn.cap.read()
            return frame if ok and frame is not None else None

        return conn.call(job, self.timeout_s, self._cancel)

    def read(self) -> np.ndarray | None:
        if self._cancelled() or self._conn is None:
            return None
        try:
            frame = self._grab(self._conn)
        except _Overrun as e:
            if e.cancelled:
                return None
            if not self.reconnect_when_lost:
                raise SourceError(
                    f"{self.name}: no frame for {self.timeout_s:.1f} s; it stopped delivering frames "
                    "without ending (is the file still being written, or on a stalled share?)"
                ) from None
            frame = self._reconnect(f"no frame for {self.timeout_s:.1f} s")
        else:
            if frame is None:
                if self.reconnect_when_lost:
                    frame = self._reconnect("the stream ended or the connection was lost")
                else:
                    self._at_end()
                    return None
        if frame is None:
            return None
        self._frames_read += 1
        if self._pacer is not None:
            self._pacer.wait()
        return as_frame(frame, self.name)

    def _at_end(self) -> None:
        if self._frames_read == 0 and self.spec.kind == "file":
            raise SourceError(f"{self.name}: no decodable frame in the file (empty, truncated or corrupt)")
        n = self.frame_count
        if n is not None and self._frames_read < n - max(2, n // 50):  # containers may round their count
            log.warning("%s: ended after %d of the %d frames its header announces (truncated or damaged)", self.name, self._frames_read, n)

    def _set_status(self, status: str, message: str) -> None:
        self.status, self.status_message = status, message
        if self._on_status is not None:
            self._on_status(status, message)

    def _reconnect(self, reason: str) -> np.ndarray | None:
        """Re-open a lost live source until it gives a frame again; None if cancelled first."""
        lost_at = time.monotonic()
        if self._conn is not None:
            self._conn.close(wait=0)  # a capture stuck in a call releases itself when the call returns
            self._conn = None
        message = f"{self.name}: {reason}, reconnecting"
        log.warning("%s", message)
        self._set_status("reconnecting", message)
        attempt = 0
        while not self._cancelled():
            attempt += 1
            delay = self.backoff.delay(attempt)
            self.status_message = f"{self.name}: {reason}, reconnecting (attempt {attempt})"
            if self._wait(delay):
                break
            try:
                conn, _, _ = self._connect()
            except SourceError as e:
                if _worth_logging(attempt):
                    log.warning(
                        "%s: reconnect attempt %d failed: %s; next try in %.1f s",
                        self.name,
                        attempt,
                        str(e).removeprefix(self.name + ": "),
                        self.backoff.delay(attempt + 1),
                    )
                continue
            try:
                frame = self._grab(conn)
            except _Overrun:
                frame = None
            if frame is None:
                conn.close(wait=0)
                continue
            self._conn = conn
            if self._closed.is_set():  # closed from another thread while this attempt ran
                self.close()
                return None
            down = time.monotonic() - lost_at
            self.reconnects += 1
            self.downtime_s += down
            message = f"{self.name}: reconnected after {down:.1f} s ({attempt} attempt{'s' if attempt > 1 else ''})"
            log.warning("%s", message)
            self._set_status("ok", message)
            return frame
        return None

    def _wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True if cancelled meanwhile."""
        deadline = time.monotonic() + seconds
        while not self._cancelled():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._closed.wait(min(left, 0.05))
        return True

    def close(self) -> None:
        self._closed.set()
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _worth_logging(attempt: int) -> bool:
    """Attempts 1, 2, 4, 8, ... then every 64th: a camera down for a day writes tens of lines, not 86 400."""
    return attempt & (attempt - 1) == 0 or attempt % 64 == 0


def _open_capture(spec: SourceSpec, timeout_s: float) -> cv2.VideoCapture:
    """Open `spec` with OpenCV (on the calling thread); raises SourceError with a one-line reason."""
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
        path = check_file(spec)
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, timeouts)
        if not cap.isOpened():
            raise SourceError(f"{spec.name}: cannot be decoded as video (unsupported or corrupt file)")
        return cap
    options = LOW_LATENCY_FFMPEG
    attempts = [options]
    if spec.target.lower().startswith("rtsp"):
        # RTSP describes its codec in the SDP, so a minimal probe opens in ~0.1 s instead of ~1 s;
        # a server that does not describe it is opened again with FFmpeg's normal probe.
        options = "rtsp_transport;tcp|" + options
        attempts = [options + "|" + FAST_PROBE_FFMPEG, options]
    started = time.monotonic()
    for options in attempts:
        cap = _ffmpeg_open(spec, options, timeouts, timeout_s)
        if cap.isOpened():
            return cap
        cap.release()
        if time.monotonic() - started > timeout_s / 2:  # it timed out: a second try would only wait again
            raise SourceError(f"{spec.name}: stream could not be opened within {timeout_s:.1f} s (no answer: check the address and that the server is up)")
    raise SourceError(
        f"{spec.name}: stream could not be opened (refused, not found or not authorised: check the address, user name and password, and that the server is up)"
    )


def _ffmpeg_open(spec: SourceSpec, options: str, timeouts: list[int], timeout_s: float) -> cv2.VideoCapture:
    # OpenCV reads this variable at open time only; the lock keeps concurrent opens from mixing options.
    if not _ffmpeg_env_lock.acquire(timeout=timeout_s):  # another open is stuck holding it
        raise SourceError(f"{spec.name}: stream could not be opened within {timeout_s:.1f} s (another stream's open is stuck)")
    try:
        previous = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS")
        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = options
        try:
            return cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG, timeouts)
        finally:
            if previous is None:
                os.environ.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS", None)
            else:
                os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = previous
    finally:
        _ffmpeg_env_lock.release()


def to_bgr(frame: np.ndarray) -> np.ndarray:
    """Bring grey, BGRA or 16-bit frames to 3-channel BGR uint8."""
    if frame.dtype != np.uint8:
        if frame.dtype.kind in "ui":
            frame = cv2.convertScaleAbs(frame, alpha=255.0 / max(1, int(np.iinfo(frame.dtype).max)))
        else:  # floats are taken as 0..1; NaN and infinities are clipped, not turned into noise
            frame = (np.clip(np.nan_to_num(frame, nan=0.0, posinf=1.0, neginf=0.0), 0, 1) * 255 + 0.5).astype(np.uint8)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.shape[2] == 1:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    return frame


def as_frame(frame: object, name: str) -> np.ndarray:
    """Any image a source gives -> contiguous BGR uint8 (H, W, 3), or SourceError saying what is wrong.

    Accepts grey (H, W) or (H, W, 1), BGR, BGRA; uint8, other integer types (scaled by their range)
    and floats in 0..1. Anything else is not a video frame, and no later stage should meet it.
    """
    if not isinstance(frame, np.ndarray):
        raise SourceError(f"{name}: gave a {type(frame).__name__}, not an image array")
    if frame.dtype.kind not in "uif":
        raise SourceError(f"{name}: gave a frame of {frame.dtype} values; expected uint8 (or another integer or float type)")
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise SourceError(f"{name}: gave a frame of shape {frame.shape}; expected (H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise SourceError(f"{name}: gave an empty {frame.shape[1]}x{frame.shape[0]} frame")
    if frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3 and frame.flags.c_contiguous:
        return frame  # the common case: nothing to do, nothing copied
    return np.ascontiguousarray(to_bgr(np.ascontiguousarray(frame)))


def open_source(source: str | int | SourceSpec, realtime: bool = False, timeout_s: float = 5.0, backoff: Backoff | None = None) -> FrameSource:
    """Open any input a user can name. Raises SourceError (a UserError) with a one-line reason.

    A camera or live stream that is lost later is re-opened by `read()` with `backoff`; one that
    cannot be opened now is refused at once (a wrong address should not look like a flaky network).
    """
    spec = source if isinstance(source, SourceSpec) else parse_source(source)
    if spec.kind in SOURCE_KINDS:
        module, _, factory = SOURCE_KINDS[spec.kind].partition(":")
        return getattr(importlib.import_module(module), factory)(spec)
    return OpenCVSource(spec, realtime=realtime, timeout_s=timeout_s, backoff=backoff)


# Source kinds that OpenCV does not open, each "module:function(spec) -> FrameSource", imported on first use:
# the modules depend on this one, never the other way round.
SOURCE_KINDS: dict[str, str] = {"synthetic": "realtime.io.synthetic:open_synthetic"}


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
