"""The middleware never loses a response: upstream errors, odd bodies, classifier failures."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from test_middleware_doubles import (
    ANSWER,
    JSON,
    REFUSAL,
    FakeClassifier,
    ListRecorder,
    ScriptedPolicy,
    Upstream,
    chat_json,
    chat_sse,
    drive,
    has_note,
    retry_policy,
)
from test_middleware_json import CHAT, fixed, guard

from guardrail.classification import Classification
from guardrail.middleware.adapters import OpenAIChatAdapter
from guardrail.outcome import GuardOutcome
from guardrail.policy_api import Decision, RequestContext


@pytest.mark.anyio
async def test_non_2xx_passes_through_unclassified() -> None:
    """An upstream 429 reaches the client as sent and is not classified."""
    raw = b'{"error": {"message": "slow down"}}'
    app, recorder, classifier = guard(
        fixed(429, [*JSON, (b"retry-after", b"3")], [raw]), retry_policy()
    )
    got = await drive(app, CHAT)
    assert (got.status, got.body, got.headers["retry-after"]) == (429, raw, "3")
    assert got.headers["x-guardrail-action"] == "pass"
    assert classifier.batches == []
    outcome = recorder.outcomes[0]
    assert outcome.status == 429 and outcome.classification is None and outcome.skipped is None


@pytest.mark.anyio
async def test_malformed_json_is_unsupported() -> None:
    """A body that is not a chat completion passes byte for byte, skipped 'unsupported'."""
    raw = b'{"choices": "nope"'
    app, recorder, _ = guard(fixed(200, JSON, [raw]))
    got = await drive(app, CHAT)
    assert got.body == raw and got.headers["x-guardrail-skipped"] == "unsupported"
    assert "content-length" not in got.headers  # nothing added that upstream did not send
    assert recorder.outcomes[0].skipped == "unsupported"


@pytest.mark.anyio
async def test_non_json_content_type_is_unsupported() -> None:
    """An HTML answer on a chat route is not read, only passed on."""
    raw = b"<html>maintenance</html>"
    app, recorder, _ = guard(fixed(200, [(b"content-type", b"text/html")], [raw]))
    got = await drive(app, CHAT)
    assert got.body == raw and recorder.outcomes[0].skipped == "unsupported"


@pytest.mark.anyio
async def test_non_json_request_is_unsupported() -> None:
    """A request body that is not JSON goes to the app unchanged and the answer passes."""
    upstream = fixed(400, JSON, [b'{"error": {"message": "bad json"}}'])
    app, recorder, _ = guard(upstream)
    got = await drive(app, b"not json at all")
    assert got.status == 400 and upstream.raw_requests == [b"not json at all"]
    assert recorder.outcomes[0].skipped == "unsupported"


@pytest.mark.anyio
async def test_too_large_response_streams_through_in_order() -> None:
    """Past max_response_bytes the held bytes go out in order, then each chunk as it comes."""
    chunks = [b"{" + b" " * 300, b" " * 300, b'"choices": []}']
    app, recorder, classifier = guard(fixed(200, JSON, chunks), max_response_bytes=500)
    got = await drive(app, CHAT)
    assert [m.get("body") for m in got.messages[1:]] == [chunks[0] + chunks[1], chunks[2]]
    assert got.headers["x-guardrail-skipped"] == "too_large"
    assert classifier.batches == [] and recorder.outcomes[0].skipped == "too_large"


@pytest.mark.anyio
async def test_too_large_request_is_passed_through() -> None:
    """A request above max_request_bytes reaches the app whole; no retry is possible."""
    upstream = fixed(200, JSON, [chat_json(REFUSAL)])
    app, recorder, _ = guard(upstream, retry_policy(), max_request_bytes=64)
    got = await drive(app, CHAT, chunks=4)
    assert upstream.requests == [CHAT]
    assert got.body == chat_json(REFUSAL)
    assert recorder.outcomes[0].skipped == "too_large" and recorder.outcomes[0].attempts == 1


@pytest.mark.anyio
async def test_classifier_error_fails_open() -> None:
    """A classifier exception leaves the answer untouched and records skip 'error'."""
    app, recorder, _ = guard(
        fixed(200, JSON, [chat_json(REFUSAL)]), retry_policy(), classifier=FakeClassifier(fail=True)
    )
    got = await drive(app, CHAT)
    assert got.status == 200 and got.body == chat_json(REFUSAL)
    assert got.headers["x-guardrail-skipped"] == "error"
    assert recorder.outcomes[0].skipped == "error" and recorder.outcomes[0].classification is None


@pytest.mark.anyio
async def test_classifier_timeout_fails_open() -> None:
    """A classification slower than classify_timeout is abandoned: skip 'timeout', answer passes."""
    slow = FakeClassifier(delay=0.3)
    app, recorder, _ = guard(
        fixed(200, JSON, [chat_json(REFUSAL)]),
        retry_policy(),
        classifier=slow,
        classify_timeout=0.05,
    )
    started = time.perf_counter()
    got = await drive(app, CHAT)
    assert time.perf_counter() - started < 0.25
    assert got.body == chat_json(REFUSAL) and got.headers["x-guardrail-skipped"] == "timeout"
    assert recorder.outcomes[0].skipped == "timeout"


@pytest.mark.anyio
async def test_fail_closed_policy_blocks_on_classifier_error() -> None:
    """With fail_closed the client gets a 503 in the API's error format instead."""
    app, recorder, _ = guard(
        fixed(200, JSON, [chat_json(ANSWER)]),
        ScriptedPolicy(fail_closed=True),
        classifier=FakeClassifier(fail=True),
    )
    got = await drive(app, CHAT)
    assert got.status == 503 and "could not be checked" in got.json()["error"]["message"]
    outcome = recorder.outcomes[0]
    assert (outcome.action, outcome.skipped, outcome.status) == ("block", "error", 503)


