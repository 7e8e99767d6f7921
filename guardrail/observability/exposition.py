"""``metrics_app()``: a small pure-ASGI app serving the Prometheus exposition format.

Mount it next to the guarded app, e.g. ``Route("/metrics", metrics_app())`` in Starlette. In
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set) it reads every worker's files, so a scrape
that lands on any worker returns the totals over all of them. Rendering runs in a worker thread:
in multiprocess mode it reads files, which must not stall the event loop.
"""

from __future__ import annotations

from anyio import to_thread
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.types import Receive, Scope, Send

from guardrail._asgi import send_complete, serve_lifespan
from guardrail.observability.multiprocess import multiproc_dir, multiprocess_registry

__all__ = ["MetricsApp", "metrics_app"]


class MetricsApp:
    """ASGI app: GET/HEAD → the registry in text or OpenMetrics format (per ``Accept``)."""

    __slots__ = ("registry",)

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            # A websocket has no business here; close it instead of leaving it hanging.
            await send({"type": "websocket.close", "code": 1003})
            return
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await _respond(
                send,
                405,
                b"Method Not Allowed\n",
                "text/plain; charset=utf-8",
                extra=[(b"allow", b"GET, HEAD")],
            )
            return
        accept = ""
        for name, value in scope.get("headers", ()):
            if name == b"accept":
                accept = value.decode("latin-1")
                break
        encoder, content_type = choose_encoder(accept)
        body = await to_thread.run_sync(encoder, self.registry)
        await _respond(send, 200, body, content_type, head=method == "HEAD")


def metrics_app(registry: CollectorRegistry | None = None) -> MetricsApp:
    """The exposition app for ``registry``.

    ``registry=None``: with ``PROMETHEUS_MULTIPROC_DIR`` set, a registry merging all workers'
    files; otherwise prometheus_client's default registry (where ``default_metrics()`` lives).
    """
    if registry is None:
        registry = multiprocess_registry() if multiproc_dir() is not None else REGISTRY
    return MetricsApp(registry)


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    *,
    head: bool = False,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    # A scrape must never be answered from a cache.
    no_store = [(b"cache-control", b"no-store"), *(extra or [])]
    await send_complete(send, status, body, content_type, extra_headers=no_store, head=head)
