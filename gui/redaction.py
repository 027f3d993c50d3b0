"""What the window may show: text with URL credentials and secret query values removed, and a redactor that
also knows the literal secrets of every source the window was given."""

from __future__ import annotations

import difflib
import os

from realtime import redact, scrub


def safe_text(text: str) -> str:
    """Text fit for the window, the status bar and logs: URL credentials and secret query values removed."""
    text = str(text)
    if "://" in text and redact(text) != text and " " not in text.split("://", 1)[0]:  # the whole text is one URL
        return redact(text)
    return scrub(" ".join(redact(word) if "://" in word else word for word in text.split(" ")))


class Redactor:
    """safe_text, plus the literal secrets of every source this window was given, wherever they turn up.

    Patterns catch `user:pass@` in URLs; a password with a space, or echoed by some library without
    its URL, is caught only by knowing it. Secrets stay in memory, never on disk.
    """

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def learn(self, source_text: str) -> None:
        """Remember the parts of `source_text` that redaction removes (user info, secret query values)."""
        shown = redact(source_text)
        if shown == source_text:
            return
        # The span redaction changed (from the first to the last difference), and each changed piece.
        head = len(os.path.commonprefix([source_text, shown]))
        tail = len(os.path.commonprefix([source_text[head:][::-1], shown[head:][::-1]]))
        pieces = [source_text[head : len(source_text) - tail]]
        for op, a0, a1, _, _ in difflib.SequenceMatcher(None, source_text, shown, autojunk=False).get_opcodes():
            if op in ("replace", "delete"):
                pieces.append(source_text[a0:a1])
        for piece in pieces:
            for secret in (piece, piece.split(":", 1)[1] if ":" in piece else ""):  # also a password on its own
                if len(secret) >= 3:
                    self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        text = safe_text(text)
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text
