"""Classification metrics in pure Python: confusion matrix, precision/recall/F1, macro-F1.

Conventions (the same as scikit-learn's defaults, so figures can be checked against it):

- a ratio whose denominator is 0 is 0.0 (precision of a class never predicted, ...);
- binary metrics treat *refusal* (full or partial) as the positive class;
- macro-F1 is the unweighted mean of per-class F1 over the classes that occur in the gold
  labels or the predictions, so a baseline that never predicts ``partial_refusal`` is still
  charged for missing the partial refusals in the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from guardrail.taxonomy import VERDICTS, is_refusal

__all__ = ["BinaryScores", "ClassScores", "ConfusionMatrix", "MulticlassScores", "ratio", "score"]


def ratio(numerator: int, denominator: int) -> float:
    """numerator / denominator, or 0.0 when the denominator is 0."""
    return numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


@dataclass(frozen=True, slots=True)
class ConfusionMatrix:
    """Counts ``matrix[i][j]`` of rows with gold label ``labels[i]`` predicted ``labels[j]``."""

    labels: tuple[str, ...]
    matrix: tuple[tuple[int, ...], ...]

    @classmethod
    def build(
        cls, gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] = VERDICTS
    ) -> ConfusionMatrix:
        if len(gold) != len(predicted):
            raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
        index = {label: i for i, label in enumerate(labels)}
        counts = [[0] * len(labels) for _ in labels]
        for g, p in zip(gold, predicted, strict=True):
            if g not in index or p not in index:
                raise ValueError(f"label {g if g not in index else p!r} is not one of {labels}")
            counts[index[g]][index[p]] += 1
        return cls(tuple(labels), tuple(tuple(row) for row in counts))

    @property
    def total(self) -> int:
        return sum(sum(row) for row in self.matrix)

    def support(self, i: int) -> int:
        return sum(self.matrix[i])

    def predicted_count(self, j: int) -> int:
        return sum(row[j] for row in self.matrix)

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "matrix": [list(row) for row in self.matrix]}


@dataclass(frozen=True, slots=True)
class BinaryScores:
    """Refusal-vs-compliance counts and scores; refusal is the positive class."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _f1(self.precision, self.recall)

    @property
    def accuracy(self) -> float:
        return ratio(self.tp + self.tn, self.tp + self.fp + self.fn + self.tn)

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "accuracy": self.accuracy,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
        }


@dataclass(frozen=True, slots=True)
class ClassScores:
    """Precision, recall and F1 of one class, with its gold support."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
        }


@dataclass(frozen=True, slots=True)
class MulticlassScores:
    """Everything measured for one system's 3-class predictions."""

    confusion: ConfusionMatrix
    binary: BinaryScores
    per_class: tuple[ClassScores, ...]
    macro_f1: float
    accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "binary": self.binary.to_dict(),
            "macro_f1": self.macro_f1,
            "accuracy": self.accuracy,
            "per_class": {c.label: c.to_dict() for c in self.per_class},
            "confusion": self.confusion.to_dict(),
        }


def _binary(gold: Sequence[str], predicted: Sequence[str]) -> BinaryScores:
    tp = fp = fn = tn = 0
    for g, p in zip(gold, predicted, strict=True):
        gold_pos, pred_pos = is_refusal(g), is_refusal(p)
        if gold_pos and pred_pos:
            tp += 1
        elif pred_pos:
            fp += 1
        elif gold_pos:
            fn += 1
        else:
            tn += 1
    return BinaryScores(tp, fp, fn, tn)


def score(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] = VERDICTS
) -> MulticlassScores:
    """All metrics for one system: confusion matrix, binary, per-class and macro scores."""
    confusion = ConfusionMatrix.build(gold, predicted, labels)
    per_class: list[ClassScores] = []
    present: list[float] = []
    for i, label in enumerate(confusion.labels):
        hits = confusion.matrix[i][i]
        support, predicted_n = confusion.support(i), confusion.predicted_count(i)
        precision, recall = ratio(hits, predicted_n), ratio(hits, support)
        per_class.append(ClassScores(label, precision, recall, _f1(precision, recall), support))
        if support or predicted_n:
            present.append(per_class[-1].f1)
    correct = sum(confusion.matrix[i][i] for i in range(len(confusion.labels)))
    return MulticlassScores(
        confusion=confusion,
        binary=_binary(gold, predicted),
        per_class=tuple(per_class),
        macro_f1=sum(present) / len(present) if present else 0.0,
        accuracy=ratio(correct, confusion.total),
    )
