"""The training command line: stages refuse missing inputs with a message naming them."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from guardrail.training.__main__ import main
from guardrail.training.paths import data_dir

needs_data = pytest.mark.skipif(not data_dir(None).is_dir(), reason="../shared/data is absent")


@needs_data
def test_score_names_a_missing_checkpoint(tmp_path: Path) -> None:
    """`score` with a checkpoint that does not exist exits with its path, not a traceback."""
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(SystemExit, match=r"checkpoint not found: .*nowhere\.pt"):
        main(["score", "--checkpoint", str(missing)])


@needs_data
def test_a_teacher_that_does_not_exist_is_refused_before_training(tmp_path: Path) -> None:
    """`train --teacher` with a missing file fails before any step is taken."""
    with pytest.raises(FileNotFoundError, match="teacher checkpoint not found"):
        main(
            [
                "train",
                "--teacher",
                str(tmp_path / "teacher.pt"),
                "--run-dir",
                str(tmp_path / "run"),
                "--epochs",
                "1",
            ]
        )
    assert not list((tmp_path / "run").glob("*.pt"))
