"""Rule conditions (the ``when:`` block) and how they match one classified request.

All listed conditions must hold (AND); a list means "any of these values" (OR). Cheap
checks on the classification run first, verified context next (resolved at most once per
decision, and only if a rule asks for it) and regexes last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from guardrail.classification import Classification
from guardrail.policy._regex import Pattern
from guardrail.policy.context import VerifiedContext
from guardrail.policy_api import RequestContext
from guardrail.taxonomy import REFUSAL_VERDICTS

__all__ = ["Conditions", "FloorConditions"]

Values = frozenset[str] | None


@dataclass(frozen=True, slots=True)
class Conditions:
    """A rule's ``when:`` block; ``None`` means "not constrained".

    ``verdicts`` defaults to the two refusal verdicts: rules act on refusals unless a rule
    lists ``compliance`` explicitly. ``scopes_any``/``users``/``headers`` look only at the
    verified context; ``models``, ``body_users`` and ``metadata`` are the client's own
    claims, fine for routing but never a grant.
    """

    verdicts: frozenset[str] = REFUSAL_VERDICTS
    kinds: Values = None
    categories: Values = None
    min_refusal_score: float | None = None
    min_category_score: float | None = None
    routes: Values = None
    methods: Values = None
    apis: Values = None
    stream: bool | None = None
    models: Values = None
    body_users: Values = None
    metadata: tuple[tuple[str, frozenset[str]], ...] = ()
    scopes_any: Values = None
    scopes_all: Values = None
    users: Values = None
    headers: tuple[tuple[str, frozenset[str]], ...] = ()
    user_message: Pattern | None = None
    system_prompt: Pattern | None = None

    @property
    def needs_context(self) -> bool:
        return bool(self.scopes_any or self.scopes_all or self.users or self.headers)

    def matches(
        self, ctx: RequestContext, c: Classification, verified: Callable[[], VerifiedContext]
    ) -> bool:
        if c.verdict not in self.verdicts:
            return False
        if self.kinds is not None and c.kind not in self.kinds:
            return False
        if self.categories is not None and c.category not in self.categories:
            return False
        if self.min_refusal_score is not None and c.refusal_score < self.min_refusal_score:
            return False
        if self.min_category_score is not None and c.category_score < self.min_category_score:
            return False
        return self.could_match(ctx, verified)

    def could_match(self, ctx: RequestContext, verified: Callable[[], VerifiedContext]) -> bool:
        """Whether some classification of a response to ``ctx`` would satisfy this block:
        every condition on the request (route, model, verified context, regexes) holds."""
        if not self._request_matches(ctx):
            return False
        if self.needs_context and not self._context_matches(verified()):
            return False
        if self.user_message is not None and not self.user_message.search(ctx.last_user_message):
            return False
        return self.system_prompt is None or self.system_prompt.search(ctx.system_prompt)

    def _request_matches(self, ctx: RequestContext) -> bool:
        if self.routes is not None and ctx.route not in self.routes:
            return False
        if self.methods is not None and ctx.method.upper() not in self.methods:
            return False
        if self.apis is not None and ctx.api not in self.apis:
            return False
        if self.stream is not None and ctx.stream != self.stream:
            return False
        if self.models is not None and ctx.model not in self.models:
            return False
        if self.body_users is not None and ctx.body_user not in self.body_users:
            return False
        return all(ctx.metadata.get(key) in allowed for key, allowed in self.metadata)

    def _context_matches(self, v: VerifiedContext) -> bool:
        if self.scopes_any is not None and not (self.scopes_any & v.scopes):
            return False
        if self.scopes_all is not None and not self.scopes_all <= v.scopes:
            return False
        if self.users is not None and v.user not in self.users:
            return False
        return all(v.header_values.get(name) in allowed for name, allowed in self.headers)


@dataclass(frozen=True, slots=True)
class FloorConditions:
    """A hard floor: a topic regex over the user message and/or refusal categories.

    When both are given both must hold. Floors look at every response, whatever the
    context, and are checked before any rule.
    """

    user_message: Pattern | None = None
    categories: Values = None

    def matches(self, ctx: RequestContext, c: Classification) -> bool:
        if self.categories is not None and c.category not in self.categories:
            return False
        return self.user_message is None or self.user_message.search(ctx.last_user_message)
