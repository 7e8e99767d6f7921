"""Stream the rows of a JSONL or CSV file (optionally gzipped) as response texts.

Files may hold millions of rows, so nothing is loaded whole: rows are yielded one at a time
and the byte position is tracked for the progress bar. Chat-format rows are accepted: a
``messages`` (OpenAI) or ``conversations`` (ShareGPT) list yields its last assistant turn.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast

from guardrail.errors import ConfigError

__all__ = ["TEXT_FIELD_CANDIDATES", "FileRows", "Row", "Skip", "detect_format", "extract_text"]

FileFormat = Literal["jsonl", "csv"]

#: Tried in order when no ``--text-field`` is given.
TEXT_FIELD_CANDIDATES = (
    "response",
    "completion",
    "output",
    "answer",
    "assistant",
    "chosen",
    "text",
    "content",
    "messages",
    "conversations",
)
_ASSISTANT_ROLES = frozenset({"assistant", "gpt", "model", "bot", "chatbot"})


@dataclass(frozen=True, slots=True)
class Row:
    """One response to classify and the source/model it came from."""

    text: str
    source: str | None


@dataclass(frozen=True, slots=True)
class Skip:
    """A row that could not be read; ``reason`` is one of a few fixed ids."""

    reason: Literal["invalid_json", "not_an_object", "missing_text"]


def detect_format(path: str) -> FileFormat:
    """``jsonl`` or ``csv`` from the file name; ``-`` (stdin) is JSONL."""
    if path == "-":
        return "jsonl"
    name = path.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    raise ConfigError(f"{path}: cannot tell the format from the name; use .jsonl or .csv")


def _from_turns(turns: list[Any]) -> str | None:
    for turn in reversed(turns):
        if not isinstance(turn, Mapping):
            continue
        role = turn.get("role", turn.get("from"))
        if isinstance(role, str) and role.lower() in _ASSISTANT_ROLES:
            content = turn.get("content", turn.get("value"))
            if isinstance(content, list):  # OpenAI content parts
                content = " ".join(
                    str(p.get("text", "")) for p in content if isinstance(p, Mapping)
                )
            return content if isinstance(content, str) else None
    return None


def extract_text(value: Any) -> str | None:
    """The response text in a field value: a string, or the last assistant chat turn."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return _from_turns(value)
    if isinstance(value, Mapping):  # {"role": "assistant", "content": ...}
        return _from_turns([value])
    return None


class _CountingReader(io.RawIOBase):
    """Counts bytes read from the underlying file, for a progress bar in bytes."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


class FileRows:
    """Iterate a file's rows as ``Row`` or ``Skip``; ``bytes_read``/``total_bytes`` for progress."""

    def __init__(
        self, path: str, *, text_field: str | None = None, source_field: str | None = None
    ) -> None:
        self.path = path
        self.format: FileFormat = detect_format(path)
        self.text_field = text_field
        self.source_field = source_field
        self._counter: _CountingReader | None = None
        self.total_bytes: int | None = None
        if path != "-":
            file = Path(path)
            if not file.is_file():
                raise ConfigError(f"{path}: no such file")
            self.total_bytes = file.stat().st_size

    @property
    def bytes_read(self) -> int:
        return self._counter.count if self._counter else 0

    def _open_text(self) -> IO[str]:
        raw: IO[bytes] = sys.stdin.buffer if self.path == "-" else open(self.path, "rb")  # noqa: SIM115
        self._counter = _CountingReader(raw)
        stream: io.BufferedIOBase = io.BufferedReader(self._counter, buffer_size=1 << 16)
        if self.path.lower().endswith(".gz"):
            stream = gzip.GzipFile(fileobj=stream, mode="rb")
        # errors="replace": one bad byte in a multi-GB log should cost one character, not the
        # run; utf-8-sig drops the byte-order mark spreadsheet exports start with.
        return io.TextIOWrapper(
            cast(IO[bytes], stream), encoding="utf-8-sig", errors="replace", newline=""
        )

    def _records(self, handle: IO[str]) -> Iterator[Mapping[str, Any] | Skip]:
        if self.format == "csv":
            csv.field_size_limit(1 << 30)
            delimiter = "\t" if self.path.lower().removesuffix(".gz").endswith(".tsv") else ","
            yield from csv.DictReader(handle, delimiter=delimiter)
            return
        for line in handle:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                yield Skip("invalid_json")
                continue
            yield obj if isinstance(obj, Mapping) else Skip("not_an_object")

    def _resolve_field(self, record: Mapping[str, Any]) -> str:
        if self.text_field is not None:
            if self.text_field not in record:
                raise ConfigError(
                    f"{self.path}: no field {self.text_field!r} in the first row; "
                    f"fields are: {', '.join(map(str, record)) or '(none)'}"
                )
            return self.text_field
        for name in TEXT_FIELD_CANDIDATES:
            if name in record and extract_text(record[name]) is not None:
                return name
        raise ConfigError(
            f"{self.path}: cannot tell which field holds the response text; pass --text-field "
            f"(fields are: {', '.join(map(str, record)) or '(none)'})"
        )

    def __iter__(self) -> Iterator[Row | Skip]:
        with self._open_text() as handle:
            field: str | None = None
            for record in self._records(handle):
                if isinstance(record, Skip):
                    yield record
                    continue
                if field is None:
                    field = self._resolve_field(record)
                    if self.source_field is not None and self.source_field not in record:
                        raise ConfigError(
                            f"{self.path}: no field {self.source_field!r} in the first row; "
                            f"fields are: {', '.join(map(str, record))}"
                        )
                    self.text_field = field
                text = extract_text(record.get(field))
                if text is None:
                    yield Skip("missing_text")
                    continue
                source = None
                if self.source_field is not None:
                    raw_source = record.get(self.source_field)
                    source = "" if raw_source is None else str(raw_source)
                yield Row(text, source)
