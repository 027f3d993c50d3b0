"""A real RTSP server for the tests: GStreamer's gst-rtsp-server through the system Python's `gi`.

The server runs in the SYSTEM python3 (Debian's python3-gi), not the project's venv:

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --path /cam --fps 30 --size 160x120

Tests and benchmarks start it through `RtspServer` (importable from the venv: `gi` is only imported
by the server process itself), which picks a free port, waits for the server, kills and restarts it.
The server appsrc -> x264enc (zerolatency) -> rtph264pay on 127.0.0.1 only, prints one line
`READY rtsp://127.0.0.1:PORT/PATH` once it listens, and stops by itself after --lifetime seconds
(or on SIGTERM/SIGINT). Frames are a textured pattern drifting right, so dense flow has something
to track. Options let a test change the resolution mid-stream (--resize-after N --size2 WxH) or
require a user name and password (--user/--password), like a real camera.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SYSTEM_PYTHON = os.environ.get("TWOSTREAM_SYSTEM_PYTHON", "/usr/bin/python3")
PACKAGES = "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly python3-gi"
_CHECK = (
    "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
    "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
    "missing = [e for e in ('appsrc', 'videoconvert', 'x264enc', 'rtph264pay') if Gst.ElementFactory.find(e) is None];"
    "print('missing GStreamer elements: ' + ', '.join(missing) if missing else 'ok')"
)


def unavailable_reason() -> str | None:
    """Why a server cannot be started here (None when it can): the missing interpreter, module or element."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"no system python at {SYSTEM_PYTHON} (set TWOSTREAM_SYSTEM_PYTHON)"
    try:
        r = subprocess.run([SYSTEM_PYTHON, "-c", _CHECK], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "checking for GStreamer's RTSP server timed out"
    out = (r.stdout + r.stderr).strip().splitlines()
    if r.returncode == 0 and out and out[-1] == "ok":
        return None
    detail = out[-1] if out else f"exit {r.returncode}"
    return f"GStreamer RTSP server not usable ({detail}); install: apt-get install {PACKAGES} (scripts/system-deps.sh does)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """Runs this file's server as a subprocess on 127.0.0.1; `kill()` and `start()` simulate an outage."""

    def __init__(self, path: str = "/cam", port: int | None = None, user: str = "", password: str = "", lifetime: float = 120.0, **options: object):
        self.port = port or free_port()
        self.path = path
        self.user, self.password = user, password
        self.lifetime = lifetime
        self.options = options  # more command-line options: fps=30, size="160x120", resize_after=30, ...
        self.proc: subprocess.Popen | None = None
        self.ready_at: float | None = None  # time.monotonic() when the server last said READY

    @property
    def url(self) -> str:
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}{self.path}"

    def start(self, timeout: float = 15.0) -> "RtspServer":
        cmd = [SYSTEM_PYTHON, str(Path(__file__).resolve()), "--port", str(self.port), "--path", self.path, "--lifetime", str(self.lifetime)]
        if self.user:
            cmd += ["--user", self.user, "--password", self.password]
        for k, v in self.options.items():
            cmd += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
        # stderr goes to a file: a pipe nobody reads would block a chatty server on a long run.
        self._stderr = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("READY"):
                    self.ready_at = time.monotonic()
                    return self
                if not line:
                    break
        err = self.stop()
        raise RuntimeError(f"RTSP server did not start on 127.0.0.1:{self.port}: {err.strip()[-500:]}")

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-stream, as a crashed camera or recorder does."""
        self.stop()

    def pause(self) -> None:
        """SIGSTOP: the connection stays open but no more frames come."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> str:
        """End the server whatever its state; returns what it wrote to stderr."""
        if self.proc is None:
            return ""
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        if proc.stdout is not None:
            proc.stdout.close()
        self._stderr.seek(0)
        err = self._stderr.read()
        self._stderr.close()
        return err

    def __enter__(self) -> "RtspServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def parse_size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def make_pattern(width: int, height: int, tint: int = 0) -> bytes:
    """A smooth BGR texture twice as wide as the frame (frame t is a window shifted 2t px right).

    Smooth, so the H.264 encoder keeps it sharp at a low bit rate and dense flow can track it;
    `tint` shifts the colours, so a test can tell which of two streams it is looking at.
    """
    import math

    w2 = 2 * width
    cols = [[50 * math.sin(x * 0.21 + c) + 25 * math.sin(x * 0.047 + 2 * c) for x in range(w2)] for c in range(3)]
    rows = [[50 * math.sin(y * 0.17 + 2 * c) for y in range(height)] for c in range(3)]
    bias = (128 - tint, 128, 128 + tint)
    out = bytearray(w2 * height * 3)
    i = 0
    for y in range(height):
        ry = [rows[c][y] + bias[c] for c in range(3)]
        for x in range(w2):
            for c in range(3):
                out[i] = max(0, min(255, int(cols[c][x] + ry[c])))
                i += 1
    return bytes(out)


STAMP_BLOCK = 8  # the top 8 rows carry the send time: one 8x8 black/white block per bit
STAMP_BITS = 20


