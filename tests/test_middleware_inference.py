"""The inference pool: off the event loop, bounded, optionally micro-batched, with deadlines."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import anyio
import pytest
from test_middleware_doubles import ANSWER, REFUSAL, FakeClassifier

from guardrail.classification import Classification
from guardrail.middleware._inference import InferencePool


@pytest.mark.anyio
async def test_classification_runs_in_worker_threads() -> None:
    """Classification happens in a guardrail worker thread, never on the event loop thread."""
    classifier = FakeClassifier()
    pool = InferencePool(classifier, max_concurrency=2, max_batch=8)
    result = await pool.classify([REFUSAL, ANSWER], timeout=2)
    assert [c.verdict for c in result.classifications] == ["full_refusal", "compliance"]
    assert result.skipped is None and result.seconds > 0
    assert classifier.threads and all(t.startswith("guardrail-infer") for t in classifier.threads)
    assert threading.current_thread().name not in classifier.threads
    pool.close()


@pytest.mark.anyio
async def test_concurrent_requests_share_batches() -> None:
    """While the one worker is busy, queued requests are served together in one batch."""
    classifier = FakeClassifier(delay=0.05)
    pool = InferencePool(classifier, max_concurrency=1, max_batch=64)
    results: list[str] = []

    async def one(i: int) -> None:
        result = await pool.classify([f"{REFUSAL} {i}"], timeout=5)
        results.append(result.classifications[0].verdict)

    async with anyio.create_task_group() as group:
        for i in range(10):
            group.start_soon(one, i)
    assert results == ["full_refusal"] * 10
    assert sum(len(b) for b in classifier.batches) == 10
    assert len(classifier.batches) == 2  # the first request alone, then the nine that queued
    pool.close()


@pytest.mark.anyio
async def test_without_batching_concurrent_requests_run_on_parallel_workers() -> None:
    """With max_batch 1 every call holds one request's texts and busy workers run side by side."""
    classifier = FakeClassifier(delay=0.05)
    pool = InferencePool(classifier, max_concurrency=3, max_batch=1)
    async with anyio.create_task_group() as group:
        for i in range(9):
            group.start_soon(pool.classify, [f"{ANSWER} {i}"], 5)
        group.start_soon(pool.classify, [REFUSAL, ANSWER], 5)  # one request, two choices
    assert sorted(len(b) for b in classifier.batches) == [1] * 9 + [2]
    assert len(classifier.threads) == 3
    pool.close()


@pytest.mark.anyio
async def test_batch_size_is_bounded() -> None:
    """No batch holds more than max_batch texts."""
    classifier = FakeClassifier(delay=0.02)
    pool = InferencePool(classifier, max_concurrency=1, max_batch=3)
    async with anyio.create_task_group() as group:
        for _ in range(9):
            group.start_soon(pool.classify, [ANSWER], 5)
    assert max(len(b) for b in classifier.batches) <= 3
    assert sum(len(b) for b in classifier.batches) == 9
    pool.close()


@pytest.mark.anyio
async def test_timeout_and_error_are_reported() -> None:
    """A slow classifier gives 'timeout', a raising one 'error'; neither raises."""
    slow = InferencePool(FakeClassifier(delay=0.2), max_concurrency=1, max_batch=4)
    assert (await slow.classify([ANSWER], timeout=0.02)).skipped == "timeout"
    broken = InferencePool(FakeClassifier(fail=True), max_concurrency=1, max_batch=4)
    result = await broken.classify([ANSWER], timeout=1)
    assert result.skipped == "error" and result.classifications == ()
    slow.close()
    broken.close()


@pytest.mark.anyio
async def test_timed_out_jobs_are_not_classified_later() -> None:
    """A job whose waiter gave up while queued is dropped, not run for nobody."""
    classifier = FakeClassifier(delay=0.15)
    pool = InferencePool(classifier, max_concurrency=1, max_batch=1)
    async with anyio.create_task_group() as group:
        group.start_soon(pool.classify, ["first"], 5)
        await anyio.sleep(0.02)
        group.start_soon(pool.classify, ["abandoned"], 0.01)
    await anyio.sleep(0.2)
    assert ["abandoned"] not in classifier.batches
    pool.close()


@pytest.mark.anyio
async def test_closed_pool_reports_error() -> None:
    """A pool used after close() reports skip 'error' instead of raising into the request."""
    pool = InferencePool(FakeClassifier(), max_concurrency=1, max_batch=4)
    pool.close()
    result = await pool.classify([ANSWER], timeout=1)
    assert result.skipped == "error" and result.classifications == ()


