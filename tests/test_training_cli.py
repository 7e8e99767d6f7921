"""The training command line: stages refuse missing inputs with a message naming them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from guardrail.training.__main__ import main


def test_score_names_a_missing_checkpoint(tmp_path: Path) -> None:
    """`score` with a checkpoint that does not exist exits with its path, not a traceback."""
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(SystemExit, match=r"checkpoint not found: .*nowhere\.pt"):
        main(["score", "--checkpoint", str(missing), "--data-dir", str(tmp_path / "no-data")])


def test_a_teacher_that_does_not_exist_is_refused_before_training(tmp_path: Path) -> None:
    """`train --teacher` with a missing file exits with its path before the data are read."""
    with pytest.raises(SystemExit, match=r"teacher checkpoint not found: .*teacher\.pt"):
        main(
            [
                "train",
                "--teacher",
                str(tmp_path / "teacher.pt"),
                "--run-dir",
                str(tmp_path / "run"),
                "--epochs",
                "1",
                "--data-dir",
                str(tmp_path / "no-data"),
            ]
        )
    assert not list((tmp_path / "run").glob("*.pt"))


@pytest.fixture
def fake_training(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Stands in for the data assembly and the training loop (which leaves an empty best.pt);
    records what each was given."""
    import guardrail.training.dataset as dataset
    import guardrail.training.split as split
    import guardrail.training.train as train

    seen = SimpleNamespace(build=[], configs=[])

    def build(root: Path, **kw: object) -> SimpleNamespace:
        seen.build.append(kw)
        return SimpleNamespace(dev_ids=[], counts={"train_human": {"compliance": 3}})

    monkeypatch.setattr(dataset, "build", build)
    monkeypatch.setattr(split, "write_dev_ids", lambda ids: None)

    def fake_train(data: object, spec: object, cfg: object, run_dir: Path) -> Path:
        seen.configs.append(cfg)
        (run_dir / "best.pt").write_bytes(b"")
        return run_dir / "best.pt"

    monkeypatch.setattr(train, "train", fake_train)
    return seen


def _train(tmp_path: Path, *options: str) -> Path:
    """Run the train stage with these options against an empty data folder; its run folder."""
    (tmp_path / "data").mkdir()
    run = tmp_path / "run"
    argv = ["train", *options, "--data-dir", str(tmp_path / "data"), "--run-dir", str(run)]
    assert main([*argv, "--autocast", "off"]) == 0
    return run


def test_train_passes_seed_and_pooling_to_the_config(
    tmp_path: Path, fake_training: SimpleNamespace
) -> None:
    """`train --seed N --pooling mean_max` builds the training config with that seed and pooling."""
    _train(tmp_path, "--seed", "11", "--pooling", "mean_max")
    cfg = fake_training.configs[0]
    assert (cfg.seed, cfg.pooling, cfg.bf16) == (11, "mean_max", False)


def test_human_fraction_reaches_the_data_and_is_recorded_in_the_run(
    tmp_path: Path, fake_training: SimpleNamespace
) -> None:
    """`train --human-fraction 0.5` builds the data with that share and writes data_config.json."""
    run = _train(tmp_path, "--human-fraction", "0.5")
    asked = fake_training.build
    assert asked[0]["human_fraction"] == 0.5
    assert asked[0]["human_sources"] == ("xstest", "xstest_replication")
    mix = json.loads((run / "data_config.json").read_text())
    assert (mix["human_fraction"], mix["human_source"]) == (0.5, "both")
    assert mix["counts"] == {"train_human": {"compliance": 3}}


