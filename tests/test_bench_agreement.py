"""The model-agreement benchmark counts differing verdicts and categories per source."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.model_agreement import compare
from guardrail.classification import Classification
from guardrail.training.sources import Example

ANSWER = Classification("compliance", 0.02, "none", "none", 0.0)
HAZARD = Classification("full_refusal", 0.97, "should_not", "information_hazards", 0.9)
PRIVACY = Classification("full_refusal", 0.97, "should_not", "privacy", 0.9)


class _Fixed:
    """A classifier answering from a table (text -> classification)."""

    def __init__(self, table: dict[str, Classification]) -> None:
        self.table = table

    def classify(self, text: str) -> Classification:
        return self.table[text]

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]:
        return [self.table[t] for t in texts]


def _row(text: str, source: str) -> Example:
    return Example(text=text, verdict="compliance", source=source, model="m", prompt_id="p")


def test_differences_are_counted_per_source_with_examples() -> None:
    """A flipped verdict and a changed category count once each; agreeing rows only as rows."""
    rows = [_row("a", "xstest/gpt4"), _row("b", "xstest/gpt4"), _row("c", "jailbreakbench/GCG")]
    shipped = _Fixed({"a": ANSWER, "b": HAZARD, "c": HAZARD})
    other = _Fixed({"a": HAZARD, "b": PRIVACY, "c": HAZARD})
    got = compare(shipped, other, rows, examples=1)
    assert got["by_source"] == {
        "xstest": {"rows": 2, "verdicts_differ": 1, "categories_differ": 1},
        "jailbreakbench": {"rows": 1},
    }
    assert got["total"] == {"rows": 3, "verdicts_differ": 1, "categories_differ": 1}
    assert got["examples"] == [
        {
            "source": "xstest/gpt4",
            "shipped": "compliance/none",
            "other": "full_refusal/information_hazards",
            "text": "a",
        }
    ]
