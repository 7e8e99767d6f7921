"""The client's side of an exchange: what it is sent, and what the outcome will say.

``Responder`` holds the per-request answer state (verdict, action, attempts, timings) and
the ways an answer leaves: forwarded as the app sent it, delivered whole with a corrected
Content-Length, the fallback of a failed retry, or a response rendered by the adapter.
Every path adds the same ``x-guardrail-*`` headers, built from that state.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.types import Message, Send

from guardrail.classification import Classification
from guardrail.middleware._attempt import Attempt, Mode
from guardrail.middleware._headers import GuardHeaders, with_headers
from guardrail.middleware.adapters import Rendered, RequestInfo
from guardrail.outcome import Action, GuardOutcome, RetryOutcome, SkipReason
from guardrail.policy_api import RequestContext

if TYPE_CHECKING:
    from guardrail.middleware._routes import GuardedRoute
    from guardrail.middleware.options import GuardrailOptions

__all__ = ["Responder"]


class Responder:
    """Answer state of one request; the exchange drives it."""

    def __init__(self, options: GuardrailOptions, route: GuardedRoute, send: Send) -> None:
        self.options = options
        self.route = route
        self._send = send
        self.request_id = ""
        self.info: RequestInfo | None = None
        self.ctx: RequestContext | None = None
        self.fallback: Attempt | None = None
        self.final: Attempt | None = None  # a released stream, classified in full at the end
        # What the outcome will say.
        self.status = 500
        self.classification: Classification | None = None
        self.response_text = ""
        self.response_model: str | None = None
        self.action: Action = "pass"
        self.rule_id: str | None = None
        self.shadow_action: Action | None = None
        self.attempts = 1
        self.retry_outcome: RetryOutcome | None = None
        self.budget_exhausted = False
        self.skipped: SkipReason | None = None
        self.classifier_seconds = 0.0
        self.app_seconds = 0.0
        self.in_send_seconds = 0.0
        self.downstream_seconds = 0.0
        self.upload_seconds = 0.0

    async def send_client(self, message: Message) -> None:
        began = time.perf_counter()
        try:
            await self._send(message)
        finally:
            self.downstream_seconds += time.perf_counter() - began

    def _guard_headers(self) -> GuardHeaders:
        verdict = self.classification.verdict if self.classification is not None else None
        return GuardHeaders(
            action=self.action,
            attempts=self.attempts,
            request_id=self.request_id,
            verdict=verdict,
            rule=self.rule_id,
            skipped=self.skipped,
        )

    async def _forward_held(self, attempt: Attempt) -> None:
        """Send the held start and bytes as the app sent them, then forward the rest.

        The held body messages leave as one message with all their bytes in order: they
        are released at the same instant anyway, and a stream's window is about ten SSE
        chunks, each of which would be a server write of its own (socket writes were a
        quarter of the event loop's time under stream load). The bytes, their order and the
        end of the body are the app's.
        """
        assert attempt.start is not None
        self.status = attempt.status
        self.final = attempt if attempt.parser is not None else None
        # A stream judged in a task of its own keeps getting messages while these sends
        # wait on the client: they join the held ones, and only once nothing is held any
        # more do the app's messages go straight out, so none overtakes another.
        attempt.mode = Mode.RELEASING
        await self.send_client(with_headers(attempt.start, self._guard_headers()))
        while attempt.held:
            held, attempt.held = attempt.held, []
            if len(held) > 1 and all(m["type"] == "http.response.body" for m in held):
                held = [
                    {
                        "type": "http.response.body",
                        "body": b"".join(m.get("body", b"") for m in held),
                        "more_body": held[-1].get("more_body", False),
                    }
                ]
            for message in held:
                await self.send_client(message)
        attempt.mode = Mode.FORWARD

    async def _deliver(self, attempt: Attempt) -> None:
        """Send a classified response unchanged (a complete body with its exact length)."""
        assert attempt.start is not None
        if attempt.is_stream or not attempt.body_complete:
            await self._forward_held(attempt)
            return
        self.status = attempt.status
        attempt.mode = Mode.FORWARD
        body = attempt.body()
        attempt.held = []
        start = with_headers(attempt.start, self._guard_headers(), content_length=len(body))
        await self.send_client(start)
        await self.send_client({"type": "http.response.body", "body": body, "more_body": False})

    async def _send_fallback(self) -> None:
        fallback = self.fallback
        assert fallback is not None and fallback.start is not None
        self.final = None
        fallback.parser = fallback.collector = None
        await self._deliver(fallback)

    async def _respond(self, attempt: Attempt, rendered: Rendered) -> None:
        """Answer with the middleware's own response; drop whatever the app sends after."""
        attempt.mode = Mode.SWALLOW
        attempt.held = []
        self.status = rendered.status
        self.final = None
        headers = [
            (b"content-type", rendered.content_type.encode("latin-1")),
            (b"content-length", str(len(rendered.body)).encode("latin-1")),
        ]
        if rendered.content_type.startswith("text/event-stream"):
            headers.append((b"cache-control", b"no-cache"))
        start: Message = {
            "type": "http.response.start",
            "status": rendered.status,
            "headers": headers,
        }
        await self.send_client(with_headers(start, self._guard_headers()))
        await self.send_client(
            {"type": "http.response.body", "body": rendered.body, "more_body": False}
        )

    def outcome(self, elapsed: float) -> GuardOutcome:
        """The GuardOutcome of this request; ``elapsed`` is its wall time up to the answer."""
        upstream = self.app_seconds - self.in_send_seconds
        overhead = max(0.0, elapsed - upstream - self.downstream_seconds - self.upload_seconds)
        excerpt = self.options.excerpt_chars if self.options.log_content else 0
        return GuardOutcome(
            request_id=self.request_id,
            route=self.route.template,
            api=self.route.adapter.name,
            stream=self.info.stream if self.info is not None else False,
            status=self.status,
            model=(self.info.model if self.info is not None else None) or self.response_model,
            classification=self.classification,
            action=self.action,
            rule_id=self.rule_id,
            shadow_action=self.shadow_action,
            attempts=self.attempts,
            retry_outcome=self.retry_outcome,
            budget_exhausted=self.budget_exhausted,
            skipped=self.skipped,
            classifier_seconds=self.classifier_seconds,
            overhead_seconds=overhead,
            request_excerpt=self.ctx.last_user_message[:excerpt] if excerpt and self.ctx else None,
            response_excerpt=self.response_text[:excerpt]
            if excerpt and self.response_text
            else None,
        )
