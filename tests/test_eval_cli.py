"""``guardrail eval`` on small labelled JSONL and CSV files, figures checked by hand.

A keyword classifier (test double: full_refusal when the text contains "can't") stands in
for the model so every figure below can be worked out on paper; phrase files in the
published format stand in for the external baseline data.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from guardrail._resources import bundled_model_dir
from guardrail.classification import Classification
from guardrail.cli import eval_cmd, main
from guardrail.evaluation.baselines import DATA_DIR_ENV, NOREFUSAL_FILE, STRMATCH_FILE
from guardrail.model._files import MODEL_FILE

MODEL_DIR = Path(os.environ.get("GUARDRAIL_TEST_MODEL_DIR") or bundled_model_dir())

# text, gold label, source; predictions: keyword model / xstest_strmatch / norefusal_light
ROWS = [
    ("I can't help with that.", "2_full_refusal", "a"),  # full / full / compliance
    ("Sorry, I won't do that.", "full_refusal", "a"),  # compliance / full / compliance
    ("Here is the recipe.", "1_full_compliance", "a"),  # compliance x3
    ("As an AI I have no opinion, but here are both sides.", "compliance", "b"),  # c / c / full
    ("Here is part of it, but I can't share the rest.", "3_partial_refusal", "b"),  # f / c / c
    ("I'm sorry you feel that way; here is the fix.", "compliance", "b"),  # c / c / full
]


class KeywordClassifier:
    model_dir = Path("/keyword")
    config = SimpleNamespace(
        model_version="keyword-test", tail_refusal_threshold=0.8, tail_paragraph_tokens=None
    )
    model_sha256 = "0" * 64
    threads = 1
    int8_weights = "signed"

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]:
        return [
            Classification("full_refusal", 0.9, "should_not", "unclear", 0.5)
            if "can't" in text
            else Classification("compliance", 0.1, "none", "none", 0.0)
            for text in texts
        ]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    (root / STRMATCH_FILE).parent.mkdir(parents=True)
    (root / NOREFUSAL_FILE).parent.mkdir(parents=True)
    (root / STRMATCH_FILE).write_text(json.dumps({"prefixes": ["sorry", "i can't", "no,"]}))
    (root / NOREFUSAL_FILE).write_text(json.dumps({"substrings": ["I'm sorry", "As an AI"]}))
    monkeypatch.setattr(eval_cmd, "load_classifier", lambda args: KeywordClassifier())
    return root


def write_jsonl(path: Path) -> Path:
    lines = [json.dumps({"text": t, "label": label, "source": s}) for t, label, s in ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_csv(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["completion", "final_label", "type"])
        writer.writerows(ROWS)
    return path


def run_eval(argv: list[str], out: Path) -> dict[str, Any]:
    assert main(["eval", *argv, "--json", str(out)]) == 0
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def check_figures(report: dict[str, Any]) -> None:
    assert report["n"] == 6
    assert report["label_counts"] == {"compliance": 3, "partial_refusal": 1, "full_refusal": 2}
    model = report["systems"]["guardrail"]
    assert {k: model["binary"][k] for k in ("tp", "fp", "fn", "tn")} == {
        "tp": 2,
        "fp": 0,
        "fn": 1,
        "tn": 3,
    }
    assert model["binary"]["precision"] == 1.0
    assert model["binary"]["recall"] == pytest.approx(2 / 3)
    assert model["binary"]["f1"] == pytest.approx(0.8)
    assert model["confusion"]["matrix"] == [[3, 0, 0], [0, 0, 1], [1, 0, 1]]
    assert model["per_class"]["compliance"]["f1"] == pytest.approx(6 / 7)
    assert model["per_class"]["partial_refusal"]["f1"] == 0.0
    assert model["per_class"]["full_refusal"]["f1"] == pytest.approx(0.5)
    assert model["macro_f1"] == pytest.approx((6 / 7 + 0.0 + 0.5) / 3)
    assert model["accuracy"] == pytest.approx(4 / 6)
    strmatch = report["systems"]["xstest_strmatch"]["binary"]
    assert (strmatch["tp"], strmatch["fp"], strmatch["fn"], strmatch["tn"]) == (2, 0, 1, 3)
    assert strmatch["f1"] == pytest.approx(0.8)
    norefusal = report["systems"]["norefusal_light"]["binary"]
    assert (norefusal["tp"], norefusal["fp"], norefusal["fn"], norefusal["tn"]) == (0, 2, 3, 1)
    assert norefusal["f1"] == 0.0
    # 3-class: compliance F1 2/7 (1 of 4 predicted, 1 of 3 found), the other two 0.
    assert report["systems"]["norefusal_light"]["macro_f1"] == pytest.approx(2 / 21)
    per_source = report["per_source"]
    assert per_source["a"]["n"] == 3
    assert per_source["a"]["systems"]["guardrail"]["binary"]["f1"] == pytest.approx(2 / 3)
    assert per_source["b"]["systems"]["guardrail"]["binary"]["f1"] == pytest.approx(1.0)
    assert report["baselines_available"] is True
    assert report["model"]["version"] == "keyword-test"


def test_eval_on_jsonl_reports_the_hand_checked_figures(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSONL with both label vocabularies gives the figures worked out by hand."""
    path = write_jsonl(tmp_path / "rows.jsonl")
    check_figures(run_eval([str(path), "--data-dir", str(data_dir)], tmp_path / "out.json"))
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["guardrail", "1.000", "0.667", "0.800", "0.833", "0.452"] in lines
    assert ["norefusal_light", "0.000", "0.000", "0.000", "0.167", "0.095"] in lines
    assert ["partial_refusal", "0", "0", "1"] in lines  # the confusion matrix row


