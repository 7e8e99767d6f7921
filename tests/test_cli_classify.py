"""``guardrail classify``: texts as arguments, JSONL files and stdin/stdout round trips.

Most tests swap in a keyword classifier (a test double behind the Classifier Protocol) so
they check the command's I/O exactly; the last runs the real command on the shipped model.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from guardrail._resources import bundled_model_dir
from guardrail.classification import Classification
from guardrail.cli import classify_cmd, main
from guardrail.model._files import MODEL_FILE

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = Path(os.environ.get("GUARDRAIL_TEST_MODEL_DIR") or bundled_model_dir())
FIELDS = ("verdict", "refusal_score", "kind", "category", "category_score", "skipped")


class KeywordClassifier:
    """Says full_refusal when the text contains "can't", else compliance."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def classify(self, text: str) -> Classification:
        return self.classify_batch([text])[0]

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]:
        self.batches.append(len(texts))
        return [
            Classification("full_refusal", 0.9, "should_not", "legal_compliance", 0.7)
            if "can't" in text
            else Classification("compliance", 0.1, "none", "none", 0.0)
            for text in texts
        ]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> KeywordClassifier:
    classifier = KeywordClassifier()
    monkeypatch.setattr(classify_cmd, "load_classifier", lambda args: classifier)
    return classifier


def read_jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_texts_given_as_arguments_print_one_json_object_each(
    fake: KeywordClassifier, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each TEXT argument becomes one line: the text plus every Classification field."""
    assert main(["classify", "I can't do that.", "Sure, here it is."]) == 0
    rows = read_jsonl(capsys.readouterr().out)
    assert [row["text"] for row in rows] == ["I can't do that.", "Sure, here it is."]
    assert rows[0] == {
        "text": "I can't do that.",
        "verdict": "full_refusal",
        "refusal_score": 0.9,
        "kind": "should_not",
        "category": "legal_compliance",
        "category_score": 0.7,
        "skipped": None,
    }
    assert rows[1]["verdict"] == "compliance"


def test_a_jsonl_file_round_trips_in_order_with_fields_added(
    fake: KeywordClassifier, tmp_path: Path
) -> None:
    """150 rows come out in input order, original fields kept, classified in batches of 64."""
    source = tmp_path / "in.jsonl"
    rows = [
        {"id": i, "body": f"row {i}: " + ("I can't." if i % 3 == 0 else "ok"), "meta": {"n": i}}
        for i in range(150)
    ]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code = main(["classify", "--input", str(source), "--text-field", "body", "--output", str(out)])
    assert code == 0
    written = read_jsonl(out.read_text(encoding="utf-8"))
    assert [row["id"] for row in written] == list(range(150))
    for original, row in zip(rows, written, strict=True):
        assert {k: row[k] for k in original} == original
        assert set(row) == set(original) | set(FIELDS)
        assert row["verdict"] == ("full_refusal" if original["id"] % 3 == 0 else "compliance")
    assert fake.batches == [64, 64, 22]


def test_dash_reads_stdin_and_writes_stdout(
    fake: KeywordClassifier,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--input - reads JSONL from stdin; output goes to stdout by default; non-ASCII kept."""
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"text": "désolé, I can\'t"}\n{"text": ""}\n'))
    assert main(["classify", "--input", "-", "--output", "-"]) == 0
    out = capsys.readouterr().out
    assert "désolé" in out
    rows = read_jsonl(out)
    assert [row["verdict"] for row in rows] == ["full_refusal", "compliance"]


def test_a_bad_row_stops_with_its_line_number_after_writing_the_rows_before_it(
    fake: KeywordClassifier, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A row without the text field: earlier rows written, one error line, exit 1."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "a"}\n{"text": "b"}\n{"other": 1}\n{"text": "d"}\n')
    out = tmp_path / "out.jsonl"
    assert main(["classify", "--input", str(source), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.strip().endswith("in.jsonl:3: no 'text' field (fields: ['other'])")
    assert err.count("\n") == 1
    assert [row["text"] for row in read_jsonl(out.read_text())] == ["a", "b"]


def test_a_row_that_is_not_an_object_is_an_error_naming_the_line(
    fake: KeywordClassifier, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A JSON array where an object belongs is reported with its line number."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "a"}\n["a"]\n')
    assert main(["classify", "--input", str(source), "--output", str(tmp_path / "o")]) == 1
    assert "in.jsonl:2: expected a JSON object, got list" in capsys.readouterr().err


def test_texts_and_input_together_or_neither_is_an_error(
    fake: KeywordClassifier, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command needs exactly one of TEXT arguments and --input."""
    assert main(["classify", "hi", "--input", "x.jsonl"]) == 1
    assert "not both" in capsys.readouterr().err
    assert main(["classify"]) == 1
    assert "nothing to classify" in capsys.readouterr().err


def test_a_missing_model_directory_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    """--model-dir pointing nowhere fails at start-up with one line, no traceback."""
    assert main(["classify", "--model-dir", "/nonexistent/model", "hello"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("guardrail: error: model directory /nonexistent/model does not exist")
    assert "Traceback" not in err


@pytest.mark.skipif(
    not (MODEL_DIR / MODEL_FILE).is_file(), reason="the trained model is not in onnx_models/ yet"
)
def test_the_installed_command_round_trips_stdin_to_stdout_with_the_real_model() -> None:
    """`python -m guardrail classify --input -` on the shipped model keeps rows and order."""
    rows = [{"n": i, "text": text} for i, text in enumerate(["I can't help with that.", "", "Hi"])]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "guardrail",
            "classify",
            "--input",
            "-",
            "--model-dir",
            str(MODEL_DIR),
        ],
        input="".join(json.dumps(row) + "\n" for row in rows),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = read_jsonl(proc.stdout)
    assert [row["n"] for row in out] == [0, 1, 2]
    assert all(set(row) == {"n", "text", *FIELDS} for row in out)
    assert out[1]["skipped"] == "empty"
