"""The API adapters end to end through the middleware: Responses API, Anthropic, plain text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_middleware_doubles import (
    ANSWER,
    JSON,
    NOTE,
    REFUSAL,
    ScriptedPolicy,
    Upstream,
    drive,
    has_note,
    retry_policy,
)
from test_middleware_json import fixed, guard

from guardrail.middleware._sse import SseParser
from guardrail.middleware.adapters import (
    AnthropicAdapter,
    OpenAIChatAdapter,
    PlainTextAdapter,
    ResponsesAdapter,
)
from guardrail.policy_api import Decision

SSE = [(b"content-type", b"text/event-stream")]


def responses_json(text: str) -> bytes:
    return json.dumps(
        {
            "id": "resp_1",
            "object": "response",
            "model": "gpt-test",
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                },
            ],
        }
    ).encode()


def responses_sse(text: str) -> list[bytes]:
    def event(kind: str, **data: Any) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

    half = len(text) // 2
    return [
        event("response.created", response={"id": "resp_1", "model": "gpt-test"}),
        event(
            "response.output_text.delta",
            item_id="m",
            output_index=0,
            content_index=0,
            delta=text[:half],
        ),
        event(
            "response.output_text.delta",
            item_id="m",
            output_index=0,
            content_index=0,
            delta=text[half:],
        ),
        event("response.completed", response={"id": "resp_1", "model": "gpt-test"}),
    ]


def anthropic_json(text: str) -> bytes:
    return json.dumps(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
        }
    ).encode()


def anthropic_sse(text: str) -> list[bytes]:
    def event(kind: str, **data: Any) -> bytes:
        return f"event: {kind}\r\ndata: {json.dumps({'type': kind, **data})}\r\n\r\n".encode()

    return [
        event("message_start", message={"id": "msg_1", "model": "claude-test", "content": []}),
        event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        b": ping\r\n\r\n",
        *[
            event(
                "content_block_delta",
                index=0,
                delta={"type": "text_delta", "text": text[i : i + 16]},
            )
            for i in range(0, len(text), 16)
        ],
        event("content_block_stop", index=0),
        event("message_stop"),
    ]


def by_note(json_body: Any, sse_body: Any, stream: bool) -> Upstream:
    def answer(request: dict[str, Any], n: int) -> Any:
        text = ANSWER if has_note(request) else REFUSAL
        return (200, SSE, sse_body(text)) if stream else (200, JSON, [json_body(text)])

    return Upstream(answer)


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_responses_api_retry_uses_instructions(stream: bool) -> None:
    """On /v1/responses a retry extends ``instructions`` and the recovered answer is sent."""
    upstream = by_note(responses_json, responses_sse, stream)
    app, recorder, _ = guard(upstream, retry_policy())
    request = {
        "model": "gpt-test",
        "instructions": "Be brief.",
        "input": "Max paracetamol dose?",
        "stream": stream,
    }
    got = await drive(app, request, path="/v1/responses")
    expected = b"".join(responses_sse(ANSWER)) if stream else responses_json(ANSWER)
    assert got.body == expected
    assert upstream.requests[1]["instructions"] == f"Be brief.\n\n{NOTE}"
    outcome = recorder.outcomes[0]
    assert (outcome.api, outcome.route, outcome.retry_outcome) == (
        "responses",
        "/v1/responses",
        "recovered",
    )


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_retry_extends_system(stream: bool) -> None:
    """On /v1/messages a retry appends the note to a block-list ``system``."""
    upstream = by_note(anthropic_json, anthropic_sse, stream)
    app, recorder, classifier = guard(upstream, retry_policy())
    request = {
        "model": "claude-test",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "You are terse."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Max dose?"}]}],
        "stream": stream,
    }
    got = await drive(app, request, path="/v1/messages")
    expected = b"".join(anthropic_sse(ANSWER)) if stream else anthropic_json(ANSWER)
    assert got.body == expected
    assert upstream.requests[1]["system"] == [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": NOTE},
    ]
    assert classifier.batches[0][0].startswith("I'm sorry")
    assert recorder.outcomes[0].api == "anthropic" and recorder.outcomes[0].model == "claude-test"


@pytest.mark.anyio
async def test_anthropic_block_uses_anthropic_error_format() -> None:
    """A block on /v1/messages answers with Anthropic's error object."""
    app, _, _ = guard(
        fixed(200, JSON, [anthropic_json(REFUSAL)]),
        ScriptedPolicy(on_refusal=Decision(action="block")),
    )
    got = await drive(
        app, {"model": "c", "messages": [{"role": "user", "content": "x"}]}, path="/v1/messages"
    )
    assert got.status == 403
    assert got.json() == {
        "type": "error",
        "error": {"type": "permission_error", "message": got.json()["error"]["message"]},
    }


