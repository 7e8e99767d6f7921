"""Anthropic Messages: ``/v1/messages`` JSON content blocks and ``content_block_delta`` SSE."""

from __future__ import annotations

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
    load_json_object,
    string_metadata,
)

__all__ = ["AnthropicAdapter"]

# Anthropic's error ``type`` for each status the middleware may answer with.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def _blocks_text(content: Any) -> str | None:
    """Concatenated ``text`` blocks of a Messages response; None when malformed."""
    if not isinstance(content, list):
        return None
    pieces: list[str] = []
    for block in content:
        if not isinstance(block, dict):
            return None
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            pieces.append(block["text"])
    return "".join(pieces)


class AnthropicAdapter:
    """Messages API: one answer per response; ``system`` carries retry notes."""

    @property
    def name(self) -> str:
        return "anthropic"

    def parse_request(self, body: bytes) -> RequestInfo | None:
        data = load_json_object(body)
        if data is None or not isinstance(data.get("messages"), list):
            return None
        users = [m for m in data["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        metadata = data.get("metadata")
        user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
        model = data.get("model")
        return RequestInfo(
            data=data,
            model=model if isinstance(model, str) else None,
            stream=data.get("stream") is True,
            last_user_message=content_text(users[-1].get("content")) if users else "",
            system_prompt=content_text(data.get("system")),
            body_user=user_id if isinstance(user_id, str) else None,
            metadata=string_metadata(metadata),
        )

    def rewrite_request(self, request: RequestInfo, note: str, role: str) -> bytes | None:
        system = request.data.get("system")
        new_system: str | list[Any]
        if isinstance(system, list):
            new_system = [*system, {"type": "text", "text": note}]
        elif isinstance(system, str) and system:
            new_system = f"{system}\n\n{note}"
        else:
            new_system = note
        return dump_json({**request.data, "system": new_system})

    def accepts(self, content_type: str) -> bool:
        return is_json_content_type(content_type)

    def response_texts(self, body: bytes) -> ResponseTexts | None:
        data = load_json_object(body)
        if data is None or data.get("type") != "message":
            return None
        text = _blocks_text(data.get("content"))
        if text is None:
            return None
        model = data.get("model")
        return ResponseTexts((text,) if text else (), model if isinstance(model, str) else None)

    def stream_collector(self) -> _AnthropicStreamCollector:
        return _AnthropicStreamCollector()

    def render_replacement(self, request: RequestInfo, text: str, *, stream: bool) -> Rendered:
        message: dict[str, Any] = {
            "id": f"msg_guardrail{uuid.uuid4().hex}",
            "type": "message",
            "role": "assistant",
            "model": request.model or "guardrail",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        if not stream:
            return Rendered(200, "application/json", dump_json(message))
        events: list[dict[str, Any]] = [
            {
                "type": "message_start",
                "message": {**message, "content": [], "stop_reason": None},
            },
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            },
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 0},
            },
            {"type": "message_stop"},
        ]
        out = bytearray()
        for event in events:
            out += b"event: " + event["type"].encode() + b"\ndata: " + dump_json(event) + b"\n\n"
        return Rendered(200, "text/event-stream; charset=utf-8", bytes(out))

    def render_block(self, request: RequestInfo, message: str, status: int) -> Rendered:
        error = {"type": _ERROR_TYPES.get(status, "api_error"), "message": message}
        return Rendered(status, "application/json", dump_json({"type": "error", "error": error}))


class _AnthropicStreamCollector(StreamCollectorState):
    def __init__(self) -> None:
        super().__init__()
        self._parts: list[str] = []

    def feed(self, event: SseEvent) -> None:
        data = self._event_object(event)
        if data is None:
            return
        kind = data.get("type", event.event)
        if kind == "content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                text = delta.get("text")
                if isinstance(text, str):
                    self._parts.append(text)
        elif kind == "content_block_start":
            block = data.get("content_block")
            if isinstance(block, dict) and block.get("type") == "tool_use" and not self._parts:
                self._tool_call_first = True
        elif kind == "message_start":
            message = data.get("message")
            if isinstance(message, dict) and isinstance(message.get("model"), str):
                self._model = message["model"]

    def texts(self) -> tuple[str, ...]:
        text = "".join(self._parts)
        return (text,) if text else ()
