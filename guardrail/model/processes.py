"""``ProcessClassifier``: the bundled model run in worker processes instead of threads.

Why: in a server, inference threads share the interpreter lock with the event loop. The
model itself runs without it, but tokenising, windowing and decoding hold it, and each
time the event loop lets go of it for a socket write an inference thread may take it, so
every stream's chunks wait behind classifications. A worker process has an interpreter of
its own; the server's thread that waits for it holds the lock only to encode the texts and
decode the answer. It can also read a finished stream (``classify_stream``), so the event
loop need not parse it. At 32 clients on 2 cores, side by side in rounds of 12,000 unheld
streams, a server with 2 worker processes kept 0.79-0.85x of the unguarded throughput where
inference threads kept 0.62-0.74x; JSON answers and held-back streams about as many
(benchmarks/RESULTS.md).

Each worker (``guardrail.model._worker``) loads the model itself and answers one request
at a time over a private socket pair; a call takes the worker its first text prefers if
that one is free, any free one otherwise, and waits when all are busy. A worker that dies
or hangs past ``call_timeout`` fails that call (the middleware then fails open) and is
replaced before the next one. Window prefixes (for streams held back by the model's first
window) are computed here, from the tokenizer alone. After a fork (gunicorn ``--preload``)
the child starts workers of its own.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tokenizers import Tokenizer

from guardrail._resources import bundled_model_dir
from guardrail.classification import Classification, StreamReading
from guardrail.errors import ModelLoadError
from guardrail.model._channel import WorkerChannel, WorkerError
from guardrail.model._files import CONFIG_FILE, TOKENIZER_FILE, verify_model_dir
from guardrail.model.config import ModelConfig, with_tail_threshold
from guardrail.model.windowing import Windower, coerce_text

__all__ = ["ProcessClassifier", "WorkerError"]

_log = logging.getLogger("guardrail.model")

#: Characters of a call's first text that choose its preferred worker.
_AFFINITY_CHARS = 16

#: Live instances: after a fork their lock is renewed, since a thread of the parent may have
#: held it at that moment and would never release it in the child.
_INSTANCES: weakref.WeakSet[ProcessClassifier] = weakref.WeakSet()


def _renew_locks() -> None:
    for instance in list(_INSTANCES):
        instance._cond = threading.Condition()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_locks)


class ProcessClassifier:
    """Classify in ``processes`` worker processes (thread-safe; implements ``Classifier``).

    ``threads`` is each worker's onnxruntime thread count; ``tail_threshold`` is passed to
    every worker's ``RefusalClassifier.load``. ``call_timeout`` bounds one call; a worker
    that takes longer is killed and replaced. Use :meth:`close` (or ``with``) to stop
    the workers; they also stop on their own when this process exits.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        processes: int = 2,
        threads: int = 1,
        *,
        verify_checksums: bool = True,
        start_timeout: float = 60.0,
        call_timeout: float = 30.0,
        tail_threshold: float | None = None,
    ) -> None:
        for name, value in (("processes", processes), ("threads", threads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelLoadError(f"{name} must be a positive integer, got {value!r}")
        self.model_dir = bundled_model_dir() if model_dir is None else Path(model_dir)
        self.checksums = verify_model_dir(self.model_dir, verify_checksums=verify_checksums)
        # Checked here, before any worker starts, so a bad value fails once and clearly.
        config = with_tail_threshold(
            ModelConfig.from_file(self.model_dir / CONFIG_FILE), tail_threshold
        )
        try:
            tokenizer = Tokenizer.from_file(str(self.model_dir / TOKENIZER_FILE))
            self._windower = Windower(tokenizer, config)
        except Exception as exc:
            raise ModelLoadError(f"cannot load {self.model_dir / TOKENIZER_FILE}: {exc}") from exc
        self.config = config
        self.processes = processes
        self.threads = threads
        self._start_timeout = start_timeout
        self._call_timeout = call_timeout
        self._cond = threading.Condition()
        self._closed = False
        _INSTANCES.add(self)
        self._start_all()

    def _channel(self) -> WorkerChannel:
        """Start one worker (its model loads in the background; see ``wait_ready``)."""
        # Always the parent's effective threshold, so a worker reports what the parent does.
        return WorkerChannel(
            self.model_dir, self.threads, self._start_timeout, self.config.tail_refusal_threshold
        )

    def _start_all(self) -> None:
        self._pid = os.getpid()
        workers: list[WorkerChannel] = []
        try:
            # All start at once and load their models side by side.
            for _ in range(self.processes):
                workers.append(self._channel())
            for worker in workers:
                worker.wait_ready()
        except BaseException:
            for worker in workers:
                worker.stop()
            raise
        # One slot per worker; None: a worker that failed and could not be replaced.
        self._slots: list[WorkerChannel | None] = list(workers)
        self._busy = [False] * len(workers)

    @property
    def pids(self) -> tuple[int, ...]:
        """Process ids of the running workers."""
        return tuple(w.process.pid for w in self._slots if w is not None)

    def window_prefix(self, text: str | bytes) -> str | None:
        """As ``RefusalClassifier.window_prefix``, computed in this process."""
        return self._windower.head_prefix(text)

    def classify(self, text: str) -> Classification:
        coerce_text(text)
        return self.classify_batch((text,))[0]

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]:
        """Classify ``texts`` in a free worker; results are in input order."""
        if isinstance(texts, str | bytes):
            raise TypeError("classify_batch expects a sequence of texts, not a single text")
        items: list[str] = []
        for index, text in enumerate(texts):
            try:
                items.append(coerce_text(text))
            except TypeError as exc:
                raise TypeError(f"texts[{index}]: {exc}") from None
        # Texts that begin alike go to the same worker when it is free: a held-back stream's
        # window and its finished text then meet the same head memo (see window_prefix).
        reply = self._call(("texts", items), hash(items[0][:_AFFINITY_CHARS]) if items else 0)
        return [Classification(*row) for row in reply[1]]

    def classify_stream(self, adapter: str, raw: bytes) -> StreamReading:
        """Read a finished SSE stream with the built-in ``adapter`` and classify its texts,
        both in a worker (``StreamReader``: the event loop does not parse the stream)."""
        if not isinstance(adapter, str) or not isinstance(raw, bytes):
            raise TypeError("classify_stream expects an adapter name and the stream's bytes")
        reply = self._call(("stream", adapter, raw), 0)
        return StreamReading(
            skipped=reply[1],
            texts=tuple(reply[2]),
            classifications=tuple(Classification(*row) for row in reply[3]),
        )

    def _call(self, request: tuple[Any, ...], key: int) -> Any:
        slot, worker = self._checkout(key)
        try:
            reply = worker.call(request, self._call_timeout)
        except WorkerError:
            self._replace(slot, worker)
            raise
        self._checkin(slot)
        if reply[0] == "error":
            kind = TypeError if reply[1] == "TypeError" else RuntimeError
            raise kind(f"inference worker: {reply[1]}: {reply[2]}")
        return reply

    def _checkout(self, key: int) -> tuple[int, WorkerChannel]:
        """A free worker, the one ``key`` prefers if it is free; waits while all are busy."""
        with self._cond:
            if self._pid != os.getpid():
                self._start_all()  # a forked child: the parent's workers answer the parent
            while True:
                if self._closed:
                    raise WorkerError("the ProcessClassifier is closed")
                live = [i for i, w in enumerate(self._slots) if w is not None]
                if not live:
                    raise WorkerError("no inference worker is running (they failed to restart)")
                preferred = live[key % len(live)]
                if self._busy[preferred]:
                    free = [i for i in live if not self._busy[i]]
                    chosen = free[0] if free else None
                else:
                    chosen = preferred
                if chosen is not None:
                    self._busy[chosen] = True
                    worker = self._slots[chosen]
                    assert worker is not None
                    return chosen, worker
                self._cond.wait()

    def _checkin(self, slot: int) -> None:
        with self._cond:
            self._busy[slot] = False
            self._cond.notify_all()

    def _replace(self, slot: int, worker: WorkerChannel) -> None:
        """Kill a failed worker and start another in its slot (none once closed)."""
        worker.stop(wait=0.0)
        fresh: WorkerChannel | None = None
        if not self._closed:
            _log.warning(
                "guardrail inference worker %d failed; starting another", worker.process.pid
            )
            try:
                fresh = self._channel()
                fresh.wait_ready()
            except ModelLoadError:
                _log.exception("guardrail could not replace an inference worker")
                fresh = None
        with self._cond:
            if self._closed:
                if fresh is not None:
                    fresh.stop()
                return
            self._slots[slot], self._busy[slot] = fresh, False
            self._cond.notify_all()

    def close(self) -> None:
        """Stop every worker; calls in flight and later calls raise WorkerError."""
        with self._cond:
            self._closed = True
            workers, self._slots = self._slots, [None] * len(self._slots)
            self._cond.notify_all()
        for worker in workers:
            if worker is not None:
                worker.stop()

    def __enter__(self) -> ProcessClassifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"ProcessClassifier(model_dir={str(self.model_dir)!r}, "
            f"version={self.config.model_version!r}, processes={self.processes}, "
            f"threads={self.threads}, tail_threshold={self.config.tail_refusal_threshold})"
        )