def stamp_row(width: int) -> bytes:
    """One row of the time stamp: time.monotonic() in ms (mod 2**20), most significant bit first."""
    ms = int(time.monotonic() * 1000) % (1 << STAMP_BITS)
    row = bytearray(width * 3)
    for bit in range(min(STAMP_BITS, width // STAMP_BLOCK)):
        if ms >> (STAMP_BITS - 1 - bit) & 1:
            row[bit * STAMP_BLOCK * 3 : (bit + 1) * STAMP_BLOCK * 3] = b"\xff" * (STAMP_BLOCK * 3)
    return bytes(row)


def frame_age_ms(frame: "object") -> float:
    """How long ago (ms) the server made this BGR frame (numpy array), from the stamp it carries.

    Server and reader share the machine's monotonic clock, so this is the whole path's latency:
    encode, RTP, decode and the reader's own buffering.
    """
    ms = 0
    for bit in range(STAMP_BITS):
        y = x = STAMP_BLOCK // 2
        ms = ms << 1 | int(frame[y, bit * STAMP_BLOCK + x].mean() > 127)  # type: ignore[index]
    return (int(time.monotonic() * 1000) - ms) % (1 << STAMP_BITS)


# -- the server itself: runs in the system python3 ----------------------------------------------
class Feeder:
    """Pushes frames into one client's appsrc at a fixed rate from the GLib main loop."""

    def __init__(self, appsrc: "Gst.Element", args: argparse.Namespace):
        self.appsrc = appsrc
        self.args = args
        self.t = 0
        self.size: tuple[int, int] | None = None
        self.pattern = b""
        self.duration = Gst.SECOND // args.fps
        self._set_size(parse_size(args.size))
        self.timer = GLib.timeout_add(max(1, 1000 // args.fps), self.push)

    def _set_size(self, size: tuple[int, int], tint: int = 0) -> None:
        w, h = size
        self.size = size
        self.pattern = make_pattern(w, h, tint)
        caps = Gst.Caps.from_string(f"video/x-raw,format=BGR,width={w},height={h},framerate={self.args.fps}/1")
        self.appsrc.set_property("caps", caps)

    def push(self) -> bool:
        if self.args.gate and self.appsrc.current_state != Gst.State.PLAYING:
            return True  # nobody is watching yet: queueing frames now would hand the client a stale burst
        if self.args.resize_after and self.t == self.args.resize_after:
            self._set_size(parse_size(self.args.size2), tint=60)  # bluer: the test can see the switch
        w, h = self.size  # type: ignore[misc]
        stride = 2 * w * 3
        off = (2 * self.t) % w * 3
        rows = [self.pattern[y * stride + off : y * stride + off + w * 3] for y in range(h)]
        rows[:STAMP_BLOCK] = [stamp_row(w)] * STAMP_BLOCK
        data = b"".join(rows)
        buf = Gst.Buffer.new_wrapped(data)
        buf.pts = self.t * self.duration  # from 0 at the first frame a client sees
        buf.duration = self.duration
        self.t += 1
        ret = self.appsrc.emit("push-buffer", buf)
        if ret != Gst.FlowReturn.OK:  # the client went away: stop this feeder
            self.timer = None
            return False
        return True

    def stop(self) -> None:
        if self.timer is not None:
            GLib.source_remove(self.timer)
            self.timer = None


def main() -> int:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    globals().update(GLib=GLib, Gst=Gst)  # for Feeder
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/cam")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--size", default="160x120")
    ap.add_argument("--resize-after", type=int, default=0, help="switch to --size2 after this many frames (0: never)")
    ap.add_argument("--size2", default="240x136")
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--x264", default="", help="more x264enc properties, e.g. 'bitrate=2000'")
    ap.add_argument("--gate", type=int, default=1, help="1: push frames only while a client plays (no stale burst)")
    ap.add_argument("--shared", action="store_true", help="one encoder for every client, like a camera (clients join mid-GOP)")
    ap.add_argument("--lifetime", type=float, default=120.0, help="exit after this many seconds, whatever happens")
    args = ap.parse_args()

    Gst.init(None)
    loop = GLib.MainLoop()
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( appsrc name=src is-live=true format=time do-timestamp=false block=false max-bytes=2000000 "
        "! videoconvert ! video/x-raw,format=I420 "
        # One thread: sliced threads gave frames whose first slice decoded flat here, frame threads add latency.
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=800 threads=1 {args.x264} "
        "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
    factory.set_shared(args.shared)
    feeders: list[Feeder] = []

    def on_configure(_factory: object, media: "GstRtspServer.RTSPMedia") -> None:
        appsrc = media.get_element().get_child_by_name("src")
        feeder = Feeder(appsrc, args)
        feeders.append(feeder)
        media.connect("unprepared", lambda *_: feeder.stop())

    factory.connect("media-configure", on_configure)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        perms.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        factory.set_permissions(perms)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"ERROR cannot listen on 127.0.0.1:{args.port}", flush=True)
        return 1
    GLib.timeout_add(int(args.lifetime * 1000), loop.quit)
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY rtsp://127.0.0.1:{args.port}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
