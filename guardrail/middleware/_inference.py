"""Classification off the event loop: a bounded worker pool that can micro-batch requests.

Requests queue their texts; at most ``max_concurrency`` worker threads run the classifier.
A worker takes everything queued when it becomes free (up to ``max_batch`` texts) into one
``classify_batch`` call, so under load concurrent requests share a batch without anyone
waiting for a batch to fill: an idle pool starts on the first request at once. With
``max_batch`` 1 (the middleware's default) a worker takes one request's texts at a time, so
concurrent requests run on parallel workers and each is answered as soon as its own texts
are done. The classifier must be thread-safe (the ``Classifier`` Protocol says so).

Two queues: work a client is waiting for (a JSON body, a stream's hold-back window) goes
first; ``background`` work (a released stream classified in full after its last byte, for
metrics and logs only) runs when no such work is queued, or once it has waited half of its
deadline. Under stream load the end-of-stream classifications are about half of all
classifier work, and in one FIFO queue a held-back stream waited behind them for nothing.
Without the promotion, background work starved under sustained load and ran out its
deadline (the finished streams kept only their window's verdict), which bought throughput
by not doing the work; with it, all of it is done and a burst still goes to waiting clients
first.

``background_workers`` bounds how many workers run background work at once, unless it is
late; work a client waits for may always use every worker. The middleware sets it to half
the workers (at least one) when the classifier runs in worker processes: nobody waits for
background work, and each worker process running it competes for the cores with the event
loop that is writing streams out. On 2 cores at 32 clients, in rounds of 12,000 unheld
streams, 2 worker processes kept 0.849x of the unguarded throughput this way and 0.757x
without the bound (the finished streams' classifications then ran about 0.45 s after their
last byte instead of 15 ms). With inference threads the bound cost throughput (0.686x vs
0.740x: the late work then competes for the interpreter lock in bursts), so there it is
the number of workers, i.e. no bound (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from guardrail.classification import Classification, Classifier, StreamReader, StreamReading
from guardrail.outcome import SkipReason

__all__ = ["InferencePool", "InferenceResult"]

_log = logging.getLogger("guardrail.middleware")

#: A background job goes ahead of waiting clients once it has waited this share of its
#: deadline, so it is done in time unless the classifier cannot keep up at all.
_PROMOTE_AFTER = 0.5


@dataclass(frozen=True, slots=True)
class InferenceResult:
    """Classifications of the texts asked for, or why there are none, and the time it took.

    ``texts``: for a stream read by the classifier (``classify_stream``), the texts it found.
    """

    classifications: tuple[Classification, ...]
    skipped: SkipReason | None
    seconds: float
    texts: tuple[str, ...] = ()


_Answer = list[Classification] | StreamReading


@dataclass(slots=True)
class _Job:
    texts: Sequence[str]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[_Answer]
    background: bool = False
    promote_at: float = 0.0  # background only: perf_counter time it goes ahead of the rest
    stream: tuple[str, bytes] | None = None  # (adapter, raw bytes) for classify_stream


def _settle(job: _Job, result: _Answer | BaseException) -> None:
    # Runs on the job's event loop; the waiter may have timed out and cancelled meanwhile.
    if job.future.done():
        return
    if isinstance(result, BaseException):
        job.future.set_exception(result)
    else:
        job.future.set_result(result)


def _read_skip(reason: str | None) -> SkipReason | None:
    """A stream reader's reason as a skip reason; one the outcome does not know is an error."""
    if reason is None:
        return None
    if reason == "unsupported":
        return "unsupported"
    return "too_large" if reason == "too_large" else "error"


def _deliver(job: _Job, result: _Answer | BaseException) -> None:
    # A closed event loop raises RuntimeError: its waiter is gone, nobody needs the result.
    with contextlib.suppress(RuntimeError):
        job.loop.call_soon_threadsafe(_settle, job, result)


