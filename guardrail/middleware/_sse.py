"""Incremental server-sent-events parsing and the hold-back window rule for streams."""

from __future__ import annotations

import codecs
import re

from guardrail.middleware.adapters.base import SseEvent

__all__ = ["SseParser", "window_complete"]

# A sentence ends at terminal punctuation (optionally closed by quotes/brackets) followed
# by whitespace, or at a line break. Compiled once: this runs on every held chunk.
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]]*\s|\n")


def window_complete(text: str, min_chars: int, max_chars: int) -> bool:
    """True once ``text`` holds a sentence end at or after ``min_chars``, or ``max_chars``."""
    if len(text) >= max_chars:
        return True
    if len(text) < min_chars:
        return False
    return _SENTENCE_END.search(text, max(0, min_chars - 1)) is not None


class SseParser:
    """Turns arbitrarily split ``text/event-stream`` bytes into complete events.

    Line ends may be CRLF, LF or CR (as the SSE spec allows) and a chunk may end in the
    middle of a line, of a CRLF pair or of a UTF-8 sequence. Invalid UTF-8 sets ``invalid``.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._pending = ""
        self._event: str | None = None
        self._data: list[str] = []
        self.invalid = False

    def feed(self, chunk: bytes, *, final: bool = False) -> list[SseEvent]:
        """The events completed by ``chunk``; with ``final`` an unterminated event counts too."""
        if self.invalid:
            return []
        try:
            text = self._pending + self._decoder.decode(chunk, final)
        except UnicodeDecodeError:
            self.invalid = True
            return []
        # A trailing CR may be the first half of a CRLF split across chunks.
        if text.endswith("\r") and not final:
            text, self._pending = text[:-1], "\r"
        else:
            self._pending = ""
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        partial = lines.pop()
        events: list[SseEvent] = []
        for line in lines:
            self._line(line, events)
        if final:
            if partial:
                self._line(partial, events)
            self._line("", events)
        else:
            self._pending = partial + self._pending
        return events

    def _line(self, line: str, events: list[SseEvent]) -> None:
        if not line:
            if self._data:
                events.append(SseEvent(self._event, "\n".join(self._data)))
            self._event, self._data = None, []
            return
        if line.startswith(":"):
            return  # comment / keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
