"""Distillation targets: the teacher's verdict logits ride on each window and shape the loss."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from guardrail.training import distill  # noqa: E402
from guardrail.training.dataset import LabelledWindow  # noqa: E402
from guardrail.training.distill import distill_loss, with_fold_teacher_logits  # noqa: E402
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


def test_fold_teachers_label_each_human_answer_with_the_teacher_that_never_saw_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Fold-0 answers get the fold-1 teacher's logits and vice versa; other windows the mean."""
    logits = {"a.pt": (1.0, 0.0, 0.0), "b.pt": (0.0, 0.0, 3.0)}

    def fake(teacher: Path, items: list, batch_size: int, bf16: bool) -> list:
        return [logits[teacher.name]] * len(items)

    monkeypatch.setattr(distill, "_verdict_logits", fake)
    for name in logits:
        (tmp_path / name).write_bytes(b"")
    items = [
        ([1], LabelledWindow("fold zero", 0, -100, -100)),
        ([2], LabelledWindow("fold one", 2, -100, -100)),
        ([3], LabelledWindow("synthetic", 2, -100, -100)),
        ([4], LabelledWindow("both folds", 2, -100, -100)),
    ]
    folds = {"fold zero": 0, "fold one": 1, "both folds": -1}
    got = with_fold_teacher_logits((tmp_path / "a.pt", tmp_path / "b.pt"), items, folds)
    assert [t.teacher for _, t in got] == [
        (0.0, 0.0, 3.0),
        (1.0, 0.0, 0.0),
        (0.5, 0.0, 1.5),
        (0.5, 0.0, 1.5),
    ]
    assert [ids for ids, _ in got] == [[1], [2], [3], [4]]


def test_a_missing_fold_teacher_is_named_before_either_teacher_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A missing second teacher fails with its path before the first one reads anything."""
    (tmp_path / "a.pt").write_bytes(b"")
    monkeypatch.setattr(distill, "_verdict_logits", lambda *a: pytest.fail("a teacher ran"))
    items = [([1], LabelledWindow("t", 0, -100, -100))]
    with pytest.raises(FileNotFoundError, match=r"teacher checkpoint not found: .*gone\.pt"):
        with_fold_teacher_logits((tmp_path / "a.pt", Path("/nonexistent/gone.pt")), items, {})


def test_one_teacher_and_fold_teachers_together_are_refused() -> None:
    """A config with both kinds of teacher fails when it is built."""
    with pytest.raises(ValueError, match="either one teacher or two fold teachers"):
        TrainConfig(teacher="t.pt", fold_teachers=("a.pt", "b.pt"))
