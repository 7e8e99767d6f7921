"""The reverse proxy core in-process: forwarding, faithful relaying, and upstream failures."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from guardrail.demo import ScriptedChatModel
from guardrail.errors import ConfigError
from guardrail.proxy import ProxyConfig, ReverseProxy, filter_headers

pytestmark = pytest.mark.anyio


class _Stream(httpx.AsyncByteStream):
    """A response body that arrives as a stream, like one read off a real socket."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def _response(status: int, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    # httpx reads bytes given as content= eagerly; a real upstream response is a stream.
    return httpx.Response(status, headers=headers, stream=_Stream(body))


def _proxy(
    handler: httpx.MockTransport | httpx.ASGITransport, upstream: str = "http://up"
) -> ReverseProxy:
    return ReverseProxy(ProxyConfig(upstream), client=httpx.AsyncClient(transport=handler))


def _client(proxy: ReverseProxy) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy), base_url="http://proxy")


async def test_request_is_forwarded_with_path_query_body_and_headers() -> None:
    """Method, prefixed path, query, body and end-to-end headers reach the upstream."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _response(200, b'{"ok": true}')

    proxy = _proxy(httpx.MockTransport(handler), "http://up:9000/api/")
    async with _client(proxy) as client:
        response = await client.post(
            "/v1/chat/completions?x=1&y=a%20b",
            content=b'{"messages": []}',
            headers={
                "authorization": "Bearer sk-test",
                "connection": "keep-alive, x-hop",
                "x-hop": "drop me",
                "x-forwarded-for": "10.0.0.1",
                "x-guardrail-context": "signed.credential",
            },
        )
    assert response.status_code == 200
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "http://up:9000/api/v1/chat/completions?x=1&y=a%20b"
    assert request.content == b'{"messages": []}'
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["host"] == "up:9000"
    assert "x-hop" not in request.headers
    assert "x-guardrail-context" not in request.headers
    assert request.headers.get("connection") in (None, "keep-alive")
    assert request.headers["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"


async def test_upstream_error_is_relayed_faithfully() -> None:
    """An upstream 429 comes back with its status, headers and body, minus hop-by-hop."""
    body = b'{"error": {"message": "slow down", "type": "rate_limit"}}'

    def handler(request: httpx.Request) -> httpx.Response:
        return _response(
            429,
            body,
            {"retry-after": "7", "content-type": "application/json", "keep-alive": "5"},
        )

    async with _client(_proxy(httpx.MockTransport(handler))) as client:
        response = await client.get("/v1/models")
    assert response.status_code == 429
    assert response.content == body
    assert response.headers["retry-after"] == "7"
    assert "keep-alive" not in response.headers


async def test_compressed_body_is_relayed_raw() -> None:
    """A gzip-encoded upstream body is passed on undecoded, with its content-encoding."""
    raw = gzip.compress(b'{"hello": "world"}')

    def handler(request: httpx.Request) -> httpx.Response:
        return _response(200, raw, {"content-encoding": "gzip", "content-type": "application/json"})

    async with (
        _client(_proxy(httpx.MockTransport(handler))) as client,
        client.stream("GET", "/x") as response,
    ):
        received = b"".join([chunk async for chunk in response.aiter_raw()])
    assert response.headers["content-encoding"] == "gzip"
    assert received == raw


async def test_streamed_request_body_arrives_whole() -> None:
    """A chunked client upload reaches the upstream byte for byte."""
    parts = [b"a" * 70_000, b"b" * 5, b"c" * 33_000]

    async def upload() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    seen: list[bytes] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(await request.aread())
        return _response(204, b"")

    async with _client(_proxy(httpx.MockTransport(handler))) as client:
        response = await client.post("/upload", content=upload())
    assert response.status_code == 204
    assert seen == [b"".join(parts)]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (httpx.ConnectError("refused"), 502, "upstream_unreachable"),
        (httpx.ConnectTimeout("slow connect"), 502, "upstream_unreachable"),
        (httpx.ReadTimeout("slow read"), 504, "upstream_timeout"),
        (httpx.RemoteProtocolError("garbage"), 502, "upstream_unreachable"),
    ],
)
async def test_upstream_failure_becomes_openai_style_error(
    error: Exception, status: int, code: str
) -> None:
    """No upstream response at all becomes a proxy-made OpenAI error JSON."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    async with _client(_proxy(httpx.MockTransport(handler))) as client:
        response = await client.post("/v1/chat/completions", json={"messages": []})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    payload = response.json()["error"]
    assert payload["code"] == code
    assert "http://up" in payload["message"]


