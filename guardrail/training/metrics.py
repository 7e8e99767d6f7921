"""Pure-python classification metrics used for checkpoint selection and the model card."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["binary_f1", "confusion", "macro_f1", "per_class"]


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def binary_f1(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    """Precision/recall/F1 of refusal (full or partial) against compliance."""
    g = [x != "compliance" for x in gold]
    p = [x != "compliance" for x in pred]
    tp = sum(a and b for a, b in zip(g, p, strict=True))
    fp = sum((not a) and b for a, b in zip(g, p, strict=True))
    fn = sum(a and (not b) for a, b in zip(g, p, strict=True))
    prec, rec, f1 = _prf(tp, fp, fn)
    return {"precision": prec, "recall": rec, "f1": f1}


def per_class(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Per-class precision/recall/F1/support."""
    out: dict[str, dict[str, float]] = {}
    for c in labels:
        tp = sum(a == c and b == c for a, b in zip(gold, pred, strict=True))
        fp = sum(a != c and b == c for a, b in zip(gold, pred, strict=True))
        fn = sum(a == c and b != c for a, b in zip(gold, pred, strict=True))
        p, r, f = _prf(tp, fp, fn)
        out[c] = {"precision": p, "recall": r, "f1": f, "support": float(tp + fn)}
    return out


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> float:
    """Unweighted mean of the per-class F1 scores."""
    pc = per_class(gold, pred, labels)
    return sum(v["f1"] for v in pc.values()) / len(labels)


def confusion(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> list[list[int]]:
    """Rows = gold label, columns = predicted label, in ``labels`` order."""
    idx = {c: i for i, c in enumerate(labels)}
    m = [[0] * len(labels) for _ in labels]
    for a, b in zip(gold, pred, strict=True):
        m[idx[a]][idx[b]] += 1
    return m