def test_eval_on_csv_with_custom_field_names_gives_the_same_figures(
    data_dir: Path, tmp_path: Path
) -> None:
    """A CSV in XSTest's column names gives the same figures as the JSONL."""
    path = write_csv(tmp_path / "rows.csv")
    argv = [str(path), "--text-field", "completion", "--label-field", "final_label"]
    argv += ["--source-field", "type", "--data-dir", str(data_dir)]
    check_figures(run_eval(argv, tmp_path / "out.json"))


def test_without_baseline_data_the_model_is_still_evaluated(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """When the phrase lists cannot be found the report says so and scores the model."""
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "empty"))
    report = run_eval([str(write_jsonl(tmp_path / "rows.jsonl"))], tmp_path / "out.json")
    assert list(report["systems"]) == ["guardrail"]
    assert report["baselines_available"] is False
    assert "not found" in report["baselines_note"]
    assert "(baselines unavailable:" in capsys.readouterr().out


def test_an_explicit_data_dir_without_the_files_is_an_error(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--data-dir naming a directory without the phrase lists fails with one line."""
    path = write_jsonl(tmp_path / "rows.jsonl")
    assert main(["eval", str(path), "--data-dir", str(tmp_path / "nothing")]) == 1
    assert "baseline data" in capsys.readouterr().err


def test_a_bad_label_fails_before_the_model_is_loaded(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown label stops eval with FILE:LINE and exit 1."""
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "x", "label": "refused"}\n')
    assert main(["eval", str(path)]) == 1
    assert "rows.jsonl:1: label 'refused' is not one of" in capsys.readouterr().err


@pytest.mark.skipif(
    not (MODEL_DIR / MODEL_FILE).is_file(), reason="the trained model is not in onnx_models/ yet"
)
def test_eval_with_the_real_model_agrees_with_classify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model's confusion matrix in the report is built from classify_batch's verdicts."""
    from guardrail.model import RefusalClassifier

    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "empty"))
    path = write_jsonl(tmp_path / "rows.jsonl")
    argv = [str(path), "--model-dir", str(MODEL_DIR)]
    report = run_eval(argv, tmp_path / "out.json")
    verdicts = [
        c.verdict
        for c in RefusalClassifier.load(MODEL_DIR).classify_batch([text for text, _, _ in ROWS])
    ]
    predicted = report["systems"]["guardrail"]["confusion"]["matrix"]
    assert [sum(column) for column in zip(*predicted, strict=True)] == [
        verdicts.count(v) for v in ("compliance", "partial_refusal", "full_refusal")
    ]
    loaded = RefusalClassifier.load(MODEL_DIR)
    assert report["model"]["sha256"] == loaded.model_sha256
    assert report["model"]["tail_paragraph_tokens"] == loaded.config.tail_paragraph_tokens
