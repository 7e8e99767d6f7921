"""Streaming (SSE) answers: hold back the window, then release, retry, replace or block."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import pytest
from test_middleware_doubles import (
    ANSWER,
    REFUSAL,
    SSE,
    FakeClassifier,
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
    # The window closed at chunk 1; chunks 2-4 came while it was judged (the app did not
    # wait before its fifth), so they leave with it; the rest flow one by one.
    bodies = [m.get("body") for m in got.messages[1:]]
    assert bodies == [b"".join(chunks[:5]), *chunks[5:], b""]
    assert got.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert got.headers["cache-control"] == "no-cache"
    assert got.headers["x-guardrail-verdict"] == "compliance"
    assert "content-length" not in got.headers
    outcome = recorder.outcomes[0]
    assert outcome.stream is True and outcome.action == "pass" and outcome.skipped is None


@pytest.mark.anyio
async def test_held_chunks_leave_in_one_message_and_later_ones_as_they_came() -> None:
    """The chunks held for the window are released joined, in order; the rest one by one."""
    text = "Sure, here is some general background on this. " * 4
    chunks = chat_sse(text, pieces=12)
    app, _, classifier = guard(fixed(200, SSE, chunks), stream_window_min_chars=60)
    got = await drive(app, STREAM)
    bodies = [m.get("body") for m in got.messages[1:]]
    held = len(chunks) - (len(bodies) - 1)
    assert held > 1 and bodies == [b"".join(chunks[:held]), *chunks[held:]]
    assert len(classifier.batches[0][0]) >= 60  # the window was judged before release


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
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"".join(chunks[:6])
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
        fixed(200, SSE, chat_sse(text, pieces=10), paced=True), stream_window_min_chars=20
    )
    got = await drive(app, STREAM)
    assert got.headers["x-guardrail-verdict"] == "compliance"
    assert len(classifier.batches) == 2 and classifier.batches[1] == [text]
    outcome = recorder.outcomes[0]
    assert outcome.classification is not None and outcome.classification.verdict == "full_refusal"


@pytest.mark.anyio
async def test_a_long_released_stream_is_read_whole_for_its_final_verdict() -> None:
    """Text far past the read batch, split mid-event and mid-character, is classified whole."""
    text = "Sure, here is the background. " + "Ünïcödé paragraph of content. " * 2500 + REFUSAL
    body = b"".join(chat_sse(text, pieces=400))
    pieces = [body[i : i + 997] for i in range(0, len(body), 997)]  # odd size: splits events
    app, recorder, classifier = guard(fixed(200, SSE, pieces), stream_window_min_chars=20)
    got = await drive(app, STREAM)
    assert got.body == body
    assert classifier.batches[-1] == [text]
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
            await anyio.sleep(0)  # at a model's pace: the window is judged while it waits

    released_at: list[int] = []

    async def on_message(message: Any) -> None:
        if message["type"] == "http.response.start":
            released_at.append(len(seen))

    app, _, classifier = guard(upstream, stream_window_min_chars=10, stream_window_max_chars=60)
    await drive(app, STREAM, on_message=on_message)
    # 20 characters per chunk: the window is the first three; the app goes on meanwhile, so
    # the release comes a few chunks later, long before the stream's end.
    assert 60 <= len(classifier.batches[0][0]) < 80
    assert len(released_at) == 1 and 3 <= released_at[0] < len(chunks) // 2


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
    with pytest.raises(OSError, match="client went away"):
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


class PrefixClassifier(FakeClassifier):
    """A FakeClassifier whose first window is the first 60 characters, final from
    ``ready_at`` characters on (None: never)."""

    def __init__(self, *, fail: bool = False, ready_at: int | None = 80) -> None:
        super().__init__()
        self.prefix_fail = fail
        self.ready_at = ready_at
        self.asked: list[int] = []

    def window_prefix(self, text: str) -> str | None:
        self.asked.append(len(text))
        if self.prefix_fail:
            raise RuntimeError("prefix exploded")
        ready = self.ready_at is not None and len(text) >= self.ready_at
        return text[:60] if ready else None


LONG_ANSWER = "Sure, here is some general background on this topic. " * 6 + REFUSAL


@pytest.mark.anyio
async def test_by_default_a_stream_is_judged_on_the_classifiers_first_window() -> None:
    """With a classifier that offers window_prefix, the hold-back judges exactly that prefix;
    the finished text is classified after the last byte."""
    classifier = PrefixClassifier()
    app, recorder, _ = guard(
        fixed(200, SSE, chat_sse(LONG_ANSWER, pieces=30), paced=True), classifier=classifier
    )
    got = await drive(app, STREAM)
    assert stream_text(got.body) == LONG_ANSWER
    assert classifier.batches == [[LONG_ANSWER[:60]], [LONG_ANSWER]]
    assert got.headers["x-guardrail-verdict"] == "compliance"
    outcome = recorder.outcomes[0]
    assert outcome.classification is not None and outcome.classification.verdict == "full_refusal"


@pytest.mark.anyio
async def test_the_sentence_rule_can_be_chosen() -> None:
    """stream_window_rule='sentence' holds until the first sentence end, prefix or not."""
    classifier = PrefixClassifier()
    app, _, _ = guard(
        fixed(200, SSE, chat_sse(LONG_ANSWER, pieces=30), paced=True),
        classifier=classifier,
        stream_window_rule="sentence",
        stream_window_min_chars=20,
    )
    got = await drive(app, STREAM)
    assert stream_text(got.body) == LONG_ANSWER
    assert classifier.asked == []
    window = classifier.batches[0][0]
    assert LONG_ANSWER.startswith(window) and "." in window[20:] and len(window) < 80


@pytest.mark.anyio
async def test_a_failing_window_prefix_falls_back_to_the_sentence_rule() -> None:
    """window_prefix raising is logged once; the stream is judged by sentence and delivered."""
    classifier = PrefixClassifier(fail=True)
    app, recorder, _ = guard(
        fixed(200, SSE, chat_sse(LONG_ANSWER, pieces=30)),
        classifier=classifier,
        stream_window_min_chars=20,
    )
    got = await drive(app, STREAM)
    assert stream_text(got.body) == LONG_ANSWER
    assert len(classifier.asked) == 1
    assert classifier.batches[-1] == [LONG_ANSWER]
    assert recorder.outcomes[0].skipped is None


@pytest.mark.anyio
async def test_the_model_rule_still_closes_at_the_maximum() -> None:
    """A text that never yields a prefix is judged when it reaches stream_window_max_chars."""
    classifier = PrefixClassifier(ready_at=None)
    app, _, _ = guard(
        fixed(200, SSE, chat_sse(LONG_ANSWER, pieces=30), paced=True),
        classifier=classifier,
        stream_window_max_chars=100,
    )
    got = await drive(app, STREAM)
    assert stream_text(got.body) == LONG_ANSWER
    window = classifier.batches[0][0]
    assert 100 <= len(window) < 130 and LONG_ANSWER.startswith(window)


@pytest.mark.anyio
async def test_the_bundled_model_judges_a_stream_on_its_head_and_reads_it_once() -> None:
    """With the real classifier the hold-back reads the head window, the finished stream's
    verdict equals classifying its text whole, and the head window ran only once."""
    from guardrail._resources import bundled_model_dir
    from guardrail.model import RefusalClassifier

    if not (bundled_model_dir() / "refusal-classifier.int8.onnx").is_file():
        pytest.skip("the trained model is not in onnx_models/ yet")
    classifier = RefusalClassifier.load()
    reference = RefusalClassifier.load(memo_entries=0)
    text = "Here is how to repot a fern: water it first and loosen the roots. " * 30
    upstream = fixed(200, SSE, chat_sse(text, pieces=60), paced=True)
    app, recorder, _ = guard(upstream, classifier=classifier)
    got = await drive(app, STREAM)
    assert stream_text(got.body) == text
    assert got.headers["x-guardrail-verdict"] == "compliance"
    assert classifier._memo.hits == 1
    assert recorder.outcomes[0].classification == reference.classify(text)


@pytest.mark.anyio
async def test_a_finished_stream_whose_full_read_times_out_keeps_its_window_verdict() -> None:
    """When the after-the-last-byte classification misses its deadline, the window's verdict
    stays in the outcome and the skip is counted as a timeout."""

    class SlowSecondCall(FakeClassifier):
        def classify_batch(self, texts: Any) -> Any:
            if self.batches:
                time.sleep(0.3)
            return super().classify_batch(texts)

    text = "Sure, here is some general background on this topic. " + REFUSAL
    classifier = SlowSecondCall()
    app, recorder, _ = guard(
        fixed(200, SSE, chat_sse(text, pieces=10), paced=True),
        classifier=classifier,
        stream_window_min_chars=20,
        classify_timeout=0.1,
    )
    got = await drive(app, STREAM)
    assert stream_text(got.body) == text
    outcome = recorder.outcomes[0]
    assert outcome.classification is not None and outcome.classification.verdict == "compliance"
    assert outcome.skipped == "timeout"
