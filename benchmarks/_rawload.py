"""A light closed-loop HTTP/1.1 load generator on raw asyncio streams.

httpx costs a few milliseconds of CPU per request. On a 2-core machine where the load
generator and the server share the cores, that cost is taken from the server and makes any
server-side overhead look larger than it is (both apps end up CPU-bound on the *client*).
This client does the minimum a keep-alive HTTP/1.1 client must: write a pre-built request,
read the status line and headers, then the body by ``Content-Length`` or ``chunked``
framing. It yields the same ``LoadRun`` / ``RequestResult`` records as ``benchmarks._load``,
with the sha256 of the de-chunked body, so the two clients' results compare directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from benchmarks._load import LoadRun, RequestResult
from benchmarks._upstream import chat_request

__all__ = ["run_raw_load"]

_PATH = "/v1/chat/completions"


def _request_bytes(host: str, pick: int, stream: bool) -> bytes:
    body = chat_request(f"question {pick}", stream=stream)
    head = (
        f"POST {_PATH} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"x-upstream-pick: {pick}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _read_response(
    reader: asyncio.StreamReader, t0: float
) -> tuple[int, dict[str, str], bytes, float]:
    """(status, lower-cased headers, body, seconds to the first body byte)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    ttfb = float("nan")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers from our servers
                break
            chunk = await reader.readexactly(size + 2)
            if not parts:
                ttfb = time.perf_counter() - t0
            parts.append(chunk[:-2])
        return status, headers, b"".join(parts), ttfb
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return status, headers, body, time.perf_counter() - t0


async def run_raw_load(
    base_url: str,
    picks: Sequence[int],
    streams: Sequence[bool],
    concurrency: int,
    *,
    timeout_s: float = 120.0,
) -> LoadRun:
    """Send ``len(picks)`` requests over ``concurrency`` keep-alive connections."""
    if len(picks) != len(streams):
        raise ValueError("picks and streams must have the same length")
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    requests = [_request_bytes(host, p, s) for p, s in zip(picks, streams, strict=True)]
    results: list[RequestResult] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while next_index < len(picks):
                i = next_index
                next_index += 1  # no await in between: the event loop makes this atomic
                t0 = time.perf_counter()
                try:
                    writer.write(requests[i])
                    status, headers, body, ttfb = await asyncio.wait_for(
                        _read_response(reader, t0), timeout_s
                    )
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                    results.append(
                        RequestResult(
                            i,
                            picks[i],
                            streams[i],
                            0,
                            time.perf_counter() - t0,
                            None,
                            "",
                            None,
                            error=f"{type(exc).__name__}: {exc}",
                        )
                    )
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                results.append(
                    RequestResult(
                        i,
                        picks[i],
                        streams[i],
                        status,
                        time.perf_counter() - t0,
                        ttfb if streams[i] else None,
                        hashlib.sha256(body).hexdigest(),
                        headers.get("x-guardrail-action"),
                    )
                )
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    results.sort(key=lambda r: r.index)
    return LoadRun(results, wall)