async def test_json_and_stream_bytes_match_the_upstream() -> None:
    """Through the proxy, JSON and SSE bodies equal the in-process upstream's bytes."""
    upstream = ScriptedChatModel()
    direct = httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream), base_url="http://up")
    proxy = _proxy(httpx.ASGITransport(app=upstream))
    question = {"messages": [{"role": "user", "content": "What is the capital of France?"}]}
    async with direct, _client(proxy) as client:
        for request in (question, {**question, "stream": True}):
            want = await direct.post("/v1/chat/completions", json=request)
            got = await client.post("/v1/chat/completions", json=request)
            assert got.status_code == want.status_code == 200
            assert got.content == want.content
            assert got.headers["content-type"] == want.headers["content-type"]
    assert json.loads(want.text.split("\n\n")[0].removeprefix("data: "))["object"] == (
        "chat.completion.chunk"
    )


async def test_bodiless_requests_stay_bodiless() -> None:
    """A GET goes upstream with neither a body nor chunked framing."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _response(200, b"{}")

    async with _client(_proxy(httpx.MockTransport(handler))) as client:
        await client.get("/v1/models")
    (request,) = seen
    assert "transfer-encoding" not in request.headers
    assert request.headers.get("content-length") in (None, "0")
    assert request.content == b""


def test_filter_headers_drops_hop_by_hop_and_connection_named() -> None:
    """filter_headers removes RFC 9110 hop-by-hop headers and those Connection names."""
    headers = [
        (b"Connection", b"close, X-Private"),
        (b"x-private", b"1"),
        (b"transfer-encoding", b"chunked"),
        (b"content-type", b"text/plain"),
    ]
    assert filter_headers(headers) == [(b"content-type", b"text/plain")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"upstream": "ftp://x"}, "must be an http:// or https:// URL"),
        ({"upstream": "http://x?q=1"}, "must not carry a query"),
        ({"upstream": "http://x", "read_timeout": 0}, "read-timeout must be > 0"),
    ],
)
def test_bad_config_fails_with_a_precise_message(kwargs: dict[str, object], message: str) -> None:
    """Invalid proxy settings raise ConfigError naming the problem."""
    with pytest.raises(ConfigError, match=message):
        ProxyConfig(**kwargs)  # type: ignore[arg-type]


def _scope() -> dict[str, object]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/s",
        "raw_path": b"/s",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "scheme": "http",
    }


async def test_client_disconnect_stops_reading_the_upstream() -> None:
    """When the client goes away mid-stream, the proxy stops and closes the upstream stream."""
    closed = anyio.Event()

    class Endless(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            while True:
                yield b"data: tick\n\n"
                await anyio.sleep(0.005)

        async def aclose(self) -> None:
            closed.set()

    proxy = _proxy(httpx.MockTransport(lambda request: httpx.Response(200, stream=Endless())))
    requests = [{"type": "http.request", "body": b"", "more_body": False}]
    gone = anyio.Event()
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        if requests:
            return requests.pop()
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)
        if len(sent) == 5:
            gone.set()

    with anyio.fail_after(5):
        await proxy(_scope(), receive, send)  # type: ignore[arg-type]
    assert closed.is_set()
    assert sent[0]["status"] == 200
    assert all(m.get("more_body") is True for m in sent[1:])


async def test_upstream_failure_mid_stream_is_not_passed_off_as_complete() -> None:
    """An upstream that breaks mid-body leaves the response unfinished, never cleanly ended."""

    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"data: one\n\n"
            raise httpx.ReadError("connection reset")

    proxy = _proxy(httpx.MockTransport(lambda request: httpx.Response(200, stream=Broken())))
    requests = [{"type": "http.request", "body": b"", "more_body": False}]
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        if requests:
            return requests.pop()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await proxy(_scope(), receive, send)  # type: ignore[arg-type]
    assert [m.get("body") for m in sent[1:]] == [b"data: one\n\n"]
    assert sent[-1]["more_body"] is True
