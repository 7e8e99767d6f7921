"""The command line as a whole: `python -m guardrail`, --help everywhere, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from guardrail.cli import main

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ("classify", "eval", "audit", "policy", "demo", "serve")


def test_python_dash_m_matches_the_command() -> None:
    """`python -m guardrail --help` lists every command and exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "guardrail", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`guardrail COMMAND --help` prints usage for that command and exits 0."""
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: guardrail {command}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["audit", "missing.jsonl"], "missing.jsonl: no such file"),
        (["audit", "data.parquet"], "cannot tell the format"),
        (
            ["serve", "--upstream", "ftp://x", "--policy", "p.yaml"],
            "must be an http:// or https:// URL",
        ),
        (["demo", "--policy", "nowhere.yaml"], "policy file nowhere.yaml not found"),
    ],
)
def test_user_errors_are_one_line_without_traceback(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bad input exits 1 with a single `guardrail: error:` line on stderr."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("guardrail: error: ")
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_bad_flag_values_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """Malformed flag values are rejected by the parser with exit status 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--port", "70000"])
    assert exit_info.value.code == 2
    assert "port must be 0-65535" in capsys.readouterr().err
