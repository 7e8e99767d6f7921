"""What reaches the logs: no response text, no user text, no credentials, by default.

Guarded traffic carrying secrets (an API key, a signed context token, a policy HMAC secret,
text that looks like personal data) runs through the real middleware, policy engine and
MetricsRecorder; every structlog event is captured and searched for the secrets and content.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from benchmarks._harness import KeywordClassifier, RaisingClassifier, call_asgi
from benchmarks._upstream import ChatUpstream, chat_request
from guardrail import GuardrailMiddleware
from guardrail.observability import GuardrailMetrics, MetricsRecorder
from guardrail.policy import PolicyStore, parse_policy, sign_context

pytestmark = pytest.mark.anyio

API_KEY = "sk-live-THISISASECRETKEY0123456789"
HMAC_SECRET = "hmac-secret-value-0123456789abcdef"
USER_TEXT = "my social security number is 078-05-1120 and my name is Zyxwv Qwerty"
ANSWER_TEXT = "Sure, Zyxwv Qwerty: your record 078-05-1120 shows the diagnosis PLUMBUS-7."
REFUSAL_TEXT = "I'm sorry, but I can't share the record of Zyxwv Qwerty (078-05-1120)."
SECRETS = [API_KEY, HMAC_SECRET, "078-05-1120", "Zyxwv", "PLUMBUS", "social security"]

POLICY = """\
version: 1
name: logged
context:
  signed_header:
    header: x-guardrail-context
    secret_env: GR_LOG_SECRET
rules:
  - id: retry-clinician
    when:
      scopes_any: [clinician]
    action: retry
    retry:
      note: "The user is a verified clinician."
      max_attempts: 2
"""


def _events_text(events: list[dict[str, Any]]) -> str:
    return json.dumps(events, default=repr)


def _headers(token: str) -> tuple[tuple[bytes, bytes], ...]:
    return (
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {API_KEY}".encode()),
        (b"x-guardrail-context", token.encode()),
    )


def _app(classifier: Any, policy_text: str) -> Any:
    try:
        policy = parse_policy(policy_text, environ={"GR_LOG_SECRET": HMAC_SECRET})
    except Exception:
        policy = parse_policy(
            policy_text.replace("{{ missing }}", "x"), environ={"GR_LOG_SECRET": HMAC_SECRET}
        )
    upstream = ChatUpstream([ANSWER_TEXT, REFUSAL_TEXT], delay_s=0.0)
    recorder = MetricsRecorder(
        metrics=GuardrailMetrics(registry=CollectorRegistry()),
        logger=structlog.get_logger("guardrail"),
    )
    return GuardrailMiddleware(upstream, policy=policy, classifier=classifier, recorder=recorder)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_guarded_traffic_logs_no_content_and_no_secrets(
    stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Answers, refusals, retries and a forged token leave no content or secret in any event."""
    app = _app(KeywordClassifier(), POLICY)
    good = sign_context({"scopes": ["clinician"], "exp": time.time() + 60}, HMAC_SECRET.encode())
    forged = sign_context({"scopes": ["clinician"], "exp": time.time() + 60}, b"x" * 32)
    with capture_logs() as events:
        for token in (good, forged, "garbage"):
            for pick in (0, 1):
                headers = (*_headers(token), (b"x-upstream-pick", str(pick).encode()))
                got = await call_asgi(app, chat_request(USER_TEXT, stream=stream), headers=headers)
                assert got.status == 200
    assert any(e.get("event") == "guarded_response" for e in events)
    text = _events_text(events) + caplog.text
    for secret in [*SECRETS, good, forged]:
        assert secret not in text, f"{secret!r} leaked into the logs"


async def test_classifier_failure_log_has_no_content(caplog: pytest.LogCaptureFixture) -> None:
    """The warning logged when the classifier fails names the failure, not the text."""
    app = _app(RaisingClassifier(RuntimeError("boom")), POLICY)
    with capture_logs() as events:
        got = await call_asgi(app, chat_request(USER_TEXT), headers=_headers("garbage"))
    assert got.status == 200
    assert any(e.get("skipped") == "error" for e in events)
    assert "boom" in caplog.text  # the failure itself is reported...
    text = _events_text(events) + caplog.text  # ...but no content along with it
    for secret in SECRETS:
        assert secret not in text


def test_reload_failure_log_names_the_problem_not_the_secret(tmp_path: Path) -> None:
    """A rejected reload is logged with its position, never with the HMAC secret from the env."""
    path = tmp_path / "p.yaml"
    path.write_text(POLICY, encoding="utf-8")
    registry = CollectorRegistry()
    store = PolicyStore(
        path, metrics=GuardrailMetrics(registry=registry), environ={"GR_LOG_SECRET": HMAC_SECRET}
    )
    path.write_text(POLICY.replace("action: retry", "action: retri"), encoding="utf-8")
    with capture_logs() as events:
        assert store.reload() is False
    failures = [e for e in events if e.get("event") == "policy_reload_failed"]
    assert failures
    assert str(path) in _events_text(failures)
    assert HMAC_SECRET not in _events_text(events)
