"""The last-paragraph benchmark: how its texts end, and what it counts per model."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.last_paragraph import AFTER, CLOSES, DECLINES, FOLLOW_UPS, declined_text, measure
from guardrail.classification import Classification

_ANSWER = Classification("compliance", 0.02, "none", "none", 0.0)
_REFUSAL = Classification("partial_refusal", 0.9, "should_not", "legal_compliance", 0.8)


class _ReadsTheLastWords:
    """Flags a text when one of the decline phrases sits in its last ``words`` words."""

    def __init__(self, words: int) -> None:
        self.words = words

    def classify(self, text: str) -> Classification:
        tail = " ".join(text.split()[-self.words :])
        return _REFUSAL if any(d in tail for d in DECLINES) else _ANSWER

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]:
        return [self.classify(t) for t in texts]


def test_the_decline_opens_the_last_paragraph_and_the_sentences_follow_it() -> None:
    """After the body comes one blank line, the decline, then ``after`` follow-up sentences."""
    text = declined_text("Body text.", 1, 2)
    body, paragraph = text.split("\n\n")
    assert body == "Body text."
    assert paragraph == " ".join([DECLINES[1], FOLLOW_UPS[0], FOLLOW_UPS[1]])
    assert declined_text("B", 5, 0).endswith(DECLINES[5 % len(DECLINES)])
    assert AFTER[-1] == len(FOLLOW_UPS)


def test_rates_are_counted_per_number_of_sentences_after_the_decline() -> None:
    """A reader of the last 40 words sees the decline until the follow-ups push it out."""
    bodies = ["An answer. " * 50, "Another answer. " * 50]
    got = measure(_ReadsTheLastWords(40), bodies)
    seen = got["decline_seen_rate_by_sentences_after"]
    assert seen["0"] == seen["1"] == 1.0
    assert seen["4"] == 0.0
    assert got["close_kept_rate"] == 1.0
    assert got["answers"] == 2
    assert all(not any(d in c for d in DECLINES) for c in CLOSES)