@pytest.mark.parametrize("value", ["1.5", "-0.1", "half"])
def test_a_human_fraction_outside_0_to_1_is_refused(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--human-fraction` outside [0, 1], or not a number, is a usage error naming the value."""
    with pytest.raises(SystemExit) as exc:
        main(["train", "--human-fraction", value])
    assert exc.value.code == 2
    assert value in capsys.readouterr().err


def test_human_source_reaches_the_data_and_is_recorded_in_the_run(
    tmp_path: Path, fake_training: SimpleNamespace
) -> None:
    """`train --human-source xstest` builds the data from that team's rows and records it."""
    run = _train(tmp_path, "--human-source", "xstest")
    assert fake_training.build[0]["human_sources"] == ("xstest",)
    assert json.loads((run / "data_config.json").read_text())["human_source"] == "xstest"


def test_human_fold_and_fold_teachers_reach_the_data_and_the_config(
    tmp_path: Path, fake_training: SimpleNamespace
) -> None:
    """`--human-fold 1` builds that half and `--fold-teachers A B` puts both in the config."""
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.write_bytes(b"")
    b.write_bytes(b"")
    run = _train(tmp_path, "--human-fold", "1", "--fold-teachers", str(a), str(b))
    assert fake_training.build[0]["human_fold"] == 1
    assert fake_training.configs[0].fold_teachers == (str(a), str(b))
    assert json.loads((run / "data_config.json").read_text())["human_fold"] == 1


def test_a_missing_fold_teacher_is_refused_before_training(tmp_path: Path) -> None:
    """`--fold-teachers` with a checkpoint that does not exist exits with that path."""
    present = tmp_path / "a.pt"
    present.write_bytes(b"")
    argv = ["train", "--fold-teachers", str(present), str(tmp_path / "gone.pt")]
    with pytest.raises(SystemExit, match=r"teacher checkpoint not found: .*gone\.pt"):
        main([*argv, "--data-dir", str(tmp_path / "no-data"), "--run-dir", str(tmp_path / "r")])


@pytest.mark.parametrize(
    "options",
    [
        ["--teacher", "t.pt", "--fold-teachers", "a.pt", "b.pt"],
        ["--human-fold", "0", "--human-fraction", "0.5"],
        ["--human-fold", "2"],
    ],
)
def test_conflicting_or_unknown_fold_options_are_usage_errors(
    options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """One teacher with fold teachers, a fold with a fraction, or a third fold exit with 2."""
    with pytest.raises(SystemExit) as exc:
        main(["train", *options])
    assert exc.value.code == 2
    assert "--" in capsys.readouterr().err


def test_score_names_a_missing_ensemble_member(tmp_path: Path) -> None:
    """`score --ensemble A B` with B missing exits with B's path before the data are read."""
    present = tmp_path / "a.pt"
    present.write_bytes(b"")
    argv = ["score", "--ensemble", str(present), str(tmp_path / "b.pt")]
    with pytest.raises(SystemExit, match=r"checkpoint not found: .*b\.pt"):
        main([*argv, "--data-dir", str(tmp_path / "no-data")])


def test_train_fold_teachers_trains_both_halves_then_distils_the_student_from_them(
    tmp_path: Path, fake_training: SimpleNamespace
) -> None:
    """Each half gets a 6-layer, 4-epoch teacher in the run folder; the student learns from both."""
    run = _train(tmp_path, "--train-fold-teachers", "--seed", "8", "--lr", "5e-5")
    teachers, student = fake_training.configs[:2], fake_training.configs[2]
    assert [b["human_fold"] for b in fake_training.build] == [None, 0, 1]
    assert [(c.layers, c.epochs, c.seed, c.lr_encoder) for c in teachers] == [(6, 4, 7, 5e-5)] * 2
    assert student.fold_teachers == (
        str(run / "fold_teacher_0" / "best.pt"),
        str(run / "fold_teacher_1" / "best.pt"),
    )
    assert (student.layers, student.seed) == (2, 8)
    assert json.loads((run / "fold_teacher_1" / "data_config.json").read_text())["human_fold"] == 1


def test_train_fold_teachers_keeps_a_teacher_already_trained(
    tmp_path: Path, fake_training: SimpleNamespace
) -> None:
    """A fold teacher whose best.pt exists is not trained again (a stopped run resumes)."""
    kept = tmp_path / "run" / "fold_teacher_0"
    kept.mkdir(parents=True)
    (kept / "best.pt").write_bytes(b"old")
    _train(tmp_path, "--train-fold-teachers")
    assert [c.layers for c in fake_training.configs] == [6, 2]
    assert (kept / "best.pt").read_bytes() == b"old"


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--train-fold-teachers", "--teacher", "t.pt"],
        ["train", "--train-fold-teachers", "--fold-teachers", "a.pt", "b.pt"],
        ["all", "--train-fold-teachers", "--human-fold", "0"],
        ["train", "--train-fold-teachers", "--human-fraction", "0.5"],
        ["export", "--train-fold-teachers"],
    ],
)
def test_train_fold_teachers_with_other_teachers_a_fold_or_another_stage_is_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Own teachers exclude given ones, a single fold or a fraction, and stages that don't train."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "--train-fold-teachers" in capsys.readouterr().err
