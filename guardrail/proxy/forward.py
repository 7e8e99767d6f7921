"""The reverse proxy core: a pure ASGI app that forwards every HTTP request upstream.

Bodies stream both ways (the request is never buffered here, the response is relayed chunk
by chunk as raw bytes, so ``content-encoding``/``content-length`` stay true). Upstream
responses, errors included, are relayed as they are minus hop-by-hop headers; only a failure
to get any response becomes a proxy-made OpenAI-style error (502, or 504 on timeout).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from urllib.parse import quote

import anyio
import httpx
import structlog
from starlette.types import Message, Receive, Scope, Send

from guardrail.proxy.config import ProxyConfig
from guardrail.proxy.errors import error_response

__all__ = ["HOP_BY_HOP_HEADERS", "ReverseProxy", "filter_headers"]

log = structlog.get_logger("guardrail.proxy")

#: RFC 9110 §7.6.1 connection-specific headers, never forwarded by a proxy; ``host`` is
#: rewritten for the upstream by httpx.
HOP_BY_HOP_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


def filter_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Drop hop-by-hop headers, including any the ``Connection`` header names."""
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
    }
    return [
        (name, value)
        for name, value in headers
        if name.lower() not in HOP_BY_HOP_HEADERS and name.lower() not in named
    ]


class ReverseProxy:
    """Forward requests to ``config.upstream`` through one pooled ``httpx.AsyncClient``.

    Pass ``client`` to supply your own (tests use ``httpx.MockTransport``); otherwise the
    proxy builds one from the config and closes it in ``aclose()``. ``uncompressed`` picks
    the requests sent upstream with ``accept-encoding: identity``.
    """

    def __init__(
        self,
        config: ProxyConfig,
        *,
        client: httpx.AsyncClient | None = None,
        uncompressed: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.config = config
        # (method, path) -> True for requests whose answer the guardrail must read: their
        # upstream is asked for an uncompressed body, since a gzipped one cannot be classified.
        self._uncompressed = uncompressed
        self._owns_client = client is None
        # One client for the process: its connection pool is the point of keeping it.
        self.client = client or httpx.AsyncClient(
            timeout=config.timeout(),
            limits=config.limits(),
            follow_redirects=False,
            trust_env=False,
        )
        base = config.upstream_url
        self._base = base
        self._prefix = base.raw_path.split(b"?", 1)[0].rstrip(b"/")
        self._strip = frozenset(
            {b"host", *(h.encode("latin-1") for h in config.strip_request_headers)}
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = self.client.build_request(
            scope["method"],
            self._target(scope),
            headers=self._request_headers(scope),
            content=_request_body(receive) if _has_body(scope) else None,
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            log.warning("upstream_timeout", upstream=str(self._base), error=type(exc).__name__)
            if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
                await error_response(
                    send,
                    502,
                    "upstream_unreachable",
                    f"Upstream {self._base} did not accept a connection in time",
                )
            else:
                await error_response(
                    send, 504, "upstream_timeout", f"Upstream {self._base} did not respond in time"
                )
            return
        except _ClientGone:
            return
        except httpx.TransportError as exc:
            log.warning("upstream_unreachable", upstream=str(self._base), error=str(exc))
            await error_response(
                send,
                502,
                "upstream_unreachable",
                f"Upstream {self._base} is unreachable: {type(exc).__name__}",
            )
            return
        try:
            await self._relay(response, receive, send)
        finally:
            await response.aclose()

    def _target(self, scope: Scope) -> httpx.URL:
        raw_path: bytes = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
        query: bytes = scope.get("query_string", b"")
        full = self._prefix + raw_path + (b"?" + query if query else b"")
        return self._base.copy_with(raw_path=full)

    def _request_headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        headers = [
            (n, v)
            for n, v in filter_headers(list(scope["headers"]))
            if n.lower() not in self._strip
        ]
        client = scope.get("client")
        if client:
            # Append to an existing chain, as every proxy along the way does.
            prior = [v for n, v in headers if n.lower() == b"x-forwarded-for"]
            chain = b", ".join([*prior, str(client[0]).encode("latin-1")])
            headers = [(n, v) for n, v in headers if n.lower() != b"x-forwarded-for"]
            headers.append((b"x-forwarded-for", chain))
        if self._uncompressed is not None and self._uncompressed(scope["method"], scope["path"]):
            headers = [(n, v) for n, v in headers if n.lower() != b"accept-encoding"]
            headers.append((b"accept-encoding", b"identity"))
        return headers

    async def _relay(self, response: httpx.Response, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": filter_headers(list(response.headers.raw)),
            }
        )
        async with anyio.create_task_group() as tg:
            # The request body is fully read by now, so the next receive() only returns when
            # the client goes away; then stop reading a stream nobody will see.
            tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
            try:
                async for chunk in _raw_body(response):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.TransportError as exc:
                # Status and part of the body are already out: end without completing the
                # response so the client sees a broken transfer, not a short "success".
                log.warning("upstream_stream_error", upstream=str(self._base), error=repr(exc))
                tg.cancel_scope.cancel()
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            tg.cancel_scope.cancel()


def _has_body(scope: Scope) -> bool:
    # A bodiless GET must stay bodiless upstream: streaming an empty body would turn it into
    # a chunked request, which some servers reject. Without framing headers only the
    # methods that carry bodies are streamed (HTTP/2 requests may omit content-length).
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return scope["method"] in ("POST", "PUT", "PATCH")


async def _raw_body(response: httpx.Response) -> AsyncIterator[bytes]:
    if response.is_stream_consumed:
        # Built in memory (httpx.MockTransport handlers returning content=...): nothing to
        # stream, the body is already there.
        yield response.content
        return
    async for chunk in response.aiter_raw():
        yield chunk


class _ClientGone(Exception):
    """The downstream client disconnected while its request body was being forwarded."""


async def _request_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
