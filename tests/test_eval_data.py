"""Readers for labelled files and the two string-matching baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardrail.errors import ConfigError
from guardrail.evaluation.baselines import (
    DATA_DIR_ENV,
    NOREFUSAL_FILE,
    STRMATCH_FILE,
    find_data_dir,
    load_baselines,
)
from guardrail.evaluation.readers import iter_records, normalise_label, read_labelled

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def write_phrase_files(root: Path) -> Path:
    """A data directory with small phrase lists in the published files' format."""
    (root / STRMATCH_FILE).parent.mkdir(parents=True)
    (root / NOREFUSAL_FILE).parent.mkdir(parents=True)
    (root / STRMATCH_FILE).write_text(json.dumps({"prefixes": ["sorry", "i can't", "no,"]}))
    (root / NOREFUSAL_FILE).write_text(json.dumps({"substrings": ["I'm sorry", "As an AI"]}))
    return root


def test_labels_accept_taxonomy_ids_and_xstest_forms() -> None:
    """Both label vocabularies map onto the three verdicts; anything else is None."""
    assert normalise_label("1_full_compliance") == "compliance"
    assert normalise_label("2_full_refusal") == "full_refusal"
    assert normalise_label("3_partial_refusal") == "partial_refusal"
    assert normalise_label(" Partial_Refusal ") == "partial_refusal"
    assert normalise_label("refusal") is None
    assert normalise_label(2) is None


def test_jsonl_rows_come_with_their_line_numbers_and_blank_lines_are_skipped(
    tmp_path: Path,
) -> None:
    """iter_records yields each JSON object with the line it was on."""
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "b", "n": 2}\n', encoding="utf-8")
    assert list(iter_records(str(path))) == [(1, {"text": "a"}), (3, {"text": "b", "n": 2})]


def test_a_jsonl_line_that_is_not_an_object_is_an_error_naming_the_line(tmp_path: Path) -> None:
    """A JSON array or broken JSON stops reading with FILE:LINE in the message."""
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.jsonl:2: expected a JSON object, got list"):
        list(iter_records(str(path)))
    path.write_text('{"text": "a"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.jsonl:2: not valid JSON"):
        list(iter_records(str(path)))


def test_csv_rows_keep_quoted_newlines_inside_one_field(tmp_path: Path) -> None:
    """A CSV field with embedded newlines is one text, as XSTest's completions are."""
    path = tmp_path / "rows.csv"
    path.write_text('text,label\n"line one\nline two",2_full_refusal\nok,compliance\n')
    rows = read_labelled(str(path), "text", "label", None)
    assert [(r.text, r.label) for r in rows] == [
        ("line one\nline two", "full_refusal"),
        ("ok", "compliance"),
    ]


def test_unknown_label_or_missing_field_is_an_error_naming_the_line(tmp_path: Path) -> None:
    """read_labelled names the file, line and problem for the first bad row."""
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "a", "label": "compliance"}\n{"text": "b", "label": "maybe"}\n')
    with pytest.raises(ConfigError, match=r"rows\.jsonl:2: label 'maybe' is not one of"):
        read_labelled(str(path), "text", "label", None)
    path.write_text('{"body": "a", "label": "compliance"}\n')
    with pytest.raises(ConfigError, match=r"rows\.jsonl:1: no 'text' field"):
        read_labelled(str(path), "text", "label", None)
    path.write_text('{"text": null, "label": "compliance"}\n')
    with pytest.raises(ConfigError, match=r"rows\.jsonl:1: field 'text' must be a string"):
        read_labelled(str(path), "text", "label", None)


def test_an_empty_or_missing_file_is_an_error(tmp_path: Path) -> None:
    """Evaluating nothing, or a file that does not exist, fails with a clear message."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ConfigError, match="no rows to evaluate"):
        read_labelled(str(empty), "text", "label", None)
    with pytest.raises(ConfigError, match="cannot open"):
        read_labelled(str(tmp_path / "nope.jsonl"), "text", "label", None)


def test_prefix_baseline_matches_the_stripped_lowercased_start_only(tmp_path: Path) -> None:
    """XSTest's string match: refusal only when the response starts with a prefix."""
    strmatch, _ = load_baselines(write_phrase_files(tmp_path))
    assert strmatch.name == "xstest_strmatch"
    assert strmatch.predict("  Sorry, I can't do that.") == "full_refusal"
    assert strmatch.predict("I CAN'T help with that.") == "full_refusal"
    assert strmatch.predict("Sure! Sorry for the wait.") == "compliance"
    assert strmatch.predict("No problem, here it is.") == "compliance"


def test_substring_baseline_matches_anywhere_ignoring_case(tmp_path: Path) -> None:
    """NoRefusalLight: refusal when any phrase occurs anywhere, in any case."""
    _, norefusal = load_baselines(write_phrase_files(tmp_path))
    assert norefusal.name == "norefusal_light"
    assert norefusal.predict("Here you go. as an ai model I add a note.") == "full_refusal"
    assert norefusal.predict("Here you go, no apology needed.") == "compliance"


def test_missing_baseline_file_is_named(tmp_path: Path) -> None:
    """A data directory without the phrase lists is a ConfigError naming the missing file."""
    with pytest.raises(ConfigError, match=r"xstest_strmatch_prefixes\.json not found"):
        load_baselines(tmp_path)


def test_data_dir_prefers_the_explicit_path_then_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """find_data_dir uses the explicit argument first, then $GUARDRAIL_DATA_DIR."""
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert find_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert find_data_dir(None) == tmp_path / "env"


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not on this machine")
def test_published_phrase_lists_load_with_their_full_lengths() -> None:
    """The shipped baseline files load: 21 XSTest prefixes and 28 NoRefusalLight substrings."""
    strmatch, norefusal = load_baselines(SHARED_DATA)
    assert len(strmatch.phrases) == 21
    assert len(norefusal.phrases) == 28
    assert strmatch.predict("I'm sorry, but I cannot help.") == "full_refusal"
