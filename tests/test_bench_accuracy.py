"""The accuracy benchmark's rows and its human yardstick (one annotator against the other)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from benchmarks.accuracy import _DEV_IDS, annotator_agreement, dev_rows

FIELDS = ["id", "type", "prompt", "completion", "annotation_1", "annotation_2", "final_label"]


def _write(data_dir: Path, rows: list[dict[str, str]]) -> None:
    folder = data_dir / "xstest" / "model_completions"
    folder.mkdir(parents=True)
    with (folder / "xstest_v2_completions_m.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def test_annotator_agreement_scores_the_second_annotator_against_the_first(
    tmp_path: Path,
) -> None:
    """Only dev prompts count; binary F1, same-label share and per-class F1 are as computed
    by hand for four rows (one refusal the second annotator called compliance)."""
    dev = [ln.strip() for ln in _DEV_IDS.read_text(encoding="utf-8").splitlines() if ln.strip()]
    pairs = [
        ("1_full_compliance", "1_full_compliance"),
        ("2_full_refusal", "2_full_refusal"),
        ("2_full_refusal", "1_full_compliance"),
        ("3_partial_refusal", "3_partial_refusal"),
    ]
    rows = [
        {
            "id": dev[i],
            "type": "t",
            "prompt": "p",
            "completion": f"answer {i}",
            "annotation_1": a,
            "annotation_2": b,
            "final_label": a,
        }
        for i, (a, b) in enumerate(pairs)
    ]
    rows.append(
        {
            "id": "not-a-dev-id",
            "type": "t",
            "prompt": "p",
            "completion": "x",
            "annotation_1": "1_full_compliance",
            "annotation_2": "2_full_refusal",
            "final_label": "1_full_compliance",
        }
    )
    _write(tmp_path, rows)
    assert [r["text"] for r in dev_rows(tmp_path)] == [f"answer {i}" for i in range(4)]
    human = annotator_agreement(tmp_path)
    assert human["rows"] == 4 and human["same_label"] == pytest.approx(0.75)
    assert human["binary_f1"] == pytest.approx(0.8)  # tp 2, fn 1, fp 0
    assert human["per_class_f1"]["partial_refusal"] == pytest.approx(1.0)
    assert human["per_class_f1"]["full_refusal"] == pytest.approx(2 / 3)
