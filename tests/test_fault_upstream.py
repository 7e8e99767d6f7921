"""Upstream and client faults: an app that dies or hangs mid-stream, a client that leaves.

Each case runs the unguarded app and the guarded one side by side: the guarded client must
see what the unguarded client would have seen (same bytes, same exception), nothing may hang
past its deadline, and every guarded request still produces exactly one outcome.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from benchmarks._harness import REFUSAL_TEXT, Captured, KeywordClassifier, ListRecorder, call_asgi
from benchmarks._upstream import ChatUpstream, chat_request
from guardrail import GuardrailMiddleware
from guardrail.policy import parse_policy

pytestmark = pytest.mark.anyio

MONITOR = "version: 1\nname: monitor\nrules: []\n"
RETRY_ALL = """\
version: 1
name: retry-all
retry_budget: {per_minute: 600, burst: 100}
rules:
  - id: retry-every-refusal
    action: retry
    retry:
      note: "Please answer the question."
      max_attempts: 3
"""
FIRST_SENTENCE = "The capital of France is Paris, on the Seine river. "


def _event(content: str) -> bytes:
    payload = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


class _FaultyStream:
    """Streams ``parts`` then raises or hangs, as a crashed or stalled model server would."""

    def __init__(self, parts: list[str], fault: str, *, raise_before_start: bool = False) -> None:
        self.parts = parts
        self.fault = fault
        self.raise_before_start = raise_before_start
        self.calls = 0
        self.cancelled = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        while (await receive()).get("more_body"):
            pass
        if self.raise_before_start:
            raise RuntimeError("upstream failed before answering")
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for part in self.parts:
            await send({"type": "http.response.body", "body": _event(part), "more_body": True})
        if self.fault == "raise":
            raise RuntimeError("upstream died mid-stream")
        try:
            await asyncio.Event().wait()  # hang forever
        except asyncio.CancelledError:
            self.cancelled = True
            raise


def _guard(app: Any, policy: str = MONITOR, **options: Any) -> tuple[Any, ListRecorder]:
    recorder = ListRecorder()
    guarded = GuardrailMiddleware(
        app,
        policy=parse_policy(policy),
        classifier=KeywordClassifier(),
        recorder=recorder,
        **options,
    )
    return guarded, recorder


@pytest.mark.parametrize(
    "parts",
    [["Hel"], [FIRST_SENTENCE, "And more text follows here."]],
    ids=["inside-hold-back-window", "after-release"],
)
async def test_upstream_raising_mid_stream_matches_unguarded(parts: list[str]) -> None:
    """The client gets the bytes sent before the crash, then the same exception, as unguarded."""
    upstream = _FaultyStream(parts, "raise")
    guarded, recorder = _guard(upstream)
    body = chat_request("q", stream=True)
    plain = await call_asgi(upstream, body)
    got = await call_asgi(guarded, body)
    assert isinstance(plain.error, RuntimeError)
    assert isinstance(got.error, RuntimeError)
    assert got.status == plain.status == 200
    assert got.body == plain.body
    assert len(recorder.outcomes) == 1


async def test_upstream_raising_before_start_propagates() -> None:
    """An app that raises before answering raises through the guard; no response is invented."""
    upstream = _FaultyStream([], "raise", raise_before_start=True)
    guarded, recorder = _guard(upstream)
    got = await call_asgi(guarded, chat_request("q"))
    assert isinstance(got.error, RuntimeError)
    assert got.status == 0 and got.body == b""
    assert len(recorder.outcomes) == 1


async def test_released_stream_flows_while_upstream_hangs() -> None:
    """Once the window is released, chunks reach the client even if upstream then stalls."""
    upstream = _FaultyStream([FIRST_SENTENCE, "More words here. "], "hang")
    guarded, recorder = _guard(upstream)
    got = Captured()
    task = asyncio.create_task(call_asgi(guarded, chat_request("q", stream=True), got=got))
    deadline = time.monotonic() + 3.0
    while b"Seine river" not in got.body and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert b"Seine river" in got.body
    assert b"More words here" in got.body
    assert got.status == 200
    task.cancel()
    t0 = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - t0 < 1.0
    assert upstream.cancelled
    assert len(recorder.outcomes) == 1


async def test_client_timeout_while_upstream_hangs_cancels_promptly() -> None:
    """A client giving up on a silent upstream cancels the guarded request at once."""
    upstream = _FaultyStream([], "hang")
    guarded, recorder = _guard(upstream)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(call_asgi(guarded, chat_request("q", stream=True)), timeout=0.3)
    assert time.monotonic() - t0 < 1.3
    assert upstream.cancelled
    assert len(recorder.outcomes) == 1


async def test_client_disconnect_mid_stream_stops_cleanly() -> None:
    """A client leaving mid-stream ends the request quickly, like unguarded, with one outcome."""
    long_answer = "This is a long and helpful answer. " * 200
    upstream = ChatUpstream([long_answer], delay_s=0.0, chunk_chars=16, chunk_delay_s=0.001)
    guarded, recorder = _guard(upstream)
    body = chat_request("q", stream=True)
    plain = await call_asgi(upstream, body, disconnect_after_chunks=3)
    t0 = time.monotonic()
    got = await asyncio.wait_for(call_asgi(guarded, body, disconnect_after_chunks=3), timeout=5)
    assert time.monotonic() - t0 < 3.0
    assert isinstance(plain.error, OSError)
    assert got.error is None or isinstance(got.error, OSError)
    assert len(got.chunks) == 3
    assert upstream.calls == 2
    assert len(recorder.outcomes) == 1


async def test_client_disconnect_mid_retry_ends_without_error() -> None:
    """A client leaving while a retry is under way gets no stray exception and one outcome."""
    upstream = ChatUpstream([REFUSAL_TEXT], delay_s=0.15)
    guarded, recorder = _guard(upstream, RETRY_ALL)
    got = await asyncio.wait_for(
        call_asgi(guarded, chat_request("q"), disconnect_after_s=0.2), timeout=5
    )
    assert got.error is None or isinstance(got.error, OSError)
    assert got.body == b""  # the client had gone before any answer was ready
    assert 2 <= upstream.calls <= 3
    assert len(recorder.outcomes) == 1
