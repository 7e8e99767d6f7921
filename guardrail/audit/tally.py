"""Constant-memory accumulation of classifications: counters plus small example reservoirs.

Examples are drawn by reservoir sampling (seeded, so a rerun picks the same ones) rather than
"first N", because datasets are often sorted and the first rows of a cell are rarely typical.
The number of distinct sources kept apart is capped so a free-text column cannot grow
memory without bound; the rest are pooled under ``OTHER_SOURCE``.
"""

from __future__ import annotations

import random
from collections import Counter

from guardrail.audit.report import Example, GroupStats
from guardrail.classification import Classification

__all__ = ["MAX_SOURCES", "OTHER_SOURCE", "AuditTally", "GroupTally", "truncate"]

MAX_SOURCES = 50
OTHER_SOURCE = "(other)"
_ELLIPSIS = "…"


def truncate(text: str, limit: int) -> str:
    """Collapse whitespace and cut at ``limit`` characters, marking the cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: max(0, limit - 1)].rstrip() + _ELLIPSIS


class _Reservoir:
    """Algorithm R: after n offers, each offered item is kept with probability size/n."""

    __slots__ = ("items", "seen")

    def __init__(self) -> None:
        self.items: list[Example] = []
        self.seen = 0

    def slot(self, rng: random.Random, size: int) -> int | None:
        """Index the next offered item goes to, or None when it is not kept."""
        self.seen += 1
        if len(self.items) < size:
            return len(self.items)
        index = rng.randrange(self.seen)
        return index if index < size else None


class GroupTally:
    """Running counts and example reservoirs for one group of rows."""

    def __init__(self, name: str, examples: int, example_chars: int, seed: int = 0) -> None:
        self.name = name
        self.examples = examples
        self.example_chars = example_chars
        self.total = 0
        self.verdicts: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()
        self.categories: Counter[str] = Counter()
        self._reservoirs: dict[str, _Reservoir] = {}
        self._rng = random.Random(f"{seed}:{name}")

    def add(self, text: str, c: Classification) -> None:
        self.total += 1
        self.verdicts[c.verdict] += 1
        cells = [f"verdict:{c.verdict}"]
        if c.is_refusal:
            self.kinds[c.kind] += 1
            self.categories[c.category] += 1
            cells.append(f"category:{c.category}")
        if self.examples <= 0:
            return
        for cell in cells:
            reservoir = self._reservoirs.setdefault(cell, _Reservoir())
            index = reservoir.slot(self._rng, self.examples)
            if index is None:
                continue
            # Truncate only the samples that are kept: most rows never reach this line.
            sample = Example(truncate(text, self.example_chars), c.refusal_score)
            if index == len(reservoir.items):
                reservoir.items.append(sample)
            else:
                reservoir.items[index] = sample

    def freeze(self) -> GroupStats:
        return GroupStats(
            name=self.name,
            total=self.total,
            verdicts=dict(self.verdicts),
            kinds=dict(self.kinds),
            categories=dict(self.categories),
            examples={cell: tuple(r.items) for cell, r in sorted(self._reservoirs.items())},
        )


class AuditTally:
    """Overall and per-source tallies."""

    def __init__(
        self, *, examples: int = 3, example_chars: int = 240, max_sources: int = MAX_SOURCES
    ) -> None:
        self._examples = examples
        self._chars = example_chars
        self._max_sources = max_sources
        self.overall = GroupTally("all", examples, example_chars)
        self.sources: dict[str, GroupTally] = {}

    def add(self, text: str, source: str | None, c: Classification) -> None:
        self.overall.add(text, c)
        if source is None:
            return
        group = self.sources.get(source)
        if group is None:
            if len(self.sources) >= self._max_sources and source != OTHER_SOURCE:
                source = OTHER_SOURCE
                group = self.sources.get(source)
            if group is None:
                group = GroupTally(source, self._examples, self._chars)
                self.sources[source] = group
        group.add(text, c)

    def freeze_sources(self) -> tuple[GroupStats, ...]:
        groups = [g.freeze() for g in self.sources.values()]
        # Biggest sources first; ties by name so output is stable.
        return tuple(sorted(groups, key=lambda g: (-g.total, g.name)))
