"""Fold teachers trained inside the student's command (``--train-fold-teachers``).

The shipped recipe distils the two-layer student from two six-layer "fold teachers", each
trained on one of two complementary halves of the human training prompts (``--human-fold``),
so that every human training answer is labelled by the teacher that never saw its prompt
(``distill.py``). ``train --train-fold-teachers`` / ``all --train-fold-teachers`` trains both
under the student's run directory before the student, which makes the shipped model one
command again. A teacher whose ``best.pt`` is already there is kept, so a run that was
stopped resumes with the teacher it was training, not from the start.

The teachers take the student's options (learning rate, partial weight, windows, data mix)
with the teacher recipe's depth, epochs and seed below. This module is torch-free: the caller
hands in the function that trains one fold.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = [
    "TEACHER_EPOCHS",
    "TEACHER_LAYERS",
    "TEACHER_SEED",
    "ensure_fold_teachers",
    "is_own_fold_teachers",
    "teacher_dir",
]

#: The fold-teacher recipe of model 0.5.0 (model card, Training, "Fold teachers").
TEACHER_LAYERS = 6
TEACHER_EPOCHS = 4
TEACHER_SEED = 7

FOLDS = (0, 1)
_DIR_NAME = "fold_teacher_{fold}"


def teacher_dir(run_dir: Path, fold: int) -> Path:
    """Where ``--train-fold-teachers`` keeps the teacher of ``fold`` for this run."""
    if fold not in FOLDS:
        raise ValueError(f"fold must be 0 or 1, got {fold}")
    return run_dir / _DIR_NAME.format(fold=fold)


def ensure_fold_teachers(
    run_dir: Path, train_fold: Callable[[int, Path], Path], log: Callable[[str], None] = print
) -> tuple[str, str]:
    """Both teachers' checkpoints, training each one that ``run_dir`` does not hold yet.

    ``train_fold(fold, directory)`` trains the teacher of ``fold`` into ``directory`` and
    returns its best checkpoint, which must be ``directory / "best.pt"``.
    """
    checkpoints = []
    for fold in FOLDS:
        directory = teacher_dir(run_dir, fold)
        best = directory / "best.pt"
        if best.is_file():
            log(f"fold teacher {fold}: keeping {best}")
        else:
            log(f"fold teacher {fold}: training into {directory}")
            directory.mkdir(parents=True, exist_ok=True)
            trained = train_fold(fold, directory)
            if Path(trained) != best or not best.is_file():
                raise RuntimeError(f"fold teacher {fold}: expected {best}, training gave {trained}")
        checkpoints.append(str(best))
    return checkpoints[0], checkpoints[1]


def is_own_fold_teachers(teachers: list[str] | tuple[str, ...]) -> bool:
    """Whether these fold-teacher checkpoints are the ones ``--train-fold-teachers`` writes
    (``<run>/fold_teacher_0/best.pt`` and ``<run>/fold_teacher_1/best.pt`` of one run)."""
    if len(teachers) != len(FOLDS):
        return False
    paths = [Path(t) for t in teachers]
    return (
        all(p.name == "best.pt" for p in paths)
        and [p.parent.name for p in paths] == [_DIR_NAME.format(fold=k) for k in FOLDS]
        and paths[0].parent.parent == paths[1].parent.parent
    )
