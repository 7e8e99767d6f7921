"""A stand-in LLM service: an OpenAI chat-completions ASGI app answering with real responses.

It answers ``POST /v1/chat/completions`` after a fixed delay (the model's "thinking" time,
50 ms by default) with a realistic ``chat.completion`` JSON body, or an SSE stream of
``chat.completion.chunk`` events when the request says ``"stream": true``. Which response it
gives is deterministic, so the guarded and the unguarded app can be compared byte for byte:
the ``x-upstream-pick`` request header names an index into the response pool, otherwise the
last user message is hashed. The app counts its calls, which the retry-storm tests check.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from starlette.types import Receive, Scope, Send

__all__ = ["ChatUpstream", "chat_request", "sse_content"]

_CREATED = 1_732_250_000  # fixed, so two runs of the same request give identical bytes
_MODEL = "bench-model-1"


def chat_request(text: str, *, stream: bool = False, model: str = _MODEL) -> bytes:
    """The JSON body of a chat-completions request with one user message."""
    return json.dumps(
        {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}
    ).encode()


def sse_content(body: bytes) -> str:
    """Concatenate the ``delta.content`` of a chat-completions SSE body (for assertions)."""
    parts: list[str] = []
    for line in body.decode("utf-8").splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        for choice in json.loads(line[6:]).get("choices", []):
            parts.append(choice.get("delta", {}).get("content") or "")
    return "".join(parts)


class ChatUpstream:
    """Pure ASGI chat-completions app over a fixed pool of responses."""

    def __init__(
        self,
        responses: Sequence[str],
        *,
        delay_s: float = 0.05,
        chunk_chars: int = 24,
        chunk_delay_s: float = 0.0,
    ) -> None:
        if not responses:
            raise ValueError("ChatUpstream needs at least one response text")
        self.responses = list(responses)
        self.delay_s = delay_s
        self.chunk_chars = chunk_chars
        self.chunk_delay_s = chunk_delay_s
        self.calls = 0

    def pick(self, headers: dict[bytes, bytes], request: dict[str, Any]) -> int:
        raw = headers.get(b"x-upstream-pick")
        if raw is not None:
            return int(raw) % len(self.responses)
        messages = request.get("messages") or [{}]
        last = str(messages[-1].get("content", "")).encode()
        return int.from_bytes(hashlib.sha256(last).digest()[:4], "big") % len(self.responses)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # Nothing to set up: acknowledge startup and shutdown in turn.
            while True:
                kind = (await receive())["type"]
                if kind == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif kind == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        self.calls += 1
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] != "/v1/chat/completions" or scope["method"] != "POST":
            await _plain(send, 404, b'{"error":{"message":"not found"}}')
            return
        try:
            request = json.loads(body)
        except ValueError:
            await _plain(send, 400, b'{"error":{"message":"invalid JSON"}}')
            return
        headers = dict(scope.get("headers") or [])
        index = self.pick(headers, request)
        text = self.responses[index]
        await asyncio.sleep(self.delay_s)
        ident = f"chatcmpl-{index:05d}"
        model = str(request.get("model") or _MODEL)
        if request.get("stream"):
            await self._stream(send, ident, model, text)
        else:
            await _plain(send, 200, _completion(ident, model, text))

    async def _stream(self, send: Send, ident: str, model: str, text: str) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        step = self.chunk_chars
        deltas += [{"content": text[i : i + step]} for i in range(0, len(text), step)]
        for delta in deltas:
            await send(
                {
                    "type": "http.response.body",
                    "body": _chunk(ident, model, delta, None),
                    "more_body": True,
                }
            )
            if self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
        await send(
            {
                "type": "http.response.body",
                "body": _chunk(ident, model, {}, "stop"),
                "more_body": True,
            }
        )
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


def _completion(ident: str, model: str, text: str) -> bytes:
    words = len(text.split())
    return json.dumps(
        {
            "id": ident,
            "object": "chat.completion",
            "created": _CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": words, "total_tokens": 12 + words},
            "system_fingerprint": "fp_bench",
        }
    ).encode()


def _chunk(ident: str, model: str, delta: dict[str, Any], finish: str | None) -> bytes:
    event = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": _CREATED,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(event).encode() + b"\n\n"


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
