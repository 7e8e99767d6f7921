"""Response-format adapters, one module per API, and the registry of their names."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from guardrail.middleware.adapters.anthropic import AnthropicAdapter
from guardrail.middleware.adapters.base import (
    ApiAdapter,
    Rendered,
    RequestInfo,
    ResponseTexts,
    SseEvent,
    StreamCollector,
)
from guardrail.middleware.adapters.openai_chat import OpenAIChatAdapter
from guardrail.middleware.adapters.plain_text import PlainTextAdapter
from guardrail.middleware.adapters.responses import ResponsesAdapter

__all__ = [
    "ADAPTERS",
    "AnthropicAdapter",
    "ApiAdapter",
    "OpenAIChatAdapter",
    "PlainTextAdapter",
    "Rendered",
    "RequestInfo",
    "ResponseTexts",
    "ResponsesAdapter",
    "SseEvent",
    "StreamCollector",
]

#: Built-in adapters by the name used in route configuration.
ADAPTERS: Mapping[str, ApiAdapter] = MappingProxyType(
    {
        "openai_chat": OpenAIChatAdapter(),
        "responses": ResponsesAdapter(),
        "anthropic": AnthropicAdapter(),
        "plain_text": PlainTextAdapter(),
    }
)
