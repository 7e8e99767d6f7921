"""Knowledge distillation: a deeper teacher's verdict logits as extra targets for the student.

The teacher (a checkpoint of the same network with more layers, e.g. all six of MiniLM-L6)
reads every training window once before training; its verdict logits ride along on each
window's targets. The student's verdict loss is then a mix of the hard label's cross-entropy
and the Kullback-Leibler divergence from the teacher's temperature-softened distribution (the
usual T² scaling keeps its gradients comparable across temperatures). Kind and category keep
their hard labels only: the teacher's category on a compliant window means nothing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch.nn import functional as F

from guardrail.training.dataset import LabelledWindow

__all__ = ["distill_loss", "with_teacher_logits"]


@torch.no_grad()
def with_teacher_logits(
    teacher: Path, items: list, *, batch_size: int = 64, bf16: bool = False
) -> list:
    """``items`` ((ids, LabelledWindow) pairs) with the teacher's verdict logits attached."""
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
    return [
        (ids, replace(target, teacher=row))
        for (ids, target), row in zip(items, logits, strict=True)
    ]


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
