"""The overhead benchmark reads the guarded server's log lines to see work left undone."""

from __future__ import annotations

import json
import os
import time
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


def test_ab_trees_reads_cpu_time_per_thread_of_a_process() -> None:
    """thread_cpu splits a process's CPU seconds into its main thread and the others."""
    import threading
    import time

    from benchmarks.ab_trees import thread_cpu

    spun, done = threading.Event(), threading.Event()

    def spin() -> None:
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            pass
        spun.set()
        done.wait(5)  # stay alive: an ended thread leaves /proc/<pid>/task

    before = thread_cpu(os.getpid())
    worker = threading.Thread(target=spin)
    worker.start()
    assert spun.wait(10)
    after = thread_cpu(os.getpid())
    done.set()
    worker.join()
    assert set(after) == {"main", "others", "children"}
    assert after["others"] - before["others"] >= 0.2
    assert after["main"] >= before["main"]


def test_ab_trees_counts_the_cpu_time_of_child_processes() -> None:
    """CPU spent by a child process (an inference worker) is counted as ``children``."""
    import subprocess
    import sys

    from benchmarks.ab_trees import thread_cpu

    code = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    child = subprocess.Popen([sys.executable, "-c", code + "input()"], stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while thread_cpu(os.getpid())["children"] < 0.25:
            assert time.monotonic() < deadline, "the child's CPU time was never counted"
            time.sleep(0.05)
    finally:
        child.communicate(b"\n", timeout=20)
