"""The retry budget: token buckets that cap how often refusals may be retried.

A surge of refusals must not multiply the model bill, so every retry takes one token
from the policy-wide bucket and one from the rule's own bucket (when the rule has one);
if either is empty the response passes unchanged and the decision is marked
``budget_exhausted``. This is the only mutable state of a policy; one lock guards it, and
the critical section is a few float operations.

Reload: ``adopt`` carries the remaining tokens of buckets that exist in both the old and
the new policy (clamped to the new burst), so rewriting or touching the policy file
cannot refill an exhausted budget.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BudgetSpec", "RetryBudget", "TokenBucket"]


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """``per_minute`` tokens are added per minute, up to ``burst`` held at once."""

    per_minute: float
    burst: int


class TokenBucket:
    """A classic token bucket; not thread-safe by itself (``RetryBudget`` locks)."""

    __slots__ = ("_rate", "_stamp", "burst", "tokens")

    def __init__(self, spec: BudgetSpec, now: float) -> None:
        self._rate = spec.per_minute / 60.0
        self.burst = float(spec.burst)
        self.tokens = self.burst
        self._stamp = now

    def refill(self, now: float) -> None:
        # max() guards against a clock that steps back (monotonic should not, fakes may).
        elapsed = max(0.0, now - self._stamp)
        self.tokens = min(self.burst, self.tokens + elapsed * self._rate)
        self._stamp = now


class RetryBudget:
    """A global bucket plus one bucket per rule that declares its own ``retry_budget``."""

    def __init__(
        self,
        global_spec: BudgetSpec,
        rule_specs: dict[str, BudgetSpec],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._global = TokenBucket(global_spec, now)
        self._rules = {rule: TokenBucket(spec, now) for rule, spec in rule_specs.items()}

    def try_acquire(self, rule_id: str) -> bool:
        """Take one token from the global and the rule's bucket, or none if either is empty."""
        with self._lock:
            now = self._clock()
            buckets = [self._global]
            own = self._rules.get(rule_id)
            if own is not None:
                buckets.append(own)
            for bucket in buckets:
                bucket.refill(now)
            if any(bucket.tokens < 1.0 for bucket in buckets):
                return False
            for bucket in buckets:
                bucket.tokens -= 1.0
            return True

    def remaining(self, rule_id: str | None = None) -> float:
        """Tokens left in the global bucket (or the rule's own bucket), after refilling."""
        with self._lock:
            bucket = self._global if rule_id is None else self._rules.get(rule_id)
            if bucket is None:
                return float("inf")
            bucket.refill(self._clock())
            return bucket.tokens

    def adopt(self, previous: RetryBudget) -> None:
        """Continue from ``previous`` (the budget of the policy this one replaces)."""
        if previous is self:
            return
        with previous._lock:
            now = previous._clock()
            pairs = [(self._global, previous._global)]
            pairs += [
                (b, previous._rules[r]) for r, b in self._rules.items() if r in previous._rules
            ]
            for _new, old in pairs:
                old.refill(now)
            levels = [(new, old.tokens) for new, old in pairs]
        with self._lock:
            now = self._clock()
            for new, tokens in levels:
                new.tokens = min(new.burst, tokens)
                new._stamp = now
