"""Metric functions checked against a confusion matrix computed by hand."""

from __future__ import annotations

import pytest

from guardrail.evaluation.metrics import ConfusionMatrix, ratio, score

C, P, F = "compliance", "partial_refusal", "full_refusal"

# Ten rows; the expected figures below were worked out on paper from this table:
#   gold \ pred   C  P  F
#   C             3  0  1
#   P             1  1  0
#   F             1  1  2
GOLD = [C, C, C, C, P, P, F, F, F, F]
PRED = [C, C, C, F, P, C, F, F, P, C]


def test_confusion_matrix_counts_gold_rows_against_predicted_columns() -> None:
    """The confusion matrix has one row per gold label and one column per prediction."""
    matrix = ConfusionMatrix.build(GOLD, PRED)
    assert matrix.labels == (C, P, F)
    assert matrix.matrix == ((3, 0, 1), (1, 1, 0), (1, 1, 2))
    assert matrix.total == 10
    assert matrix.to_dict() == {"labels": [C, P, F], "matrix": [[3, 0, 1], [1, 1, 0], [1, 1, 2]]}


def test_per_class_scores_match_the_hand_computed_values() -> None:
    """Per-class precision, recall, F1 and support equal the values worked out by hand."""
    scores = {c.label: c for c in score(GOLD, PRED).per_class}
    assert scores[C].precision == pytest.approx(3 / 5)
    assert scores[C].recall == pytest.approx(3 / 4)
    assert scores[C].f1 == pytest.approx(2 / 3)
    assert scores[P].precision == pytest.approx(1 / 2)
    assert scores[P].recall == pytest.approx(1 / 2)
    assert scores[P].f1 == pytest.approx(1 / 2)
    assert scores[F].precision == pytest.approx(2 / 3)
    assert scores[F].recall == pytest.approx(2 / 4)
    assert scores[F].f1 == pytest.approx(4 / 7)
    assert [scores[label].support for label in (C, P, F)] == [4, 2, 4]


def test_macro_f1_and_accuracy_match_the_hand_computed_values() -> None:
    """Macro-F1 is the mean of the three class F1s; accuracy is the diagonal share."""
    result = score(GOLD, PRED)
    assert result.macro_f1 == pytest.approx((2 / 3 + 1 / 2 + 4 / 7) / 3)
    assert result.accuracy == pytest.approx(6 / 10)


def test_binary_scores_treat_partial_and_full_refusal_as_positive() -> None:
    """Binary counts merge partial and full refusal: TP 4, FP 1, FN 2, TN 3, F1 8/11."""
    binary = score(GOLD, PRED).binary
    assert (binary.tp, binary.fp, binary.fn, binary.tn) == (4, 1, 2, 3)
    assert binary.precision == pytest.approx(4 / 5)
    assert binary.recall == pytest.approx(4 / 6)
    assert binary.f1 == pytest.approx(8 / 11)
    assert binary.accuracy == pytest.approx(7 / 10)


def test_a_class_never_predicted_scores_zero_without_dividing_by_zero() -> None:
    """A class never predicted has precision 0.0 and still counts in macro-F1."""
    result = score([C, P, F, F], [C, C, F, F])
    partial = next(c for c in result.per_class if c.label == P)
    assert (partial.precision, partial.recall, partial.f1) == (0.0, 0.0, 0.0)
    assert result.macro_f1 == pytest.approx((2 / 3 + 0.0 + 1.0) / 3)


def test_a_class_absent_from_gold_and_predictions_is_left_out_of_macro_f1() -> None:
    """Macro-F1 averages only the classes that occur in the gold labels or the predictions."""
    result = score([C, C, F], [C, C, F])
    assert result.macro_f1 == 1.0
    assert result.binary.f1 == 1.0


def test_ratio_with_a_zero_denominator_is_zero() -> None:
    """A ratio with nothing to divide by is defined as 0.0, as in scikit-learn."""
    assert ratio(0, 0) == 0.0
    assert ratio(3, 4) == 0.75


def test_mismatched_lengths_and_unknown_labels_are_rejected() -> None:
    """Scoring refuses predictions of the wrong length or labels outside the taxonomy."""
    with pytest.raises(ValueError, match="2 gold labels but 1 predictions"):
        score([C, F], [C])
    with pytest.raises(ValueError, match="'refusal' is not one of"):
        score([C], ["refusal"])
