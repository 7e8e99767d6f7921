"""How head probabilities become a Classification, and how head and tail windows combine."""

from __future__ import annotations

import numpy as np
import pytest

from guardrail.model._decode import EMPTY, combine, decode_window, softmax
from guardrail.taxonomy import CATEGORIES

THRESHOLD = 0.8


def one_hot_category(name: str, p: float = 0.9) -> list[float]:
    rest = (1.0 - p) / (len(CATEGORIES) - 1)
    return [p if c == name else rest for c in CATEGORIES]


def batch(*windows: tuple[list[float], list[float], list[float]]) -> tuple[np.ndarray, ...]:
    """Probabilities for a batch of windows, each given as (verdict, kind, category)."""
    return tuple(np.array([w[i] for w in windows], dtype=np.float32) for i in range(3))


def test_softmax_rows_sum_to_one_and_survive_huge_logits() -> None:
    """softmax is stable for logits far outside exp's range."""
    out = softmax(np.array([[1000.0, 0.0, -1000.0], [1.0, 1.0, 1.0]], dtype=np.float32))
    assert np.allclose(out.sum(axis=1), 1.0)
    assert out[0, 0] == pytest.approx(1.0)
    assert np.allclose(out[1], 1 / 3)


def test_compliance_has_no_kind_or_category_and_keeps_its_refusal_score() -> None:
    """A compliant window is none/none with category_score 0 and refusal_score P(p)+P(f)."""
    result = decode_window(
        np.array([0.7, 0.2, 0.1]), np.array([0.5, 0.5]), np.array(one_hot_category("privacy"))
    )
    assert (result.verdict, result.kind, result.category) == ("compliance", "none", "none")
    assert result.category_score == 0.0
    assert result.refusal_score == pytest.approx(0.3)


def test_verdict_follows_the_refusal_score_not_the_three_way_argmax() -> None:
    """[0.4, 0.35, 0.25] is a refusal (score 0.6), and partial beats full."""
    result = decode_window(
        np.array([0.4, 0.35, 0.25]), np.array([0.5, 0.5]), np.array(one_hot_category("nsfw"))
    )
    assert result.verdict == "partial_refusal"
    assert result.refusal_score == pytest.approx(0.6)


def test_category_decides_kind_except_unclear_where_the_kind_head_decides() -> None:
    """modality implies cannot whatever the kind head says; unclear takes the kind head."""
    verdict = np.array([0.05, 0.05, 0.9])
    modality = decode_window(verdict, np.array([0.9, 0.1]), np.array(one_hot_category("modality")))
    assert (modality.kind, modality.category) == ("cannot", "modality")
    assert modality.category_score == pytest.approx(0.9)
    unclear = decode_window(verdict, np.array([0.2, 0.8]), np.array(one_hot_category("unclear")))
    assert (unclear.kind, unclear.category) == ("cannot", "unclear")
    unclear = decode_window(verdict, np.array([0.8, 0.2]), np.array(one_hot_category("unclear")))
    assert unclear.kind == "should_not"


def test_a_refusing_head_wins_over_a_compliant_tail() -> None:
    """When the head window refuses, the head's result is the answer."""
    probs = batch(
        ([0.1, 0.1, 0.8], [0.9, 0.1], one_hot_category("legal_compliance")),
        ([0.95, 0.03, 0.02], [0.5, 0.5], one_hot_category("modality")),
    )
    result = combine(probs, 0, 1, THRESHOLD)
    assert (result.verdict, result.category) == ("full_refusal", "legal_compliance")
    assert result.refusal_score == pytest.approx(0.9)


def test_a_compliant_head_with_a_confidently_refusing_tail_is_a_partial_refusal() -> None:
    """Content first and a decline at the end: partial_refusal with the tail's category."""
    probs = batch(
        ([0.9, 0.05, 0.05], [0.5, 0.5], one_hot_category("privacy")),
        ([0.05, 0.15, 0.8], [0.9, 0.1], one_hot_category("information_hazards")),
    )
    result = combine(probs, 0, 1, THRESHOLD)
    assert result.verdict == "partial_refusal"
    assert (result.kind, result.category) == ("should_not", "information_hazards")
    assert result.refusal_score == pytest.approx(0.95)


def test_a_mildly_refusing_tail_does_not_flip_a_compliant_head() -> None:
    """A tail below the threshold leaves the head's compliance and score in place."""
    probs = batch(
        ([0.9, 0.05, 0.05], [0.5, 0.5], one_hot_category("privacy")),
        ([0.3, 0.3, 0.4], [0.5, 0.5], one_hot_category("unclear")),
    )
    result = combine(probs, 0, 1, THRESHOLD)
    assert result.verdict == "compliance"
    assert result.refusal_score == pytest.approx(0.1)


def test_the_empty_result_is_skipped_compliance_with_zero_score() -> None:
    """Texts with nothing to read get compliance, score 0.0 and skipped='empty'."""
    assert EMPTY.verdict == "compliance"
    assert EMPTY.refusal_score == 0.0
    assert (EMPTY.kind, EMPTY.category, EMPTY.skipped) == ("none", "none", "empty")
