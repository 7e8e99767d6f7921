"""The overhead benchmark reads the guarded server's log lines to see work left undone."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.middleware_overhead import log_summary


def test_skipped_classifications_are_counted_from_the_given_line_on(tmp_path: Path) -> None:
    """Lines before ``since`` are ignored; skips are counted by reason with timing stats."""
    log = tmp_path / "guarded.log"
    rows = [
        {"skipped": "timeout", "classifier_ms": 1000.0},
        {"skipped": None, "classifier_ms": 2.0},
        {"skipped": "timeout", "classifier_ms": 1001.0},
        {"skipped": None, "classifier_ms": 4.0},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    got = log_summary(log, since=1)
    assert got["log_lines"] == 3
    assert got["skipped"] == {"timeout": 1}
    assert got["classifier_ms"]["p50_ms"] == 4.0
    assert abs(got["classifier_ms"]["max_ms"] - 1001.0) < 1e-6
