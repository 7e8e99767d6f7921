"""Hostile bodies against the response adapters: malformed JSON and SSE, bad UTF-8, nesting.

The adapters read bytes that an upstream (or whoever sits between it and us) controls. Their
contract is "None when the body is not understood", never an exception: an exception in the
request path would turn a harmless odd response into an error for the client. Hypothesis
generates JSON of the right general shape with wrong types in every position, random bytes,
and splits of valid streams at every byte offset.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from guardrail.middleware._sse import SseParser
from guardrail.middleware.adapters import ADAPTERS, RequestInfo, ResponseTexts, SseEvent

# A long fuzz run: GUARDRAIL_FUZZ_EXAMPLES=20000 python -m pytest tests/test_hostile_*.py
_EXAMPLES = int(os.environ.get("GUARDRAIL_FUZZ_EXAMPLES", "150"))
_SETTINGS = settings(
    max_examples=_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
_JSON_ADAPTERS = ("openai_chat", "responses", "anthropic")

# Any JSON value; keys biased towards the names the adapters look at, so the generated
# objects reach deep into the parsing code instead of failing at the first lookup.
_KEYS = st.sampled_from(
    [
        "choices",
        "message",
        "content",
        "delta",
        "index",
        "role",
        "text",
        "type",
        "output",
        "refusal",
        "model",
        "messages",
        "input",
        "system",
        "metadata",
        "user",
        "stream",
        "tool_calls",
        "item",
        "response",
        "content_block",
        "instructions",
        "user_id",
    ]
) | st.text(max_size=8)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "message",
            "text",
            "user",
            "system",
            "output_text",
            "text_delta",
            "content_block_delta",
            "response.output_text.delta",
            "[DONE]",
        ]
    )
)
JSON = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=5),
    max_leaves=25,
)


def _check_texts(result: ResponseTexts | None) -> None:
    assert result is None or isinstance(result, ResponseTexts)
    if result is not None:
        assert all(isinstance(t, str) for t in result.texts)
        assert result.model is None or isinstance(result.model, str)


@pytest.mark.parametrize("name", _JSON_ADAPTERS)
@_SETTINGS
@given(value=JSON)
# Found by this test: a non-iterable ``content`` and an unhashable part ``type``.
@example(value={"output": [{"type": "message", "content": 5}]})
@example(value={"output": [{"type": "message", "content": [{"type": []}]}]})
def test_response_texts_never_raises_on_any_json(name: str, value: Any) -> None:
    """Every JSON value as a response body yields None or string texts, never an exception."""
    _check_texts(ADAPTERS[name].response_texts(json.dumps(value).encode()))


@pytest.mark.parametrize("name", _JSON_ADAPTERS)
@_SETTINGS
@given(value=JSON)
@example(value={"messages": [{"role": []}]})  # found: an unhashable role
def test_parse_request_never_raises_on_any_json(name: str, value: Any) -> None:
    """Every JSON value as a request body yields None or a RequestInfo with string fields."""
    info = ADAPTERS[name].parse_request(json.dumps(value).encode())
    assert info is None or isinstance(info, RequestInfo)
    if info is not None:
        assert isinstance(info.last_user_message, str)
        assert isinstance(info.system_prompt, str)


@pytest.mark.parametrize("name", [*_JSON_ADAPTERS, "plain_text"])
@_SETTINGS
@given(body=st.binary(max_size=300))
def test_random_bytes_are_not_understood_or_harmless(name: str, body: bytes) -> None:
    """Random bytes, invalid UTF-8 included, never make an adapter raise."""
    adapter = ADAPTERS[name]
    _check_texts(adapter.response_texts(body))
    info = adapter.parse_request(body)
    assert info is None or isinstance(info, RequestInfo)


@pytest.mark.parametrize("name", _JSON_ADAPTERS)
@_SETTINGS
@given(value=JSON, event=st.none() | st.text(max_size=30))
@example(value={"type": []}, event=None)  # found: an unhashable event type
def test_stream_collectors_never_raise(name: str, value: Any, event: str | None) -> None:
    """Any SSE event payload leaves a stream collector answering with string texts."""
    collector = ADAPTERS[name].stream_collector()
    assert collector is not None
    collector.feed(SseEvent(event, json.dumps(value)))
    collector.feed(SseEvent(event, "{not json"))
    assert collector.unsupported
    assert all(isinstance(t, str) for t in collector.texts())


@pytest.mark.parametrize("name", _JSON_ADAPTERS)
@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_not_understood(name: str, depth: int) -> None:
    """JSON nested deeper than the parser's recursion limit is 'not understood', not a crash."""
    body = b'{"choices":' + b"[" * depth + b"]" * depth + b"}"
    adapter = ADAPTERS[name]
    assert adapter.response_texts(body) is None
    assert adapter.parse_request(body) is None


