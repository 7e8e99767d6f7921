"""One guarded request from start to finish: attempts, decisions, the reply, the outcome.

The middleware builds an ``Exchange`` per request (the middleware object itself holds only
configuration). The exchange buffers the request, calls the wrapped app once per attempt
through an ``Attempt`` send callable, and answers the client with exactly one response:
the app's own (byte for byte, plus ``x-guardrail-*`` headers), a retry's, or one rendered
by the route's adapter. Whatever happens, one ``GuardOutcome`` goes to the recorder.
Judging an answer (classify, ask the policy, act) is ``Judge``'s part (``_judge``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from starlette.types import Message, Receive, Scope, Send

from guardrail.middleware._attempt import Attempt, Mode
from guardrail.middleware._headers import with_headers
from guardrail.middleware._judge import Judge
from guardrail.middleware._request import (
    body_receive,
    build_context,
    header_map,
    read_body,
    replay_receive,
    request_id,
    scope_with_body_length,
)
from guardrail.middleware._services import Services, safely
from guardrail.outcome import SkipReason

if TYPE_CHECKING:
    from guardrail.middleware._routes import GuardedRoute

__all__ = ["Exchange"]

_log = logging.getLogger("guardrail.middleware")


class Exchange(Judge):
    """Per-request state; ``run`` is the whole request."""

    def __init__(
        self, services: Services, route: GuardedRoute, scope: Scope, receive: Receive, send: Send
    ) -> None:
        super().__init__(services, route, send)
        self.scope = scope
        self.receive = receive
        self._judging: asyncio.Task[None] | None = None  # a stream's window being judged

    # -- the request ---------------------------------------------------------------

    async def run(self) -> None:
        started = time.perf_counter()
        answered: float | None = None
        try:
            await self._run()
            answered = time.perf_counter()
            # After the last byte went out: adds no latency, only a better verdict for metrics.
            await self.classify_released_stream()
        finally:
            judging = self._judging
            if judging is not None and not judging.done():
                judging.cancel()  # the request was cancelled: so is its judging
            elif judging is not None and not judging.cancelled():
                judging.exception()  # raised to whoever awaited it; marks it as retrieved
            self._record((answered or time.perf_counter()) - started)

    async def _run(self) -> None:
        headers = header_map(self.scope)
        self.request_id = request_id(headers)
        began = time.perf_counter()
        buffered = await read_body(self.scope, self.receive, self.options.max_request_bytes)
        # Waiting for the client's upload is not time the middleware adds: the app would wait.
        self.upload_seconds = time.perf_counter() - began
        if not buffered.complete:
            too_large = all(m["type"] == "http.request" for m in buffered.messages)
            await self._unguarded(
                replay_receive(buffered.messages, self.receive), "too_large" if too_large else None
            )
            return
        info = safely(self.route.adapter.parse_request, buffered.body)
        if info is None:
            await self._unguarded(body_receive(buffered.body, self.receive), "unsupported")
            return
        try:
            self.policy = self.services.policies.current()
        except Exception:
            _log.exception("guardrail policy provider failed; the request passes unguarded")
            await self._unguarded(body_receive(buffered.body, self.receive), "error")
            return
        self.info = info
        self.ctx = build_context(self.scope, self.route, info, headers)
        body, scope, number = buffered.body, self.scope, 1
        while True:
            attempt = Attempt(self, number)
            self.attempts = number
            began = time.perf_counter()
            try:
                await self.services.app(scope, body_receive(body, self.receive), attempt)
            except Exception:
                self._account(began, attempt.seconds_in_send)
                if not await self._after_error(attempt):
                    raise
            else:
                self._account(began, attempt.seconds_in_send)
                await self._after_return(attempt)
            if attempt.retry_body is None:
                return
            if attempt.body_complete and attempt.fallback_ok:
                self.fallback = attempt
            body, number = attempt.retry_body, number + 1
            scope = scope_with_body_length(self.scope, len(body))

    def defers_reading(self) -> bool:
        """An unheld stream is read by the classifier (off the event loop) when it can."""
        return self.services.pool.reads_streams and self.route.builtin is not None

    def _account(self, began: float, in_send: float) -> None:
        self.app_seconds += time.perf_counter() - began
        self.in_send_seconds += in_send

    async def _unguarded(self, receive: Receive, skipped: SkipReason | None) -> None:
        """Call the app once and pass its response through, tagged, unclassified."""
        self.skipped = skipped
        in_send = 0.0

        async def send_tagged(message: Message) -> None:
            nonlocal in_send
            began = time.perf_counter()
            if message["type"] == "http.response.start":
                self.status = int(message["status"])
                message = with_headers(message, self._guard_headers())
            try:
                await self.send_client(message)
            finally:
                in_send += time.perf_counter() - began

        began = time.perf_counter()
        try:
            await self.services.app(self.scope, receive, send_tagged)
        finally:
            self._account(began, in_send)

    def judge_window_soon(self, attempt: Attempt, window: tuple[str, ...]) -> None:
        """Judge a held stream in a task of its own, which starts once the app waits."""
        self._judging = asyncio.get_running_loop().create_task(self._judge_held(attempt, window))

    async def _judge_held(self, attempt: Attempt, window: tuple[str, ...]) -> None:
        try:
            await attempt.judge_held(window)
        except Exception:
            if attempt.mode is not Mode.JUDGING:
                raise  # sending failed (the client left): the app's send raises it, as unguarded
            # Nothing may cost the client its answer: what was held goes out unjudged.
            _log.exception("guardrail failed to judge a held stream; it passes")
            self.skipped = "error"
            await self._forward_held(attempt)

    async def settle(self) -> None:
        """Wait until the held stream's judging task (if any) has acted on its decision."""
        if self._judging is not None:
            await self._judging

    async def _after_error(self, attempt: Attempt) -> bool:
        """After the app raised: True when the client still gets a whole response."""
        await self.settle()
        if attempt.mode in (Mode.DISCARD, Mode.SWALLOW):
            # The client never sees this attempt (retried or answered already).
            _log.warning("guardrail: wrapped app failed in a discarded attempt", exc_info=True)
            return True
        if attempt.mode in (Mode.FORWARD, Mode.RELEASING):
            return False  # bytes are out: end it like the unguarded app would have
        if attempt.number > 1:
            self.retry_outcome = "error"
            if self.fallback is not None:
                _log.warning("guardrail: retry failed; sending the first answer", exc_info=True)
                await self._send_fallback()
                return True
        if attempt.start is not None:
            await self._forward_held(attempt)
        return False

    async def _after_return(self, attempt: Attempt) -> None:
        """The app returned; if it left its response unfinished, pass on what it sent."""
        await self.settle()
        if attempt.mode not in (Mode.WAIT_START, Mode.BUFFER, Mode.HOLD):
            return
        if attempt.number > 1 and self.fallback is not None:
            self.retry_outcome = "error"
            await self._send_fallback()
        elif attempt.start is not None:
            await self._forward_held(attempt)

    # -- called by Attempt ---------------------------------------------------------

    async def on_unguarded_start(self, attempt: Attempt, *, skipped: SkipReason | None) -> None:
        """A response that is not classified (non-2xx, encoded, unknown type) starts."""
        assert attempt.start is not None
        if attempt.number > 1 and skipped is None and self.fallback is not None:
            self.retry_outcome = "error"
            attempt.mode = Mode.SWALLOW  # a failed retry: the first answer is better
            await self._send_fallback()
            return
        self._unclassified(attempt, skipped)
        if attempt.number > 1:
            self.retry_outcome = "error"  # an error status or a body that cannot be read
        self.status = attempt.status
        attempt.mode = Mode.FORWARD
        await self.send_client(with_headers(attempt.start, self._guard_headers()))

    async def release_unheld(self, attempt: Attempt) -> None:
        """A stream the policy cannot act on: out at once, classified after its last byte."""
        self._unclassified(attempt, None)
        await self._forward_held(attempt)

    async def release(self, attempt: Attempt, *, skipped: SkipReason | None) -> None:
        """Stop holding: send what was held as it came, unclassified, and forward the rest."""
        self._unclassified(attempt, skipped)
        if skipped is not None:
            attempt.parser = attempt.collector = None
        await self._forward_held(attempt)

    def _unclassified(self, attempt: Attempt, skipped: SkipReason | None) -> None:
        """This attempt's answer goes out without a verdict (an earlier one does not apply)."""
        self.skipped, self.classification, self.response_text = skipped, None, ""
        if attempt.number > 1:
            # A retry answered with a tool call (no text) is no longer a refusal.
            self.retry_outcome = "error" if skipped is not None else "recovered"

    async def on_complete_body(self, attempt: Attempt) -> None:
        found = safely(self.route.adapter.response_texts, attempt.body())
        if found is None:
            await self.release(attempt, skipped="unsupported")
            return
        self.response_model = found.model
        if not found.texts:
            self._unclassified(attempt, None)
            await self._deliver(attempt)  # tool calls only: nothing to classify
            return
        await self._judge(attempt, found.texts)

    async def on_stream_window(self, attempt: Attempt, texts: tuple[str, ...]) -> None:
        """The hold-back window is complete: judge ``texts`` (per choice, the window's text)."""
        assert attempt.collector is not None
        self.response_model = attempt.collector.model
        if not texts:
            self._unclassified(attempt, None)
            await self._deliver(attempt)
            return
        self.window_texts = texts
        await self._judge(attempt, texts)

    def _record(self, elapsed: float) -> None:
        try:
            self.services.recorder.record(self.outcome(elapsed))
        except Exception:
            _log.exception("guardrail recorder failed; the outcome is lost, the response is not")
