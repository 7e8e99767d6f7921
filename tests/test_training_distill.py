"""Distillation targets: the teacher's verdict logits ride on each window and shape the loss."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from guardrail.training.dataset import LabelledWindow  # noqa: E402
from guardrail.training.distill import distill_loss  # noqa: E402
from guardrail.training.train import TrainConfig  # noqa: E402


def _targets(*teacher: tuple[float, float, float] | None) -> list[LabelledWindow]:
    return [LabelledWindow("t", 0, -100, -100, teacher=row) for row in teacher]


def test_a_student_that_matches_its_teacher_has_no_distillation_loss() -> None:
    """Identical logits give zero divergence at any temperature."""
    logits = [(2.0, -1.0, 0.5), (-3.0, 0.0, 4.0)]
    for temperature in (1.0, 2.0, 5.0):
        loss = distill_loss(torch.tensor(logits), _targets(*logits), temperature)
        assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_the_loss_is_the_temperature_scaled_divergence_from_the_teacher() -> None:
    """One window: T^2 * sum p_t (log p_t - log p_s) over the softened distributions."""
    teacher, student, temperature = (3.0, 0.0, -1.0), (0.0, 1.0, 0.0), 2.0

    def soft(row: tuple[float, ...]) -> list[float]:
        z = [math.exp(v / temperature) for v in row]
        return [v / sum(z) for v in z]

    pt, ps = soft(teacher), soft(student)
    expected = temperature**2 * sum(
        a * (math.log(a) - math.log(b)) for a, b in zip(pt, ps, strict=True)
    )
    loss = distill_loss(torch.tensor([student]), _targets(teacher), temperature)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_the_loss_pulls_the_student_towards_the_teacher() -> None:
    """Its gradient raises the logit of the class the teacher prefers."""
    student = torch.zeros((1, 3), requires_grad=True)
    distill_loss(student, _targets((0.0, 0.0, 5.0)), 2.0).backward()
    assert student.grad is not None
    assert student.grad[0, 2] < 0 < student.grad[0, 0]


def test_a_window_without_teacher_logits_is_refused() -> None:
    """Mixing windows with and without teacher logits is a clear error, not a silent zero."""
    with pytest.raises(ValueError, match="teacher logits"):
        distill_loss(torch.zeros((2, 3)), _targets((1.0, 0.0, 0.0), None), 2.0)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"distill_weight": 1.5}, "distill_weight"), ({"distill_temperature": 0.0}, "temperature")],
)
def test_bad_distillation_settings_fail_when_the_config_is_built(
    options: dict[str, float], message: str
) -> None:
    """A weight outside [0, 1] or a non-positive temperature is refused up front."""
    with pytest.raises(ValueError, match=message):
        TrainConfig(**options)  # type: ignore[arg-type]
