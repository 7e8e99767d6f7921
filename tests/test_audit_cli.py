"""`guardrail audit` end to end with the bundled model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from _servers import require_bundled_model

from guardrail.cli import main

REFUSALS = [
    "I'm sorry, but I can't help with that request.",
    "I can't assist with making weapons or explosives. This could cause serious harm.",
]
ANSWERS = [
    "The capital of France is Paris, which is also its largest city.",
    "To reverse a list in Python, use items[::-1] or items.reverse() to do it in place.",
]


def _rows() -> list[dict[str, str]]:
    rows = []
    for i in range(20):
        rows.append({"model": "cautious", "response": REFUSALS[i % 2] if i % 2 else ANSWERS[0]})
        rows.append({"model": "helpful", "response": ANSWERS[i % 2]})
    return rows


def test_audit_json_reports_rates_per_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON output counts every row and finds the refusals in the cautious model's rows."""
    require_bundled_model()
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()), encoding="utf-8")
    assert (
        main(
            [
                "audit",
                str(path),
                "--model-field",
                "model",
                "--format",
                "json",
                "--no-progress",
                "--examples",
                "2",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["rows_classified"] == 40
    groups = {g["name"]: g for g in report["by_source"]}
    assert groups["cautious"]["refusals"] == 10
    assert groups["helpful"]["refusals"] == 0
    overall = report["overall"]
    assert sum(cell["count"] for cell in overall["verdicts"].values()) == 40
    assert sum(cell["count"] for cell in overall["categories"].values()) == overall["refusals"]
    assert all(len(samples) <= 2 for samples in overall["examples"].values())


def test_audit_csv_to_html_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CSV log becomes a self-contained HTML report written to --output."""
    require_bundled_model()
    path = tmp_path / "log.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["model", "response"])
        writer.writeheader()
        writer.writerows(_rows())
    out = tmp_path / "report.html"
    assert (
        main(
            [
                "audit",
                str(path),
                "--source-field",
                "model",
                "--format",
                "html",
                "--output",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "<script" not in html
    assert "40 rows read" in html.replace(",", "")
    assert f"wrote html report to {out}" in capsys.readouterr().err
