"""One guarded request from start to finish: attempts, decisions, the reply, the outcome.

The middleware builds an ``Exchange`` per request (the middleware object itself holds only
configuration). The exchange buffers the request, calls the wrapped app once per attempt
through an ``Attempt`` send callable, and answers the client with exactly one response:
the app's own (byte for byte, plus ``x-guardrail-*`` headers), a retry's, or one rendered
by the route's adapter. Whatever happens, one ``GuardOutcome`` goes to the recorder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guardrail.classification import Classification
from guardrail.middleware._attempt import Attempt, Mode
from guardrail.middleware._headers import with_headers
from guardrail.middleware._request import (
    body_receive,
    build_context,
    header_map,
    read_body,
    replay_receive,
    request_id,
    scope_with_body_length,
)
from guardrail.middleware._responder import Responder
from guardrail.middleware.adapters import Rendered
from guardrail.outcome import Recorder, SkipReason
from guardrail.policy_api import ActingScope, Decision, PolicyLike, PolicyProvider
from guardrail.taxonomy import VERDICTS

if TYPE_CHECKING:
    from guardrail.middleware._inference import InferencePool
    from guardrail.middleware._routes import GuardedRoute
    from guardrail.middleware.options import GuardrailOptions

__all__ = ["Exchange", "Services"]

_log = logging.getLogger("guardrail.middleware")
_In = TypeVar("_In")
_Out = TypeVar("_Out")
_SEVERITY = {verdict: rank for rank, verdict in enumerate(VERDICTS)}


@dataclass(frozen=True, slots=True)
class Services:
    """What every exchange of one middleware shares; built once at construction."""

    app: ASGIApp
    options: GuardrailOptions
    pool: InferencePool
    recorder: Recorder
    policies: PolicyProvider
    # The classifier's window_prefix when streams are held back by the model's first window
    # (stream_window_rule "model"); None: the sentence rule.
    window_prefix: Callable[[str], str | None] | None = None


def _safely(method: Callable[[_In], _Out], argument: _In) -> _Out | None:
    """Call an adapter method; an adapter that raises has "not understood" (None)."""
    try:
        return method(argument)
    except Exception:
        _log.exception("guardrail adapter failed; the exchange goes on without it")
        return None


def _worst(classifications: tuple[Classification, ...]) -> int:
    """Index of the most severe verdict (ties: the higher refusal score)."""
    return max(
        range(len(classifications)),
        key=lambda i: (_SEVERITY[classifications[i].verdict], classifications[i].refusal_score),
    )


class Exchange(Responder):
    """Per-request state; ``run`` is the whole request."""

    def __init__(
        self, services: Services, route: GuardedRoute, scope: Scope, receive: Receive, send: Send
    ) -> None:
        super().__init__(services.options, route, send)
        self.services = services
        self.scope = scope
        self.receive = receive
        self.policy: PolicyLike | None = None
        # The texts the stream's hold-back window was judged on: when the stream ended inside
        # the window they are the whole answer, and classifying them again would only cost CPU.
        self.window_texts: tuple[str, ...] | None = None
        # Whether a stream is held back to be judged before release: asked of the policy
        # when the first stream of the exchange starts (JSON answers never need it).
        self._hold_streams: bool | None = None

    # -- the request ---------------------------------------------------------------

    async def run(self) -> None:
        started = time.perf_counter()
        answered: float | None = None
        try:
            await self._run()
            answered = time.perf_counter()
            # After the last byte went out: adds no latency, only a better verdict for metrics.
            await self._classify_released_stream()
        finally:
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
        info = _safely(self.route.adapter.parse_request, buffered.body)
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

    @property
    def passive(self) -> bool:
        """A stream went out unheld: it is classified and decided after its last byte."""
        return self._hold_streams is False

    def holds_streams(self) -> bool:
        """Hold streams unless the options allow it and the policy says it cannot act."""
        if self._hold_streams is None:
            self._hold_streams = self._ask_may_act()
        return self._hold_streams

    def defers_reading(self) -> bool:
        """An unheld stream is read by the classifier (off the event loop) when it can."""
        return self.services.pool.reads_streams and self.route.builtin is not None

    def _ask_may_act(self) -> bool:
        assert self.policy is not None and self.ctx is not None
        if self.options.stream_hold == "always" or not isinstance(self.policy, ActingScope):
            return True
        try:
            return bool(self.policy.may_act(self.ctx))
        except Exception:
            _log.exception("guardrail policy may_act failed; the stream is held back")
            return True

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

    async def _after_error(self, attempt: Attempt) -> bool:
        """After the app raised: True when the client still gets a whole response."""
        if attempt.mode in (Mode.DISCARD, Mode.SWALLOW):
            # The client never sees this attempt (retried or answered already).
            _log.warning("guardrail: wrapped app failed in a discarded attempt", exc_info=True)
            return True
        if attempt.mode is Mode.FORWARD:
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
        found = _safely(self.route.adapter.response_texts, attempt.body())
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

    # -- deciding ------------------------------------------------------------------

    async def _judge(self, attempt: Attempt, texts: tuple[str, ...]) -> None:
        """Classify ``texts`` (the worst choice counts), ask the policy, act on its answer."""
        assert self.policy is not None and self.ctx is not None
        result = await self.services.pool.classify(texts, self.options.classify_timeout)
        self.classifier_seconds += result.seconds
        if result.skipped is not None:
            self.skipped, self.classification = result.skipped, None
            if attempt.number > 1:
                self.retry_outcome = "error"
            blocked = None
            if self.policy.fail_closed:
                blocked = self._render_block(self.options.unavailable_message, 503)
            if blocked is None:
                await self._deliver(attempt)
            else:
                self.action = "block"
                await self._respond(attempt, blocked)
            return
        worst = _worst(result.classifications)
        self.classification, self.response_text = result.classifications[worst], texts[worst]
        self.skipped = None
        try:
            decision = self.policy.decide(self.ctx, self.classification, attempt=attempt.number)
        except Exception:
            _log.exception("guardrail policy failed to decide; the response passes")
            self.skipped = "error"
            await self._deliver(attempt)
            return
        await self._act(attempt, decision)

    async def _act(self, attempt: Attempt, decision: Decision) -> None:
        assert self.info is not None and self.classification is not None
        self.budget_exhausted = self.budget_exhausted or decision.budget_exhausted
        if decision.shadow:
            self.action, self.shadow_action = "shadow", decision.action
            self.rule_id = decision.rule_id
            await self._deliver(attempt)
            return
        if decision.action == "retry" and attempt.number < decision.max_attempts:
            note = decision.retry_message or ""
            rewritten = _safely(
                lambda info: self.route.adapter.rewrite_request(info, note, decision.retry_role),
                self.info,
            )
            if rewritten is not None:
                self.action, self.rule_id = "retry", decision.rule_id
                attempt.retry_body, attempt.mode = rewritten, Mode.DISCARD
                return
        if attempt.number > 1:
            self.retry_outcome = "still_refused" if self.classification.is_refusal else "recovered"
        elif decision.rule_id is not None:
            self.rule_id = decision.rule_id
        rendered: Rendered | None = None
        if decision.action == "replace":
            text = decision.replace_text or self.options.block_message
            stream = attempt.is_stream
            rendered = _safely(
                lambda info: self.route.adapter.render_replacement(info, text, stream=stream),
                self.info,
            )
        elif decision.action == "block":
            message = decision.block_message or self.options.block_message
            rendered = self._render_block(message, decision.block_status)
        if rendered is None:
            if decision.action in ("replace", "block"):
                self.skipped = "error"  # the adapter could not render it: fail open
            await self._deliver(attempt)
            return
        self.action, self.rule_id = decision.action, decision.rule_id
        await self._respond(attempt, rendered)

    def _render_block(self, message: str, status: int) -> Rendered | None:
        assert self.info is not None
        return _safely(
            lambda info: self.route.adapter.render_block(info, message, status), self.info
        )

    async def _classify_released_stream(self) -> None:
        attempt = self.final
        if attempt is None or not attempt.body_complete:
            return
        if self.passive:
            # Nothing judged this stream yet: if it cannot be read, say why (held streams
            # were checked while held and keep their window's verdict).
            reason = attempt.unreadable()
            if reason is not None:
                self.skipped = reason
                return
        if attempt.collector is None:
            return
        if attempt.deferred:
            await self._read_released_stream(attempt)
            return
        texts = attempt.texts()
        if not texts or (texts == self.window_texts and self.classification is not None):
            return
        result = await self.services.pool.classify(
            texts, self.options.classify_timeout, background=True
        )
        self.classifier_seconds += result.seconds
        if result.skipped is None:
            worst = _worst(result.classifications)
            self.classification, self.response_text = result.classifications[worst], texts[worst]
            if self.passive:
                self._decide_after_the_fact()
        else:
            # The finished text went unread: the window's verdict stays, and the skip is
            # counted so that a classifier falling behind shows on the dashboards.
            self.skipped = result.skipped

    async def _read_released_stream(self, attempt: Attempt) -> None:
        """A deferred stream: the classifier parses and classifies it (never held back)."""
        name = self.route.builtin
        assert name is not None
        result = await self.services.pool.classify_stream(
            name, attempt.raw(), self.options.classify_timeout
        )
        self.classifier_seconds += result.seconds
        if result.skipped is not None:
            self.skipped = result.skipped
        elif result.classifications:  # none: no text to read (a tool call)
            worst = _worst(result.classifications)
            self.classification = result.classifications[worst]
            self.response_text = result.texts[worst]
            self._decide_after_the_fact()

    def _decide_after_the_fact(self) -> None:
        """An unheld stream's decision, for the record: it passed, whatever the policy says.

        ``may_act`` said the policy would pass it; a hard floor or pass rule still names
        itself. Should the policy act after all, the action is recorded as a shadow.
        """
        assert self.policy is not None and self.ctx is not None
        assert self.classification is not None
        try:
            decision = self.policy.decide(self.ctx, self.classification, attempt=self.attempts)
        except Exception:
            _log.exception("guardrail policy failed to decide; the response passed")
            self.skipped = "error"
            return
        self.rule_id = decision.rule_id
        if decision.shadow or decision.action != "pass":
            _log.warning(
                "guardrail: the policy acted (%s) on a stream its may_act had let through",
                decision.action,
            )
            self.action, self.shadow_action = "shadow", decision.action

    def _record(self, elapsed: float) -> None:
        try:
            self.services.recorder.record(self.outcome(elapsed))
        except Exception:
            _log.exception("guardrail recorder failed; the outcome is lost, the response is not")
