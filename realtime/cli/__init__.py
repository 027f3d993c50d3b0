"""The `twostream` command line: one module per command in this package, each adding itself through
`register(subparsers, commands)`; other packages add theirs through the `twostream.commands` entry
point (the desktop app adds `gui`). User errors print one line and exit 2; nothing prints a
traceback for them. Command modules import nothing heavy at load time, so `twostream --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points
from typing import Callable

from ..errors import UserError

EXIT_USER_ERROR = 2

# in the order `twostream --help` lists them
COMMAND_MODULES = (
    "realtime.cli.run",
    "realtime.cli.info",
    "realtime.cli.train",
    "realtime.cli.export",
    "realtime.cli.record",
    "realtime.cli.serve",
    "realtime.cli.bench",
    "realtime.cli.quantize",
)
ENTRY_POINTS = "twostream.commands"  # other packages add commands here: the desktop app (gui/, pyproject.toml) registers `gui`

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}  # filled by build_parser()


def _registrars() -> list[Callable]:
    out = [importlib.import_module(name).register for name in COMMAND_MODULES]
    for ep in sorted(entry_points(group=ENTRY_POINTS), key=lambda e: e.name):
        try:
            out.append(ep.load())
        except ModuleNotFoundError as e:  # registered by a package that is no longer there
            if e.name is None or not ep.value.startswith(e.name):
                raise
    return out


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="twostream", description="Live two-stream action recognition on a camera, stream or file.")
    parser.add_argument("--version", action="version", version=f"twostream {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="more log lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _registrars():
        register(sub, COMMANDS)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..logs import setup_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if not args.command:
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return COMMANDS[args.command](args)
    except UserError as e:
        from ..logs import scrub

        sys.stderr.write(f"twostream {args.command}: error: {scrub(str(e))}\n")
        return EXIT_USER_ERROR
    except BrokenPipeError:  # `twostream run --json | head`: the reader left; not an error
        return 0