@pytest.mark.anyio
async def test_waiting_clients_go_before_background_work() -> None:
    """Queued urgent work runs before background work queued earlier, which still runs."""
    classifier = FakeClassifier(delay=0.05)
    pool = InferencePool(classifier, max_concurrency=1, max_batch=1)
    async with anyio.create_task_group() as group:
        group.start_soon(pool.classify, ["busy"], 5)
        await anyio.sleep(0.01)  # the one worker is now busy with "busy"
        for i in range(3):
            group.start_soon(lambda i=i: pool.classify([f"late {i}"], 5, background=True))
        await anyio.sleep(0.01)
        group.start_soon(pool.classify, ["urgent"], 5)
    assert classifier.batches == [["busy"], ["urgent"], ["late 0"], ["late 1"], ["late 2"]]
    pool.close()


@pytest.mark.anyio
async def test_background_work_goes_first_once_it_waited_half_its_deadline() -> None:
    """Background work is not starved: past half its deadline it runs before urgent work."""
    classifier = FakeClassifier(delay=0.15)
    pool = InferencePool(classifier, max_concurrency=1, max_batch=1)
    async with anyio.create_task_group() as group:
        group.start_soon(pool.classify, ["busy"], 5)
        await anyio.sleep(0.01)
        group.start_soon(lambda: pool.classify(["late"], 0.24, background=True))
        await anyio.sleep(0.01)
        group.start_soon(pool.classify, ["urgent"], 5)
    assert classifier.batches == [["busy"], ["late"], ["urgent"]]
    pool.close()


class _Overlap(FakeClassifier):
    """Counts how many calls run at once, per kind of text ("bg" or not)."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay=delay)
        self.running: dict[bool, int] = {True: 0, False: 0}
        self.most: dict[bool, int] = {True: 0, False: 0}
        self.beside_background: list[str] = []  # urgent texts that started during background

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]:
        kind = texts[0].startswith("bg")
        with self._lock:
            self.running[kind] += 1
            self.most[kind] = max(self.most[kind], self.running[kind])
            if not kind and self.running[True]:
                self.beside_background.append(texts[0])
        try:
            return super().classify_batch(texts)
        finally:
            with self._lock:
                self.running[kind] -= 1


@pytest.mark.anyio
async def test_background_work_runs_on_at_most_its_share_of_the_workers() -> None:
    """With 2 workers and background_workers=1, background work runs one call at a time and
    all of it is done, while work a client waits for still gets the other worker at once."""
    classifier = _Overlap(delay=0.03)
    pool = InferencePool(classifier, max_concurrency=2, max_batch=1, background_workers=1)
    async with anyio.create_task_group() as group:
        for i in range(6):
            group.start_soon(lambda i=i: pool.classify([f"bg {i}"], 5, background=True))
        await anyio.sleep(0.01)
        group.start_soon(pool.classify, ["now"], 5)
    assert classifier.most == {True: 1, False: 1}
    assert sorted(b[0] for b in classifier.batches if b[0].startswith("bg")) == [
        f"bg {i}" for i in range(6)
    ]
    assert classifier.beside_background == ["now"]  # it did not wait for the background
    pool.close()


@pytest.mark.anyio
async def test_late_background_work_may_use_every_worker() -> None:
    """Background work past half its deadline is not held to its share of the workers."""
    classifier = _Overlap(delay=0.12)
    pool = InferencePool(classifier, max_concurrency=2, max_batch=1, background_workers=1)
    async with anyio.create_task_group() as group:
        for i in range(3):
            group.start_soon(lambda i=i: pool.classify([f"bg {i}"], 0.2, background=True))
        await anyio.sleep(0.11)  # all three are late (past 0.1 s) once the first call ends
        group.start_soon(pool.classify, ["now"], 5)  # a second worker starts and takes them
    assert classifier.most[True] == 2
    pool.close()


@pytest.mark.anyio
async def test_without_a_bound_background_work_uses_every_worker() -> None:
    """By default (inference threads) background work may run on all workers at once."""
    classifier = _Overlap(delay=0.05)
    pool = InferencePool(classifier, max_concurrency=2, max_batch=1)
    async with anyio.create_task_group() as group:
        for i in range(4):
            group.start_soon(lambda i=i: pool.classify([f"bg {i}"], 5, background=True))
    assert classifier.most[True] == 2
    pool.close()


def test_the_middleware_bounds_background_work_only_for_worker_processes() -> None:
    """With inference threads every worker may take after-the-last-byte work."""
    from guardrail.middleware import GuardrailMiddleware

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("not called")

    guarded = GuardrailMiddleware(app, classifier=FakeClassifier(), max_concurrency=4)
    assert guarded._services.pool._background_cap == 4
