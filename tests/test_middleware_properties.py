"""Properties over many shapes: bytes are never lost, truncated or reordered; headers are ours."""

from __future__ import annotations

import itertools
import json
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_middleware_doubles import (
    ANSWER,
    JSON,
    REFUSAL,
    SSE,
    Upstream,
    chat_json,
    chat_sse,
    drive,
    has_note,
    refuses_without_note,
    retry_policy,
)
from test_middleware_json import CHAT, fixed, guard

from guardrail.middleware.adapters import PlainTextAdapter, ResponsesAdapter

_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _split(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(raw) + 1) for c in cuts} | {0, len(raw)})
    return [raw[a:b] for a, b in itertools.pairwise(points)] or [b""]


@pytest.mark.anyio
@_SETTINGS
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=15),
    stream=st.booleans(),
    refusal=st.booleans(),
    window=st.integers(min_value=1, max_value=200),
)
async def test_passed_answers_arrive_whole_and_in_order(
    cuts: list[int], stream: bool, refusal: bool, window: int
) -> None:
    """However upstream chunks its answer, a passed answer reaches the client byte for byte."""
    text = (REFUSAL + " ") * 2 if refusal else (ANSWER + " ") * 3
    raw = b"".join(chat_sse(text, pieces=7)) if stream else chat_json(text)
    chunks = _split(raw, cuts)
    app, recorder, _ = guard(
        fixed(200, SSE if stream else JSON, chunks),
        stream_window_min_chars=window,
        stream_window_max_chars=max(window, 120),
    )
    got = await drive(app, {**CHAT, "stream": stream})
    assert got.body == raw
    if stream:  # the held chunks leave joined in one message, every later one as it came
        bodies = [m.get("body", b"") for m in got.messages[1:]]
        held = len(chunks) - (len(bodies) - 1)
        assert bodies[0] == b"".join(chunks[:held]) and bodies[1:] == chunks[held:]
    verdict = "full_refusal" if refusal else "compliance"
    assert got.headers["x-guardrail-verdict"] == verdict
    assert len(recorder.outcomes) == 1


@pytest.mark.anyio
async def test_upstream_cannot_forge_guardrail_headers() -> None:
    """x-guardrail-* headers from upstream are dropped; only the middleware's remain."""
    forged = [*JSON, (b"x-guardrail-action", b"pass"), (b"X-Guardrail-Verdict", b"compliance")]
    app, _, _ = guard(fixed(200, forged, [chat_json(REFUSAL)]))
    got = await drive(app, CHAT)
    names = [k for k, _ in got.messages[0]["headers"]]
    assert names.count(b"x-guardrail-action") == 1 and b"X-Guardrail-Verdict" not in names
    assert got.headers["x-guardrail-verdict"] == "full_refusal"


@pytest.mark.anyio
@pytest.mark.parametrize("given_id", ["", "a" * 129, "bad\x01id", "ünïcode"])
async def test_unusable_request_ids_are_replaced(given_id: str) -> None:
    """An empty, overlong or non-printable x-request-id is replaced by a fresh one."""
    app, recorder, _ = guard(fixed(200, JSON, [chat_json(ANSWER)]))
    headers = [("content-type", "application/json")]
    if given_id.isascii():
        headers.append(("x-request-id", given_id))
    got = await drive(app, CHAT, headers=headers)
    generated = got.headers["x-guardrail-request-id"]
    assert generated != given_id and len(generated) == 32
    assert recorder.outcomes[0].request_id == generated


@pytest.mark.anyio
async def test_retry_keeps_other_request_fields() -> None:
    """The retried request differs from the original only by the added note."""
    upstream = refuses_without_note()
    request: dict[str, Any] = {**CHAT, "temperature": 0.2, "tools": [{"type": "function"}], "n": 1}
    app, _, _ = guard(upstream, retry_policy())
    await drive(app, request)
    first, second = upstream.requests
    second_without_note = {
        **second,
        "messages": [m for m in second["messages"] if m not in first["messages"]],
    }
    assert {k: v for k, v in second.items() if k != "messages"} == {
        k: v for k, v in first.items() if k != "messages"
    }
    assert len(second_without_note["messages"]) == 1


def test_responses_function_call_only_has_no_text() -> None:
    """A Responses answer that only calls a function has nothing to classify."""
    body = {
        "object": "response",
        "output": [{"type": "function_call", "name": "f", "arguments": "{}"}],
    }
    found = ResponsesAdapter().response_texts(json.dumps(body).encode())
    assert found is not None and found.texts == ()


def test_plain_text_rewrite_needs_a_place_for_the_note() -> None:
    """Plain text requests carry a note in ``system`` or ``messages``, otherwise no retry."""
    adapter = PlainTextAdapter()
    with_system = adapter.parse_request(b'{"prompt": "q", "system": "s"}')
    raw_text = adapter.parse_request(b"just a prompt")
    assert with_system is not None and raw_text is not None
    assert (
        json.loads(adapter.rewrite_request(with_system, "N", "system") or b"")["system"] == "s\n\nN"
    )
    assert adapter.rewrite_request(raw_text, "N", "system") is None
    assert raw_text.last_user_message == "just a prompt"


@pytest.mark.anyio
async def test_concurrent_requests_do_not_share_state() -> None:
    """Interleaved requests through one middleware each get their own answer and outcome."""

    def answer(request: dict[str, Any], n: int) -> Any:
        asked = request["messages"][-1]["content"]
        text = f"{ANSWER} ({asked})" if has_note(request) or asked.endswith("0") else REFUSAL
        return 200, JSON, [chat_json(text)]

    app, recorder, _ = guard(Upstream(answer), retry_policy())
    results: dict[str, Any] = {}

    async def one(i: int) -> None:
        request = {"model": "m", "messages": [{"role": "user", "content": f"question {i}"}]}
        got = await drive(app, request, headers=[("x-request-id", f"r{i}")])
        results[f"r{i}"] = got

    async with anyio.create_task_group() as group:
        for i in range(20):
            group.start_soon(one, i)
    for i in range(20):
        got = results[f"r{i}"]
        assert got.json()["choices"][0]["message"]["content"] == f"{ANSWER} (question {i})"
        assert got.headers["x-guardrail-attempts"] == ("1" if i % 10 == 0 else "2")
        assert got.headers["x-guardrail-request-id"] == f"r{i}"
    assert sorted(o.request_id for o in recorder.outcomes) == sorted(results)
