"""Classifier faults through the whole stack: real policy engine, real metrics, real adapters.

The classifier raises or stalls; the client must get exactly the bytes the unguarded app
sends (fail open), or a 503 in the API's own error format when the policy says
``fail_closed``, and the skip must be counted in ``guardrail_skipped_total{reason}``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from benchmarks._harness import (
    REFUSAL_TEXT,
    KeywordClassifier,
    RaisingClassifier,
    SlowClassifier,
    call_asgi,
)
from benchmarks._upstream import ChatUpstream, chat_request, sse_content
from guardrail import GuardrailMiddleware
from guardrail.classification import Classifier
from guardrail.observability import GuardrailMetrics, MetricsRecorder
from guardrail.policy import parse_policy

pytestmark = pytest.mark.anyio

ANSWER = "Paris is the capital of France. It has been since the 10th century, more or less."
MONITOR = "version: 1\nname: monitor\nrules: []\n"
FAIL_CLOSED = "version: 1\nname: strict\nfail_closed: true\nrules: []\n"


def _stack(
    classifier: Classifier, policy_text: str = MONITOR, **options: Any
) -> tuple[ChatUpstream, Any, CollectorRegistry]:
    upstream = ChatUpstream([ANSWER, REFUSAL_TEXT], delay_s=0.0, chunk_chars=8)
    registry = CollectorRegistry()
    recorder = MetricsRecorder(metrics=GuardrailMetrics(registry=registry))
    app = GuardrailMiddleware(
        upstream,
        policy=parse_policy(policy_text),
        classifier=classifier,
        recorder=recorder,
        **options,
    )
    return upstream, app, registry


def _pick(index: int) -> tuple[tuple[bytes, bytes], ...]:
    return ((b"content-type", b"application/json"), (b"x-upstream-pick", str(index).encode()))


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("pick", [0, 1], ids=["answer", "refusal"])
async def test_raising_classifier_fails_open_byte_for_byte(stream: bool, pick: int) -> None:
    """A classifier that raises leaves the client with the unguarded bytes; skip 'error' counted."""
    upstream, app, registry = _stack(RaisingClassifier())
    body = chat_request("q", stream=stream)
    plain = await call_asgi(upstream, body, headers=_pick(pick))
    got = await call_asgi(app, body, headers=_pick(pick))
    assert got.error is None
    assert got.status == plain.status == 200
    assert got.body == plain.body
    assert got.headers["content-type"] == plain.headers["content-type"]
    assert got.headers["x-guardrail-action"] == "pass"
    assert registry.get_sample_value("guardrail_skipped_total", {"reason": "error"}) == 1.0
    assert upstream.calls == 2  # once for the reference, once guarded: no retry


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_stalled_classifier_times_out_and_fails_open(stream: bool) -> None:
    """A classifier stuck past classify_timeout costs at most the deadline, then fails open."""
    upstream, app, registry = _stack(
        SlowClassifier(KeywordClassifier(), delay_s=1.5), classify_timeout=0.2
    )
    body = chat_request("q", stream=stream)
    plain = await call_asgi(upstream, body, headers=_pick(1))
    t0 = time.perf_counter()
    got = await call_asgi(app, body, headers=_pick(1))
    elapsed = time.perf_counter() - t0
    assert got.body == plain.body
    assert got.status == 200
    assert elapsed < 1.2, f"the client waited {elapsed:.2f} s for a 0.2 s deadline"
    assert registry.get_sample_value("guardrail_skipped_total", {"reason": "timeout"}) == 1.0


async def test_fail_closed_policy_blocks_json_with_openai_error() -> None:
    """With fail_closed, a classifier error becomes a 503 in OpenAI's error envelope."""
    _upstream, app, registry = _stack(RaisingClassifier(), FAIL_CLOSED)
    got = await call_asgi(app, chat_request("q"), headers=_pick(0))
    assert got.status == 503
    error = json.loads(got.body)["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert ANSWER not in got.body.decode()
    assert registry.get_sample_value("guardrail_skipped_total", {"reason": "error"}) == 1.0


async def test_fail_closed_policy_withholds_the_stream() -> None:
    """With fail_closed, a stream whose window cannot be classified sends none of its text."""
    _upstream, app, _ = _stack(RaisingClassifier(), FAIL_CLOSED)
    got = await call_asgi(app, chat_request("q", stream=True), headers=_pick(0))
    assert got.status == 503
    assert ANSWER[:8] not in got.body.decode()


async def test_fail_closed_anthropic_uses_anthropic_error_format() -> None:
    """A fail-closed Anthropic route answers 503 with Anthropic's error shape, not OpenAI's."""
    upstream = _AnthropicUpstream()
    app = GuardrailMiddleware(
        upstream,
        policy=parse_policy(FAIL_CLOSED),
        classifier=RaisingClassifier(),
        recorder=MetricsRecorder(metrics=GuardrailMetrics(registry=CollectorRegistry())),
    )
    body = json.dumps(
        {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    ).encode()
    got = await call_asgi(app, body, path="/v1/messages")
    assert got.status == 503
    payload = json.loads(got.body)
    assert payload["type"] == "error"
    assert isinstance(payload["error"]["type"], str)


async def test_healthy_classifier_still_passes_compliant_bytes_unchanged() -> None:
    """The control case: with a working classifier a compliant answer passes byte for byte
    (the stream unheld under the monitor-only policy: no verdict header, counted all the same)."""
    upstream, app, registry = _stack(KeywordClassifier())
    for stream in (False, True):
        body = chat_request("q", stream=stream)
        plain = await call_asgi(upstream, body, headers=_pick(0))
        got = await call_asgi(app, body, headers=_pick(0))
        assert got.body == plain.body
        assert got.headers["x-guardrail-action"] == "pass"
        if stream:
            assert sse_content(got.body) == ANSWER
            assert "x-guardrail-verdict" not in got.headers
        else:
            assert got.headers["x-guardrail-verdict"] == "compliance"
    compliant = {"route": "/v1/chat/completions", "model": "bench-model-1", "verdict": "compliance"}
    assert registry.get_sample_value("guardrail_responses_total", compliant) == 2.0
    assert (registry.get_sample_value("guardrail_skipped_total", {"reason": "error"}) or 0.0) == 0.0


class _AnthropicUpstream:
    """Answers every /v1/messages call with a short Messages API response."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        body = json.dumps(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-x",
                "content": [{"type": "text", "text": ANSWER}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 3, "output_tokens": 20},
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})
