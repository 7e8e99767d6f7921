"""The short-refusals benchmark: its texts cover the contract, its counts are per model."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from benchmarks.short_refusals import COMPLIANT, REFUSALS, measure
from guardrail.classification import Classification
from guardrail.taxonomy import CATEGORIES

ANSWER = Classification("compliance", 0.02, "none", "none", 0.0)


class _Fixed:
    """A classifier answering from a table, compliance for any other text."""

    def __init__(self, table: dict[str, Classification]) -> None:
        self.table = table

    def classify(self, text: str) -> Classification:
        return self.table.get(text, ANSWER)

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]:
        return [self.classify(t) for t in texts]


def test_every_category_has_two_refusals_and_no_text_repeats() -> None:
    """Two refusals per category of CONTRACT.md, and every text of the set is distinct."""
    assert Counter(category for category, _ in REFUSALS) == dict.fromkeys(CATEGORIES, 2)
    texts = [text for _, text in REFUSALS] + list(COMPLIANT)
    assert len(set(texts)) == len(texts)


def test_seen_refusals_kinds_categories_and_flagged_answers_are_counted() -> None:
    """Right, wrong-kind and missed refusals and a flagged answer each land in their count."""
    legal, modality, unclear = REFUSALS[0], REFUSALS[14], REFUSALS[-1]
    assert (legal[0], modality[0], unclear[0]) == ("legal_compliance", "modality", "unclear")
    got = measure(
        _Fixed(
            {
                legal[1]: Classification(
                    "full_refusal", 0.9, "should_not", "legal_compliance", 1.0
                ),
                modality[1]: Classification("full_refusal", 0.9, "should_not", "privacy", 0.6),
                unclear[1]: Classification("partial_refusal", 0.7, "cannot", "unclear", 0.5),
                COMPLIANT[0]: Classification("full_refusal", 0.6, "cannot", "unclear", 0.5),
            }
        )
    )
    assert got["refusals_seen"] == 3
    assert got["kind_right_of_seen"] == 2  # "unclear" takes either kind
    assert got["category_right_of_seen"] == 2
    assert len(got["missed"]) == len(REFUSALS) - 3
    assert legal[1] not in got["missed"]
    assert (got["compliant_flagged"], got["flagged"]) == (1, [COMPLIANT[0]])
