"""OpenAI Responses API: ``/v1/responses`` JSON (``output[].content[]``) and its SSE events."""

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
from guardrail.middleware.adapters.openai_chat import openai_error_body

__all__ = ["ResponsesAdapter"]

_TEXT_DELTAS = ("response.output_text.delta", "response.refusal.delta")
_TEXT_PARTS = ("output_text", "refusal")


def _output_text(output: list[Any]) -> str | None:
    """All assistant text of a Response's ``output`` list; None when it is malformed."""
    pieces: list[str] = []
    for item in output:
        if not isinstance(item, dict):
            return None
        if item.get("type") != "message":
            continue  # function calls, reasoning items: no text to classify
        content = item.get("content")
        if not isinstance(content, list):
            return None
        for part in content:
            if isinstance(part, dict) and is_one_of(part.get("type"), _TEXT_PARTS):
                text = (
                    part.get("text") if part.get("type") == "output_text" else part.get("refusal")
                )
                if isinstance(text, str):
                    pieces.append(text)
    return "".join(pieces)


class ResponsesAdapter:
    """Responses API: the whole ``output`` is one answer (one text to classify)."""

    @property
    def name(self) -> str:
        return "responses"

    def parse_request(self, body: bytes) -> RequestInfo | None:
        data = load_json_object(body)
        if data is None or "input" not in data:
            return None
        raw_input = data["input"]
        last_user = ""
        system: list[str] = []
        if isinstance(data.get("instructions"), str):
            system.append(data["instructions"])
        if isinstance(raw_input, str):
            last_user = raw_input
        elif isinstance(raw_input, list):
            for item in raw_input:
                if not isinstance(item, dict):
                    continue
                if item.get("role") == "user":
                    last_user = content_text(item.get("content"))
                elif is_one_of(item.get("role"), ("system", "developer")):
                    system.append(content_text(item.get("content")))
        else:
            return None
        user = data.get("user") if isinstance(data.get("user"), str) else None
        model = data.get("model")
        return RequestInfo(
            data=data,
            model=model if isinstance(model, str) else None,
            stream=data.get("stream") is True,
            last_user_message=last_user,
            system_prompt="\n\n".join(s for s in system if s),
            body_user=user,
            metadata=string_metadata(data.get("metadata")),
        )

    def rewrite_request(self, request: RequestInfo, note: str, role: str) -> bytes | None:
        # ``instructions`` is this API's system prompt; the role does not apply here.
        current = request.data.get("instructions")
        instructions = f"{current}\n\n{note}" if isinstance(current, str) and current else note
        return dump_json({**request.data, "instructions": instructions})

    def accepts(self, content_type: str) -> bool:
        return is_json_content_type(content_type)

    def response_texts(self, body: bytes) -> ResponseTexts | None:
        data = load_json_object(body)
        if data is None or not isinstance(data.get("output"), list):
            return None
        text = _output_text(data["output"])
        if text is None:
            return None
        model = data.get("model")
        return ResponseTexts((text,) if text else (), model if isinstance(model, str) else None)

    def stream_collector(self) -> _ResponsesStreamCollector:
        return _ResponsesStreamCollector()

    def render_replacement(self, request: RequestInfo, text: str, *, stream: bool) -> Rendered:
        response_id = f"resp_guardrail{uuid.uuid4().hex}"
        item_id = f"msg_guardrail{uuid.uuid4().hex}"
        part = {"type": "output_text", "text": text, "annotations": []}
        item = {
            "type": "message",
            "id": item_id,
            "status": "completed",
            "role": "assistant",
            "content": [part],
        }
        response: dict[str, Any] = {
            "id": response_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "error": None,
            "incomplete_details": None,
            "instructions": request.data.get("instructions"),
            "metadata": {},
            "model": request.model or "guardrail",
            "output": [item],
            "parallel_tool_calls": True,
            "temperature": None,
            "tool_choice": "auto",
            "tools": [],
            "top_p": None,
            "usage": {
                "input_tokens": 0,
                "output_tokens": 0,
                "total_tokens": 0,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }
        if not stream:
            return Rendered(200, "application/json", dump_json(response))
        in_progress = {**response, "status": "in_progress", "output": [], "usage": None}
        events: list[tuple[str, dict[str, Any]]] = [
            ("response.created", {"response": in_progress}),
            ("response.in_progress", {"response": in_progress}),
            (
                "response.output_item.added",
                {"output_index": 0, "item": {**item, "status": "in_progress", "content": []}},
            ),
            (
                "response.content_part.added",
                {
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "part": {**part, "text": ""},
                },
            ),
            (
                "response.output_text.delta",
                {
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": text,
                    "logprobs": [],
                },
            ),
            (
                "response.output_text.done",
                {
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "text": text,
                    "logprobs": [],
                },
            ),
            (
                "response.content_part.done",
                {"item_id": item_id, "output_index": 0, "content_index": 0, "part": part},
            ),
            ("response.output_item.done", {"output_index": 0, "item": item}),
            ("response.completed", {"response": response}),
        ]
        out = bytearray()
        for number, (kind, payload) in enumerate(events):
            data = {"type": kind, "sequence_number": number, **payload}
            out += b"event: " + kind.encode() + b"\ndata: " + dump_json(data) + b"\n\n"
        return Rendered(200, "text/event-stream; charset=utf-8", bytes(out))

    def render_block(self, request: RequestInfo, message: str, status: int) -> Rendered:
        return Rendered(status, "application/json", openai_error_body(message, status))


class _ResponsesStreamCollector(StreamCollectorState):
    def __init__(self) -> None:
        super().__init__()
        self._parts: list[str] = []

    def feed(self, event: SseEvent) -> None:
        data = self._event_object(event)
        if data is None:
            return
        kind = data.get("type", event.event)
        if is_one_of(kind, _TEXT_DELTAS):
            if isinstance(data.get("delta"), str):
                self._parts.append(data["delta"])
        elif kind == "response.output_item.added":
            item = data.get("item")
            if isinstance(item, dict) and item.get("type") != "message" and not self._parts:
                # A function call before any text (reasoning items come first and do not count).
                self._tool_call_first = item.get("type") != "reasoning"
        elif kind == "response.created":
            response = data.get("response")
            if isinstance(response, dict) and isinstance(response.get("model"), str):
                self._model = response["model"]

    def texts(self) -> tuple[str, ...]:
        text = "".join(self._parts)
        return (text,) if text else ()
