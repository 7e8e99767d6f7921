"""Streaming (SSE) answers: hold back the window, then release, retry, replace or block."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from test_middleware_doubles import (
    ANSWER,
    REFUSAL,
    SSE,
    ScriptedPolicy,
    Upstream,
    chat_sse,
    drive,
    has_note,
    refuses_without_note,
    retry_policy,
)
from test_middleware_json import CHAT, fixed, guard

from guardrail.middleware._sse import SseParser
from guardrail.middleware.adapters import OpenAIChatAdapter
from guardrail.policy_api import Decision

STREAM = {**CHAT, "stream": True}


def stream_text(body: bytes) -> str:
    collector = OpenAIChatAdapter().stream_collector()
    for event in SseParser().feed(body, final=True):
        collector.feed(event)
    return "".join(collector.texts())


@pytest.mark.anyio
async def test_compliant_stream_is_released_and_flows() -> None:
    """After the window the held chunks go out and later chunks flow while upstream still runs."""
    chunks = chat_sse(ANSWER + " Take it with food. " * 5, pieces=12)
    released = anyio.Event()

    async def upstream(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": SSE})
        for i, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if i == 4:
                # The window ("Sure. ...") is complete by now: the client must have the start.
                with anyio.fail_after(2):
                    await released.wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def on_message(message: Any) -> None:
        if message["type"] == "http.response.start":
            released.set()

    app, recorder, _ = guard(upstream, stream_window_min_chars=5)
    got = await drive(app, STREAM, on_message=on_message)
    assert [m.get("body") for m in got.messages[1:]] == [*chunks, b""]
    assert got.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert got.headers["cache-control"] == "no-cache"
    assert got.headers["x-guardrail-verdict"] == "compliance"
    assert "content-length" not in got.headers
    outcome = recorder.outcomes[0]
    assert outcome.stream is True and outcome.action == "pass" and outcome.skipped is None


@pytest.mark.anyio
async def test_stream_retry_client_sees_no_byte_of_discarded_attempt() -> None:
    """A refusing stream is discarded whole and the retry's stream is what the client gets."""
    upstream = refuses_without_note(stream=True)
    app, recorder, _ = guard(upstream, retry_policy())
    got = await drive(app, STREAM)
    assert got.body == b"".join(chat_sse(ANSWER))
    assert stream_text(got.body) == ANSWER and "sorry" not in got.body.decode()
    assert sum(m["type"] == "http.response.start" for m in got.messages) == 1
    assert (
        got.headers["x-guardrail-action"] == "retry" and got.headers["x-guardrail-attempts"] == "2"
    )
    assert upstream.completed == 2  # the discarded attempt was drained to its end
    outcome = recorder.outcomes[0]
    assert (outcome.retry_outcome, outcome.stream, outcome.status) == ("recovered", True, 200)


@pytest.mark.anyio
async def test_stream_replace_renders_chunks_and_done() -> None:
    """A replace decision on a stream answers with chat.completion.chunk events and [DONE]."""
    decision = Decision(action="replace", rule_id="soften", replace_text="Ask your pharmacist.")
    app, _, _ = guard(fixed(200, SSE, chat_sse(REFUSAL)), ScriptedPolicy(on_refusal=decision))
    got = await drive(app, STREAM)
    assert got.headers["content-type"].startswith("text/event-stream")
    assert got.body.endswith(b"data: [DONE]\n\n")
    assert stream_text(got.body) == "Ask your pharmacist."
    events = SseParser().feed(got.body, final=True)
    assert json.loads(events[0].data)["object"] == "chat.completion.chunk"
    assert json.loads(events[1].data)["choices"][0]["finish_reason"] == "stop"


@pytest.mark.anyio
async def test_stream_block_is_an_error_response() -> None:
    """A block decision on a stream answers with the error status before any stream byte."""
    decision = Decision(action="block", rule_id="deny")
    app, recorder, _ = guard(
        fixed(200, SSE, chat_sse(REFUSAL)), ScriptedPolicy(on_refusal=decision)
    )
    got = await drive(app, STREAM)
    assert got.status == 403 and got.json()["error"]["code"] == "content_blocked"
    assert recorder.outcomes[0].action == "block"


@pytest.mark.anyio
async def test_exception_after_release_is_reraised_after_forwarding() -> None:
    """Upstream failing after release: the client has what was sent, then the error."""
    chunks = chat_sse(ANSWER, pieces=8)
    upstream = fixed(200, SSE, chunks)
    upstream.fail_after = 6
    app, recorder, _ = guard(upstream, stream_window_min_chars=5)
    sent: list[Any] = []

    async def keep(message: Any) -> None:
        sent.append(message)

    with pytest.raises(RuntimeError, match="mid-response"):
        await drive(app, STREAM, on_message=keep)
    assert [m.get("body") for m in sent[1:]] == chunks[:6]
    assert len(recorder.outcomes) == 1


@pytest.mark.anyio
async def test_exception_while_holding_forwards_the_held_part() -> None:
    """Upstream failing inside the window: the held bytes go out as sent, then the error."""
    chunks = chat_sse(ANSWER, pieces=8)
    upstream = fixed(200, SSE, chunks)
    upstream.fail_after = 1
    app, _, _ = guard(upstream, stream_window_min_chars=200, stream_window_max_chars=400)
    sent: list[Any] = []

    async def keep(message: Any) -> None:
        sent.append(message)

    with pytest.raises(RuntimeError):
        await drive(app, STREAM, on_message=keep)
    assert sent[0]["status"] == 200 and [m.get("body") for m in sent[1:]] == chunks[:1]


