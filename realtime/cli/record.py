"""`twostream record SOURCE --label L --to DIR`: short labelled clips from a camera, stream or file (realtime.io.record)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..io.record import ClipLibrary, Recorder, RecorderState, check_label, clip_frames


def cmd_record(args: argparse.Namespace) -> int:
    from ..io.sources import open_source, redact

    library = ClipLibrary(args.to)
    label = check_label(args.label)
    clip_frames(args.seconds, None)  # a bad length is reported before a camera opens
    if args.clips < 1:
        raise UserError(f"--clips must be at least 1 (got {args.clips})")
    src = open_source(args.source, realtime=False, timeout_s=args.timeout)
    name = redact(src.name)
    live = src.is_live
    countdown = args.countdown if args.countdown is not None else (3.0 if live else 0.0)
    gap = args.gap if args.gap is not None else (1.0 if live else 0.0)
    quiet = args.quiet

    def say(text: str) -> None:
        if not quiet:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    @dataclass
    class Said:  # what the last message said, so each is said once
        phase: str = ""
        tick: int = 1 << 30

    last = Said()

    def on_change(st: RecorderState) -> None:
        if st.saved and st.phase in ("gap", "done") and last.phase == "recording":
            say(f"  saved {st.saved[-1]}")
        if st.phase == "recording":
            say(f"clip {st.clip}/{st.clips}: recording {st.frames_per_clip} frames ({args.seconds:g} s)")
        elif st.phase in ("countdown", "gap") and st.countdown_left > 0:
            say(f"clip {len(st.saved) + 1}/{st.clips} of '{label}' starts in {st.countdown_left:.0f} s — get ready")
            last.tick = int(np.ceil(st.countdown_left))
        last.phase = st.phase

    rec = Recorder(library, label, args.clips, args.seconds, src.fps, countdown, gap, on_change)
    say(f"recording {args.clips} clip(s) of '{label}' from {name} ({rec.state.frames_per_clip} frames each at {rec.fps:g} fps) into {library.root / label}")
    rec.start()
    try:
        while rec.active:
            frame = src.read()
            if frame is None:
                break
            rec.feed(frame)
            st = rec.state
            tick = int(np.ceil(st.countdown_left)) if st.phase in ("countdown", "gap") else -1
            if 0 < tick < last.tick:  # 3... 2... 1...
                say(f"  {tick}…")
                last.tick = tick
    except KeyboardInterrupt:
        rec.cancel()
        say(f"interrupted: {len(rec.state.saved)} clip(s) kept, the unfinished one discarded")
        return 130
    finally:
        if rec.active:
            rec.cancel()
        src.close()
    st = rec.state
    if st.phase == "failed":
        raise UserError(f"recording stopped: {st.error}; {len(st.saved)} clip(s) kept")
    counts = library.counts()
    total = ", ".join(f"{k} {v}" for k, v in counts.items())
    if len(st.saved) < st.clips:
        sys.stderr.write(
            f"twostream record: error: {name} ended after {len(st.saved)} of {st.clips} clips (the unfinished one discarded); clips per class now: {total}\n"
        )
        return 1
    say(f"done: {len(st.saved)} clip(s) of '{label}'; clips per class in {library.root}: {total}")
    return 0


def register(sub: argparse._SubParsersAction, commands: dict) -> None:
    p = sub.add_parser("record", help="record short labelled clips from a source into DIR/<label>/ (a folder-per-class dataset)")
    p.add_argument("source", help="camera index, video file, rtsp:// URL or synthetic:NAME")
    p.add_argument("--label", required=True, help="class name (letters, digits, '_' or '-')")
    p.add_argument("--clips", type=int, default=10, help="clips to record (default 10)")
    p.add_argument("--seconds", type=float, default=2.0, help="length of each clip (default 2)")
    p.add_argument("--to", required=True, metavar="DIR", help="recording directory; clips go to DIR/<label>/")
    p.add_argument("--countdown", type=float, help="seconds before the first clip (default 3 for live sources, 0 for files)")
    p.add_argument("--gap", type=float, help="seconds between clips (default 1 for live sources, 0 for files)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the source to open")
    p.add_argument("-q", "--quiet", action="store_true")
    commands["record"] = cmd_record
