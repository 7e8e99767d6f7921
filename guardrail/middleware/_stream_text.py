"""A finished stream's text, read in one go: for classifiers that read streams themselves.

An unheld stream (one the policy cannot act on) is classified only after its last byte, so
nothing needs its text sooner. A classifier that offers ``classify_stream``
(``guardrail.classification.StreamReader``, as ``ProcessClassifier`` does) is handed the raw
bytes instead, and the events are parsed in its worker process: reading a stream's ~25 SSE
events (parsing, one JSON decode each) cost the event loop about 0.2 ms per stream, an
eighth of its work per guarded stream. The rules are those of the incremental path in
``_attempt``: invalid UTF-8, an event the adapter cannot read or a collector that raises
make the stream ``unsupported``; a stream with no text (a tool call) has no texts.
"""

from __future__ import annotations

import logging

from guardrail.middleware._sse import SseParser
from guardrail.middleware.adapters import ADAPTERS, ApiAdapter
from guardrail.outcome import SkipReason

__all__ = ["builtin_name", "stream_texts"]

_log = logging.getLogger("guardrail.middleware")


def builtin_name(adapter: ApiAdapter) -> str | None:
    """The name under which another process finds this adapter: built-in ones only."""
    name = getattr(adapter, "name", None)
    builtin = ADAPTERS.get(name) if isinstance(name, str) else None
    return name if builtin is not None and type(builtin) is type(adapter) else None


def stream_texts(adapter: str, raw: bytes) -> tuple[SkipReason | None, tuple[str, ...]]:
    """Why the stream cannot be read (None: it can), and its text per choice."""
    collector = ADAPTERS[adapter].stream_collector()
    if collector is None:
        return "unsupported", ()
    parser = SseParser()
    try:
        for event in parser.feed(raw, final=True):
            collector.feed(event)
        if parser.invalid or collector.unsupported:
            return "unsupported", ()
        return None, collector.texts()
    except Exception:
        # As in the event loop: a collector bug costs the stream its verdict, nothing else.
        _log.exception("guardrail stream collector failed; the stream passes unread")
        return "unsupported", ()
