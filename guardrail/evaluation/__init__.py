"""Evaluation: metrics, the string-matching baselines, and readers for labelled files.

Nothing here imports the model, so metrics and baselines stay usable (and testable) on
their own; ``guardrail eval`` (guardrail/cli/eval_cmd.py) puts the pieces together.
"""

from guardrail.evaluation.baselines import Baseline, find_data_dir, load_baselines
from guardrail.evaluation.metrics import (
    BinaryScores,
    ClassScores,
    ConfusionMatrix,
    MulticlassScores,
    score,
)
from guardrail.evaluation.readers import (
    LabelledRow,
    iter_records,
    normalise_label,
    read_labelled,
    text_field,
)
from guardrail.evaluation.report import EvalReport, evaluate, format_report

__all__ = [
    "Baseline",
    "BinaryScores",
    "ClassScores",
    "ConfusionMatrix",
    "EvalReport",
    "LabelledRow",
    "MulticlassScores",
    "evaluate",
    "find_data_dir",
    "format_report",
    "iter_records",
    "load_baselines",
    "normalise_label",
    "read_labelled",
    "score",
    "text_field",
]
