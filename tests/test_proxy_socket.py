"""The proxy's listening socket: accepted connections send small writes at once."""

from __future__ import annotations

import asyncio
import socket

import pytest

from guardrail.errors import ConfigError
from guardrail.proxy.serving import bind_socket


async def _accepted_nodelay(listener: socket.socket) -> int:
    loop = asyncio.get_running_loop()
    seen: asyncio.Future[int] = loop.create_future()

    class _Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            conn = transport.get_extra_info("socket")
            seen.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await loop.create_server(_Probe, sock=listener)
    host, port = listener.getsockname()[:2]
    _, writer = await asyncio.open_connection(host, port)
    try:
        return await asyncio.wait_for(seen, 10)
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


def test_accepted_connections_have_nagle_off() -> None:
    """A connection accepted the way uvicorn accepts it has TCP_NODELAY set, so a response
    written as head then body is not held back waiting for the client's delayed ACK."""
    listener = bind_socket("127.0.0.1", 0)
    assert listener.proto == socket.IPPROTO_TCP
    assert asyncio.run(_accepted_nodelay(listener)) != 0


def test_port_in_use_is_a_config_error() -> None:
    """Binding a port that is already taken fails with the address in the message."""
    taken = bind_socket("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}"):
            bind_socket("127.0.0.1", port)
    finally:
        taken.close()
