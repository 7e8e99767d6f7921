"""``Policy``: turns a classified request into a ``Decision``.

Order of evaluation: hard floors (any match -> pass, ``hard_floor=True``), then rules in
file order (first match wins), then the ``default`` action. A retry that would actually
re-call the wrapped app (``attempt < max_attempts``, not shadow) takes a token from the
retry budget; without one the response passes with ``budget_exhausted=True``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from guardrail.classification import Classification
from guardrail.policy.budget import RetryBudget
from guardrail.policy.context import VerifiedContext, resolve_context
from guardrail.policy.model import ActionSpec, PolicySpec
from guardrail.policy_api import Decision, RequestContext

__all__ = ["Policy"]


class Policy:
    """A loaded policy (implements ``PolicyLike``); safe to share across threads.

    The rules are immutable; the only state is the retry budget, which is locked.
    ``clock`` (wall time, for signed-header expiry) and ``monotonic`` (for the budget)
    are injectable for tests.
    """

    __slots__ = ("_budget", "_clock", "_monotonic", "_spec")

    def __init__(
        self,
        spec: PolicySpec,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spec = spec
        self._clock = clock
        self._monotonic = monotonic
        rule_budgets = {
            r.id: r.then.retry_budget for r in spec.rules if r.then.retry_budget is not None
        }
        self._budget = RetryBudget(spec.retry_budget, rule_budgets, monotonic)

    def __repr__(self) -> str:
        return (
            f"Policy(name={self._spec.name!r}, source={self._spec.source!r}, "
            f"rules={len(self._spec.rules)}, hard_floors={len(self._spec.hard_floors)})"
        )

    @property
    def spec(self) -> PolicySpec:
        return self._spec

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def fail_closed(self) -> bool:
        return self._spec.fail_closed

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return self._spec.rule_ids

    @property
    def warnings(self) -> tuple[str, ...]:
        return self._spec.warnings

    @property
    def budget(self) -> RetryBudget:
        return self._budget

    def fresh(self) -> Policy:
        """The same rules with a full retry budget (table tests run each case this way)."""
        return Policy(self._spec, clock=self._clock, monotonic=self._monotonic)

    def continue_from(self, previous: Policy) -> None:
        """Take over the remaining retry budget of the policy this one replaces."""
        self._budget.adopt(previous._budget)

    def verify_context(self, ctx: RequestContext) -> VerifiedContext:
        """The verified scopes/user/trusted headers of a request (also useful for debugging)."""
        return resolve_context(
            ctx, self._spec.trusted_headers, self._spec.signed_header, now=self._clock()
        )

    def may_act(self, ctx: RequestContext) -> bool:
        """False when every response to ``ctx`` will pass unchanged and unannotated.

        True when failing closed, when the default or a rule whose request conditions hold
        for ``ctx`` retries, replaces, blocks or shadows. The middleware then holds a stream
        back to judge its start; otherwise the stream goes out at once and is classified
        after its last byte.
        """
        if self._spec.fail_closed or _changes(self._spec.default):
            return True
        verified = self._verifier(ctx)
        return any(_changes(r.then) and r.when.could_match(ctx, verified) for r in self._spec.rules)

    def _verifier(self, ctx: RequestContext) -> Callable[[], VerifiedContext]:
        """``ctx``'s verified context, resolved at most once and only if a rule needs it."""
        cache: list[VerifiedContext] = []

        def verified() -> VerifiedContext:
            if not cache:
                cache.append(self.verify_context(ctx))
            return cache[0]

        return verified

    def decide(
        self, ctx: RequestContext, classification: Classification, *, attempt: int
    ) -> Decision:
        if attempt < 1:
            raise ValueError(f"attempt counts calls of the wrapped app from 1, got {attempt}")
        for floor in self._spec.hard_floors:
            if floor.when.matches(ctx, classification):
                return Decision(action="pass", rule_id=f"floor:{floor.id}", hard_floor=True)
        verified = self._verifier(ctx)
        for rule in self._spec.rules:
            if rule.when.matches(ctx, classification, verified):
                return self._apply(rule.then, rule.id, ctx, verified, attempt)
        return self._apply(self._spec.default, None, ctx, verified, attempt)

    def _apply(
        self,
        spec: ActionSpec,
        rule_id: str | None,
        ctx: RequestContext,
        verified: Callable[[], VerifiedContext],
        attempt: int,
    ) -> Decision:
        if spec.action == "pass":
            return Decision(action="pass", rule_id=rule_id, shadow=spec.shadow)
        if spec.action == "replace":
            return Decision(
                action="replace",
                rule_id=rule_id,
                shadow=spec.shadow,
                replace_text=spec.replace_text,
            )
        if spec.action == "block":
            return Decision(
                action="block",
                rule_id=rule_id,
                shadow=spec.shadow,
                block_status=spec.block_status,
                block_message=spec.block_message,
            )
        will_retry = not spec.shadow and attempt < spec.max_attempts
        if will_retry and not self._budget.try_acquire(rule_id or "default"):
            return Decision(action="pass", rule_id=rule_id, budget_exhausted=True)
        return Decision(
            action="retry",
            rule_id=rule_id,
            shadow=spec.shadow,
            retry_message=_render_note(spec.retry_note or "", ctx, verified()),
            retry_role=spec.retry_role,
            max_attempts=spec.max_attempts,
        )


def _changes(spec: ActionSpec) -> bool:
    # A shadow pass is recorded as "shadow" in the headers, so it needs the verdict first too.
    return spec.action != "pass" or spec.shadow


def _render_note(template: str, ctx: RequestContext, v: VerifiedContext) -> str:
    # The template's placeholders were checked at load time; the values are verified
    # context or server configuration, never text from the conversation.
    values = {
        "user": v.user or "unknown",
        "scopes": ", ".join(sorted(v.scopes)) or "none",
        "route": ctx.route,
        "method": ctx.method,
    }
    return template.format_map(values)
