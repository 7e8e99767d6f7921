"""Knowledge distillation: a deeper teacher's verdict logits as extra targets for the student.

The teacher (a checkpoint of the same network with more layers, e.g. all six of MiniLM-L6)
reads every training window once before training; its verdict logits ride along on each
window's targets. The student's verdict loss is then a mix of the hard label's cross-entropy
and the Kullback-Leibler divergence from the teacher's temperature-softened distribution (the
usual T² scaling keeps its gradients comparable across temperatures). Kind and category keep
their hard labels only: the teacher's category on a compliant window means nothing.

A teacher that trained on the windows it labels has nearly learnt their hard labels, so its
logits add little there. Fold teachers avoid that: two teachers, each trained on one half of
the human training prompts (``train --human-fold 0`` and ``1``), and every human answer gets
the logits of the teacher that never saw its prompt; the automatic and synthetic windows, which
both teachers trained on, get the mean of the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import torch
from torch.nn import functional as F

from guardrail.training.dataset import LabelledWindow

__all__ = ["distill_loss", "with_fold_teacher_logits", "with_teacher_logits"]


@torch.no_grad()
def _verdict_logits(
    teacher: Path, items: list, batch_size: int, bf16: bool
) -> list[tuple[float, ...]]:
    from guardrail.training.export import load_checkpoint
    from guardrail.training.train import padded_batches

    if not teacher.is_file():
        raise FileNotFoundError(f"teacher checkpoint not found: {teacher}")
    model = load_checkpoint(teacher)
    model.eval()
    logits: list[tuple[float, ...]] = []
    for ids, mask, _ in padded_batches(items, batch_size, None):  # in order: no rng
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            verdict, _, _ = model(ids, mask)
        logits += [tuple(row) for row in verdict.float().tolist()]
    return logits


def with_teacher_logits(
    teacher: Path, items: list, *, batch_size: int = 64, bf16: bool = False
) -> list:
    """``items`` ((ids, LabelledWindow) pairs) with the teacher's verdict logits attached."""
    logits = _verdict_logits(teacher, items, batch_size, bf16)
    return [
        (ids, replace(target, teacher=row))
        for (ids, target), row in zip(items, logits, strict=True)
    ]


def with_fold_teacher_logits(
    teachers: tuple[Path, Path],
    items: list,
    folds: Mapping[str, int],
    *,
    batch_size: int = 64,
    bf16: bool = False,
) -> list:
    """``items`` with out-of-fold verdict logits attached.

    ``teachers[k]`` trained on fold ``k`` of the human prompts; ``folds`` maps a human
    training answer's text to its prompt's fold (-1: answers prompts of both).
    """
    for teacher in teachers:  # both before either runs: a teacher pass takes minutes
        if not teacher.is_file():
            raise FileNotFoundError(f"teacher checkpoint not found: {teacher}")
    first = _verdict_logits(teachers[0], items, batch_size, bf16)
    second = _verdict_logits(teachers[1], items, batch_size, bf16)
    out = []
    for (ids, target), a, b in zip(items, first, second, strict=True):
        fold = folds.get(target.text, -1)
        if fold == 0:
            row = b  # the fold-1 teacher never saw this prompt
        elif fold == 1:
            row = a
        else:
            row = tuple((x + y) / 2 for x, y in zip(a, b, strict=True))
        out.append((ids, replace(target, teacher=row)))
    return out


def distill_loss(
    student: torch.Tensor, targets: list[LabelledWindow], temperature: float
) -> torch.Tensor:
    """T² · KL(teacher_T ‖ student_T), averaged over the batch's windows."""
    if any(t.teacher is None for t in targets):
        raise ValueError("every window needs teacher logits (with_teacher_logits)")
    teacher = torch.tensor([t.teacher for t in targets], dtype=student.dtype)
    soft = F.log_softmax(teacher / temperature, dim=-1)
    return (
        F.kl_div(
            F.log_softmax(student / temperature, dim=-1),
            soft,
            log_target=True,
            reduction="batchmean",
        )
        * temperature**2
    )
