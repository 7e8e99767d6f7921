"""Structured log events of MetricsRecorder and the configure_logging() set-up."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from guardrail.classification import Classification
from guardrail.errors import ConfigError
from guardrail.observability import GuardrailMetrics, MetricsRecorder, configure_logging
from guardrail.outcome import GuardOutcome

REFUSAL = Classification("full_refusal", 0.96321, "should_not", "information_hazards", 0.9)
SECRET_REQUEST = "What is the lethal dose of X? My API key is sk-live-123 " + "x" * 500
SECRET_RESPONSE = "I'm sorry, but I can't help with that request. " + "y" * 500


def _outcome(**kwargs: object) -> GuardOutcome:
    base: dict[str, object] = {
        "request_id": "req-42",
        "route": "/v1/chat/completions",
        "api": "openai_chat",
        "stream": True,
        "status": 200,
        "model": "gpt-4o-mini",
        "classification": REFUSAL,
        "action": "retry",
        "rule_id": "clinical-retry",
        "attempts": 2,
        "retry_outcome": "still_refused",
        "classifier_seconds": 0.00123,
        "overhead_seconds": 0.0021,
        "request_excerpt": SECRET_REQUEST,
        "response_excerpt": SECRET_RESPONSE,
    }
    base.update(kwargs)
    return GuardOutcome(**base)  # type: ignore[arg-type]


def _recorder(**kwargs: object) -> MetricsRecorder:
    return MetricsRecorder(GuardrailMetrics(CollectorRegistry()), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def _restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_one_event_per_response_with_all_fields() -> None:
    """Each recorded outcome yields exactly one guarded_response event carrying its facts."""
    with capture_logs() as logs:
        _recorder().record(_outcome())
    assert len(logs) == 1
    event = logs[0]
    assert event["event"] == "guarded_response"
    assert event["log_level"] == "info"
    assert {k: event[k] for k in ("request_id", "route", "verdict", "kind", "category")} == {
        "request_id": "req-42",
        "route": "/v1/chat/completions",
        "verdict": "full_refusal",
        "kind": "should_not",
        "category": "information_hazards",
    }
    assert event["score"] == 0.9632
    assert (event["action"], event["rule"], event["attempts"]) == ("retry", "clinical-retry", 2)
    assert event["retry_outcome"] == "still_refused"
    assert (event["classifier_ms"], event["overhead_ms"]) == (1.23, 2.1)
    assert (event["skipped"], event["status"], event["stream"]) == (None, 200, True)


def test_content_is_absent_by_default() -> None:
    """Without log_content, no request or response text reaches the log, even if provided."""
    with capture_logs() as logs:
        _recorder().record(_outcome())
    rendered = json.dumps(logs[0])
    assert "request_text" not in logs[0]
    assert "response_text" not in logs[0]
    assert "sk-live-123" not in rendered
    assert "sorry" not in rendered


def test_content_is_present_and_truncated_when_enabled() -> None:
    """With log_content=True the excerpts are logged, cut to max_content_chars."""
    with capture_logs() as logs:
        _recorder(log_content=True, max_content_chars=40).record(_outcome())
    assert logs[0]["request_text"] == SECRET_REQUEST[:40]
    assert logs[0]["response_text"] == SECRET_RESPONSE[:40]
    assert len(logs[0]["response_text"]) == 40


def test_skip_for_classifier_timeout_logs_a_warning() -> None:
    """A response that went out unclassified because of a timeout is logged at warning level."""
    with capture_logs() as logs:
        _recorder().record(_outcome(classification=None, skipped="timeout", action="pass"))
    assert len(logs) == 1
    assert logs[0]["log_level"] == "warning"
    assert (logs[0]["skipped"], logs[0]["verdict"]) == ("timeout", None)


def test_negative_max_content_chars_is_rejected() -> None:
    """max_content_chars below zero is a start-up ConfigError."""
    with pytest.raises(ConfigError, match="max_content_chars must be >= 0"):
        _recorder(max_content_chars=-1)


@pytest.mark.usefixtures("_restore_structlog")
def test_configure_logging_writes_json_lines() -> None:
    """configure_logging(json=True) renders each event as one JSON object with level and time."""
    stream = io.StringIO()
    configure_logging(json=True, level="INFO", stream=stream)
    recorder = _recorder()
    recorder.record(_outcome())
    structlog.get_logger("guardrail").debug("hidden")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["event"] == "guarded_response"
    assert event["level"] == "info"
    assert event["timestamp"].endswith("Z")
    assert event["category"] == "information_hazards"


@pytest.mark.usefixtures("_restore_structlog")
def test_configure_logging_console_format_and_level_filter() -> None:
    """json=False renders a console line; events below the level are dropped."""
    stream = io.StringIO()
    configure_logging(json=False, level="warning", stream=stream)
    log = structlog.get_logger("guardrail")
    log.info("dropped")
    log.warning("kept", n=1)
    out = stream.getvalue()
    assert "dropped" not in out
    assert "kept" in out and "n=1" in out


def test_configure_logging_rejects_unknown_level() -> None:
    """An unknown log level is a ConfigError naming the valid ones."""
    with pytest.raises(ConfigError, match="unknown log level 'LOUD'"):
        configure_logging(level="LOUD")
