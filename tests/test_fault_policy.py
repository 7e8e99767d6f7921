"""Policy faults under traffic: a policy file corrupted during hot reload, and a retry storm.

The real ``PolicyStore`` watches a real file; the real metrics count reloads and budget
exhaustion; the wrapped app counts its calls, because a retry storm is measured in upstream
calls (each one is an LLM call someone pays for).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from benchmarks._harness import REFUSAL_TEXT, KeywordClassifier, call_asgi
from benchmarks._upstream import ChatUpstream, chat_request
from guardrail import GuardrailMiddleware
from guardrail.observability import GuardrailMetrics, MetricsRecorder
from guardrail.policy import PolicyStore, parse_policy

pytestmark = pytest.mark.anyio

BLOCK_REFUSALS = """\
version: 1
name: block-refusals
rules:
  - id: block-all
    action: block
    block: {status: 451, message: "Withheld by policy."}
"""
PASS_ALL = "version: 1\nname: pass-all\nrules: []\n"
CORRUPTIONS = [
    b"version: 1\nrules:\n  - id: block-all\n    action: blok\n",  # unknown action
    b"version: 1\nrules: [\n",  # truncated mid-write
    b"version: 1\nname: \xff\xfe\x00 not utf-8\n",
    b"",  # emptied by a half-finished editor save
]


def _stack(provider: Any, metrics: GuardrailMetrics) -> tuple[ChatUpstream, Any]:
    upstream = ChatUpstream([REFUSAL_TEXT], delay_s=0.0)
    app = GuardrailMiddleware(
        upstream,
        policy=provider,
        classifier=KeywordClassifier(),
        recorder=MetricsRecorder(metrics=metrics),
    )
    return upstream, app


def _reloads(registry: CollectorRegistry, result: str) -> float:
    return registry.get_sample_value("guardrail_policy_reloads_total", {"result": result}) or 0.0


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=["bad-action", "truncated", "binary", "empty"])
async def test_corrupted_reload_keeps_last_good_policy(tmp_path: Path, corrupt: bytes) -> None:
    """A corrupted file is rejected and counted; requests keep the last good policy."""
    path = tmp_path / "policy.yaml"
    path.write_text(BLOCK_REFUSALS, encoding="utf-8")
    registry = CollectorRegistry()
    metrics = GuardrailMetrics(registry=registry)
    store = PolicyStore(path, metrics=metrics)
    _, app = _stack(store, metrics)
    assert (await call_asgi(app, chat_request("q"))).status == 451

    path.write_bytes(corrupt)
    assert store.reload() is False
    assert _reloads(registry, "failure") == 1.0
    got = await call_asgi(app, chat_request("q"))
    assert got.status == 451  # still the last good policy
    assert b"Withheld by policy." in got.body

    path.write_text(PASS_ALL, encoding="utf-8")
    assert store.reload() is True
    assert _reloads(registry, "success") == 1.0
    got = await call_asgi(app, chat_request("q"))
    assert got.status == 200
    assert json.loads(got.body)["choices"][0]["message"]["content"] == REFUSAL_TEXT


async def test_watcher_rejects_corruption_while_requests_flow(tmp_path: Path) -> None:
    """A file flipping between valid and corrupt under load only ever yields valid answers."""
    path = tmp_path / "policy.yaml"
    path.write_text(BLOCK_REFUSALS, encoding="utf-8")
    registry = CollectorRegistry()
    metrics = GuardrailMetrics(registry=registry)
    store = PolicyStore(path, interval=0.01, watch=True, metrics=metrics)
    upstream, app = _stack(store, metrics)
    stop = threading.Event()

    def flip() -> None:
        versions = [CORRUPTIONS[1], PASS_ALL.encode(), CORRUPTIONS[0], BLOCK_REFUSALS.encode()]
        i = 0
        while not stop.is_set():
            path.write_bytes(versions[i % len(versions)])
            i += 1
            time.sleep(0.03)

    flipper = threading.Thread(target=flip, daemon=True)
    store.start()
    flipper.start()
    try:
        statuses: list[int] = []
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            results = await asyncio.gather(*(call_asgi(app, chat_request("q")) for _ in range(8)))
            assert all(r.error is None for r in results)
            statuses += [r.status for r in results]
            await asyncio.sleep(0.005)
    finally:
        stop.set()
        flipper.join(timeout=2)
        store.close()
    assert set(statuses) <= {200, 451}
    assert upstream.calls == len(statuses)  # block never retries: one call per request
    assert _reloads(registry, "failure") >= 1.0
    assert _reloads(registry, "success") >= 1.0


RETRY_STORM = """\
version: 1
name: storm
retry_budget: {per_minute: 1, burst: 5}
rules:
  - id: retry-refusals
    action: retry
    retry:
      note: "The user is allowed to ask this."
      max_attempts: 3
"""


async def test_retry_storm_is_held_by_the_budget() -> None:
    """When every answer is a refusal, retries stop at the budget: upstream calls stay bounded."""
    registry = CollectorRegistry()
    upstream, app = _stack(parse_policy(RETRY_STORM), GuardrailMetrics(registry=registry))
    n = 60
    results = await asyncio.gather(*(call_asgi(app, chat_request(f"q{i}")) for i in range(n)))
    assert all(r.status == 200 and r.error is None for r in results)
    for r in results:  # every client still gets the (refusing) answer, never an error
        assert json.loads(r.body)["choices"][0]["message"]["content"] == REFUSAL_TEXT
    retries = upstream.calls - n
    # burst 5 tokens (+ at most one refilled at 1/minute) bound the retries of all 60 requests.
    assert 1 <= retries <= 6, upstream.calls
    attempts = [int(r.headers["x-guardrail-attempts"]) for r in results]
    assert sum(a - 1 for a in attempts) == retries
    exhausted = registry.get_sample_value(
        "guardrail_retry_budget_exhausted_total", {"rule": "retry-refusals"}
    )
    assert exhausted is not None and exhausted >= n - retries
