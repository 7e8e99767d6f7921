"""Plain text: a ``text/plain`` answer to any request (a prompt as JSON or as raw text).

Streaming plain text has no event framing to tell a finished answer from a pause, so a
``text/plain`` response is buffered whole (up to ``max_response_bytes``) and a
``text/event-stream`` on a plain-text route passes through unclassified.
"""

from __future__ import annotations

from guardrail.middleware.adapters.base import (
    Rendered,
    RequestInfo,
    ResponseTexts,
    content_text,
    dump_json,
    load_json_object,
    string_metadata,
)

__all__ = ["PlainTextAdapter"]

_PROMPT_FIELDS = ("prompt", "input", "text", "message", "query")


class PlainTextAdapter:
    """Any request body; the whole ``text/plain`` response body is the answer."""

    @property
    def name(self) -> str:
        return "plain_text"

    def parse_request(self, body: bytes) -> RequestInfo | None:
        data = load_json_object(body)
        if data is None:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                return None
            return RequestInfo(data={}, last_user_message=text)
        prompt = next((data[f] for f in _PROMPT_FIELDS if isinstance(data.get(f), str)), "")
        if not prompt and isinstance(data.get("messages"), list):
            users = [m for m in data["messages"] if isinstance(m, dict) and m.get("role") == "user"]
            prompt = content_text(users[-1].get("content")) if users else ""
        model = data.get("model")
        return RequestInfo(
            data=data,
            model=model if isinstance(model, str) else None,
            stream=data.get("stream") is True,
            last_user_message=prompt,
            system_prompt=content_text(data.get("system")),
            metadata=string_metadata(data.get("metadata")),
        )

    def rewrite_request(self, request: RequestInfo, note: str, role: str) -> bytes | None:
        # Only a JSON request with a ``system`` string or a ``messages`` list can carry a note.
        system = request.data.get("system")
        if isinstance(system, str):
            return dump_json({**request.data, "system": f"{system}\n\n{note}" if system else note})
        messages = request.data.get("messages")
        if isinstance(messages, list):
            return dump_json(
                {**request.data, "messages": [{"role": role, "content": note}, *messages]}
            )
        return None

    def accepts(self, content_type: str) -> bool:
        return content_type.partition(";")[0].strip().lower() == "text/plain"

    def response_texts(self, body: bytes) -> ResponseTexts | None:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return ResponseTexts((text,) if text.strip() else ())

    def stream_collector(self) -> None:
        return None

    def render_replacement(self, request: RequestInfo, text: str, *, stream: bool) -> Rendered:
        return Rendered(200, "text/plain; charset=utf-8", text.encode("utf-8"))

    def render_block(self, request: RequestInfo, message: str, status: int) -> Rendered:
        return Rendered(status, "text/plain; charset=utf-8", message.encode("utf-8"))
