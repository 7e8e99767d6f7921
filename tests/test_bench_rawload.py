"""The benchmarks' raw-socket load client reads what the server sent, JSON and chunked SSE."""

from __future__ import annotations

import asyncio
import hashlib
import socket

import pytest
from test_integration_uvicorn import serve

from benchmarks._harness import call_asgi
from benchmarks._rawload import run_raw_load
from benchmarks._upstream import ChatUpstream, chat_request

_ANSWERS = [
    "Sure! Mix flour, eggs and milk, then fry the batter in a hot pan. " * 6,
    "I'm sorry, but I can't help with that.",
    "Here is a haiku: an old silent pond / a frog jumps into the pond / splash! silence again",
]


async def _expected(app: ChatUpstream, pick: int, stream: bool) -> str:
    body = chat_request(f"question {pick}", stream=stream)
    got = await call_asgi(
        app,
        body,
        headers=((b"content-type", b"application/json"), (b"x-upstream-pick", str(pick).encode())),
    )
    return hashlib.sha256(got.body).hexdigest()


def test_raw_client_bodies_match_the_apps_bytes_over_keep_alive() -> None:
    """Every response of a 2-connection keep-alive run has status 200 and the exact body the
    app produced (Content-Length JSON and de-chunked SSE alike); streams get a TTFB."""
    app = ChatUpstream(_ANSWERS, delay_s=0.0)
    picks = [0, 1, 2, 0, 1, 2, 2, 1]
    streams = [i % 2 == 1 for i in range(len(picks))]
    with serve(app) as url:
        run = asyncio.run(run_raw_load(url, picks, streams, 2))
    assert [r.index for r in run.results] == list(range(len(picks)))
    for result in run.results:
        assert result.error is None and result.status == 200
        want = asyncio.run(_expected(app, result.pick, result.stream))
        assert result.body_sha256 == want
        assert (result.ttfb_s is not None) == result.stream
    assert run.throughput > 0


def test_a_server_that_is_not_listening_fails_the_run_at_once() -> None:
    """No server: the run stops with the connection error instead of timing every request."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port now
    with pytest.raises(OSError):
        asyncio.run(run_raw_load(f"http://127.0.0.1:{port}", [0], [False], 1))
