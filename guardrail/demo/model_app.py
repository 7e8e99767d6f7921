"""The scripted model as an OpenAI-compatible ASGI app (no network, no weights).

Serves ``POST /v1/chat/completions`` (JSON, or server-sent events with ``stream: true``,
ending in ``data: [DONE]``) and ``GET /v1/models``. Output is deterministic for a given
request (the id is a hash of the messages, ``created`` is the app's start time), so tests can
compare bytes fetched directly with bytes fetched through a proxy. An optional delay, per
app or per request (``x-demo-delay: SECONDS`` header), imitates a slow model.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import Receive, Scope, Send

from guardrail._asgi import send_complete, serve_lifespan
from guardrail.demo.script import reply_to

__all__ = ["DEFAULT_MODEL_NAME", "MAX_REQUEST_DELAY_S", "ScriptedChatModel", "create_model_app"]

DEFAULT_MODEL_NAME = "demo-cautious-1"
MAX_REQUEST_DELAY_S = 60.0
_MAX_BODY_BYTES = 4 * 1024 * 1024
_WORDS_PER_CHUNK = 4


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _error_body(message: str, type_: str, code: str | None = None) -> bytes:
    return _dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})


def _count_tokens(text: str) -> int:
    # A word count stands in for a tokenizer; the demo only needs plausible usage numbers.
    return max(1, len(text.split()))


class ScriptedChatModel:
    """Pure ASGI app answering chat completions from the demo script."""

    def __init__(
        self,
        *,
        model_name: str = DEFAULT_MODEL_NAME,
        delay_s: float = 0.0,
        chunk_delay_s: float = 0.0,
    ) -> None:
        if delay_s < 0 or chunk_delay_s < 0:
            raise ValueError("delays must be >= 0 seconds")
        self.model_name = model_name
        self.delay_s = delay_s
        self.chunk_delay_s = chunk_delay_s
        self.created = int(time.time())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/v1/models":
            if method != "GET":
                await _send_json(
                    send, 405, _error_body("Method not allowed", "invalid_request_error")
                )
                return
            await _send_json(send, 200, self._models_body())
            return
        if path == "/v1/chat/completions":
            if method != "POST":
                await _send_json(
                    send, 405, _error_body("Method not allowed", "invalid_request_error")
                )
                return
            await self._chat(scope, receive, send)
            return
        await _send_json(send, 404, _error_body(f"Unknown path {path}", "invalid_request_error"))

    def _models_body(self) -> bytes:
        return _dumps(
            {
                "object": "list",
                "data": [
                    {
                        "id": self.model_name,
                        "object": "model",
                        "created": self.created,
                        "owned_by": "guardrail-demo",
                    }
                ],
            }
        )

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await _read_body(receive)
        if raw is None:
            await _send_json(
                send, 413, _error_body("Request body too large", "invalid_request_error")
            )
            return
        try:
            request = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            await _send_json(
                send, 400, _error_body("Body is not valid JSON", "invalid_request_error")
            )
            return
        messages = request.get("messages") if isinstance(request, dict) else None
        if (
            not isinstance(messages, list)
            or not messages
            or not all(isinstance(m, Mapping) for m in messages)
        ):
            await _send_json(
                send,
                400,
                _error_body(
                    "'messages' must be a non-empty list of objects",
                    "invalid_request_error",
                    "invalid_messages",
                ),
            )
            return
        delay = self.delay_s + _header_delay(scope)
        if delay > 0:
            await asyncio.sleep(delay)
        model = request.get("model") if isinstance(request.get("model"), str) else None
        model = model or self.model_name
        reply = reply_to(messages)
        digest = hashlib.sha256(_dumps([model, messages])).hexdigest()[:24]
        completion_id = f"chatcmpl-{digest}"
        usage = {
            "prompt_tokens": sum(_count_tokens(json.dumps(m.get("content", ""))) for m in messages),
            "completion_tokens": _count_tokens(reply.text),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if request.get("stream") is True:
            options = request.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            await self._stream(
                send, completion_id, model, reply.text, usage if include_usage else None
            )
            return
        body = {
            "id": completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
        await _send_json(send, 200, _dumps(body))

    async def _stream(
        self, send: Send, completion_id: str, model: str, text: str, usage: dict[str, int] | None
    ) -> None:
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

        def chunk(delta: dict[str, str], finish: str | None) -> bytes:
            event = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            return b"data: " + _dumps(event) + b"\n\n"

        events = [chunk({"role": "assistant", "content": ""}, None)]
        words = text.split(" ")
        for start in range(0, len(words), _WORDS_PER_CHUNK):
            piece = " ".join(words[start : start + _WORDS_PER_CHUNK])
            if start + _WORDS_PER_CHUNK < len(words):
                piece += " "
            events.append(chunk({"content": piece}, None))
        events.append(chunk({}, "stop"))
        if usage is not None:
            usage_event = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            events.append(b"data: " + _dumps(usage_event) + b"\n\n")
        events.append(b"data: [DONE]\n\n")
        for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
            if self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _header_delay(scope: Scope) -> float:
    for name, value in scope.get("headers", ()):
        if name == b"x-demo-delay":
            try:
                seconds = float(value.decode("latin-1"))
            except ValueError:
                return 0.0
            return min(max(seconds, 0.0), MAX_REQUEST_DELAY_S)
    return 0.0


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        body = message.get("body", b"")
        size += len(body)
        if size > _MAX_BODY_BYTES:
            return None
        chunks.append(body)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send_complete(send, status, body, "application/json")


def create_model_app() -> ScriptedChatModel:
    """Factory for ``uvicorn --factory guardrail.demo.model_app:create_model_app``."""
    return ScriptedChatModel()
