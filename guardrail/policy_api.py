"""The seam between the middleware and the policy engine.

The middleware describes the request (``RequestContext``) and the classification; the
policy answers with a ``Decision``. Nothing in here trusts the request: verification of
signed headers, trusted-gateway headers and auth scopes happens inside the policy, which
knows the secrets and the trust configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from guardrail.classification import Classification

__all__ = [
    "ActingScope",
    "Decision",
    "DecisionAction",
    "PolicyLike",
    "PolicyProvider",
    "RequestContext",
]

DecisionAction = Literal["pass", "retry", "replace", "block"]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Everything a policy rule may look at about one request.

    ``headers`` are lower-cased names with their raw values, as received: the policy decides
    which of them to trust. ``scopes``/``user`` come from ``scope["auth"]``/``scope["user"]``
    (Starlette's AuthenticationMiddleware), which only server-side code can set.
    """

    route: str
    method: str
    api: str
    path: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    scopes: frozenset[str] = frozenset()
    user: str | None = None
    model: str | None = None
    body_user: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    last_user_message: str = ""
    system_prompt: str = ""
    stream: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a classified response.

    ``attempt`` numbering: the first call of the wrapped app is attempt 1. For ``retry``,
    ``retry_message`` is the rendered context note and ``retry_role`` the message role to add
    ("system" for OpenAI chat / Anthropic ``system``, or "developer"); ``max_attempts`` is the
    total number of calls of the wrapped app this rule allows. ``shadow`` means: record the
    action, but pass the response unchanged. ``budget_exhausted`` marks a retry that the retry
    budget turned into a pass.
    """

    action: DecisionAction = "pass"
    rule_id: str | None = None
    shadow: bool = False
    retry_message: str | None = None
    retry_role: Literal["system", "developer"] = "system"
    max_attempts: int = 1
    replace_text: str | None = None
    block_status: int = 403
    block_message: str | None = None
    budget_exhausted: bool = False
    hard_floor: bool = False


@runtime_checkable
class PolicyLike(Protocol):
    """A loaded, immutable policy."""

    @property
    def fail_closed(self) -> bool:
        """True when a classifier error/timeout should block instead of passing."""
        ...

    def decide(
        self, ctx: RequestContext, classification: Classification, *, attempt: int
    ) -> Decision:
        """First matching rule wins; hard floors are checked before any rule."""
        ...


@runtime_checkable
class ActingScope(Protocol):
    """Optional on a ``PolicyLike``: can it tell, before any classification, that it will
    pass every response to a request? Streams of such requests are not held back.

    A policy without ``may_act`` is assumed to act on every request (streams are held).
    """

    def may_act(self, ctx: RequestContext) -> bool:
        """False only when no classification could make the policy change the response."""
        ...


@runtime_checkable
class PolicyProvider(Protocol):
    """Hands out the current policy; hot reload swaps what ``current()`` returns."""

    def current(self) -> PolicyLike: ...
