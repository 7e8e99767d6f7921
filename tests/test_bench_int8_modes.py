"""The int8-modes benchmark counts what each quantization changes against its fp32 export."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.int8_modes import _measure, main


class _Fixed:
    """A runner answering (verdict, category, refusal score) from a table."""

    def __init__(self, table: dict[str, tuple[str, str, float]]) -> None:
        self.table = table

    def classify_one(self, text: str) -> tuple[str, str, float]:
        return self.table[text]


def test_differences_from_the_reference_are_counted_per_field() -> None:
    """A flipped verdict, a changed category and the score changes are each reported."""
    reference = {
        "a": ("compliance", "none", 0.10),
        "b": ("full_refusal", "privacy", 0.90),
        "c": ("full_refusal", "privacy", 0.95),
    }
    quantized = {
        "a": ("full_refusal", "privacy", 0.60),
        "b": ("full_refusal", "privacy", 0.92),
        "c": ("full_refusal", "information_hazards", 0.95),
    }
    texts = ["a", "b", "c"]
    row = _measure(_Fixed(quantized), texts, [reference[t] for t in texts])
    assert (row["verdicts_differing"], row["categories_differing"]) == (1, 2)
    assert row["refusal_score_change_max"] == pytest.approx(0.5)
    assert row["refusal_score_change_mean"] == pytest.approx(0.52 / 3, abs=1e-5)
    assert row["classify_median_ms"] >= 0


def test_a_missing_fp32_export_is_named(tmp_path: Path) -> None:
    """The benchmark exits with the path of an fp32 export that does not exist."""
    with pytest.raises(SystemExit, match=r"fp32 model not found: .*absent\.onnx"):
        main(["--fp32", str(tmp_path / "absent.onnx")])