@pytest.mark.anyio
async def test_upstream_exception_before_response_propagates() -> None:
    """An app that raises before responding raises through the middleware, outcome recorded."""

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    app, recorder, _ = guard(broken)
    with pytest.raises(RuntimeError, match="boom"):
        await drive(app, CHAT)
    assert len(recorder.outcomes) == 1 and recorder.outcomes[0].status == 500


@pytest.mark.anyio
async def test_upstream_exception_mid_body_forwards_what_was_sent() -> None:
    """An app failing mid-body: the client gets the start and the bytes sent, then the error."""
    upstream = fixed(200, JSON, [b'{"choices":', b"[]}"])
    upstream.fail_after = 1
    app, recorder, _ = guard(upstream)
    sent: list[Any] = []

    async def keep(message: Any) -> None:
        sent.append(message)

    with pytest.raises(RuntimeError, match="mid-response"):
        await drive(app, CHAT, on_message=keep)
    assert sent[0]["status"] == 200
    assert [m.get("body") for m in sent[1:]] == [b'{"choices":']
    assert sent[1]["more_body"] is True
    assert len(recorder.outcomes) == 1


@pytest.mark.anyio
async def test_retry_that_raises_falls_back_to_first_answer() -> None:
    """If the retry attempt fails, the client gets the first answer, retry outcome 'error'."""

    def answer(request: dict[str, Any], n: int) -> Any:
        if has_note(request):
            raise RuntimeError("retry upstream down")
        return 200, JSON, [chat_json(REFUSAL)]

    app, recorder, _ = guard(Upstream(answer), retry_policy())
    got = await drive(app, CHAT)
    assert got.status == 200 and got.body == chat_json(REFUSAL)
    assert got.headers["x-guardrail-attempts"] == "2"
    outcome = recorder.outcomes[0]
    assert (outcome.action, outcome.retry_outcome, outcome.attempts) == ("retry", "error", 2)


@pytest.mark.anyio
async def test_retry_with_server_error_falls_back_to_first_answer() -> None:
    """A 500 from the retry attempt is not shown; the first answer is sent instead."""

    def answer(request: dict[str, Any], n: int) -> Any:
        if has_note(request):
            return 500, JSON, [b'{"error": "overloaded"}']
        return 200, JSON, [chat_json(REFUSAL)]

    app, recorder, _ = guard(Upstream(answer), retry_policy())
    got = await drive(app, CHAT)
    assert got.status == 200 and got.body == chat_json(REFUSAL)
    assert recorder.outcomes[0].retry_outcome == "error"


@pytest.mark.anyio
async def test_recorder_failure_does_not_break_response() -> None:
    """A recorder that raises loses the outcome, never the response."""

    class Exploding:
        def record(self, outcome: GuardOutcome) -> None:
            raise ValueError("metrics backend down")

    from guardrail.middleware import GuardrailMiddleware

    app = GuardrailMiddleware(
        fixed(200, JSON, [chat_json(ANSWER)]),
        policy=ScriptedPolicy(),
        classifier=FakeClassifier(),
        recorder=Exploding(),
    )
    got = await drive(app, CHAT)
    assert got.status == 200 and got.body == chat_json(ANSWER)


