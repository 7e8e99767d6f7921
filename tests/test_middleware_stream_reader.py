"""Unheld streams handed whole to a classifier that reads streams itself (``StreamReader``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from test_middleware_adapters import anthropic_sse, responses_sse
from test_middleware_doubles import ANSWER, REFUSAL, SSE, FakeClassifier, chat_sse, drive
from test_middleware_json import fixed, guard
from test_middleware_stream_hold import MONITOR, STREAM

from guardrail.classification import Classification, StreamReader, StreamReading
from guardrail.middleware._stream_text import builtin_name, stream_texts
from guardrail.middleware.adapters import ADAPTERS, OpenAIChatAdapter


class ReadingClassifier(FakeClassifier):
    """FakeClassifier that also reads whole streams, keeping what it was handed."""

    def __init__(self, *, fail: bool = False) -> None:
        super().__init__()
        self.reads: list[tuple[str, bytes]] = []
        self.read_fails = fail

    def classify_stream(self, adapter: str, raw: bytes) -> StreamReading:
        self.reads.append((adapter, raw))
        if self.read_fails:
            raise RuntimeError("reader exploded")
        skipped, texts = stream_texts(adapter, raw)
        found: Sequence[Classification] = [self._one(t) for t in texts] if not skipped else ()
        return StreamReading(skipped, texts if not skipped else (), tuple(found))


def _reader_guard(chunks: list[bytes], **options: Any) -> tuple[Any, Any, ReadingClassifier]:
    classifier = ReadingClassifier(fail=options.pop("fail", False))
    app, recorder, _ = guard(
        fixed(200, SSE, chunks),
        policy=options.pop("policy", MONITOR),
        classifier=classifier,
        **options,
    )
    return app, recorder, classifier


@pytest.mark.anyio
async def test_an_unheld_stream_is_read_by_the_classifier_not_the_event_loop() -> None:
    """The raw bytes go to classify_stream once, after the last one; the client gets them
    unchanged; the outcome carries the reader's verdict; nothing was classified as text."""
    chunks = chat_sse(REFUSAL, pieces=5)
    app, recorder, classifier = _reader_guard(chunks)
    assert isinstance(classifier, StreamReader)
    got = await drive(app, STREAM)
    assert got.body == b"".join(chunks) and got.headers["x-guardrail-action"] == "pass"
    assert classifier.reads == [("openai_chat", b"".join(chunks))]
    assert classifier.batches == []
    outcome = recorder.outcomes[0]
    assert outcome.classification is not None and outcome.classification.is_refusal
    assert outcome.skipped is None and outcome.action == "pass"


@pytest.mark.anyio
@pytest.mark.parametrize("api", ["anthropic", "responses"])
async def test_streams_of_the_other_apis_are_read_by_their_adapter(api: str) -> None:
    """Anthropic and Responses streams are read with their own adapter's rules."""
    if api == "anthropic":
        chunks, path = anthropic_sse(ANSWER), "/v1/messages"
        request: dict[str, Any] = {"model": "c", "max_tokens": 9, "messages": []}
    else:
        chunks, path = responses_sse(ANSWER), "/v1/responses"
        request = {"model": "gpt-test", "input": "hi"}
    app, recorder, classifier = _reader_guard(chunks)
    got = await drive(app, {**request, "stream": True}, path=path)
    assert got.body == b"".join(chunks)
    assert [name for name, _ in classifier.reads] == [api]
    assert recorder.outcomes[0].classification is not None
    assert recorder.outcomes[0].classification.verdict == "compliance"


@pytest.mark.anyio
async def test_unreadable_too_large_and_failing_reads_are_counted_as_skipped() -> None:
    """Events that are not JSON: 'unsupported' from the reader; past max_response_bytes:
    'too_large' without a read; a reader that raises: 'error'. The bytes pass every time."""
    bad = [b"data: {not json}\n\n", b"data: more\n\n"]
    app, recorder, classifier = _reader_guard(bad)
    assert (await drive(app, STREAM)).body == b"".join(bad)
    assert recorder.outcomes[0].skipped == "unsupported" and len(classifier.reads) == 1

    long = chat_sse(ANSWER + " And more. " * 400, pieces=40)
    app, recorder, classifier = _reader_guard(long, max_response_bytes=2048)
    assert (await drive(app, STREAM)).body == b"".join(long)
    assert recorder.outcomes[0].skipped == "too_large" and classifier.reads == []

    chunks = chat_sse(REFUSAL)
    app, recorder, classifier = _reader_guard(chunks, fail=True)
    assert (await drive(app, STREAM)).body == b"".join(chunks)
    assert recorder.outcomes[0].skipped == "error"
    assert recorder.outcomes[0].classification is None


@pytest.mark.anyio
async def test_a_tool_call_stream_read_whole_has_no_verdict_and_no_skip() -> None:
    """A stream with no text is not classified, and not counted as a failure either."""
    delta = {"role": "assistant", "tool_calls": [{"index": 0, "id": "c", "type": "function"}]}
    event = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
    chunks = [b"data: " + json.dumps(event).encode() + b"\n\n", b"data: [DONE]\n\n"]
    app, recorder, classifier = _reader_guard(chunks)
    assert (await drive(app, STREAM)).body == b"".join(chunks)
    assert len(classifier.reads) == 1
    assert recorder.outcomes[0].classification is None and recorder.outcomes[0].skipped is None


@pytest.mark.anyio
async def test_held_streams_and_custom_adapters_are_read_on_the_event_loop() -> None:
    """A held stream is judged on its window as text; a route with an adapter of one's own
    is read in this process, since another process could not find that adapter."""
    chunks = chat_sse(ANSWER)
    app, _, classifier = _reader_guard(chunks, stream_hold="always")
    got = await drive(app, STREAM)
    assert got.headers["x-guardrail-verdict"] == "compliance" and classifier.reads == []

    class Custom(OpenAIChatAdapter):
        pass

    assert builtin_name(Custom()) is None and builtin_name(ADAPTERS["anthropic"]) == "anthropic"
    app, _, classifier = _reader_guard(chunks, routes={"/v1/chat/completions": Custom()})
    assert (await drive(app, STREAM)).body == b"".join(chunks)
    assert classifier.reads == [] and classifier.batches == [[ANSWER]]