class InferencePool:
    """Shared by all requests of one middleware; safe to use from several event loops."""

    def __init__(
        self,
        classifier: Classifier,
        *,
        max_concurrency: int,
        max_batch: int,
        background_workers: int | None = None,
    ) -> None:
        self._classifier = classifier
        # Asked once: a runtime Protocol check costs microseconds, and this is asked per stream.
        self._reads_streams = isinstance(classifier, StreamReader)
        self._max_concurrency = max_concurrency
        self._max_batch = max_batch
        # None: background work may use every worker (see the module docstring).
        self._background_cap = max(1, min(background_workers or max_concurrency, max_concurrency))
        self._start()

    def _start(self) -> None:
        # Also run in a forked child (gunicorn --preload): threads and locks do not survive
        # fork, so a child starts with a pool of its own.
        self._pid = os.getpid()
        self._executor = ThreadPoolExecutor(
            self._max_concurrency, thread_name_prefix="guardrail-infer"
        )
        self._lock = threading.Lock()
        self._urgent: deque[_Job] = deque()
        self._background: deque[_Job] = deque()
        self._workers = 0
        self._background_running = 0  # workers busy with background work right now

    async def classify(
        self, texts: Sequence[str], timeout: float, *, background: bool = False
    ) -> InferenceResult:
        """Classify ``texts``; on timeout or classifier error report the skip reason instead.

        ``background`` work waits while other work is queued, until it has waited half of
        ``timeout`` (see the module docstring).
        """
        return await self._run(texts, None, timeout, background)

    @property
    def reads_streams(self) -> bool:
        """Whether the classifier reads raw streams itself (``classify_stream``)."""
        return self._reads_streams

    async def classify_stream(self, adapter: str, raw: bytes, timeout: float) -> InferenceResult:
        """Background work: the classifier reads a finished stream and classifies its texts.

        ``skipped`` is also the classifier's reason when it could not read the stream.
        """
        return await self._run((), (adapter, raw), timeout, True)

    async def _run(
        self,
        texts: Sequence[str],
        stream: tuple[str, bytes] | None,
        timeout: float,
        background: bool,
    ) -> InferenceResult:
        started = time.perf_counter()
        if self._pid != os.getpid():
            self._start()
        try:
            job = self._submit(texts, background, started + _PROMOTE_AFTER * timeout, stream)
        except RuntimeError:
            # No asyncio loop (trio) or a closed pool: nothing classifies, the answer passes.
            _log.exception("guardrail could not queue a classification")
            return InferenceResult((), "error", time.perf_counter() - started)
        try:
            async with asyncio.timeout(timeout):
                answer = await job.future
        except TimeoutError:
            # The job may still be queued: a cancelled future is skipped by the worker.
            job.future.cancel()
            return InferenceResult((), "timeout", time.perf_counter() - started)
        except Exception:
            _log.exception("guardrail classifier failed; the response passes unclassified")
            return InferenceResult((), "error", time.perf_counter() - started)
        seconds = time.perf_counter() - started
        if isinstance(answer, StreamReading):
            return InferenceResult(
                answer.classifications, _read_skip(answer.skipped), seconds, answer.texts
            )
        return InferenceResult(tuple(answer), None, seconds)

    def _submit(
        self,
        texts: Sequence[str],
        background: bool,
        promote_at: float,
        stream: tuple[str, bytes] | None = None,
    ) -> _Job:
        loop = asyncio.get_running_loop()
        job = _Job(texts, loop, loop.create_future(), background, promote_at, stream)
        queue = self._background if background else self._urgent
        with self._lock:
            queue.append(job)
            # Background work beyond its share of workers waits for a running one to take it,
            # unless that one has fallen behind (the oldest job is late): then another joins.
            spawn = self._workers < self._max_concurrency and (
                not background
                or self._background_running < self._background_cap
                or self._background[0].promote_at <= time.perf_counter()
            )
            if spawn:
                self._workers += 1
        if spawn:
            try:
                self._executor.submit(self._work)
            except RuntimeError:
                with self._lock:
                    self._workers -= 1
                    queue.remove(job)
                raise
        return job

    def _take(self, done: list[_Job]) -> list[_Job]:
        """The next batch for a worker that just finished ``done``; [] lets the worker end."""
        with self._lock:
            if done and done[0].background:
                self._background_running -= 1
            jobs: list[_Job] = []
            count = 0
            late = bool(self._background) and self._background[0].promote_at <= time.perf_counter()
            if late:
                order: tuple[deque[_Job], ...] = (self._background, self._urgent)
            elif self._background_running < self._background_cap:
                order = (self._urgent, self._background)
            else:
                # Enough workers run background work; this one takes only urgent work.
                order = (self._urgent,)
            for queue in order:
                while queue:
                    job = queue[0]
                    if job.future.cancelled():
                        queue.popleft()
                        continue
                    if jobs and (
                        count + len(job.texts) > self._max_batch or job.stream or jobs[0].stream
                    ):
                        break  # a stream is read alone
                    jobs.append(queue.popleft())
                    count += len(job.texts)
                if jobs:
                    break  # a batch is all urgent or all background work
            if not jobs:
                self._workers -= 1
            elif jobs[0].background:
                self._background_running += 1
            return jobs

    def _work(self) -> None:
        jobs = self._take([])
        while jobs:
            if jobs[0].stream is not None:
                self._read(jobs[0], jobs[0].stream)  # a stream is always a batch of its own
            else:
                self._classify(jobs)
            jobs = self._take(jobs)

    def _classify(self, jobs: list[_Job]) -> None:
        texts = [t for job in jobs for t in job.texts]
        try:
            flat = self._classifier.classify_batch(texts)
            if len(flat) != len(texts):
                raise RuntimeError(
                    f"classify_batch returned {len(flat)} results for {len(texts)} texts"
                )
        except Exception as exc:  # handed to every waiter, which reports skip "error"
            for job in jobs:
                _deliver(job, exc)
            return
        at = 0
        for job in jobs:
            _deliver(job, list(flat[at : at + len(job.texts)]))
            at += len(job.texts)

    def _read(self, job: _Job, stream: tuple[str, bytes]) -> None:
        reader = self._classifier
        try:
            if not isinstance(reader, StreamReader):
                raise RuntimeError("the classifier does not read streams (classify_stream)")
            reading = reader.classify_stream(*stream)
            if not isinstance(reading, StreamReading) or len(reading.classifications) not in (
                0,
                len(reading.texts),
            ):
                raise RuntimeError("classify_stream returned no StreamReading for its texts")
        except Exception as exc:  # handed to the waiter, which reports skip "error"
            _deliver(job, exc)
            return
        _deliver(job, reading)

    def close(self) -> None:
        """Stop the worker threads once queued work is done."""
        self._executor.shutdown(wait=False, cancel_futures=True)
