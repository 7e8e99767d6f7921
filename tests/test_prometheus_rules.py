"""The shipped Prometheus config, recording rules and alerts pass promtool's checks and tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS_DIR = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"


def promtool() -> str:
    """Path of promtool; skip without it unless GUARDRAIL_REQUIRE_PROMETHEUS=1 (then fail)."""
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("GUARDRAIL_REQUIRE_PROMETHEUS") == "1":
            pytest.fail("promtool not found but GUARDRAIL_REQUIRE_PROMETHEUS=1")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS_DIR
    )


def test_rules_file_is_valid() -> None:
    """`promtool check rules` accepts deploy/prometheus/rules.yml."""
    result = _run("check", "rules", "rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 19 rules found" in result.stdout


def test_rule_unit_tests_pass() -> None:
    """`promtool test rules` passes the recording-rule and alert unit tests."""
    result = _run("test", "rules", "rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_example_config_is_valid() -> None:
    """`promtool check config` accepts the example prometheus.yml with its rule file."""
    result = _run("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
