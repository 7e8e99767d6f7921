"""What an API adapter is: the Protocols every response format implements, and their values.

An adapter knows one wire format (OpenAI Chat Completions, the Responses API, Anthropic
Messages, plain text). The middleware never looks inside a body itself; it asks the route's
adapter to describe the request, to pull the assistant texts out of a response or a stream,
to rewrite the request for a retry, and to render a replacement or a block in the API's own
format, so that a client library reading the answer cannot tell it from the upstream's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ApiAdapter",
    "Rendered",
    "RequestInfo",
    "ResponseTexts",
    "SseEvent",
    "StreamCollector",
    "StreamCollectorState",
    "content_text",
    "dump_json",
    "is_json_content_type",
    "is_one_of",
    "load_json_object",
    "string_metadata",
]


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The parts of a request body a policy may look at, plus the parsed body for rewrites."""

    data: Mapping[str, Any]
    model: str | None = None
    stream: bool = False
    last_user_message: str = ""
    system_prompt: str = ""
    body_user: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResponseTexts:
    """Assistant texts of a complete response, one per choice that has text.

    Choices without text (a pure tool call) are left out: there is nothing to classify.
    """

    texts: tuple[str, ...]
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    """A response the middleware produces itself (replacement or block)."""

    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One server-sent event: its ``event:`` name (None when absent) and joined ``data:``."""

    event: str | None
    data: str


@runtime_checkable
class StreamCollector(Protocol):
    """Accumulates the assistant text of one streamed response, event by event."""

    def feed(self, event: SseEvent) -> None:
        """Take one event; events that carry no text are ignored."""
        ...

    def texts(self) -> tuple[str, ...]:
        """The text so far, one entry per choice (index order)."""
        ...

    @property
    def unsupported(self) -> bool:
        """True once an event could not be understood: the stream is not classified."""
        ...

    @property
    def tool_call_first(self) -> bool:
        """True when a tool call arrived before any text (nothing to hold back for)."""
        ...

    @property
    def model(self) -> str | None: ...


@runtime_checkable
class ApiAdapter(Protocol):
    """One API's wire format. Implementations are immutable and shared by all requests."""

    @property
    def name(self) -> str:
        """The ``api`` value of RequestContext/GuardOutcome, e.g. ``"openai_chat"``."""
        ...

    def parse_request(self, body: bytes) -> RequestInfo | None:
        """Describe a request body; None when it is not this API's request format."""
        ...

    def rewrite_request(self, request: RequestInfo, note: str, role: str) -> bytes | None:
        """The request body with ``note`` added as context; None if this API cannot carry it."""
        ...

    def accepts(self, content_type: str) -> bool:
        """True for the non-streaming media type(s) ``response_texts`` understands."""
        ...

    def response_texts(self, body: bytes) -> ResponseTexts | None:
        """The assistant texts of a complete body; None when the body is not understood."""
        ...

    def stream_collector(self) -> StreamCollector | None:
        """A fresh collector for a ``text/event-stream`` response; None if not streamable."""
        ...

    def render_replacement(self, request: RequestInfo, text: str, *, stream: bool) -> Rendered:
        """A successful response whose assistant text is ``text``."""
        ...

    def render_block(self, request: RequestInfo, message: str, status: int) -> Rendered:
        """An error response in this API's error format."""
        ...


def is_json_content_type(content_type: str) -> bool:
    """application/json and the ``+json`` structured suffix types."""
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def load_json_object(body: bytes | str) -> dict[str, Any] | None:
    """Parse a JSON object; None for anything else (malformed, array, scalar)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: nesting deeper than the parser's limit is "not understood" too.
        return None
    return data if isinstance(data, dict) else None


def dump_json(data: Any) -> bytes:
    """Compact UTF-8 JSON, the way the OpenAI and Anthropic servers send it."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def content_text(content: Any) -> str:
    """Text of a message ``content``: a string, or the text parts of a content-part list.

    Covers the OpenAI (``{"type": "text", "text": ...}``, ``input_text``, ``output_text``)
    and Anthropic (``{"type": "text", "text": ...}``) part shapes; other parts (images,
    tool results) carry no text and are skipped.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        ]
        return "\n".join(parts)
    return ""


def string_metadata(value: Any) -> dict[str, str]:
    """The string-valued entries of a request's ``metadata`` object."""
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def is_one_of(value: Any, names: tuple[str, ...]) -> bool:
    """``value in names`` for a value from an untrusted body (a list is unhashable)."""
    return isinstance(value, str) and value in names


class StreamCollectorState:
    """The bookkeeping every SSE collector shares, behind the Protocol's read-only properties.

    Subclasses set ``_unsupported`` (an event they cannot read), ``_tool_call_first`` (a tool
    call came before any text, so the answer is not classified) and ``_model`` as events arrive.
    """

    def __init__(self) -> None:
        self._unsupported = False
        self._tool_call_first = False
        self._model: str | None = None

    def _event_object(self, event: SseEvent) -> dict[str, Any] | None:
        """The event's JSON object; None once the stream is unsupported, which a non-object
        event makes it (the rest of that stream is then passed through unread)."""
        if self._unsupported:
            return None
        data = load_json_object(event.data)
        if data is None:
            self._unsupported = True
        return data

    @property
    def unsupported(self) -> bool:
        return self._unsupported

    @property
    def tool_call_first(self) -> bool:
        return self._tool_call_first

    @property
    def model(self) -> str | None:
        return self._model
