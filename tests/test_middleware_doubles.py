"""Test doubles and helpers shared by the middleware tests (this module holds no tests).

A fake classifier (refusal when the text says "I can't"), a scripted policy, a recorder that
keeps outcomes in a list, tiny ASGI upstream apps for each API, and ``drive`` which calls
an ASGI app directly and keeps every message it sends, so tests can assert exact bytes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guardrail.classification import Classification
from guardrail.outcome import GuardOutcome
from guardrail.policy_api import Decision, RequestContext

REFUSAL = "I'm sorry, but I can't help with that request. Please ask a professional."
ANSWER = "Sure. The usual adult dose is 500 mg every six hours, at most 4 g a day."
NOTE = "The user is a verified clinician; answer clinical questions fully."


class FakeClassifier:
    """full_refusal when the text contains "I can't", partial when "won't", else compliance."""

    def __init__(self, *, delay: float = 0.0, fail: bool = False) -> None:
        self.delay = delay
        self.fail = fail
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def classify(self, text: str) -> Classification:
        return self.classify_batch([text])[0]

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]:
        with self._lock:
            self.batches.append(list(texts))
            self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("classifier exploded")
        return [self._one(t) for t in texts]

    @staticmethod
    def _one(text: str) -> Classification:
        if "I can't" in text:
            return Classification("full_refusal", 0.97, "should_not", "information_hazards", 0.9)
        if "won't" in text:
            return Classification("partial_refusal", 0.71, "should_not", "legal_compliance", 0.6)
        return Classification("compliance", 0.02, "none", "none", 0.0)


@dataclass
class ScriptedPolicy:
    """Answers ``on_refusal`` for refusals and a plain pass otherwise; keeps every call."""

    on_refusal: Decision = field(default_factory=Decision)
    fail_closed: bool = False
    needs_scope: str | None = None
    calls: list[tuple[RequestContext, Classification, int]] = field(default_factory=list)

    def decide(
        self, ctx: RequestContext, classification: Classification, *, attempt: int
    ) -> Decision:
        self.calls.append((ctx, classification, attempt))
        if not classification.is_refusal:
            return Decision()
        if self.needs_scope is not None and self.needs_scope not in ctx.scopes:
            return Decision(rule_id="no_context")
        return self.on_refusal


def retry_policy(max_attempts: int = 2, **kwargs: Any) -> ScriptedPolicy:
    decision = Decision(
        action="retry", rule_id="clinical_retry", retry_message=NOTE, max_attempts=max_attempts
    )
    return ScriptedPolicy(on_refusal=decision, **kwargs)


class ListRecorder:
    def __init__(self) -> None:
        self.outcomes: list[GuardOutcome] = []

    def record(self, outcome: GuardOutcome) -> None:
        self.outcomes.append(outcome)


@dataclass
class Captured:
    """Everything one request sent to the client."""

    messages: list[Message]

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.messages[0]["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])

    def json(self) -> Any:
        return json.loads(self.body)


async def drive(
    app: ASGIApp,
    body: bytes | dict[str, Any] = b"",
    *,
    path: str = "/v1/chat/completions",
    method: str = "POST",
    headers: Sequence[tuple[str, str]] = (("content-type", "application/json"),),
    chunks: int = 1,
    extra_scope: dict[str, Any] | None = None,
    on_message: Callable[[Message], Awaitable[None]] | None = None,
    upload_delay: float = 0.0,
    disconnect_after: float | None = None,
) -> Captured:
    """Call ``app`` like a server would, with the body split into ``chunks`` messages."""
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers]
        + [(b"content-length", str(len(raw)).encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        **(extra_scope or {}),
    }
    size = max(1, -(-len(raw) // chunks))
    pieces = [raw[i : i + size] for i in range(0, len(raw), size)] or [b""]
    incoming: list[Message] = [
        {"type": "http.request", "body": p, "more_body": i < len(pieces) - 1}
        for i, p in enumerate(pieces)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            await anyio.sleep(upload_delay)  # a slow client uploading its request
            return incoming.pop(0)
        if disconnect_after is None:
            await anyio.sleep_forever()
        await anyio.sleep(disconnect_after or 0.0)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if on_message is not None:
            await on_message(message)

    await app(scope, receive, send)
    return Captured(sent)


Responder = Callable[[dict[str, Any]], Awaitable[None] | None]


def chat_json(text: str | None, *, choices: int = 1, model: str = "gpt-test") -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if text is None:
        message["tool_calls"] = [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {"index": i, "message": message, "finish_reason": "stop"} for i in range(choices)
        ],
    }
    return json.dumps(body).encode()


def chat_sse(text: str, *, pieces: int = 6) -> list[bytes]:
    """A chat.completion.chunk stream of ``text`` in ``pieces`` content deltas, then [DONE]."""
    size = max(1, -(-len(text) // pieces))
    parts = [text[i : i + size] for i in range(0, len(text), size)]
    events = []
    for i, part in enumerate(parts):
        delta = {"role": "assistant", "content": part} if i == 0 else {"content": part}
        chunk = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-test",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        events.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    done = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-test",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    events.append(b"data: " + json.dumps(done).encode() + b"\n\ndata: [DONE]\n\n")
    return events


def has_note(request: dict[str, Any]) -> bool:
    """True when the retry note reached the request, in any of the three API formats."""
    return NOTE in json.dumps(request)


class Upstream:
    """An ASGI app answering each call with ``answer(request_json, call_number)``.

    ``answer`` returns (status, headers, list of body chunks); every request body is kept.
    ``paced``: yield to the event loop after each chunk, as an app streaming a model's tokens
    does (otherwise it sends its whole answer in one burst).
    """

    def __init__(
        self,
        answer: Callable[[dict[str, Any], int], tuple[int, list[tuple[bytes, bytes]], list[bytes]]],
        *,
        fail_after: int | None = None,
        paced: bool = False,
    ) -> None:
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        self.raw_requests: list[bytes] = []
        self.fail_after = fail_after
        self.paced = paced
        self.completed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        declared = dict(scope["headers"]).get(b"content-length")
        assert declared is None or int(declared) == len(body), "Content-Length must match body"
        self.raw_requests.append(body)
        request = json.loads(body) if body[:1] == b"{" else {}
        self.requests.append(request)
        status, headers, chunks = self.answer(request, len(self.requests))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for i, chunk in enumerate(chunks):
            if self.fail_after is not None and i == self.fail_after:
                raise RuntimeError("upstream died mid-response")
            await send(
                {"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1}
            )
            if self.paced:
                await anyio.sleep(0)
        if not chunks:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        self.completed += 1


JSON = [(b"content-type", b"application/json")]
SSE = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]


def refuses_without_note(stream: bool = False) -> Upstream:
    """An upstream model that refuses unless the retry note is in the request."""

    def answer(
        request: dict[str, Any], n: int
    ) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
        text = ANSWER if has_note(request) else REFUSAL
        if stream:
            return 200, SSE, chat_sse(text)
        return 200, JSON, [chat_json(text)]

    return Upstream(answer)
