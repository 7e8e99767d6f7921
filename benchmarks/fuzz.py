"""Mutation fuzzing of the response path: corrupted real bodies through adapters and middleware.

Valid chat-completion, Responses and Anthropic bodies (JSON and SSE) built from real XSTest
answers are mutated byte by byte (flips, inserts, deletions, truncation, splices, invalid
UTF-8, deep nesting) and fed to

1. every adapter's ``response_texts`` and stream collector (must return, never raise), and
2. the whole middleware in front of an app that answers with the mutated bytes, under the
   monitor-only policy: the guarded client must receive exactly the unguarded bytes.

    python -m benchmarks.fuzz [--iterations 20000] [--seed 0]

Crashes are written to ``benchmarks/results/fuzz.json`` with the input that caused them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks._common import load_completions, write_result
from benchmarks._harness import FixedApp, KeywordClassifier, ListRecorder, call_asgi
from benchmarks._upstream import chat_request

__all__ = ["fuzz", "main"]

_ROUTES = {
    "openai_chat": "/v1/chat/completions",
    "responses": "/v1/responses",
    "anthropic": "/v1/messages",
}


def _valid_bodies(text: str) -> list[tuple[str, bool, bytes]]:
    """(adapter, is_stream, body) for one answer in every supported wire format."""
    from guardrail.middleware.adapters import ADAPTERS, RequestInfo

    request = RequestInfo(data={}, model="fuzz-model")
    out = []
    for name in _ROUTES:
        for stream in (False, True):
            rendered = ADAPTERS[name].render_replacement(request, text, stream=stream)
            out.append((name, stream, rendered.body))
    return out


def _mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(8)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip a bit
            i = min(pos, len(buf) - 1)
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert hostile bytes
            buf[pos:pos] = rng.choice(
                [
                    b"\xff",
                    b"\xc3",
                    b"\xed\xa0\x80",
                    b"\x00",
                    b'"',
                    b"{",
                    b"[",
                    b"\r",
                    b"\n\n",
                    b"data: ",
                    b"\\ud800",
                    b'{"choices":' * 3,
                    b"[" * 2000,
                ]
            )
        elif op == 2:  # delete a span
            del buf[pos : pos + rng.randint(1, 16)]
        elif op == 3:  # truncate
            del buf[pos:]
        elif op == 4:  # duplicate a span
            span = bytes(buf[pos : pos + rng.randint(1, 64)])
            buf[pos:pos] = span
        elif op == 5:  # replace a JSON value type
            buf = bytearray(
                bytes(buf).replace(b'"text"', rng.choice([b"[]", b"{}", b"1", b"null"]), 1)
            )
        elif op == 6:  # deep nesting where a value starts
            at = [j for j in range(len(buf) - 1) if buf[j : j + 2] == b'":']
            if at:
                j = rng.choice(at) + 2
                buf[j:j] = b"[" * rng.choice([8, 3000])
        else:  # swap two halves
            buf = buf[pos:] + buf[:pos]
    return bytes(buf)


def _check_adapter(name: str, stream: bool, body: bytes) -> bool:
    """Run the adapter over ``body``; True when it still found assistant text in it."""
    from guardrail.middleware._sse import SseParser
    from guardrail.middleware.adapters import ADAPTERS

    adapter = ADAPTERS[name]
    if not stream:
        result = adapter.response_texts(body)
        assert result is None or all(isinstance(t, str) for t in result.texts)
        return bool(result and result.texts)
    collector = adapter.stream_collector()
    assert collector is not None
    parser = SseParser()
    for event in parser.feed(body[: len(body) // 2]) + parser.feed(
        body[len(body) // 2 :], final=True
    ):
        collector.feed(event)
    assert all(isinstance(t, str) for t in collector.texts())
    return bool(collector.texts()) and not collector.unsupported


async def _check_middleware(
    app_factory: Callable[[Any], Any], name: str, stream: bool, body: bytes
) -> None:
    content_type = b"text/event-stream" if stream else b"application/json"
    # In pieces, like a real server's reads, so the SSE parser sees splits.
    upstream = FixedApp(body, content_type, piece_bytes=97)
    request = chat_request("hello", stream=stream)
    plain = await call_asgi(upstream, request, path=_ROUTES[name])
    got = await call_asgi(app_factory(upstream), request, path=_ROUTES[name])
    assert got.error is None, f"middleware raised {got.error!r}"
    assert got.status == plain.status, (got.status, plain.status)
    assert got.body == plain.body, "guarded bytes differ from unguarded bytes"


def fuzz(iterations: int, seed: int = 0, *, middleware_every: int = 4) -> dict[str, Any]:
    """Run the fuzzer; returns counts and up to 20 failing inputs (repr, truncated)."""
    from guardrail import GuardrailMiddleware
    from guardrail.policy import parse_policy

    rng = random.Random(seed)
    texts = load_completions(limit=300)
    policy = parse_policy("version: 1\nname: monitor\nrules: []\n")
    classifier = KeywordClassifier()

    def app_factory(upstream: Any) -> Any:
        return GuardrailMiddleware(
            upstream, policy=policy, classifier=classifier, recorder=ListRecorder()
        )

    failures: Counter[str] = Counter()
    understood = 0  # mutated bodies the adapter still read text from: the deep paths ran
    examples: list[dict[str, str]] = []
    t0 = time.perf_counter()

    def record(where: str, name: str, stream: bool, data: bytes, exc: Exception) -> None:
        failures[f"{where}:{name}:{'sse' if stream else 'json'}:{type(exc).__name__}"] += 1
        if len(examples) < 20:
            examples.append(
                {
                    "where": where,
                    "adapter": name,
                    "stream": str(stream),
                    "error": repr(exc)[:300],
                    "input": repr(data[:300]),
                }
            )

    async def run() -> None:
        nonlocal understood
        for i in range(iterations):
            name, stream, body = rng.choice(_valid_bodies(rng.choice(texts)[:2000]))
            mutated = _mutate(body, rng)
            try:
                understood += _check_adapter(name, stream, mutated)
            except Exception as exc:
                record("adapter", name, stream, mutated, exc)
            if i % middleware_every == 0:
                try:
                    await _check_middleware(app_factory, name, stream, mutated)
                except Exception as exc:
                    failures[
                        f"middleware:{name}:{'sse' if stream else 'json'}:{type(exc).__name__}"
                    ] += 1
                    if len(examples) < 20:
                        examples.append(
                            {
                                "where": "middleware",
                                "adapter": name,
                                "stream": str(stream),
                                "error": repr(exc)[:300],
                                "input": repr(mutated[:300]),
                            }
                        )

    asyncio.run(run())
    return {
        "iterations": iterations,
        "middleware_checks": (iterations + middleware_every - 1) // middleware_every,
        "seed": seed,
        "seconds": time.perf_counter() - t0,
        "mutants_still_understood": understood,
        "failures": dict(failures),
        "failure_examples": examples,
        "clean": not failures,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="mutation fuzzing of adapters and middleware")
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = fuzz(args.iterations, args.seed)
    path = write_result("fuzz", result)
    print(json.dumps({k: v for k, v in result.items() if k != "failure_examples"}, indent=1))
    print(f"-> {path}")
    return 0 if result["clean"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
