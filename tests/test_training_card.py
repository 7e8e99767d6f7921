"""The generated model card states the run's own figures, recipe and commands."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from guardrail.training.card import write_card
from guardrail.training.card_files import sha256_of


def _scores(f1: float) -> dict:
    per_class = {
        name: {"f1": f1, "support": 25.0}
        for name in ("compliance", "partial_refusal", "full_refusal")
    }
    return {
        "binary": {"precision": f1, "recall": f1, "f1": f1},
        "macro_f1": f1 - 0.2,
        "per_class": per_class,
        "confusion": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
    }


def _report() -> dict:
    return {
        "dev_rows": 900,
        "dev_prompts": 90,
        "int8": _scores(0.921),
        "fp32": _scores(0.918),
        "baselines": {"xstest_string_match": _scores(0.816), "norefusal_light": _scores(0.841)},
        "latency_1thread_int8": {
            "cpu_median_ms": 0.84,
            "cpu_p90_ms": 1.75,
            "median_ms": 0.85,
            "p90_ms": 1.76,
        },
        "tail_probe_int8": {
            "n": 100.0,
            "decline_detected_rate": 0.98,
            "decline_partial_rate": 0.96,
            "close_compliance_rate": 0.93,
        },
        "weak_category_accuracy": {"accuracy": 0.88, "n": 340},
        "int8_vs_fp32_verdict_disagreements": 5,
        "int8_by_model": {"gpt4": {"n": 90, "binary_f1": 0.966, "macro_f1": 0.648}},
    }


def _artifact(tmp_path: Path, train_cfg: dict) -> tuple[Path, Path]:
    out, run_dir = tmp_path / "out", tmp_path / "run"
    out.mkdir()
    run_dir.mkdir()
    (out / "refusal-classifier.int8.onnx").write_bytes(b"graph")
    config = {
        "layers": 2,
        "hidden_size": 384,
        "model_version": "9.9.9",
        "checkpoint": "best.pt = epoch4.pt",
        "windowing": {
            "mode": "head_and_tail_windows",
            "max_window_tokens": 96,
            "head_tokens": 48,
            "tail_tokens": 48,
            "tail_refusal_threshold": 0.8,
        },
    }
    (out / "config.json").write_text(json.dumps(config))
    (run_dir / "train_config.json").write_text(json.dumps(train_cfg))
    return out, run_dir


def test_a_fold_teacher_run_gets_its_distillation_and_its_three_commands(tmp_path: Path) -> None:
    """Teachers named in train_config.json appear in the loss and in Reproduce, in order."""
    teachers = ["runs/t0/best.pt", "runs/t1/best.pt"]
    train_cfg = {"layers": 2, "seed": 8, "epochs": 6, "pooling": "mean", "window": {}}
    train_cfg |= {"fold_teachers": teachers, "distill_weight": 0.5, "distill_temperature": 2.0}
    out, run_dir = _artifact(tmp_path, train_cfg)
    write_card(out, _report(), {"train_human": Counter(compliance=3)}, run_dir)
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "two fold teachers'" in card and "with weight 0.5" in card
    assert "temperature 2.0" in card
    commands = [line for line in card.splitlines() if line.startswith("python -m guardrail")]
    assert commands[:3] == [
        "python -m guardrail.training train --layers 6 --epochs 4 --human-fold 0 --run-dir runs/t0",
        "python -m guardrail.training train --layers 6 --epochs 4 --human-fold 1 --run-dir runs/t1",
        "python -m guardrail.training all --layers 2 --seed 8 --out onnx_models "
        "--fold-teachers runs/t0/best.pt runs/t1/best.pt",
    ]
    assert "| this model, int8 ONNX | 0.921 | 0.921 | 0.921 | 0.721 |" in card
    assert "Model version 9.9.9" in card and "`best.pt = epoch4.pt`" in card
    sums = (out / "SHA256SUMS").read_text()
    assert f"{sha256_of(out / 'MODEL_CARD.md')}  MODEL_CARD.md\n" in sums


def test_a_plain_run_gets_one_command_with_its_own_options_and_no_distillation(
    tmp_path: Path,
) -> None:
    """Without teachers: no distillation sentence; non-default epochs and pooling are named."""
    train_cfg = {"layers": 3, "seed": 9, "epochs": 5, "pooling": "mean_max"}
    out, run_dir = _artifact(tmp_path, train_cfg)
    write_card(out, _report(), {}, run_dir)
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "KL divergence" not in card
    commands = [line for line in card.splitlines() if line.startswith("python -m guardrail")]
    assert commands[0] == (
        "python -m guardrail.training all --layers 3 --seed 9 --epochs 5 --pooling mean_max "
        "--out onnx_models"
    )
    assert "l2b" not in card  # the repository card keeps the history of runs, not this one


def test_a_teachers_own_options_come_from_its_run_and_one_teacher_is_named(
    tmp_path: Path,
) -> None:
    """A teacher run's train_config.json gives its options; a single --teacher is passed on."""
    teacher_dir = tmp_path / "t6"
    teacher_dir.mkdir()
    (teacher_dir / "train_config.json").write_text(json.dumps({"layers": 6, "epochs": 3}))
    teacher = str(teacher_dir / "best.pt")
    train_cfg = {"layers": 2, "seed": 7, "teacher": teacher, "distill_weight": 0.5}
    out, run_dir = _artifact(tmp_path, train_cfg | {"distill_temperature": 2.0})
    write_card(out, _report(), {}, run_dir)
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    commands = [line for line in card.splitlines() if line.startswith("python -m guardrail")]
    assert commands[:2] == [
        "python -m guardrail.training train --layers 6 --seed 7 --epochs 3 "
        f"--run-dir {teacher_dir}",
        "python -m guardrail.training all --layers 2 --seed 7 --out onnx_models "
        f"--teacher {teacher}",
    ]
    assert "a teacher's verdict distribution" in card


def test_teachers_trained_by_the_same_command_give_one_command(tmp_path: Path) -> None:
    """Fold teachers in the run's own fold_teacher folders reproduce as one command."""
    teachers = ["runs/s8/fold_teacher_0/best.pt", "runs/s8/fold_teacher_1/best.pt"]
    train_cfg = {"layers": 2, "seed": 8, "fold_teachers": teachers, "distill_weight": 0.5}
    out, run_dir = _artifact(tmp_path, train_cfg | {"distill_temperature": 2.0})
    write_card(out, _report(), {}, run_dir)
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    commands = [line for line in card.splitlines() if line.startswith("python -m guardrail")]
    assert commands[0] == (
        "python -m guardrail.training all --layers 2 --seed 8 --train-fold-teachers "
        "--run-dir runs/s8 --out onnx_models"
    )
    assert "two fold teachers'" in card
