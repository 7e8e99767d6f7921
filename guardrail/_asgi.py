"""Pure-ASGI helpers shared by the small side apps: /metrics, /healthz and /readyz, the
proxy's own error responses and the demo's scripted model.

They answer with complete bodies only, so each response is one ``http.response.start`` with
an exact Content-Length and one ``http.response.body``.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Receive, Send

__all__ = ["send_complete", "serve_lifespan"]


async def send_complete(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    *,
    extra_headers: Iterable[tuple[bytes, bytes]] = (),
    head: bool = False,
) -> None:
    """Send a whole response; ``head`` keeps the headers (and Content-Length) but no body."""
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode("ascii")),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge start-up and shutdown for an app that has nothing to set up."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
