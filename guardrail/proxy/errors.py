"""Proxy-made error responses, shaped like OpenAI's so SDK clients surface them cleanly."""

from __future__ import annotations

import json

from starlette.types import Send

from guardrail._asgi import send_complete

__all__ = ["error_body", "error_response"]


def error_body(code: str, message: str, type_: str = "upstream_error") -> bytes:
    """``{"error": {...}}`` as the OpenAI API returns it."""
    error = {"message": message, "type": type_, "param": None, "code": code}
    return json.dumps({"error": error}, separators=(",", ":")).encode()


async def error_response(send: Send, status: int, code: str, message: str) -> None:
    """Send a complete JSON error response."""
    await send_complete(send, status, error_body(code, message), "application/json")