@pytest.mark.anyio
async def test_full_text_is_classified_after_the_last_byte() -> None:
    """The header carries the window's verdict; the outcome the full text's verdict."""
    text = "Sure, here is some general background on this topic. " + REFUSAL
    app, recorder, classifier = guard(
        fixed(200, SSE, chat_sse(text, pieces=10)), stream_window_min_chars=20
    )
    got = await drive(app, STREAM)
    assert got.headers["x-guardrail-verdict"] == "compliance"
    assert len(classifier.batches) == 2 and classifier.batches[1] == [text]
    outcome = recorder.outcomes[0]
    assert outcome.classification is not None and outcome.classification.verdict == "full_refusal"


@pytest.mark.anyio
async def test_short_stream_is_decided_at_its_end() -> None:
    """A stream shorter than the window is classified when it ends, and can still be retried."""
    upstream = refuses_without_note(stream=True)
    app, _, classifier = guard(
        upstream, retry_policy(), stream_window_min_chars=500, stream_window_max_chars=900
    )
    got = await drive(app, STREAM)
    assert stream_text(got.body) == ANSWER
    assert classifier.batches[0] == [REFUSAL]


@pytest.mark.anyio
async def test_stream_ending_inside_the_window_is_classified_once() -> None:
    """When the window held the whole stream, its verdict is final: no second classification."""
    text = "Sure, here is a short answer."
    app, recorder, classifier = guard(
        fixed(200, SSE, chat_sse(text, pieces=3)), stream_window_min_chars=200
    )
    got = await drive(app, STREAM)
    assert stream_text(got.body) == text
    assert classifier.batches == [[text]]
    outcome = recorder.outcomes[0]
    assert outcome.classification is not None and outcome.classification.verdict == "compliance"


@pytest.mark.anyio
async def test_window_max_chars_bounds_the_hold() -> None:
    """Without a sentence end the window closes at stream_window_max_chars."""
    text = "word " * 200  # no sentence end at all
    seen: list[int] = []
    chunks = chat_sse(text, pieces=50)

    async def upstream(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": SSE})
        for i, chunk in enumerate(chunks):
            seen.append(i)
            await send(
                {"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1}
            )

    released_at: list[int] = []

    async def on_message(message: Any) -> None:
        if message["type"] == "http.response.start":
            released_at.append(len(seen))

    app, _, classifier = guard(upstream, stream_window_min_chars=10, stream_window_max_chars=60)
    await drive(app, STREAM, on_message=on_message)
    assert released_at == [3]  # 20 characters per chunk: 60 after the third one
    assert 60 <= len(classifier.batches[0][0]) < 80


@pytest.mark.anyio
async def test_tool_call_stream_is_released_at_once() -> None:
    """A stream that starts with a tool call is not held back and not classified."""
    delta = {
        "role": "assistant",
        "tool_calls": [
            {"index": 0, "id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}
        ],
    }
    first = (
        b"data: "
        + json.dumps(
            {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
        ).encode()
        + b"\n\n"
    )
    chunks = [first, b"data: [DONE]\n\n"]
    app, recorder, classifier = guard(fixed(200, SSE, chunks), retry_policy())
    got = await drive(app, STREAM)
    assert got.body == b"".join(chunks) and classifier.batches == []
    assert recorder.outcomes[0].classification is None


@pytest.mark.anyio
async def test_stream_retry_failure_falls_back_to_first_stream() -> None:
    """When the retried stream fails before its first byte, the whole first stream is sent."""

    def answer(request: dict[str, Any], n: int) -> Any:
        if has_note(request):
            return 502, [(b"content-type", b"application/json")], [b"{}"]
        return 200, SSE, chat_sse(REFUSAL)

    app, recorder, _ = guard(Upstream(answer), retry_policy())
    got = await drive(app, STREAM)
    assert got.status == 200 and got.body == b"".join(chat_sse(REFUSAL))
    assert recorder.outcomes[0].retry_outcome == "error"


@pytest.mark.anyio
async def test_invalid_sse_is_released_unsupported() -> None:
    """A stream whose events are not JSON is passed on as it came, skipped 'unsupported'."""
    chunks = [b"data: {not json}\n\n", b"data: more\n\n"]
    app, recorder, _ = guard(fixed(200, SSE, chunks))
    got = await drive(app, STREAM)
    assert got.body == b"".join(chunks) and recorder.outcomes[0].skipped == "unsupported"


@pytest.mark.anyio
async def test_client_send_failure_propagates_and_is_recorded() -> None:
    """A client connection failing mid-stream surfaces as it would without the middleware."""

    async def broken_pipe(message: Any) -> None:
        if message["type"] == "http.response.body":
            raise OSError("client went away")

    app, recorder, _ = guard(fixed(200, SSE, chat_sse(ANSWER)), stream_window_min_chars=5)
    with pytest.raises(OSError):
        await drive(app, STREAM, on_message=broken_pipe)
    assert len(recorder.outcomes) == 1


@pytest.mark.anyio
async def test_client_disconnect_while_holding_ends_cleanly() -> None:
    """A client leaving during the hold stops a Starlette stream; the request ends without error."""
    from starlette.responses import StreamingResponse

    async def endless() -> Any:
        while True:
            yield b'data: {"choices": [{"index": 0, "delta": {"content": "word "}}]}\n\n'
            await anyio.sleep(0.01)

    async def upstream(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await StreamingResponse(endless(), media_type="text/event-stream")(scope, receive, send)

    app, recorder, classifier = guard(
        upstream, stream_window_min_chars=10_000, stream_window_max_chars=20_000
    )
    with anyio.fail_after(5):
        got = await drive(app, STREAM, disconnect_after=0.1)
    assert got.status == 200 and got.body.startswith(b"data: ")
    assert classifier.batches == []
    assert len(recorder.outcomes) == 1 and recorder.outcomes[0].status == 200
