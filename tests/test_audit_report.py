"""Audit internals: reading rows, tallying, and rendering, with a fixed lookup classifier.

The classifier here is a lookup table over the test's own texts, so every expected count is
known exactly; tests/test_audit_cli.py runs the same paths with the bundled model.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from guardrail.audit import (
    AuditOptions,
    FileRows,
    Row,
    Skip,
    audit_file,
    extract_text,
    render_html,
    render_table,
)
from guardrail.audit.tally import AuditTally, truncate
from guardrail.classification import Classification
from guardrail.errors import ConfigError

ANSWER = Classification("compliance", 0.02, "none", "none", 0.0)
HAZARD = Classification("full_refusal", 0.97, "should_not", "information_hazards", 0.9)
MODALITY = Classification("partial_refusal", 0.71, "cannot", "modality", 0.8)


class LookupClassifier:
    """Classifies by the first word of the text: ok -> answer, no -> hazard, cant -> modality."""

    def __init__(self) -> None:
        self.table = {"ok": ANSWER, "no": HAZARD, "cant": MODALITY}
        self.batches: list[int] = []

    def classify(self, text: str) -> Classification:
        return self.classify_batch([text])[0]

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]:
        self.batches.append(len(texts))
        return [self.table[t.split()[0]] for t in texts]


def _write_jsonl(path: Path, rows: Sequence[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_extract_text_reads_strings_and_last_assistant_turn() -> None:
    """Plain strings are used as is; chat lists give their last assistant message."""
    assert extract_text("plain") == "plain"
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "first"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": [{"type": "text", "text": "second"}]},
    ]
    assert extract_text(messages) == "second"
    assert extract_text([{"from": "human", "value": "q"}, {"from": "gpt", "value": "g"}]) == "g"
    assert extract_text([{"role": "user", "content": "only"}]) is None
    assert extract_text(42) is None


def test_jsonl_rows_auto_detect_field_and_skip_bad_lines(tmp_path: Path) -> None:
    """The text field is detected from the first row; bad lines are skipped with a reason."""
    path = tmp_path / "log.jsonl"
    path.write_text(
        '{"response": "ok one", "model": "a"}\n'
        "not json\n"
        "[1, 2]\n"
        "\n"
        '{"response": null, "model": "b"}\n'
        '{"response": "no two", "model": "b"}\n',
        encoding="utf-8",
    )
    rows = FileRows(str(path), source_field="model")
    items = list(rows)
    assert rows.text_field == "response"
    assert items == [
        Row("ok one", "a"),
        Skip("invalid_json"),
        Skip("not_an_object"),
        Skip("missing_text"),
        Row("no two", "b"),
    ]
    assert rows.bytes_read == path.stat().st_size


def test_csv_and_gzip_are_streamed(tmp_path: Path) -> None:
    """CSV files, gzipped or not, yield their rows with the chosen text column."""
    path = tmp_path / "data.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "completion", "source"])
        writer.writerow(["1", "ok, with a comma", "s1"])
        writer.writerow(["2", "cant\nsee images", "s2"])
    rows = list(FileRows(str(path), text_field="completion", source_field="source"))
    assert rows == [Row("ok, with a comma", "s1"), Row("cant\nsee images", "s2")]


def test_byte_order_mark_and_bad_bytes_are_tolerated(tmp_path: Path) -> None:
    """A UTF-8 BOM is ignored and an invalid byte costs one character, not the row."""
    path = tmp_path / "export.csv"
    path.write_bytes(b"\xef\xbb\xbfresponse\nok caf\xe9\n")
    assert list(FileRows(str(path))) == [Row("ok caf\ufffd", None)]


def test_missing_text_field_is_a_precise_error(tmp_path: Path) -> None:
    """A --text-field absent from the first row fails naming the fields that exist."""
    path = _write_jsonl(tmp_path / "x.jsonl", [{"prompt": "p", "reply": "ok"}])
    with pytest.raises(
        ConfigError, match=r"no field 'answer' in the first row; fields are: prompt, reply"
    ):
        list(FileRows(str(path), text_field="answer"))
    with pytest.raises(ConfigError, match="pass --text-field"):
        list(FileRows(str(path)))


def test_unknown_extension_and_missing_file_are_errors(tmp_path: Path) -> None:
    """Files that are not .jsonl/.csv, or do not exist, are rejected up front."""
    with pytest.raises(ConfigError, match=r"use \.jsonl or \.csv"):
        FileRows(str(tmp_path / "data.parquet"))
    with pytest.raises(ConfigError, match="no such file"):
        FileRows(str(tmp_path / "absent.jsonl"))


def test_audit_counts_rates_sources_and_batches(tmp_path: Path) -> None:
    """audit_file counts verdicts, kinds and categories overall and per source, in batches."""
    texts = ["ok a"] * 6 + ["no b"] * 3 + ["cant c"]
    rows = [
        {"messages": [{"role": "assistant", "content": t}], "model": f"m{i % 2}"}
        for i, t in enumerate(texts)
    ]
    path = _write_jsonl(tmp_path / "chat.jsonl", rows)
    classifier = LookupClassifier()
    report = audit_file(str(path), classifier, AuditOptions(source_field="model", batch_size=4))
    assert classifier.batches == [4, 4, 2]
    assert report.text_field == "messages"
    overall = report.overall
    assert (overall.total, overall.refusals) == (10, 4)
    assert overall.verdicts == {"compliance": 6, "full_refusal": 3, "partial_refusal": 1}
    assert overall.kinds == {"should_not": 3, "cannot": 1}
    assert overall.categories == {"information_hazards": 3, "modality": 1}
    assert overall.refusal_rate == pytest.approx(0.4)
    assert [(g.name, g.total, g.refusals) for g in report.by_source] == [("m0", 5, 2), ("m1", 5, 2)]
    data = report.to_dict()
    assert data["overall"]["categories"]["information_hazards"] == {
        "count": 3,
        "rate": 0.3,
        "share_of_refusals": 0.75,
    }
    assert json.loads(json.dumps(data)) == data


def test_limit_stops_reading(tmp_path: Path) -> None:
    """--limit reads only that many rows and says it stopped."""
    path = _write_jsonl(tmp_path / "x.jsonl", [{"text": "ok"}] * 50)
    report = audit_file(str(path), LookupClassifier(), AuditOptions(limit=7))
    assert (report.rows_read, report.rows_classified, report.truncated_by_limit) == (7, 7, True)


def test_examples_are_bounded_and_truncated() -> None:
    """Each cell keeps at most N examples, each cut to the configured length."""
    tally = AuditTally(examples=2, example_chars=30)
    for i in range(500):
        tally.add(f"no {i} " + "long text " * 20, None, HAZARD)
    stats = tally.overall.freeze()
    samples = stats.examples["category:information_hazards"]
    assert len(samples) == 2
    assert all(len(e.text) == 30 and e.text.endswith("…") for e in samples)
    assert stats.examples.keys() == {"verdict:full_refusal", "category:information_hazards"}
    assert truncate("a  b\n c", 100) == "a b c"


def test_sources_beyond_the_cap_are_pooled() -> None:
    """Sources past the cap are counted under (other), keeping memory bounded."""
    tally = AuditTally(examples=0, max_sources=3)
    for i in range(10):
        tally.add("ok", f"s{i}", ANSWER)
    groups = {g.name: g.total for g in tally.freeze_sources()}
    assert groups == {"s0": 1, "s1": 1, "s2": 1, "(other)": 7}


def test_renderers_show_rates_and_escape_dataset_text(tmp_path: Path) -> None:
    """The table shows the rates; the HTML has SVG charts, no scripts, and escaped text."""
    rows = [
        {"response": "ok fine", "model": "a"},
        {"response": "no <script>alert(1)</script>", "model": "b"},
    ]
    path = _write_jsonl(tmp_path / "x.jsonl", rows)
    report = audit_file(str(path), LookupClassifier(), AuditOptions(source_field="model"))
    table = render_table(report)
    assert re.search(r"full_refusal\s+1\s+50\.0%", table)
    assert re.search(r"information_hazards\s+1\s+50\.0%\s+100\.0%", table)
    assert "by model" in table
    html = render_html(report)
    assert html.startswith("<!DOCTYPE html>")
    assert html.count("<svg") == 4  # verdicts, kinds, categories, by source
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_bad_options_fail_with_precise_messages() -> None:
    """Out-of-range options raise ConfigError naming the flag."""
    with pytest.raises(ConfigError, match="--limit must be >= 1"):
        AuditOptions(limit=0)
    with pytest.raises(ConfigError, match="--batch-size must be >= 1"):
        AuditOptions(batch_size=0)
