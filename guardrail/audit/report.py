"""The result of an audit: counts, rates and examples, overall and per source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from guardrail.taxonomy import CATEGORIES, KINDS, VERDICTS

__all__ = ["AuditReport", "Example", "GroupStats"]


@dataclass(frozen=True, slots=True)
class Example:
    """One sampled response (already truncated) with its refusal score."""

    text: str
    refusal_score: float


@dataclass(frozen=True, slots=True)
class GroupStats:
    """Counts for one group of rows: all rows, or the rows of one source/model.

    ``kinds``/``categories`` count refusals only (compliance is kind/category "none").
    ``examples`` maps ``verdict:<id>`` and ``category:<id>`` cells to a few samples.
    """

    name: str
    total: int
    verdicts: dict[str, int]
    kinds: dict[str, int]
    categories: dict[str, int]
    examples: dict[str, tuple[Example, ...]] = field(default_factory=dict)

    @property
    def refusals(self) -> int:
        return self.total - self.verdicts.get("compliance", 0)

    def rate(self, count: int) -> float:
        return count / self.total if self.total else 0.0

    @property
    def refusal_rate(self) -> float:
        return self.rate(self.refusals)

    def to_dict(self) -> dict[str, Any]:
        refusals = self.refusals

        def cells(
            counts: dict[str, int], order: tuple[str, ...], of_refusals: bool
        ) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for key in order:
                count = counts.get(key, 0)
                cell: dict[str, Any] = {"count": count, "rate": round(self.rate(count), 6)}
                if of_refusals:
                    share = count / refusals if refusals else 0.0
                    cell["share_of_refusals"] = round(share, 6)
                out[key] = cell
            return out

        return {
            "name": self.name,
            "total": self.total,
            "refusals": refusals,
            "refusal_rate": round(self.refusal_rate, 6),
            "verdicts": cells(self.verdicts, VERDICTS, False),
            "kinds": cells(self.kinds, tuple(k for k in KINDS if k != "none"), True),
            "categories": cells(self.categories, CATEGORIES, True),
            "examples": {
                cell: [
                    {"text": e.text, "refusal_score": round(e.refusal_score, 4)} for e in samples
                ]
                for cell, samples in self.examples.items()
            },
        }


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Everything ``guardrail audit`` prints, in one immutable value."""

    input: str
    text_field: str | None
    source_field: str | None
    rows_read: int
    rows_skipped: dict[str, int]
    overall: GroupStats
    by_source: tuple[GroupStats, ...]
    seconds: float
    truncated_by_limit: bool = False

    @property
    def rows_classified(self) -> int:
        return self.overall.total

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "text_field": self.text_field,
            "source_field": self.source_field,
            "rows_read": self.rows_read,
            "rows_classified": self.rows_classified,
            "rows_skipped": dict(self.rows_skipped),
            "stopped_at_limit": self.truncated_by_limit,
            "seconds": round(self.seconds, 3),
            "overall": self.overall.to_dict(),
            "by_source": [group.to_dict() for group in self.by_source],
        }
