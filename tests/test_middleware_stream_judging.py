"""A held stream's window is judged in a task of its own while the app goes on sending."""

from __future__ import annotations

import asyncio
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
    chat_sse,
    drive,
)
from test_middleware_json import CHAT, fixed, guard
from test_middleware_stream import stream_text

from guardrail.middleware._attempt import Attempt
from guardrail.middleware._exchange import Exchange
from guardrail.policy_api import Decision

STREAM = {**CHAT, "stream": True}
#: Compliant for far longer than any window here, refusing at the very end.
LATE_REFUSAL = "Sure, here is some general background on this topic. " * 3 + REFUSAL


def timed_upstream(chunks: list[bytes], sent_at: list[float], pause: float = 0.0) -> Any:
    """An SSE app that notes when each of its sends returned (pausing ``pause`` after each)."""

    async def upstream(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": SSE})
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
            sent_at.append(time.perf_counter())
            if pause:
                await anyio.sleep(pause)

    return upstream


@pytest.mark.anyio
async def test_a_stream_sent_in_one_burst_is_judged_whole_once() -> None:
    """An app that sent its whole answer before the window's judging began is judged on the
    whole text, once: a refusal past the window counts, and nothing is read twice."""
    upstream = fixed(200, SSE, chat_sse(LATE_REFUSAL, pieces=10))
    policy = ScriptedPolicy(on_refusal=Decision(action="block", rule_id="no-refusals"))
    app, recorder, classifier = guard(upstream, policy, stream_window_min_chars=20)
    got = await drive(app, STREAM)
    assert classifier.batches == [[LATE_REFUSAL]]
    assert got.headers["x-guardrail-action"] == "block"
    assert got.headers["x-guardrail-verdict"] == "full_refusal"
    assert "general background" not in got.body.decode()
    outcome = recorder.outcomes[0]
    assert (outcome.action, outcome.rule_id) == ("block", "no-refusals")
    assert upstream.completed == 1  # the app ran to its end


@pytest.mark.anyio
async def test_a_paced_stream_is_judged_on_its_window_and_read_whole_after() -> None:
    """An app that waits between chunks is judged on the window (its start goes out early);
    the finished text is classified after the last byte, as before."""
    upstream = fixed(200, SSE, chat_sse(LATE_REFUSAL, pieces=10), paced=True)
    app, recorder, classifier = guard(upstream, stream_window_min_chars=20)
    got = await drive(app, STREAM)
    assert stream_text(got.body) == LATE_REFUSAL
    assert len(classifier.batches) == 2 and classifier.batches[1] == [LATE_REFUSAL]
    assert len(classifier.batches[0][0]) < len(LATE_REFUSAL)
    assert got.headers["x-guardrail-verdict"] == "compliance"
    outcome = recorder.outcomes[0]
    assert outcome.classification is not None and outcome.classification.verdict == "full_refusal"


@pytest.mark.anyio
async def test_the_app_keeps_sending_while_its_window_is_judged() -> None:
    """A slow classification does not hold up the app's sends; what it sent meanwhile
    reaches the client after the start, every byte in order."""
    chunks = chat_sse(ANSWER + " Take it with food." * 8, pieces=16)
    sent_at: list[float] = []
    started_at: list[float] = []

    async def on_message(message: Any) -> None:
        if message["type"] == "http.response.start":
            started_at.append(time.perf_counter())

    app, recorder, _ = guard(
        timed_upstream(chunks, sent_at, pause=0.005),
        classifier=FakeClassifier(delay=0.2),
        stream_window_min_chars=5,
    )
    got = await drive(app, STREAM, on_message=on_message)
    assert got.body == b"".join(chunks)
    assert len(sent_at) == len(chunks) and len(started_at) == 1
    # The window closed at chunk 1 and took 0.2 s to judge; the app sent on meanwhile.
    assert sum(t < started_at[0] for t in sent_at) > 3
    assert recorder.outcomes[0].skipped is None


@pytest.mark.anyio
async def test_what_is_kept_while_judging_is_bounded_by_max_response_bytes() -> None:
    """Past max_response_bytes the app's send waits until the window is decided."""
    text = "Sure, here is the answer you asked for. " + "More detail follows here. " * 400
    chunks = chat_sse(text, pieces=40)
    sent_at: list[float] = []
    started_at: list[float] = []

    async def on_message(message: Any) -> None:
        if message["type"] == "http.response.start":
            started_at.append(time.perf_counter())

    app, _, _ = guard(
        timed_upstream(chunks, sent_at),
        classifier=FakeClassifier(delay=0.2),
        stream_window_min_chars=5,
        max_response_bytes=4096,
    )
    got = await drive(app, STREAM, on_message=on_message)
    assert got.body == b"".join(chunks)
    early = [t for t in sent_at if t < started_at[0]]
    assert 1 <= len(early) < len(chunks)
    assert sum(len(c) for c in chunks[: len(early) + 1]) <= 4096 + max(len(c) for c in chunks)


@pytest.mark.anyio
async def test_a_block_decided_while_the_app_streams_drops_the_rest() -> None:
    """A refusing window blocks the stream; what the app sends after is swallowed and the
    app still runs to its end."""
    chunks = chat_sse(REFUSAL + " Some more words follow here." * 6, pieces=12)
    sent_at: list[float] = []
    policy = ScriptedPolicy(on_refusal=Decision(action="block"))
    app, recorder, _ = guard(
        timed_upstream(chunks, sent_at, pause=0.002),
        policy,
        classifier=FakeClassifier(delay=0.05),
        stream_window_min_chars=10,
    )
    got = await drive(app, STREAM)
    assert len(sent_at) == len(chunks)
    assert got.headers["x-guardrail-action"] == "block"
    assert "more words" not in got.body.decode()
    assert sum(m["type"] == "http.response.start" for m in got.messages) == 1
    assert recorder.outcomes[0].action == "block"


@pytest.mark.anyio
async def test_messages_that_come_while_the_held_part_is_sent_keep_their_order() -> None:
    """A slow client during the release: the app's next chunks wait behind the held ones."""
    chunks = chat_sse(ANSWER + " Take it with food." * 8, pieces=16)

    async def slow_client(message: Any) -> None:
        if message["type"] == "http.response.body":
            await anyio.sleep(0.01)

    app, _, _ = guard(fixed(200, SSE, chunks, paced=True), stream_window_min_chars=5)
    got = await drive(app, STREAM, on_message=slow_client)
    assert got.body == b"".join(chunks)
    assert got.messages[-1].get("more_body", False) is False


@pytest.mark.anyio
async def test_a_failure_while_judging_lets_the_stream_pass_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should judging itself raise, what was held goes out and the rest follows: fail open."""

    async def explode(self: Attempt, window: tuple[str, ...]) -> None:
        raise RuntimeError("judging exploded")

    monkeypatch.setattr(Attempt, "judge_held", explode)
    chunks = chat_sse(ANSWER + " Take it with food." * 4, pieces=10)
    app, recorder, _ = guard(fixed(200, SSE, chunks, paced=True), stream_window_min_chars=5)
    got = await drive(app, STREAM)
    assert got.status == 200 and got.body == b"".join(chunks)
    assert recorder.outcomes[0].skipped == "error"


@pytest.mark.anyio
async def test_a_cancelled_request_cancels_its_judging(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request cancelled while its window is judged leaves no task behind."""
    started: list[asyncio.Task[None]] = []
    judge_window_soon = Exchange.judge_window_soon

    def spy(self: Exchange, attempt: Attempt, window: tuple[str, ...]) -> None:
        judge_window_soon(self, attempt, window)
        assert self._judging is not None
        started.append(self._judging)

    monkeypatch.setattr(Exchange, "judge_window_soon", spy)
    chunks = chat_sse(ANSWER + " Take it with food." * 4, pieces=10)
    app, recorder, _ = guard(
        fixed(200, SSE, chunks, paced=True),
        classifier=FakeClassifier(delay=0.3),
        stream_window_min_chars=5,
    )
    with anyio.move_on_after(0.1):
        await drive(app, STREAM)
    await asyncio.sleep(0)  # let the cancellation land
    assert len(started) == 1 and started[0].cancelled()
    assert len(recorder.outcomes) == 1
