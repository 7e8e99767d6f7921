"""OpenAI Chat Completions: ``/v1/chat/completions`` JSON and ``chat.completion.chunk`` SSE."""

from __future__ import annotations

import time
import uuid
from typing import Any

from guardrail.middleware.adapters.base import (
    Rendered,
    RequestInfo,
    ResponseTexts,
    SseEvent,
    StreamCollectorState,
    content_text,
    dump_json,
    is_json_content_type,
    is_one_of,
    load_json_object,
    string_metadata,
)

__all__ = ["OpenAIChatAdapter", "openai_error_body"]

_SYSTEM_ROLES = ("system", "developer")


def openai_error_body(message: str, status: int) -> bytes:
    """OpenAI's error envelope; the ``openai`` client raises the status's exception from it."""
    return dump_json(
        {
            "error": {
                "message": message,
                "type": "guardrail_blocked" if status < 500 else "guardrail_unavailable",
                "param": None,
                "code": "content_blocked" if status < 500 else "guardrail_unavailable",
            }
        }
    )


class OpenAIChatAdapter:
    """Chat Completions requests, responses and streams (several choices, tool calls)."""

    @property
    def name(self) -> str:
        return "openai_chat"

    def parse_request(self, body: bytes) -> RequestInfo | None:
        data = load_json_object(body)
        if data is None or not isinstance(data.get("messages"), list):
            return None
        messages = [m for m in data["messages"] if isinstance(m, dict)]
        users = [m for m in messages if m.get("role") == "user"]
        system = [
            content_text(m.get("content"))
            for m in messages
            if is_one_of(m.get("role"), _SYSTEM_ROLES)
        ]
        user = data.get("user") if isinstance(data.get("user"), str) else None
        model = data.get("model")
        return RequestInfo(
            data=data,
            model=model if isinstance(model, str) else None,
            stream=data.get("stream") is True,
            last_user_message=content_text(users[-1].get("content")) if users else "",
            system_prompt="\n\n".join(s for s in system if s),
            body_user=user,
            metadata=string_metadata(data.get("metadata")),
        )

    def rewrite_request(self, request: RequestInfo, note: str, role: str) -> bytes | None:
        messages = list(request.data["messages"])
        # After the leading system/developer messages: the note reads as operator context,
        # not as something said in the middle of the conversation.
        at = 0
        while (
            at < len(messages)
            and isinstance(messages[at], dict)
            and is_one_of(messages[at].get("role"), _SYSTEM_ROLES)
        ):
            at += 1
        messages.insert(at, {"role": role, "content": note})
        return dump_json({**request.data, "messages": messages})

    def accepts(self, content_type: str) -> bool:
        return is_json_content_type(content_type)

    def response_texts(self, body: bytes) -> ResponseTexts | None:
        data = load_json_object(body)
        if data is None or not isinstance(data.get("choices"), list):
            return None
        texts: list[str] = []
        for choice in data["choices"]:
            message = choice.get("message") if isinstance(choice, dict) else None
            if not isinstance(message, dict):
                return None
            # ``refusal`` is where structured-output refusals land instead of ``content``.
            text = content_text(message.get("content")) or content_text(message.get("refusal"))
            if text:
                texts.append(text)
        model = data.get("model")
        return ResponseTexts(tuple(texts), model if isinstance(model, str) else None)

    def stream_collector(self) -> _ChatStreamCollector:
        return _ChatStreamCollector()

    def render_replacement(self, request: RequestInfo, text: str, *, stream: bool) -> Rendered:
        ident = f"chatcmpl-guardrail-{uuid.uuid4().hex}"
        created = int(time.time())
        model = request.model or "guardrail"
        if not stream:
            body = {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
            return Rendered(200, "application/json", dump_json(body))

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            payload = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            return b"data: " + dump_json(payload) + b"\n\n"

        body_bytes = (
            chunk({"role": "assistant", "content": text}, None)
            + chunk({}, "stop")
            + b"data: [DONE]\n\n"
        )
        return Rendered(200, "text/event-stream; charset=utf-8", body_bytes)

    def render_block(self, request: RequestInfo, message: str, status: int) -> Rendered:
        return Rendered(status, "application/json", openai_error_body(message, status))


class _ChatStreamCollector(StreamCollectorState):
    def __init__(self) -> None:
        super().__init__()
        self._parts: dict[int, list[str]] = {}

    def feed(self, event: SseEvent) -> None:
        if event.data == "[DONE]":
            return
        data = self._event_object(event)
        if data is None:
            return
        if self._model is None and isinstance(data.get("model"), str):
            self._model = data["model"]
        choices = data.get("choices")
        if not isinstance(choices, list):
            return  # usage-only chunk or an error object: no text
        for choice in choices:
            if not isinstance(choice, dict) or not isinstance(choice.get("delta"), dict):
                continue
            delta = choice["delta"]
            index = choice.get("index", 0)
            text = delta.get("content") or delta.get("refusal")
            if isinstance(text, str) and text:
                self._parts.setdefault(index if isinstance(index, int) else 0, []).append(text)
            elif delta.get("tool_calls") and not self._parts:
                self._tool_call_first = True

    def texts(self) -> tuple[str, ...]:
        return tuple("".join(self._parts[i]) for i in sorted(self._parts))
