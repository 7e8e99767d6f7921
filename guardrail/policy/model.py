"""The frozen in-memory form of a policy file, built by the loader.

Nothing here is mutable: a hot reload builds a whole new ``PolicySpec`` and swaps it in,
so a request that is half-way through ``decide`` never sees a mix of two versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from guardrail.policy.budget import BudgetSpec
from guardrail.policy.conditions import Conditions, FloorConditions
from guardrail.policy.context import SignedHeader, TrustedHeader
from guardrail.policy_api import DecisionAction

__all__ = [
    "DEFAULT_BLOCK_MESSAGE",
    "DEFAULT_RETRY_BUDGET",
    "NOTE_PLACEHOLDERS",
    "ActionSpec",
    "HardFloor",
    "PolicySpec",
    "Rule",
]

#: Applied when a policy names no ``retry_budget``: retries must always be capped.
DEFAULT_RETRY_BUDGET = BudgetSpec(per_minute=60.0, burst=10)
DEFAULT_BLOCK_MESSAGE = "This response was withheld by the service's content policy."

#: What a retry note may interpolate: verified values and server configuration only,
#: never anything the client wrote.
NOTE_PLACEHOLDERS = ("user", "scopes", "route", "method")


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """What a rule (or the default) does; only the fields of ``action`` are meaningful."""

    action: DecisionAction = "pass"
    shadow: bool = False
    retry_note: str | None = None
    retry_role: Literal["system", "developer"] = "system"
    max_attempts: int = 2
    retry_budget: BudgetSpec | None = None
    replace_text: str | None = None
    block_status: int = 403
    block_message: str = DEFAULT_BLOCK_MESSAGE


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    when: Conditions
    then: ActionSpec
    description: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class HardFloor:
    id: str
    when: FloorConditions
    description: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A whole validated policy file.

    ``warnings`` are positioned ``FILE:LINE:COL: message`` lines about settings that were
    accepted but degraded (for example a signed-context secret missing from the
    environment); the CLI prints them and the providers log them.
    """

    source: str
    name: str
    description: str = ""
    fail_closed: bool = False
    trusted_headers: tuple[TrustedHeader, ...] = ()
    signed_header: SignedHeader | None = None
    hard_floors: tuple[HardFloor, ...] = ()
    rules: tuple[Rule, ...] = ()
    default: ActionSpec = ActionSpec()
    retry_budget: BudgetSpec = DEFAULT_RETRY_BUDGET
    warnings: tuple[str, ...] = ()
    sha256: str = ""

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """Every rule id a decision can carry (floors as ``floor:<id>``): a bounded label set."""
        return (*(f"floor:{f.id}" for f in self.hard_floors), *(r.id for r in self.rules))
