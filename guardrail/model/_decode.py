"""From the heads' logits to a Classification, and how head and tail windows combine.

Per window: softmax each head. ``refusal_score`` = P(partial) + P(full). The verdict is a
refusal exactly when refusal_score >= 0.5, and then the larger of P(partial) and P(full)
picks which; a plain arg-max over three classes could call [0.4, 0.3, 0.3] compliance with a
refusal_score of 0.6, and policies threshold on that score. For a refusal, category =
arg-max of the category head and kind follows from the category (``CATEGORY_KIND``) except
for ``unclear``, where the kind head decides (docs/ARCHITECTURE.md). Compliance is always
``none``/``none`` with category_score 0.0.

Two windows (a long text read as head + tail):

1. the head says refusal -> the head's result as is (it declined up front; whatever follows
   is explanation or an alternative, which the head window was trained to weigh);
2. the head says compliance and the tail's refusal_score >= ``tail_refusal_threshold`` ->
   ``partial_refusal``: the text gave content and then declined something at the end. Kind
   and category come from the tail window, refusal_score is the tail's;
3. otherwise -> the head's compliance.

A tail that is only mildly refusal-like does not flip a compliant head, because closing
lines such as "I can't stress enough how important it is to..." or a safety note are common
in compliant answers; the threshold keeps that false-positive rate down. The reported
refusal_score is always that of the window that decided the verdict, so a verdict and its
score never disagree about which side of 0.5 they are on.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from guardrail.classification import Classification
from guardrail.taxonomy import CATEGORIES, CATEGORY_KIND, REFUSAL_KINDS, Verdict

__all__ = ["EMPTY", "Row", "combine", "combine_rows", "decode_window", "refuses", "softmax"]

Floats = npt.NDArray[np.float32]
#: One window's (verdict, kind, category) probabilities.
Row = tuple[Floats, Floats, Floats]

#: The defined result for a text with nothing to read.
EMPTY = Classification(
    verdict="compliance",
    refusal_score=0.0,
    kind="none",
    category="none",
    category_score=0.0,
    skipped="empty",
)


def softmax(logits: Floats) -> Floats:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    out: Floats = exp / exp.sum(axis=-1, keepdims=True)
    return out


def refuses(verdict_p: Floats) -> bool:
    """True when one window's verdict probabilities make it a refusal (score >= 0.5)."""
    return float(verdict_p[1] + verdict_p[2]) >= 0.5


def decode_window(
    verdict_p: Floats, kind_p: Floats, category_p: Floats, *, force_refusal: bool = False
) -> Classification:
    """One window's probabilities to a Classification.

    ``force_refusal`` labels the window ``partial_refusal`` whatever its own arg-max says (rule
    2 of the module docstring).
    """
    refusal_score = float(verdict_p[1] + verdict_p[2])
    verdict: Verdict
    if force_refusal:
        verdict = "partial_refusal"
    elif not refuses(verdict_p):
        verdict = "compliance"
    else:
        verdict = "partial_refusal" if verdict_p[1] > verdict_p[2] else "full_refusal"
    if verdict == "compliance":
        return Classification("compliance", refusal_score, "none", "none", 0.0)
    index = int(category_p.argmax())
    category = CATEGORIES[index]
    kind = CATEGORY_KIND[category] or REFUSAL_KINDS[int(kind_p.argmax())]
    return Classification(verdict, refusal_score, kind, category, float(category_p[index]))


def combine(
    probs: tuple[Floats, Floats, Floats], head: int, tail: int | None, tail_threshold: float
) -> Classification:
    """Combine the rows ``head`` and ``tail`` (None: single window) of the batch's probabilities."""
    verdict_p, kind_p, category_p = probs
    tail_row = None if tail is None else (verdict_p[tail], kind_p[tail], category_p[tail])
    return combine_rows((verdict_p[head], kind_p[head], category_p[head]), tail_row, tail_threshold)


def combine_rows(head: Row, tail: Row | None, tail_threshold: float) -> Classification:
    """Combine one text's head window and tail window (None: single window)."""
    first = decode_window(*head)
    if tail is None or first.is_refusal:
        return first
    if float(tail[0][1] + tail[0][2]) >= tail_threshold:
        return decode_window(*tail, force_refusal=True)
    return first
