"""One call of the wrapped app: what it sent, held back until the exchange decides.

An ``Attempt`` is the ``send`` the wrapped app gets. It holds ``http.response.start`` and
the body (a JSON body whole; a stream up to the hold-back window), asks the exchange what
to do, and then forwards, discards (for a retry, keeping the rest as a fallback) or
swallows (after the exchange answered with its own response) what follows.

A stream's window is judged in a task of its own while the app goes on sending (``JUDGING``:
what it sends is kept). An app that has its whole answer at hand (an upstream that answered
in one burst) has then finished before the task starts, and the task judges the whole
answer instead of the window: one classification where the window and the finished text
would have been two. An app that streams at a model's pace is judged on the window, as
soon as it waits for its next token.
"""

from __future__ import annotations

import enum
import logging
import time
from typing import TYPE_CHECKING

from starlette.types import Message

from guardrail.middleware._headers import content_encoding, content_type
from guardrail.middleware._sse import SseParser, window_complete
from guardrail.middleware.adapters import StreamCollector
from guardrail.outcome import SkipReason

if TYPE_CHECKING:
    from guardrail.middleware._exchange import Exchange

__all__ = ["Attempt", "Mode"]

_log = logging.getLogger("guardrail.middleware")

#: A released stream is read for its end-of-stream classification in pieces of at least this
#: many bytes: nothing needs its text before the stream ends, and parsing once per SSE chunk
#: (a few dozen bytes each) cost 0.24-0.28 ms per 24-chunk answer here against 0.22 ms for
#: the same bytes in one piece. The bound keeps what waits unparsed small.
_READ_BATCH_BYTES = 16 * 1024


class Mode(enum.Enum):
    WAIT_START = "wait_start"  # nothing received yet
    BUFFER = "buffer"  # holding a complete-body response (JSON, plain text)
    HOLD = "hold"  # holding the start of a stream
    JUDGING = "judging"  # the stream's window is being judged: keep what comes meanwhile
    RELEASING = "releasing"  # held messages are going out: keep what comes, then wait
    FORWARD = "forward"  # committed: every message goes to the client as it comes
    DISCARD = "discard"  # a retry follows: keep the rest as a fallback, send nothing
    SWALLOW = "swallow"  # the client already has its answer: drop the rest


