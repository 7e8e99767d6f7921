"""Run an audit: stream rows, classify them in batches, tally, and freeze a report."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from guardrail.audit.progress import Progress
from guardrail.audit.readers import FileRows, Row
from guardrail.audit.report import AuditReport
from guardrail.audit.tally import AuditTally
from guardrail.classification import Classifier
from guardrail.errors import ConfigError

__all__ = ["AuditOptions", "audit_file"]


@dataclass(frozen=True, slots=True)
class AuditOptions:
    """What to read and how much to keep."""

    text_field: str | None = None
    source_field: str | None = None
    examples: int = 3
    example_chars: int = 240
    limit: int | None = None
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.examples < 0:
            raise ConfigError(f"--examples must be >= 0, got {self.examples}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {self.limit}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.example_chars < 20:
            raise ConfigError(f"example length must be >= 20 characters, got {self.example_chars}")


def audit_file(
    path: str, classifier: Classifier, options: AuditOptions, progress: Progress | None = None
) -> AuditReport:
    """Classify every row of ``path`` (up to ``options.limit``) and summarise."""
    started = time.monotonic()
    rows = FileRows(path, text_field=options.text_field, source_field=options.source_field)
    tally = AuditTally(examples=options.examples, example_chars=options.example_chars)
    skipped: Counter[str] = Counter()
    batch: list[Row] = []
    read = 0
    stopped = False

    def flush() -> None:
        results = classifier.classify_batch([row.text for row in batch])
        for row, result in zip(batch, results, strict=True):
            tally.add(row.text, row.source, result)
        batch.clear()
        if progress is not None:
            progress.update(tally.overall.total, rows.bytes_read)

    for item in rows:
        if options.limit is not None and read >= options.limit:
            stopped = True
            break
        read += 1
        if isinstance(item, Row):
            batch.append(item)
            if len(batch) >= options.batch_size:
                flush()
        else:
            skipped[item.reason] += 1
    if batch:
        flush()
    if progress is not None:
        progress.close(tally.overall.total, rows.bytes_read)
    return AuditReport(
        input=path,
        text_field=rows.text_field,
        source_field=options.source_field,
        rows_read=read,
        rows_skipped=dict(skipped),
        overall=tally.overall.freeze(),
        by_source=tally.freeze_sources(),
        seconds=time.monotonic() - started,
        truncated_by_limit=stopped,
    )