@pytest.mark.anyio
async def test_plain_text_route_is_configurable() -> None:
    """A custom route with a placeholder guards plain text; the route label is the template."""
    upstream = fixed(200, [(b"content-type", b"text/plain; charset=utf-8")], [REFUSAL.encode()])
    decision = Decision(action="replace", rule_id="r", replace_text="Here is a safer answer.")
    app, recorder, _ = guard(
        upstream, ScriptedPolicy(on_refusal=decision), routes={"/{tenant}/generate": "plain_text"}
    )
    got = await drive(app, {"prompt": "hi"}, path="/acme/generate")
    assert (
        got.body == b"Here is a safer answer."
        and got.headers["content-type"] == "text/plain; charset=utf-8"
    )
    assert recorder.outcomes[0].route == "/{tenant}/generate"
    # The default routes are replaced, not extended.
    untouched = await drive(app, {"prompt": "hi"}, path="/v1/chat/completions")
    assert untouched.body == REFUSAL.encode() and "x-guardrail-action" not in untouched.headers


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        (None, NOTE),
        ("Be kind.", f"Be kind.\n\n{NOTE}"),
        (
            [{"type": "text", "text": "A"}],
            [{"type": "text", "text": "A"}, {"type": "text", "text": NOTE}],
        ),
    ],
)
def test_anthropic_rewrite_handles_every_system_shape(system: Any, expected: Any) -> None:
    """The note creates ``system``, extends a string, or appends a text block."""
    body: dict[str, Any] = {"model": "c", "messages": [{"role": "user", "content": "q"}]}
    if system is not None:
        body["system"] = system
    adapter = AnthropicAdapter()
    info = adapter.parse_request(json.dumps(body).encode())
    assert info is not None
    rewritten = adapter.rewrite_request(info, NOTE, "system")
    assert rewritten is not None and json.loads(rewritten)["system"] == expected


def test_openai_chat_note_goes_after_leading_system_messages() -> None:
    """The note follows the leading system/developer messages and precedes the conversation."""
    messages = [
        {"role": "developer", "content": "d"},
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u"},
        {"role": "system", "content": "late"},
    ]
    adapter = OpenAIChatAdapter()
    info = adapter.parse_request(json.dumps({"model": "m", "messages": messages}).encode())
    assert info is not None and info.system_prompt == "d\n\ns\n\nlate"
    rewritten = json.loads(adapter.rewrite_request(info, NOTE, "system") or b"")
    assert [m["content"] for m in rewritten["messages"]] == ["d", "s", NOTE, "u", "late"]


def test_responses_request_with_item_list() -> None:
    """Responses input items give the last user message and the system prompt."""
    body = {
        "model": "m",
        "input": [
            {"role": "developer", "content": "rules"},
            {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "input_text", "text": "second"}]},
        ],
    }
    info = ResponsesAdapter().parse_request(json.dumps(body).encode())
    assert info is not None and info.last_user_message == "second" and info.system_prompt == "rules"


@pytest.mark.parametrize(
    "adapter", [OpenAIChatAdapter(), ResponsesAdapter(), AnthropicAdapter(), PlainTextAdapter()]
)
@pytest.mark.parametrize("stream", [False, True])
def test_rendered_replacement_reads_back(adapter: Any, stream: bool) -> None:
    """Every adapter reads its own rendered replacement back to the same text."""
    info = adapter.parse_request(
        json.dumps(
            {"model": "m", "messages": [{"role": "user", "content": "q"}], "input": "q"}
        ).encode()
    )
    rendered = adapter.render_replacement(info, "Hello there.", stream=stream)
    assert rendered.status == 200
    if stream and adapter.stream_collector() is not None:
        assert rendered.content_type.startswith("text/event-stream")
        collector = adapter.stream_collector()
        for event in SseParser().feed(rendered.body, final=True):
            collector.feed(event)
        assert collector.texts() == ("Hello there.",) and not collector.unsupported
    else:
        assert adapter.accepts(rendered.content_type)
        found = adapter.response_texts(rendered.body)
        assert found is not None and found.texts == ("Hello there.",)


@pytest.mark.parametrize("cut", range(1, 40))
def test_sse_parser_is_indifferent_to_chunk_boundaries(cut: int) -> None:
    """Events come out the same wherever the bytes are split (CRLF and UTF-8 included)."""
    raw = 'event: a\r\ndata: {"x": "é"}\r\n\r\n: keepalive\n\ndata: 1\ndata: 2\n\n'.encode()
    whole = SseParser().feed(raw, final=True)
    parser = SseParser()
    split = parser.feed(raw[:cut]) + parser.feed(raw[cut:], final=True)
    assert split == whole
    assert [(e.event, e.data) for e in whole] == [("a", '{"x": "é"}'), (None, "1\n2")]


def _reference_events(raw: bytes) -> list[tuple[str | None, str]]:
    """The SSE rules applied line by line to the whole stream at once (the specification)."""
    text = raw.decode().replace("\r\n", "\n").replace("\r", "\n")
    events: list[tuple[str | None, str]] = []
    name: str | None = None
    data: list[str] = []
    for line in [*text.split("\n"), ""]:
        if not line:
            if data:
                events.append((name, "\n".join(data)))
            name, data = None, []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
            elif field == "event":
                name = value
    return events


_SSE_LINE = st.one_of(
    st.from_regex(r"data: [a-z{}\":é ]{0,12}", fullmatch=True),
    st.from_regex(r"data:[a-z]{0,5}", fullmatch=True),
    st.from_regex(r"event: [a-z_]{1,8}", fullmatch=True),
    st.just(": keep-alive"),
    st.just(""),
)


@given(
    lines=st.lists(_SSE_LINE, max_size=24),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_sse_parser_matches_the_line_rules_for_any_stream_and_split(
    lines: list[str], newline: str, cuts: list[int]
) -> None:
    """Whole single-line events and line-by-line events give what the SSE rules give,
    wherever the chunks are cut (the parser's fast path must not change any event)."""
    raw = (newline.join(lines) + newline).encode()
    parser = SseParser()
    events = []
    at = 0
    for cut in sorted(c for c in cuts if c <= len(raw)):
        events += parser.feed(raw[at:cut])
        at = cut
    events += parser.feed(raw[at:], final=True)
    assert [(e.event, e.data) for e in events] == _reference_events(raw)