@pytest.mark.anyio
async def test_policy_failure_fails_open() -> None:
    """A policy whose decide raises leaves the answer untouched, skip 'error'."""

    class Broken:
        fail_closed = False

        def decide(self, ctx: RequestContext, c: Classification, *, attempt: int) -> Decision:
            raise KeyError("rule")

    app, recorder, _ = guard(fixed(200, JSON, [chat_json(REFUSAL)]), Broken())
    got = await drive(app, CHAT)
    assert got.body == chat_json(REFUSAL) and recorder.outcomes[0].skipped == "error"


@pytest.mark.anyio
async def test_overhead_excludes_upstream_time() -> None:
    """overhead_seconds counts the middleware's own time, not upstream or upload time."""

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await anyio.sleep(0.3)
        await send({"type": "http.response.start", "status": 200, "headers": JSON})
        await send({"type": "http.response.body", "body": chat_json(ANSWER)})

    app, recorder, _ = guard(slow)
    await drive(app, CHAT, chunks=3, upload_delay=0.1)  # a slow upload is not ours either
    outcome = recorder.outcomes[0]
    assert outcome.overhead_seconds < 0.1
    assert 0 < outcome.classifier_seconds < 0.1


@pytest.mark.anyio
async def test_background_work_after_response_does_not_delay_answer() -> None:
    """The answer goes out when the app sends its last byte, not when the app returns."""
    sent_at: list[float] = []

    async def with_background(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": JSON})
        await send({"type": "http.response.body", "body": chat_json(ANSWER)})
        await anyio.sleep(0.3)  # a Starlette BackgroundTask runs here

    async def stamp(message: Any) -> None:
        sent_at.append(time.perf_counter())

    app, _, _ = guard(with_background)
    started = time.perf_counter()
    await drive(app, CHAT, on_message=stamp)
    assert sent_at[-1] - started < 0.2


@pytest.mark.anyio
async def test_outcome_recorded_once_per_request() -> None:
    """Each guarded request produces exactly one outcome, even with retries."""
    from test_middleware_doubles import refuses_without_note

    recorder = ListRecorder()
    from guardrail.middleware import GuardrailMiddleware

    app = GuardrailMiddleware(
        refuses_without_note(),
        policy=retry_policy(),
        classifier=FakeClassifier(),
        recorder=recorder,
    )
    for _ in range(3):
        await drive(app, CHAT)
    assert [o.attempts for o in recorder.outcomes] == [2, 2, 2]
    assert len({o.request_id for o in recorder.outcomes}) == 3


class _BrokenAdapter(OpenAIChatAdapter):
    """A custom adapter with bugs: it cannot read bodies or streams."""

    def response_texts(self, body: bytes) -> Any:
        raise ValueError("adapter bug")

    def stream_collector(self) -> Any:
        class Collector:
            unsupported = False
            tool_call_first = False
            model = None

            def feed(self, event: Any) -> None:
                raise ValueError("collector bug")

            def texts(self) -> tuple[str, ...]:
                return ()

        return Collector()


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_buggy_custom_adapter_fails_open(stream: bool) -> None:
    """An adapter that raises leaves the answer as upstream sent it, skipped 'unsupported'."""
    chunks = chat_sse(REFUSAL) if stream else [chat_json(REFUSAL)]
    headers = [(b"content-type", b"text/event-stream")] if stream else JSON
    app, recorder, classifier = guard(
        fixed(200, headers, chunks),
        retry_policy(),
        routes={"/v1/chat/completions": _BrokenAdapter()},
    )
    got = await drive(app, {**CHAT, "stream": stream})
    assert got.status == 200 and got.body == b"".join(chunks)
    assert classifier.batches == [] and recorder.outcomes[0].skipped == "unsupported"


@pytest.mark.anyio
async def test_unreadable_retry_answer_carries_no_old_verdict() -> None:
    """A retry answered with an unreadable body passes on, without the first attempt's verdict."""

    def answer(request: dict[str, Any], n: int) -> Any:
        if has_note(request):
            return 200, [(b"content-type", b"text/html")], [b"<p>ok</p>"]
        return 200, JSON, [chat_json(REFUSAL)]

    app, recorder, _ = guard(Upstream(answer), retry_policy())
    got = await drive(app, CHAT)
    assert got.body == b"<p>ok</p>" and "x-guardrail-verdict" not in got.headers
    outcome = recorder.outcomes[0]
    assert (outcome.classification, outcome.skipped, outcome.retry_outcome) == (
        None,
        "unsupported",
        "error",
    )
