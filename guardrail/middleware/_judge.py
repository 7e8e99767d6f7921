"""How an exchange judges an answer: classify it, ask the policy, act on the decision.

``Judge`` is the deciding half of a request's state (``Exchange`` adds the request loop and
the hooks its ``Attempt`` calls). It judges a complete body or a stream's hold-back window
before anything is sent, and after a released stream's last byte classifies its whole text
for the record (that adds no latency, only a better verdict for metrics and logs). Every
path that cannot judge (classifier skipped, policy or adapter raised) fails open unless the
policy fails closed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.types import Send

from guardrail.classification import Classification
from guardrail.middleware._attempt import Attempt, Mode
from guardrail.middleware._responder import Responder
from guardrail.middleware._services import Services, safely
from guardrail.middleware.adapters import Rendered
from guardrail.policy_api import ActingScope, Decision, PolicyLike
from guardrail.taxonomy import VERDICTS

if TYPE_CHECKING:
    from guardrail.middleware._routes import GuardedRoute

__all__ = ["Judge"]

_log = logging.getLogger("guardrail.middleware")
_SEVERITY = {verdict: rank for rank, verdict in enumerate(VERDICTS)}


def _worst(classifications: tuple[Classification, ...]) -> int:
    """Index of the most severe verdict (ties: the higher refusal score)."""
    return max(
        range(len(classifications)),
        key=lambda i: (_SEVERITY[classifications[i].verdict], classifications[i].refusal_score),
    )


class Judge(Responder):
    """Decision state of one request: its policy, and whether its streams are held back."""

    def __init__(self, services: Services, route: GuardedRoute, send: Send) -> None:
        super().__init__(services.options, route, send)
        self.services = services
        self.policy: PolicyLike | None = None
        # The texts the stream's hold-back window was judged on: when the stream ended inside
        # the window they are the whole answer, and classifying them again would only cost CPU.
        self.window_texts: tuple[str, ...] | None = None
        # Whether a stream is held back to be judged before release: asked of the policy
        # when the first stream of the exchange starts (JSON answers never need it).
        self._hold_streams: bool | None = None

    @property
    def passive(self) -> bool:
        """A stream went out unheld: it is classified and decided after its last byte."""
        return self._hold_streams is False

    def holds_streams(self) -> bool:
        """Hold streams unless the options allow it and the policy says it cannot act."""
        if self._hold_streams is None:
            self._hold_streams = self._ask_may_act()
        return self._hold_streams

    def _ask_may_act(self) -> bool:
        assert self.policy is not None and self.ctx is not None
        if self.options.stream_hold == "always" or not isinstance(self.policy, ActingScope):
            return True
        try:
            return bool(self.policy.may_act(self.ctx))
        except Exception:
            _log.exception("guardrail policy may_act failed; the stream is held back")
            return True

    # -- before anything is sent ------------------------------------------------------

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
            rewritten = safely(
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
            rendered = safely(
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
        return safely(
            lambda info: self.route.adapter.render_block(info, message, status), self.info
        )

    # -- after the last byte ---------------------------------------------------------

    async def classify_released_stream(self) -> None:
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
        attempt.read_rest()  # what came while its window was judged, if it ended then
        if attempt.collector is None:
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