class Attempt:
    """The send callable of one attempt; ``number`` 1 is the first call of the app."""

    def __init__(self, exchange: Exchange, number: int) -> None:
        self.exchange = exchange
        self.number = number
        self.mode = Mode.WAIT_START
        self.start: Message | None = None
        self.held: list[Message] = []
        self.held_bytes = 0
        self.body_complete = False  # the last body message (more_body False) arrived
        self.fallback_ok = True  # everything received fits in memory (usable as fallback)
        self.collector: StreamCollector | None = None
        self.parser: SseParser | None = None
        self.retry_body: bytes | None = None
        self.overflowed = False  # a released stream grew past max_response_bytes
        self.broken = False  # the stream collector raised: the stream is not read further
        self.was_stream = False
        # An unheld stream kept raw for a classifier that reads streams itself (see
        # _stream_text): the event loop does not parse it at all.
        self.deferred = False
        self.seconds_in_send = 0.0
        self._body: bytes | None = None
        self._unread: list[bytes] = []  # released stream bytes not parsed yet
        self._unread_bytes = 0
        self._prefix_failed = False  # window_prefix raised: the sentence rule holds instead

    @property
    def is_stream(self) -> bool:
        return self.was_stream

    @property
    def status(self) -> int:
        return int(self.start["status"]) if self.start is not None else 500

    def body(self) -> bytes:
        """The held body bytes, joined once and kept (held messages no longer change)."""
        if self._body is None or not self.body_complete:
            self._body = b"".join(m.get("body", b"") for m in self.held)
        return self._body

    async def __call__(self, message: Message) -> None:
        started = time.perf_counter()
        try:
            await self._receive(message)
        finally:
            self.seconds_in_send += time.perf_counter() - started

    async def _receive(self, message: Message) -> None:
        mode = self.mode
        if mode is Mode.FORWARD:
            await self.exchange.send_client(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.body_complete = True
            if self.parser is not None and message["type"] == "http.response.body":
                # Text for the end-of-stream classification, bounded like a buffered body.
                chunk = message.get("body", b"")
                self.held_bytes += len(chunk)
                if self.held_bytes > self.exchange.options.max_response_bytes:
                    self.parser = self.collector = None
                    self._unread, self.overflowed = [], True
                    return
                self._unread.append(chunk)
                self._unread_bytes += len(chunk)
                if self.deferred:
                    return  # the classifier reads the whole stream once it has ended
                if self.body_complete or self._unread_bytes >= _READ_BATCH_BYTES:
                    unread, self._unread, self._unread_bytes = self._unread, [], 0
                    self._collect(b"".join(unread), final=self.body_complete)
                    if self.broken:
                        self.parser = self.collector = None
        elif mode is Mode.JUDGING:
            await self._on_judging(message)
        elif mode is Mode.RELEASING:
            # Only a stream judged in its own task gets here: that task is sending what
            # was held and sends this too; the app waits until it has.
            self._keep_unread(message)
            await self.exchange.settle()
        elif mode is Mode.WAIT_START:
            await self._on_start(message)
        elif mode is Mode.DISCARD:
            self._keep(message)
        elif mode is Mode.SWALLOW:
            return
        elif message["type"] != "http.response.body":
            # Trailers, pathsend and other extensions: nothing to classify; stop holding.
            await self.exchange.release(self, skipped="unsupported")
            await self.exchange.send_client(message)
        elif mode is Mode.BUFFER:
            self._keep(message)
            if self.held_bytes > self.exchange.options.max_response_bytes:
                await self.exchange.release(self, skipped="too_large")
            elif self.body_complete:
                await self.exchange.on_complete_body(self)
        else:
            await self._on_stream_chunk(message)

    async def _on_start(self, message: Message) -> None:
        if message["type"] != "http.response.start":
            self.mode = Mode.FORWARD
            await self.exchange.send_client(message)
            return
        self.start = message
        adapter = self.exchange.route.adapter
        media = content_type(message).partition(";")[0].strip().lower()
        if not 200 <= self.status < 300:
            await self.exchange.on_unguarded_start(self, skipped=None)
        elif content_encoding(message) not in ("", "identity"):
            await self.exchange.on_unguarded_start(self, skipped="encoded")
        elif media == "text/event-stream":
            collector = adapter.stream_collector()
            if collector is None:
                await self.exchange.on_unguarded_start(self, skipped="unsupported")
            else:
                self.collector, self.parser, self.mode = collector, SseParser(), Mode.HOLD
                self.was_stream = True
                if not self.exchange.holds_streams():
                    self.deferred = self.exchange.defers_reading()
                    await self.exchange.release_unheld(self)
        elif adapter.accepts(media):
            self.mode = Mode.BUFFER
        else:
            await self.exchange.on_unguarded_start(self, skipped="unsupported")

    async def _on_stream_chunk(self, message: Message) -> None:
        self._keep(message)
        self._collect(message.get("body", b""), final=not message.get("more_body", False))
        texts = self.texts()
        if await self._released_unjudged(texts):
            return
        if self.body_complete:
            await self.exchange.on_stream_window(self, texts)
        else:
            window = self._window(texts)
            if window is not None:
                self.mode = Mode.JUDGING
                self.exchange.judge_window_soon(self, window)

    async def _released_unjudged(self, texts: tuple[str, ...]) -> bool:
        """Release a held stream that cannot be judged (unreadable, a tool call, too large)."""
        assert self.collector is not None and self.parser is not None
        if self.parser.invalid or self.broken or self.collector.unsupported:
            await self.exchange.release(self, skipped="unsupported")
        elif self.collector.tool_call_first and not texts:
            await self.exchange.release(self, skipped=None)  # a tool call: nothing to judge
        elif self.held_bytes > self.exchange.options.max_response_bytes:
            await self.exchange.release(self, skipped="too_large")
        else:
            return False
        return True

    def _keep_unread(self, message: Message) -> None:
        """Keep a message to send later, and its bytes to read once the stream has ended."""
        self._keep(message)
        if message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            self._unread.append(chunk)
            self._unread_bytes += len(chunk)

    async def _on_judging(self, message: Message) -> None:
        self._keep_unread(message)
        if self.held_bytes > self.exchange.options.max_response_bytes:
            # Keep no more than a held body may hold: the app waits for the decision.
            await self.exchange.settle()

    async def judge_held(self, window: tuple[str, ...]) -> None:
        """The judging task: the whole answer when it has arrived meanwhile, else the window."""
        if not self.body_complete or self.held_bytes > self.exchange.options.max_response_bytes:
            await self.exchange.on_stream_window(self, window)
            return
        self.read_rest()
        texts = self.texts()
        if not await self._released_unjudged(texts):
            await self.exchange.on_stream_window(self, texts)

    def read_rest(self) -> None:
        """Parse the stream bytes that came while the window was judged (the stream ended)."""
        if not self._unread or self.parser is None:
            return
        unread, self._unread, self._unread_bytes = self._unread, [], 0
        if self.held_bytes > self.exchange.options.max_response_bytes:
            self.parser = self.collector = None
            self.overflowed = True
            return
        self._collect(b"".join(unread), final=self.body_complete)

    def _window(self, texts: tuple[str, ...]) -> tuple[str, ...] | None:
        """The texts to judge once the hold-back window is complete; None: hold on.

        By the model's first window: per choice, the classifier's prefix (or, for a choice
        not that long yet, its text so far) once any choice has one; by the sentence rule:
        the texts so far once any has a sentence end after the minimum. Either way the
        window closes when a text reaches ``stream_window_max_chars``.
        """
        options = self.exchange.options
        longest = max((len(t) for t in texts), default=0)
        prefix = self.exchange.services.window_prefix
        if prefix is not None and not self._prefix_failed:
            try:
                cuts = [prefix(t) for t in texts]
            except Exception:
                _log.exception("guardrail window_prefix failed; the sentence rule holds instead")
                self._prefix_failed = True
            else:
                if any(c is not None for c in cuts):
                    return tuple(t if c is None else c for c, t in zip(cuts, texts, strict=True))
                return texts if longest >= options.stream_window_max_chars else None
        low, high = options.stream_window_min_chars, options.stream_window_max_chars
        return texts if any(window_complete(t, low, high) for t in texts) else None

    def _keep(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            self.held_bytes += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.body_complete = True
        if self.mode is Mode.DISCARD and self.held_bytes > self.exchange.options.max_response_bytes:
            # Too big to keep as a fallback; keep draining so the app finishes cleanly.
            self.fallback_ok = False
            self.held.clear()
            return
        if self.fallback_ok:
            self.held.append(message)

    def _collect(self, data: bytes, *, final: bool) -> None:
        assert self.parser is not None and self.collector is not None
        try:
            for event in self.parser.feed(data, final=final):
                self.collector.feed(event)
        except Exception:
            # A collector bug must not cost the client its answer: stop reading the stream.
            _log.exception("guardrail stream collector failed; the stream passes unread")
            self.broken = True

    def raw(self) -> bytes:
        """A deferred stream's bytes as the app sent them (up to ``max_response_bytes``)."""
        return b"".join(self._unread)

    def unreadable(self) -> SkipReason | None:
        """Why a stream forwarded unheld cannot be classified now that it ended (None: it can)."""
        if self.overflowed:
            return "too_large"
        parser, collector = self.parser, self.collector
        if self.broken or parser is None or collector is None:
            return "unsupported"
        return "unsupported" if parser.invalid or collector.unsupported else None

    def texts(self) -> tuple[str, ...]:
        """The stream's text so far, one entry per choice (empty once reading failed)."""
        if self.collector is None or self.broken:
            return ()
        try:
            return self.collector.texts()
        except Exception:
            _log.exception("guardrail stream collector failed; the stream passes unread")
            self.broken = True
            return ()
