"""`guardrail policy check|test|schema|sign`: exit codes and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardrail._resources import bundled_policy, bundled_policy_dir
from guardrail.cli import main
from guardrail.policy import verify_signed_context


def test_check_valid_files_exits_zero(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Valid files print an ok line each (and warnings) and exit 0."""
    monkeypatch.delenv("GUARDRAIL_CONTEXT_SECRET", raising=False)
    files = [str(bundled_policy(n)) for n in ("default", "clinical", "customer-support")]
    assert main(["policy", "check", *files]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"{files[0]}: ok (0 rules, 0 hard floors)" in out
    assert f"{files[1]}: ok (1 rules, 2 hard floors)" in out
    assert any(
        line.startswith(f"{files[1]}:")
        and ": warning: environment variable GUARDRAIL_CONTEXT_SECRET is not set" in line
        for line in out
    )


def test_check_invalid_file_prints_positions_and_exits_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid file prints FILE:LINE:COL: message lines and the exit code is 1."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nrules:\n  - id: r\n    action: explode\n  - id: r\n    action: pass\n"
    )
    good = bundled_policy("default")
    assert main(["policy", "check", str(bad), str(good)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"{bad}:4:13: rules[0].action: unknown action 'explode'; expected one "
        "of: pass, retry, replace, block"
    )
    assert out[1] == f"{bad}:5:9: rules[1].id: duplicate rule id 'r' (first used at line 3)"
    assert out[2] == f"{good}: ok (0 rules, 0 hard floors)"


def test_test_command_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    """`policy test` runs the cases file and exits 0 when all pass."""
    cases = bundled_policy_dir() / "tests" / "clinical.cases.yaml"
    assert main(["policy", "test", str(bundled_policy("clinical")), str(cases)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["RESULT", "LINE", "CASE", "EXPECTED", "GOT"]
    assert out[-1].endswith("passed, 0 failed")
    assert all(line.startswith("ok ") for line in out[1:-1])


def test_test_command_exits_one_on_failure_or_bad_cases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failing case exits 1; a malformed cases file exits 1 with positioned problems."""
    failing = tmp_path / "f.yaml"
    failing.write_text(
        "cases:\n  - name: x\n    classification: {verdict: compliance}\n"
        "    expect: {action: retry}\n"
    )
    assert main(["policy", "test", str(bundled_policy("default")), str(failing)]) == 1
    assert "FAIL" in capsys.readouterr().out
    malformed = tmp_path / "m.yaml"
    malformed.write_text("cases:\n  - name: x\n    classification: {verdict: maybe}\n")
    assert main(["policy", "test", str(bundled_policy("default")), str(malformed)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{malformed}:2:5: cases[0]: missing required key 'expect' in case",
        f"{malformed}:3:31: cases[0].classification.verdict: unknown verdict 'maybe'; expected "
        "one of: compliance, partial_refusal, full_refusal",
    ]


def test_schema_command_prints_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """`policy schema` prints the draft 2020-12 JSON Schema with every top-level key."""
    assert main(["policy", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == {
        "version",
        "name",
        "description",
        "fail_closed",
        "context",
        "hard_floors",
        "retry_budget",
        "rules",
        "default",
    }
    assert schema["required"] == ["version"] and schema["additionalProperties"] is False


def test_sign_command_makes_a_verifiable_header(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`policy sign` prints a header value the policy accepts; without the secret it errors."""
    monkeypatch.setenv("GUARDRAIL_CONTEXT_SECRET", "cli-test-secret-0123456789")
    assert main(["policy", "sign", "--scope", "clinician", "--sub", "dr-x", "--ttl", "60"]) == 0
    token = capsys.readouterr().out.strip()
    claims = verify_signed_context(token, b"cli-test-secret-0123456789", now=0)
    assert claims["scopes"] == ["clinician"] and claims["sub"] == "dr-x"
    monkeypatch.delenv("GUARDRAIL_CONTEXT_SECRET")
    assert main(["policy", "sign"]) == 1
    assert "GUARDRAIL_CONTEXT_SECRET is not set" in capsys.readouterr().err
