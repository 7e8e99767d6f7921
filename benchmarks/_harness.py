"""Fault injectors and an in-process ASGI driver, shared by the fault tests and the soak run.

The classifier doubles here are deliberately *not* models: ``KeywordClassifier`` gives a
deterministic verdict from a phrase list so that a fault test knows in advance which
responses are refusals (a retry storm needs "every response is a refusal", exactly), and
the ``Raising``/``Slow`` wrappers inject the failures the middleware must survive. Tests of
the real model's behaviour use the real model.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from guardrail.classification import Classification, Classifier
from guardrail.outcome import GuardOutcome

__all__ = [
    "REFUSAL_TEXT",
    "Captured",
    "FixedApp",
    "KeywordClassifier",
    "ListRecorder",
    "RaisingClassifier",
    "SlowClassifier",
    "call_asgi",
]

REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
_REFUSAL_MARKERS = ("i'm sorry", "i can't", "i cannot", "i won't")

_COMPLIANCE = Classification("compliance", 0.02, "none", "none", 0.0)
_REFUSAL = Classification("full_refusal", 0.98, "should_not", "information_hazards", 0.9)


class KeywordClassifier:
    """Deterministic test double: full_refusal when a refusal phrase appears, else compliance."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def classify(self, text: str) -> Classification:
        return self.classify_batch([text])[0]

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]:
        with self._lock:
            self.calls += 1
        return [
            _REFUSAL if any(m in t.lower() for m in _REFUSAL_MARKERS) else _COMPLIANCE
            for t in texts
        ]


class FixedApp:
    """An ASGI app answering every request with the same bytes (status 200), counting calls.

    ``piece_bytes`` sends the body in pieces of that size, as a real server's reads would
    arrive, so stream parsers see splits; None sends it in one message.
    """

    def __init__(
        self,
        body: bytes,
        content_type: bytes = b"application/json",
        *,
        piece_bytes: int | None = None,
    ) -> None:
        self.body = body
        self.content_type = content_type
        self.piece_bytes = piece_bytes
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", self.content_type)],
            }
        )
        size = self.piece_bytes or max(1, len(self.body))
        pieces = [self.body[i : i + size] for i in range(0, len(self.body), size)] or [b""]
        for i, piece in enumerate(pieces):
            await send(
                {"type": "http.response.body", "body": piece, "more_body": i < len(pieces) - 1}
            )


class RaisingClassifier:
    """Every call raises, as a corrupted session or an out-of-memory inference would."""

    def __init__(self, exc: Exception | None = None) -> None:
        self.exc = exc or RuntimeError("injected classifier failure")
        self.calls = 0

    def classify(self, text: str) -> Classification:
        return self.classify_batch([text])[0]

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]:
        self.calls += 1
        raise self.exc


class SlowClassifier:
    """Wraps a classifier and sleeps first: a stalled inference thread."""

    def __init__(self, inner: Classifier, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s

    def classify(self, text: str) -> Classification:
        return self.classify_batch([text])[0]

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]:
        time.sleep(self.delay_s)
        return self.inner.classify_batch(texts)


@dataclass
class ListRecorder:
    """Collects every outcome (the Recorder Protocol)."""

    outcomes: list[GuardOutcome] = field(default_factory=list)

    def record(self, outcome: GuardOutcome) -> None:
        self.outcomes.append(outcome)


@dataclass
class Captured:
    """What a client received from one in-process ASGI call."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: list[bytes] = field(default_factory=list)
    chunk_times: list[float] = field(default_factory=list)
    error: BaseException | None = None


Receive = Callable[[], Awaitable[dict[str, Any]]]


async def call_asgi(
    app: Any,
    body: bytes,
    *,
    path: str = "/v1/chat/completions",
    headers: Sequence[tuple[bytes, bytes]] = ((b"content-type", b"application/json"),),
    disconnect_after_chunks: int | None = None,
    disconnect_after_s: float | None = None,
    scope_extra: dict[str, Any] | None = None,
    got: Captured | None = None,
) -> Captured:
    """Drive ``app`` with one POST like an ASGI server would; never raises.

    ``disconnect_after_chunks``: after that many body chunks the client goes away: ``send``
    raises ``OSError`` (what uvicorn's h11 protocol does on a closed transport) and
    ``receive`` answers ``http.disconnect``; ``disconnect_after_s`` does the same on a clock.
    Pass ``got`` to watch what arrives while the call is still running.
    """
    got = Captured() if got is None else got
    gone = asyncio.Event()
    if disconnect_after_s is not None:
        asyncio.get_running_loop().call_later(disconnect_after_s, gone.set)
    sent_request = False
    t0 = time.perf_counter()

    async def receive() -> dict[str, Any]:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if gone.is_set():
            raise OSError("client disconnected")
        if message["type"] == "http.response.start":
            got.status = message["status"]
            got.headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            if chunk:
                got.chunks.append(chunk)
                got.chunk_times.append(time.perf_counter() - t0)
                got.body += chunk
            if disconnect_after_chunks is not None and len(got.chunks) >= disconnect_after_chunks:
                gone.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-length", str(len(body)).encode()), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        **(scope_extra or {}),
    }
    try:
        await app(scope, receive, send)
    except Exception as exc:  # the test decides whether this was the right thing to do
        got.error = exc
    gone.set()
    return got
