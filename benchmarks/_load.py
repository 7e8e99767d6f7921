"""Closed-loop HTTP load generator: N requests from C concurrent clients, each one timed.

Each of the C workers sends its next request as soon as its previous one has been read in
full (a closed loop, like C users each waiting for their answer), so throughput is
requests / wall time and latency includes any queueing in the server. Request ``i`` asks the
stand-in app for response ``picks[i]`` (header ``x-upstream-pick``), so the expected bytes of
every answer are known in advance and can be checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from benchmarks._upstream import chat_request

__all__ = ["LoadRun", "RequestResult", "run_load", "sample_rss"]

_PATH = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class RequestResult:
    """One request as the client saw it."""

    index: int
    pick: int
    stream: bool
    status: int
    latency_s: float
    ttfb_s: float | None
    body_sha256: str
    action: str | None
    error: str | None = None


@dataclass
class LoadRun:
    """All results of one load run plus its wall time."""

    results: list[RequestResult]
    wall_s: float
    rss_mib: list[float] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return len(self.results) / self.wall_s if self.wall_s else float("nan")


async def _one(client: httpx.AsyncClient, index: int, pick: int, stream: bool) -> RequestResult:
    body = chat_request(f"question {pick}", stream=stream)
    headers = {"content-type": "application/json", "x-upstream-pick": str(pick)}
    t0 = time.perf_counter()
    ttfb: float | None = None
    digest = hashlib.sha256()
    try:
        async with client.stream("POST", _PATH, content=body, headers=headers) as response:
            async for chunk in response.aiter_raw():
                if ttfb is None and chunk:
                    ttfb = time.perf_counter() - t0
                digest.update(chunk)
            latency = time.perf_counter() - t0
            return RequestResult(
                index,
                pick,
                stream,
                response.status_code,
                latency,
                ttfb if stream else None,
                digest.hexdigest(),
                response.headers.get("x-guardrail-action"),
            )
    except httpx.HTTPError as exc:
        return RequestResult(
            index,
            pick,
            stream,
            0,
            time.perf_counter() - t0,
            None,
            "",
            None,
            error=f"{type(exc).__name__}: {exc}",
        )


async def run_load(
    base_url: str,
    picks: Sequence[int],
    streams: Sequence[bool],
    concurrency: int,
    *,
    timeout_s: float = 120.0,
    rss_every_s: float = 0.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> LoadRun:
    """Send ``len(picks)`` requests with ``concurrency`` workers; optionally sample RSS.

    With ``transport`` (an ``httpx.ASGITransport``) the app is called in-process, no sockets.
    """
    if len(picks) != len(streams):
        raise ValueError("picks and streams must have the same length")
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    results: list[RequestResult] = []
    next_index = 0
    rss: list[float] = []
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=httpx.Timeout(timeout_s), transport=transport
    ) as client:

        async def worker() -> None:
            nonlocal next_index
            while next_index < len(picks):
                i = next_index
                next_index += 1  # no await in between: the event loop makes this atomic
                results.append(await _one(client, i, picks[i], streams[i]))

        stop = asyncio.Event()
        sampler = (
            asyncio.create_task(_sample_loop(base_url, rss, rss_every_s, stop))
            if rss_every_s > 0
            else None
        )
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        stop.set()
        if sampler is not None:
            await sampler
    results.sort(key=lambda r: r.index)
    return LoadRun(results, wall, rss)


async def sample_rss(client: httpx.AsyncClient) -> float:
    """The server's resident memory in MiB (its ``/_bench/rss`` probe)."""
    response = await client.get("/_bench/rss")
    return float(response.json()["rss_mib"])


async def _sample_loop(
    base_url: str, out: list[float], every_s: float, stop: asyncio.Event
) -> None:
    # Its own connection: a sample must not wait behind the load's full connection pool.
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
        while not stop.is_set():
            out.append(await sample_rss(client))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)
        out.append(await sample_rss(client))
