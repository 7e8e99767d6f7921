"""GuardrailMiddleware on complete (non-streamed) JSON answers: pass, retry, replace, block."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from test_middleware_doubles import (
    ANSWER,
    JSON,
    NOTE,
    REFUSAL,
    FakeClassifier,
    ListRecorder,
    ScriptedPolicy,
    Upstream,
    chat_json,
    drive,
    refuses_without_note,
    retry_policy,
)

from guardrail.middleware import GuardrailMiddleware
from guardrail.policy_api import Decision

CHAT = {
    "model": "gpt-test",
    "messages": [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": "What is the maximum daily dose of paracetamol?"},
    ],
}


def guard(
    app: Any, policy: Any = None, **options: Any
) -> tuple[GuardrailMiddleware, ListRecorder, FakeClassifier]:
    recorder, classifier = ListRecorder(), options.pop("classifier", FakeClassifier())
    middleware = GuardrailMiddleware(
        app, policy=policy or ScriptedPolicy(), classifier=classifier, recorder=recorder, **options
    )
    return middleware, recorder, classifier


def fixed(
    status: int, headers: list[tuple[bytes, bytes]], chunks: list[bytes], *, paced: bool = False
) -> Upstream:
    return Upstream(lambda request, n: (status, headers, chunks), paced=paced)


@pytest.mark.anyio
async def test_compliant_answer_passes_byte_for_byte() -> None:
    """A compliant JSON answer reaches the client unchanged, with x-guardrail headers added."""
    raw = chat_json(ANSWER)
    upstream = fixed(200, [*JSON, (b"x-upstream", b"yes")], [raw[:40], raw[40:]])
    app, recorder, _ = guard(upstream)
    got = await drive(
        app, CHAT, headers=[("content-type", "application/json"), ("x-request-id", "req-7")]
    )
    assert got.status == 200
    assert got.body == raw
    assert got.headers["content-length"] == str(len(raw))
    assert got.headers["x-upstream"] == "yes"
    assert got.headers["x-guardrail-verdict"] == "compliance"
    assert got.headers["x-guardrail-action"] == "pass"
    assert got.headers["x-guardrail-attempts"] == "1"
    assert got.headers["x-guardrail-request-id"] == "req-7"
    assert "x-guardrail-rule" not in got.headers
    [outcome] = recorder.outcomes
    assert (outcome.request_id, outcome.route, outcome.api, outcome.model) == (
        "req-7",
        "/v1/chat/completions",
        "openai_chat",
        "gpt-test",
    )
    assert outcome.classification is not None and outcome.classification.verdict == "compliance"
    assert outcome.action == "pass" and outcome.skipped is None and outcome.status == 200


@pytest.mark.anyio
async def test_retry_recovers_and_client_sees_only_the_retry() -> None:
    """A refusal is retried with the note after the system message; the client gets the answer."""
    upstream = refuses_without_note()
    policy = retry_policy()
    app, recorder, _ = guard(upstream, policy)
    got = await drive(app, CHAT)
    assert got.status == 200
    assert got.json()["choices"][0]["message"]["content"] == ANSWER
    assert got.body == chat_json(ANSWER)
    assert got.headers["x-guardrail-action"] == "retry"
    assert got.headers["x-guardrail-attempts"] == "2"
    assert got.headers["x-guardrail-rule"] == "clinical_retry"
    assert got.headers["x-guardrail-verdict"] == "compliance"
    first, second = upstream.requests
    assert [m["role"] for m in second["messages"]] == ["system", "system", "user"]
    assert second["messages"][1] == {"role": "system", "content": NOTE}
    assert first == CHAT and upstream.completed == 2
    assert [attempt for _, _, attempt in policy.calls] == [1, 2]
    [outcome] = recorder.outcomes
    assert (outcome.action, outcome.attempts, outcome.retry_outcome) == ("retry", 2, "recovered")
    assert outcome.rule_id == "clinical_retry"


@pytest.mark.anyio
async def test_retry_uses_developer_role_when_asked() -> None:
    """retry_role 'developer' adds a developer message, first when there is no system one."""
    upstream = refuses_without_note()
    decision = Decision(
        action="retry", rule_id="r", retry_message=NOTE, retry_role="developer", max_attempts=2
    )
    app, _, _ = guard(upstream, ScriptedPolicy(on_refusal=decision))
    await drive(app, {"model": "m", "messages": [{"role": "user", "content": "dose?"}]})
    assert upstream.requests[1]["messages"][0] == {"role": "developer", "content": NOTE}


@pytest.mark.anyio
async def test_retry_still_refused_sends_last_attempt() -> None:
    """When every attempt refuses, the last refusal is sent and the outcome says still_refused."""
    upstream = fixed(200, JSON, [chat_json(REFUSAL)])
    app, recorder, _ = guard(upstream, retry_policy(max_attempts=3))
    got = await drive(app, CHAT)
    assert got.body == chat_json(REFUSAL)
    assert got.headers["x-guardrail-attempts"] == "3"
    assert got.headers["x-guardrail-verdict"] == "full_refusal"
    assert len(upstream.requests) == 3
    # The note is added once per retry, to the original request each time.
    assert sum(m["content"] == NOTE for m in upstream.requests[2]["messages"]) == 1
    assert recorder.outcomes[0].retry_outcome == "still_refused"


@pytest.mark.anyio
async def test_replace_renders_a_chat_completion() -> None:
    """A replace decision answers with a chat.completion carrying the replacement text."""
    decision = Decision(
        action="replace", rule_id="soften", replace_text="Please consult a pharmacist."
    )
    app, recorder, _ = guard(
        fixed(200, JSON, [chat_json(REFUSAL)]), ScriptedPolicy(on_refusal=decision)
    )
    got = await drive(app, CHAT)
    body = got.json()
    assert got.status == 200 and got.headers["content-type"] == "application/json"
    assert got.headers["content-length"] == str(len(got.body))
    assert body["object"] == "chat.completion" and body["model"] == "gpt-test"
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Please consult a pharmacist.",
        "refusal": None,
    }
    assert got.headers["x-guardrail-action"] == "replace"
    assert got.headers["x-guardrail-rule"] == "soften"
    assert recorder.outcomes[0].action == "replace"


@pytest.mark.anyio
async def test_block_renders_openai_error() -> None:
    """A block decision answers with the decision's status in OpenAI's error envelope."""
    decision = Decision(action="block", rule_id="deny", block_status=451, block_message="Not here.")
    app, recorder, _ = guard(
        fixed(200, JSON, [chat_json(REFUSAL)]), ScriptedPolicy(on_refusal=decision)
    )
    got = await drive(app, CHAT)
    assert got.status == 451
    assert got.json()["error"]["message"] == "Not here."
    assert got.headers["x-guardrail-action"] == "block"
    assert recorder.outcomes[0].status == 451


@pytest.mark.anyio
async def test_shadow_decision_passes_response_unchanged() -> None:
    """A shadow rule records what it would do but the refusal passes unchanged."""
    decision = Decision(action="block", rule_id="deny", shadow=True)
    upstream = fixed(200, JSON, [chat_json(REFUSAL)])
    app, recorder, _ = guard(upstream, ScriptedPolicy(on_refusal=decision))
    got = await drive(app, CHAT)
    assert got.body == chat_json(REFUSAL) and got.status == 200
    assert got.headers["x-guardrail-action"] == "shadow"
    outcome = recorder.outcomes[0]
    assert (outcome.action, outcome.shadow_action, outcome.rule_id) == ("shadow", "block", "deny")


@pytest.mark.anyio
async def test_worst_choice_decides() -> None:
    """With several choices each is classified and the worst verdict is acted on."""
    body = json.loads(chat_json(ANSWER, choices=3))
    body["choices"][1]["message"]["content"] = REFUSAL
    raw = json.dumps(body).encode()
    app, recorder, classifier = guard(fixed(200, JSON, [raw]))
    got = await drive(app, CHAT)
    assert got.headers["x-guardrail-verdict"] == "full_refusal"
    assert classifier.batches == [[ANSWER, REFUSAL, ANSWER]]
    assert recorder.outcomes[0].classification is not None
    assert recorder.outcomes[0].classification.verdict == "full_refusal"


@pytest.mark.anyio
async def test_tool_call_without_text_is_not_classified() -> None:
    """A tool call with no text passes unclassified: the classifier is never called."""
    raw = chat_json(None)
    app, recorder, classifier = guard(fixed(200, JSON, [raw]), retry_policy())
    got = await drive(app, CHAT)
    assert got.body == raw and got.headers["x-guardrail-action"] == "pass"
    assert classifier.batches == []
    assert recorder.outcomes[0].classification is None and recorder.outcomes[0].skipped is None


@pytest.mark.anyio
async def test_request_context_from_scope() -> None:
    """The policy sees auth scopes, the user, headers, route template and the request fields."""

    class Auth:
        def __init__(self) -> None:
            self.scopes = ["authenticated", "clinician"]

    class User:
        is_authenticated = True
        display_name = "Dr Who"

        @property
        def identity(self) -> str:
            raise NotImplementedError

    policy = ScriptedPolicy()
    app, _, _ = guard(fixed(200, JSON, [chat_json(ANSWER)]), policy)
    request = {**CHAT, "user": "u-42", "metadata": {"team": "icu", "n": 3}, "stream": False}
    await drive(
        app,
        request,
        headers=[("content-type", "application/json"), ("X-Tenant", "a"), ("x-tenant", "b")],
        extra_scope={"auth": Auth(), "user": User()},
    )
    [(ctx, _, attempt)] = policy.calls
    assert attempt == 1
    assert ctx.scopes == frozenset({"authenticated", "clinician"}) and ctx.user == "Dr Who"
    assert (ctx.route, ctx.method, ctx.api, ctx.path) == (
        "/v1/chat/completions",
        "POST",
        "openai_chat",
        "/v1/chat/completions",
    )
    assert ctx.headers["x-tenant"] == "a, b"
    assert ctx.model == "gpt-test" and ctx.body_user == "u-42" and ctx.metadata == {"team": "icu"}
    assert ctx.last_user_message == "What is the maximum daily dose of paracetamol?"
    assert ctx.system_prompt == "You are a careful assistant." and ctx.stream is False


@pytest.mark.anyio
async def test_request_body_in_several_chunks_is_reassembled() -> None:
    """A request body arriving in several messages reaches the app whole, with its length."""
    upstream = refuses_without_note()
    app, _, _ = guard(upstream, retry_policy())
    await drive(app, CHAT, chunks=5)
    assert upstream.requests[0] == CHAT and len(upstream.requests) == 2


@pytest.mark.anyio
async def test_log_content_fills_excerpts() -> None:
    """With log_content the outcome carries truncated request and response excerpts."""
    app, recorder, _ = guard(
        fixed(200, JSON, [chat_json(REFUSAL)]), log_content=True, excerpt_chars=10
    )
    await drive(app, CHAT)
    outcome = recorder.outcomes[0]
    assert outcome.request_excerpt == "What is th" and outcome.response_excerpt == REFUSAL[:10]


@pytest.mark.anyio
async def test_without_log_content_no_text_leaves() -> None:
    """By default no request or response text reaches the outcome."""
    app, recorder, _ = guard(fixed(200, JSON, [chat_json(REFUSAL)]))
    await drive(app, CHAT)
    assert recorder.outcomes[0].request_excerpt is None
    assert recorder.outcomes[0].response_excerpt is None


@pytest.mark.anyio
async def test_gzip_body_is_encoded_skip() -> None:
    """A content-encoded answer passes through as sent, recorded as skipped 'encoded'."""
    raw = gzip.compress(chat_json(REFUSAL))
    upstream = fixed(200, [*JSON, (b"content-encoding", b"gzip")], [raw])
    app, recorder, classifier = guard(upstream, retry_policy())
    got = await drive(app, CHAT)
    assert got.body == raw and got.headers["content-encoding"] == "gzip"
    assert got.headers["x-guardrail-skipped"] == "encoded"
    assert classifier.batches == [] and recorder.outcomes[0].skipped == "encoded"
