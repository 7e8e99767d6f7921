"""Fold teachers trained in the student's command: where they live, and kept when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardrail.training.fold_teachers import ensure_fold_teachers, is_own_fold_teachers, teacher_dir


def _trainer(calls: list[int]):
    def train_fold(fold: int, directory: Path) -> Path:
        calls.append(fold)
        (directory / "best.pt").write_bytes(b"w")
        return directory / "best.pt"

    return train_fold


def test_missing_teachers_are_trained_in_fold_order_under_the_run(tmp_path: Path) -> None:
    """Both folds are trained into <run>/fold_teacher_K and their best.pt paths returned."""
    calls: list[int] = []
    got = ensure_fold_teachers(tmp_path, _trainer(calls), log=lambda _: None)
    assert calls == [0, 1]
    assert got == (
        str(tmp_path / "fold_teacher_0/best.pt"),
        str(tmp_path / "fold_teacher_1/best.pt"),
    )
    assert is_own_fold_teachers(got)


def test_a_teacher_with_a_checkpoint_is_kept(tmp_path: Path) -> None:
    """Only the fold without best.pt is trained; the other checkpoint is left as it was."""
    teacher_dir(tmp_path, 1).mkdir()
    (teacher_dir(tmp_path, 1) / "best.pt").write_bytes(b"old")
    calls: list[int] = []
    ensure_fold_teachers(tmp_path, _trainer(calls), log=lambda _: None)
    assert calls == [0]
    assert (teacher_dir(tmp_path, 1) / "best.pt").read_bytes() == b"old"


def test_training_that_leaves_no_best_checkpoint_is_an_error(tmp_path: Path) -> None:
    """A trainer that returns another path, or writes nothing, stops the run with both paths."""
    with pytest.raises(RuntimeError, match=r"fold teacher 0: expected .*best\.pt"):
        ensure_fold_teachers(tmp_path, lambda fold, d: d / "epoch4.pt", log=lambda _: None)


def test_only_one_runs_pair_of_fold_teacher_folders_counts_as_its_own() -> None:
    """Teachers from --fold-teachers elsewhere, or from two runs, are not the command's own."""
    assert is_own_fold_teachers(["r/fold_teacher_0/best.pt", "r/fold_teacher_1/best.pt"])
    assert not is_own_fold_teachers(["runs/t0/best.pt", "runs/t1/best.pt"])
    assert not is_own_fold_teachers(["a/fold_teacher_0/best.pt", "b/fold_teacher_1/best.pt"])
    assert not is_own_fold_teachers(["r/fold_teacher_1/best.pt", "r/fold_teacher_0/best.pt"])
    with pytest.raises(ValueError, match="fold must be 0 or 1"):
        teacher_dir(Path("r"), 2)
