"""What the middleware reports about each guarded response, and who it reports to.

The middleware builds one ``GuardOutcome`` per request and hands it to a ``Recorder``
(metrics + structured log). Keeping this seam explicit lets tests record outcomes in a list
and lets operators plug in their own sink without touching the request path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from guardrail.classification import Classification

__all__ = [
    "ACTIONS",
    "RETRY_OUTCOMES",
    "SKIP_REASONS",
    "Action",
    "GuardOutcome",
    "Recorder",
    "RetryOutcome",
    "SkipReason",
]

Action = Literal["pass", "retry", "replace", "block", "shadow"]
ACTIONS: tuple[Action, ...] = ("pass", "retry", "replace", "block", "shadow")

RetryOutcome = Literal["recovered", "still_refused", "error"]
RETRY_OUTCOMES: tuple[RetryOutcome, ...] = ("recovered", "still_refused", "error")

SkipReason = Literal["too_large", "encoded", "unsupported", "timeout", "error"]
SKIP_REASONS: tuple[SkipReason, ...] = ("too_large", "encoded", "unsupported", "timeout", "error")


@dataclass(frozen=True, slots=True)
class GuardOutcome:
    """One guarded request, as delivered to the client.

    ``classification`` is the verdict on the final response (None when skipped).
    ``action`` is what was applied; for shadow rules it is "shadow" and ``shadow_action``
    holds what would have happened. ``attempts`` counts calls to the wrapped app.
    ``route`` is the configured route template, never the raw path. ``model`` is raw here:
    the recorder maps it into its bounded label set.
    """

    request_id: str
    route: str
    api: str
    stream: bool
    status: int
    model: str | None = None
    classification: Classification | None = None
    action: Action = "pass"
    rule_id: str | None = None
    shadow_action: Action | None = None
    attempts: int = 1
    retry_outcome: RetryOutcome | None = None
    budget_exhausted: bool = False
    skipped: SkipReason | None = None
    classifier_seconds: float = 0.0
    overhead_seconds: float = 0.0
    # Only filled when content logging is explicitly enabled; already truncated.
    request_excerpt: str | None = None
    response_excerpt: str | None = None


@runtime_checkable
class Recorder(Protocol):
    """Sink for guarded-response outcomes (metrics, logs). Must never raise."""

    def record(self, outcome: GuardOutcome) -> None: ...