@pytest.mark.parametrize("name", _JSON_ADAPTERS)
@_SETTINGS
@given(text=st.text(max_size=400))
def test_replacement_round_trips_through_the_adapter(name: str, text: str) -> None:
    """A rendered replacement, JSON or SSE, reads back as exactly the text that was put in."""
    adapter = ADAPTERS[name]
    request = RequestInfo(data={}, model="m")
    rendered = adapter.render_replacement(request, text, stream=False)
    result = adapter.response_texts(rendered.body)
    assert result is not None
    assert result.texts == ((text,) if text else ())
    streamed = adapter.render_replacement(request, text, stream=True)
    collector = adapter.stream_collector()
    assert collector is not None
    for ev in SseParser().feed(streamed.body, final=True):
        collector.feed(ev)
    assert not collector.unsupported
    assert "".join(collector.texts()) == text


def _sse_stream(texts: list[str]) -> bytes:
    out = b""
    for i, t in enumerate(texts):
        payload = {"choices": [{"index": 0, "delta": {"content": t}}]}
        sep = (b"\n", b"\r\n", b"\r")[i % 3]
        out += b"data: " + json.dumps(payload, ensure_ascii=False).encode() + sep + sep
    return out + b"data: [DONE]\n\n"


@_SETTINGS
@given(
    texts=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=2_000), max_size=12),
)
def test_sse_parser_is_split_invariant(texts: list[str], cuts: list[int]) -> None:
    """However a stream is cut into chunks (mid-line, mid-CRLF, mid-UTF-8), the events match."""
    body = _sse_stream(texts)
    whole = SseParser().feed(body, final=True)
    parser = SseParser()
    pieces: list[SseEvent] = []
    points = sorted({min(c, len(body)) for c in cuts})
    start = 0
    for point in [*points, len(body)]:
        pieces += parser.feed(body[start:point], final=point == len(body))
        start = point
    assert pieces == whole
    collector = ADAPTERS["openai_chat"].stream_collector()
    assert collector is not None
    for ev in pieces:
        collector.feed(ev)
    assert collector.texts() == ("".join(texts),)


@_SETTINGS
@given(body=st.binary(max_size=400), cut=st.integers(min_value=0, max_value=400))
def test_sse_parser_takes_any_bytes(body: bytes, cut: int) -> None:
    """Random bytes make the SSE parser emit events or flag invalid UTF-8, never raise."""
    parser = SseParser()
    events = parser.feed(body[:cut]) + parser.feed(body[cut:], final=True)
    assert all(isinstance(e.data, str) for e in events)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        assert parser.invalid


def test_huge_response_body_is_read_in_full() -> None:
    """A 4 MiB chat completion is parsed whole: nothing is truncated on the way to the model."""
    text = "word " * (4 * 1024 * 1024 // 5)
    body = json.dumps(
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
    ).encode()
    result = ADAPTERS["openai_chat"].response_texts(body)
    assert result is not None
    assert result.texts == (text,)
