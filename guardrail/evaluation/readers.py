"""Read labelled (or unlabelled) rows from JSONL or CSV files, with line numbers for errors.

Both formats stream: a JSONL file is read line by line and a CSV file row by row, so
``iter_records`` can walk a multi-gigabyte response log in constant memory. ``-`` reads
JSONL from stdin. Every problem is a ``ConfigError`` whose message starts ``FILE:LINE:``.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from guardrail.errors import ConfigError
from guardrail.taxonomy import Verdict

__all__ = [
    "LABEL_ALIASES",
    "LabelledRow",
    "iter_records",
    "normalise_label",
    "read_labelled",
    "text_field",
]

#: Accepted label spellings: the taxonomy's own ids and XSTest's ``final_label`` values.
LABEL_ALIASES: dict[str, Verdict] = {
    "compliance": "compliance",
    "partial_refusal": "partial_refusal",
    "full_refusal": "full_refusal",
    "1_full_compliance": "compliance",
    "2_full_refusal": "full_refusal",
    "3_partial_refusal": "partial_refusal",
}


def normalise_label(value: object) -> Verdict | None:
    """The verdict a label names, or None when it is not one of ``LABEL_ALIASES``."""
    if not isinstance(value, str):
        return None
    return LABEL_ALIASES.get(value.strip().lower())


@dataclass(frozen=True, slots=True)
class LabelledRow:
    """One evaluation example: text, gold verdict, optional source, and where it came from."""

    text: str
    label: Verdict
    source: str | None
    line: int


def _open(path: str) -> TextIO:
    if path == "-":
        return sys.stdin
    try:
        return Path(path).open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open: {exc.strerror or exc}") from exc


def _is_csv(path: str) -> bool:
    return path != "-" and Path(path).suffix.lower() in (".csv", ".tsv")


def iter_records(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, row)`` for each record of a ``.jsonl``/``.csv`` file (``-``: stdin).

    Blank JSONL lines are skipped; a JSONL line that is not a JSON object is an error.
    """
    handle = _open(path)
    try:
        if _is_csv(path):
            delimiter = "\t" if path.lower().endswith(".tsv") else ","
            reader = csv.DictReader(handle, delimiter=delimiter)
            for row in reader:
                yield reader.line_num, dict(row)
            return
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{path}:{number}: expected a JSON object, got {type(value).__name__}"
                )
            yield number, value
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc.reason}") from None
    except csv.Error as exc:
        raise ConfigError(f"{path}: malformed CSV: {exc}") from None
    finally:
        if handle is not sys.stdin:
            handle.close()


def text_field(path: str, number: int, row: dict[str, Any], field: str) -> str:
    """The row's text, or a ConfigError naming the line when it is missing or not a string."""
    if field not in row:
        raise ConfigError(f"{path}:{number}: no {field!r} field (fields: {sorted(row)[:8]})")
    value = row[field]
    if not isinstance(value, str):
        raise ConfigError(
            f"{path}:{number}: field {field!r} must be a string, got {type(value).__name__}"
        )
    return value


def read_labelled(
    path: str, text_field_name: str, label_field: str, source_field: str | None
) -> list[LabelledRow]:
    """All rows of an evaluation file; the first bad row stops it with ``FILE:LINE: why``."""
    rows: list[LabelledRow] = []
    for number, record in iter_records(path):
        text = text_field(path, number, record, text_field_name)
        if label_field not in record:
            raise ConfigError(f"{path}:{number}: no {label_field!r} field")
        label = normalise_label(record[label_field])
        if label is None:
            raise ConfigError(
                f"{path}:{number}: label {record[label_field]!r} is not one of "
                f"{', '.join(LABEL_ALIASES)}"
            )
        source = record.get(source_field) if source_field else None
        rows.append(LabelledRow(text, label, None if source is None else str(source), number))
    if not rows:
        raise ConfigError(f"{path}: no rows to evaluate")
    return rows
