"""An evaluation report: every system scored on the same rows, overall and per source.

``evaluate`` takes the gold rows and each system's predictions (the model first, then the
baselines) and returns an ``EvalReport``; ``to_dict`` is what ``guardrail eval --json``
writes and ``format_report`` is what it prints.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from guardrail.evaluation.metrics import MulticlassScores, score
from guardrail.evaluation.readers import LabelledRow
from guardrail.taxonomy import VERDICTS

__all__ = ["EvalReport", "SourceScores", "evaluate", "format_report"]

_SHORT = {"compliance": "compl", "partial_refusal": "partial", "full_refusal": "full"}


@dataclass(frozen=True, slots=True)
class SourceScores:
    """The systems' scores on the rows of one source."""

    source: str
    n: int
    systems: Mapping[str, MulticlassScores]


@dataclass(frozen=True, slots=True)
class EvalReport:
    """Scores of every system on one labelled file."""

    path: str
    n: int
    label_counts: Mapping[str, int]
    systems: Mapping[str, MulticlassScores]
    per_source: tuple[SourceScores, ...]
    baselines_note: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "n": self.n,
            "label_counts": dict(self.label_counts),
            "systems": {name: s.to_dict() for name, s in self.systems.items()},
            "per_source": {
                s.source: {
                    "n": s.n,
                    "systems": {name: sc.to_dict() for name, sc in s.systems.items()},
                }
                for s in self.per_source
            },
            "baselines_available": self.baselines_note is None,
            "baselines_note": self.baselines_note,
            **dict(self.extra),
        }


def evaluate(
    path: str,
    rows: Sequence[LabelledRow],
    predictions: Mapping[str, Sequence[str]],
    *,
    baselines_note: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> EvalReport:
    """Score each system's predictions (same order as ``rows``) overall and per source."""
    gold = [row.label for row in rows]
    for name, predicted in predictions.items():
        if len(predicted) != len(gold):
            raise ValueError(f"{name}: {len(predicted)} predictions for {len(gold)} rows")
    systems = {name: score(gold, predicted) for name, predicted in predictions.items()}
    by_source: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        if row.source is not None:
            by_source.setdefault(row.source, []).append(i)
    per_source = tuple(
        SourceScores(
            source,
            len(indices),
            {
                name: score([gold[i] for i in indices], [predicted[i] for i in indices])
                for name, predicted in predictions.items()
            },
        )
        for source, indices in sorted(by_source.items())
    )
    counts = Counter(gold)
    return EvalReport(
        path=path,
        n=len(rows),
        label_counts={label: counts.get(label, 0) for label in VERDICTS},
        systems=systems,
        per_source=per_source,
        baselines_note=baselines_note,
        extra=dict(extra or {}),
    )


def format_report(report: EvalReport) -> str:
    """Human-readable tables: binary, per-class, confusion matrix, per source."""
    counts = ", ".join(f"{label} {n}" for label, n in report.label_counts.items())
    lines = [f"{report.path}: {report.n} rows ({counts})", ""]
    width = max(len(name) for name in report.systems) + 2
    lines.append("Binary (refusal = partial or full refusal)")
    lines.append(f"{'system':<{width}}precision  recall     F1  accuracy  macro-F1(3)")
    for name, scores in report.systems.items():
        b = scores.binary
        lines.append(
            f"{name:<{width}}{b.precision:9.3f}  {b.recall:6.3f}  {b.f1:5.3f}  "
            f"{b.accuracy:8.3f}  {scores.macro_f1:11.3f}"
        )
    if report.baselines_note:
        lines.append(f"(baselines unavailable: {report.baselines_note})")
    name, model = next(iter(report.systems.items()))
    lines += ["", f"3-class, {name}: macro-F1 {model.macro_f1:.3f}, accuracy {model.accuracy:.3f}"]
    lines.append(f"{'class':<17}precision  recall     F1  support")
    for c in model.per_class:
        lines.append(
            f"{c.label:<17}{c.precision:9.3f}  {c.recall:6.3f}  {c.f1:5.3f}  {c.support:7d}"
        )
    lines += ["", f"Confusion matrix, {name} (rows: gold, columns: predicted)"]
    lines.append(" " * 17 + "".join(f"{_SHORT[label]:>9}" for label in VERDICTS))
    for label, row in zip(model.confusion.labels, model.confusion.matrix, strict=True):
        lines.append(f"{label:<17}" + "".join(f"{n:9d}" for n in row))
    if report.per_source:
        names = list(report.systems)
        src_width = max(12, *(len(s.source) + 2 for s in report.per_source))
        lines += ["", "Per source: binary F1 (macro-F1)"]
        lines.append(f"{'source':<{src_width}}{'n':>6}  " + "  ".join(f"{n:>20}" for n in names))
        for src in report.per_source:
            cells = "  ".join(
                f"{src.systems[n].binary.f1:>12.3f} ({src.systems[n].macro_f1:.3f})" for n in names
            )
            lines.append(f"{src.source:<{src_width}}{src.n:>6}  {cells}")
    return "\n".join(lines)
