"""Logging for the CLI and GUI: one line per message, URL credentials always redacted."""

from __future__ import annotations

import logging
import re
import sys

# The user part of a URL ends at its LAST '@': passwords often hold '/', '?', '#' or '@' unescaped.
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)\S*@")
SECRET_KEYS = r"pass|pwd|token|key|secret|auth|sig|user"  # query keys whose values are credentials (also realtime.io.sources)
_SECRET_QUERY = re.compile(rf"(?P<key>[?&][^=&\s]*(?:{SECRET_KEYS})[^=&\s]*=)[^&#\s]*", re.IGNORECASE)


def scrub(text: str) -> str:
    """Remove `user:pass@` and secret-looking query values (?token=...) from any URL inside free text."""
    return _SECRET_QUERY.sub(r"\g<key>***", _CREDENTIALS.sub(r"\g<scheme>***@", text))


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        return True


def setup_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("twostream: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger("twostream")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
    if not verbose:  # OpenCV's own warnings ("Stream timeout triggered") duplicate what we report
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
