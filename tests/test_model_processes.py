"""ProcessClassifier: the shipped model in worker processes, and what happens when one fails."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_middleware_doubles import JSON, ListRecorder, Upstream, chat_json, drive
from test_model_classifier import MODEL_DIR, TEXTS

from guardrail.classification import Classifier, WindowPrefixer
from guardrail.errors import ConfigError, ModelLoadError
from guardrail.middleware import GuardrailMiddleware
from guardrail.model import ProcessClassifier, RefusalClassifier, WorkerError
from guardrail.model._files import MODEL_FILE

pytestmark = pytest.mark.skipif(
    not (MODEL_DIR / MODEL_FILE).is_file(), reason="the trained model is not in onnx_models/ yet"
)


@pytest.fixture(scope="module")
def local() -> RefusalClassifier:
    return RefusalClassifier.load(MODEL_DIR, threads=1)


@pytest.fixture
def workers() -> Iterator[ProcessClassifier]:
    classifier = ProcessClassifier(MODEL_DIR, processes=2, call_timeout=5.0)
    try:
        yield classifier
    finally:
        classifier.close()


def _exited(pid: int, within: float = 5.0) -> bool:
    """True once ``pid`` is gone (the classifier reaps the workers it stops)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_workers_answer_what_the_model_answers_in_process(
    workers: ProcessClassifier, local: RefusalClassifier
) -> None:
    """Every text gets the Classification the in-process classifier gives it, in order."""
    assert isinstance(workers, Classifier) and isinstance(workers, WindowPrefixer)
    assert workers.classify_batch(TEXTS) == local.classify_batch(TEXTS)
    assert workers.classify(TEXTS[0]) == local.classify(TEXTS[0])
    assert workers.classify_batch([]) == []


def test_window_prefix_is_computed_like_the_models(
    workers: ProcessClassifier, local: RefusalClassifier
) -> None:
    """The hold-back prefix of a stream is the in-process classifier's, short text or long."""
    for text in ("Sure.", "Here is a long answer about gardening. " * 20, TEXTS[-1]):
        assert workers.window_prefix(text) == local.window_prefix(text)


def test_bad_items_fail_with_the_index_before_reaching_a_worker(
    workers: ProcessClassifier,
) -> None:
    """A non-text item is a TypeError naming its index; a bare string is refused as a batch."""
    with pytest.raises(TypeError, match=r"texts\[1\].*int"):
        workers.classify_batch(["fine", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="sequence of texts"):
        workers.classify_batch("one text")
    assert workers.classify(b"I cannot help with that.").verdict != "compliance"  # type: ignore[arg-type]


def test_a_killed_worker_fails_one_call_and_is_replaced() -> None:
    """SIGKILL on a worker: the call that finds it dead raises WorkerError, later calls work."""
    with ProcessClassifier(MODEL_DIR, processes=1) as workers:
        victim = workers.pids[0]
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(WorkerError, match=str(victim)):
            workers.classify("The capital of France is Paris.")
        assert workers.classify("The capital of France is Paris.").verdict == "compliance"
        assert len(workers.pids) == 1 and victim not in workers.pids


def test_texts_that_begin_alike_go_to_the_same_free_worker(workers: ProcessClassifier) -> None:
    """A held-back stream's window and its finished text (same start) meet the same worker,
    so the worker's head memo serves the second call; other starts may go elsewhere."""
    seen: dict[str, set[int]] = {}
    original = workers._checkout

    def spy(key: int) -> Any:
        slot, worker = original(key)
        seen.setdefault(str(key), set()).add(slot)
        return slot, worker

    workers._checkout = spy  # type: ignore[method-assign]
    window = "Here is a long answer about gardening and soil. " * 5
    for _ in range(5):
        workers.classify(window)
        workers.classify(window + "More about compost and watering. " * 20)
    assert len(seen) == 1 and len(next(iter(seen.values()))) == 1


def test_a_hung_worker_is_killed_after_the_call_timeout(local: RefusalClassifier) -> None:
    """A worker that stops answering fails its call after call_timeout and is replaced."""
    with ProcessClassifier(MODEL_DIR, processes=1, call_timeout=0.5) as workers:
        hung = workers.pids[0]
        os.kill(hung, signal.SIGSTOP)
        began = time.monotonic()
        with pytest.raises(WorkerError, match="did not answer"):
            workers.classify("hello")
        assert time.monotonic() - began < 5.0
        assert _exited(hung)
        assert workers.classify(TEXTS[0]) == local.classify(TEXTS[0])


def test_close_stops_the_workers_and_later_calls_fail(local: RefusalClassifier) -> None:
    """After close every worker has exited and a call raises WorkerError, not a hang."""
    workers = ProcessClassifier(MODEL_DIR, processes=2)
    pids = workers.pids
    workers.close()
    assert all(_exited(pid) for pid in pids)
    with pytest.raises(WorkerError, match="closed"):
        workers.classify("hello")


def test_a_forked_child_starts_workers_of_its_own(workers: ProcessClassifier) -> None:
    """After fork (gunicorn --preload) the child classifies through new workers, not the
    parent's, and the parent keeps its own."""
    parent_pids = workers.pids
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        try:
            verdict = workers.classify("I'm sorry, but I can't help with that.").verdict
            mine = workers.pids
            os.write(write, f"{verdict} {int(not set(mine) & set(parent_pids))}".encode())
            workers.close()
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        answer = pipe.read()
    os.waitpid(child, 0)
    assert answer == "full_refusal 1"
    assert workers.pids == parent_pids
    assert workers.classify("The capital of France is Paris.").verdict == "compliance"


def test_bad_settings_and_model_directories_fail_at_start(tmp_path: Path) -> None:
    """Zero processes, a missing directory, or a model no worker can load: ModelLoadError."""
    with pytest.raises(ModelLoadError, match="processes must be a positive integer"):
        ProcessClassifier(MODEL_DIR, processes=0)
    with pytest.raises(ModelLoadError, match="does not exist"):
        ProcessClassifier(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(MODEL_DIR, broken)
    (broken / MODEL_FILE).write_bytes(b"not an onnx graph")
    with pytest.raises(ModelLoadError, match="sha256"):
        ProcessClassifier(broken)
    with pytest.raises(ModelLoadError, match="inference worker could not load"):
        ProcessClassifier(broken, processes=1, verify_checksums=False)


def _answer(text: str) -> Upstream:
    def answer(request: dict[str, Any], call: int) -> Any:
        return 200, JSON, [chat_json(text)]

    return Upstream(answer)


@pytest.mark.anyio
async def test_middleware_option_runs_the_bundled_model_in_worker_processes() -> None:
    """classifier_processes=1: the guarded answer is classified by a worker process."""
    recorder = ListRecorder()
    app = GuardrailMiddleware(
        _answer("I'm sorry, but I can't help with that."),
        recorder=recorder,
        classifier_processes=1,
        stream_hold="always",
    )
    classifier = app._services.pool._classifier
    assert isinstance(classifier, ProcessClassifier) and classifier.processes == 1
    # After-the-last-byte work is bounded to half the workers when they wait on processes.
    assert app._services.pool._background_cap == max(1, app.options.max_concurrency // 2)
    try:
        reply = await drive(app, {"model": "m", "messages": [{"role": "user", "content": "x"}]})
        assert reply.status == 200
        assert reply.headers["x-guardrail-verdict"] == "full_refusal"
        assert recorder.outcomes[0].classification is not None
    finally:
        classifier.close()


def test_middleware_option_is_checked_at_construction() -> None:
    """A negative count, or worker processes with a classifier of one's own: ConfigError."""
    upstream = _answer("Paris.")
    with pytest.raises(ConfigError, match="classifier_processes must be 0"):
        GuardrailMiddleware(upstream, classifier_processes=-1)
    with pytest.raises(ConfigError, match="classifier of your own"):
        GuardrailMiddleware(
            upstream, classifier=RefusalClassifier.load(MODEL_DIR), classifier_processes=2
        )


def test_a_worker_reads_a_stream_as_the_event_loop_would(
    workers: ProcessClassifier, local: RefusalClassifier
) -> None:
    """classify_stream parses the SSE bytes in the worker: the texts and verdicts are those
    of reading the stream in this process; unreadable bytes are 'unsupported'."""
    from test_middleware_doubles import chat_sse

    from guardrail.middleware._stream_text import stream_texts

    raw = b"".join(chat_sse(TEXTS[0] + " " + TEXTS[1], pieces=7))
    reading = workers.classify_stream("openai_chat", raw)
    assert reading.skipped is None
    assert reading.texts == stream_texts("openai_chat", raw)[1] == (TEXTS[0] + " " + TEXTS[1],)
    assert list(reading.classifications) == local.classify_batch(list(reading.texts))
    broken = workers.classify_stream("openai_chat", b"data: {oops\n\n")
    assert (broken.skipped, broken.texts, broken.classifications) == ("unsupported", (), ())
    with pytest.raises(RuntimeError, match="KeyError"):
        workers.classify_stream("no_such_api", raw)


@pytest.mark.anyio
async def test_an_unheld_stream_is_read_and_classified_in_a_worker_process() -> None:
    """With classifier_processes, a monitor-only refusal stream passes byte for byte and its
    outcome has the worker's verdict."""
    from test_middleware_doubles import SSE, chat_sse

    chunks = chat_sse("I'm sorry, but I can't help with that request.")
    recorder = ListRecorder()
    app = GuardrailMiddleware(
        Upstream(lambda request, n: (200, SSE, chunks)), recorder=recorder, classifier_processes=1
    )
    classifier = app._services.pool._classifier
    assert isinstance(classifier, ProcessClassifier)
    try:
        request = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}
        reply = await drive(app, request)
        assert reply.body == b"".join(chunks)
        outcome = recorder.outcomes[0]
        assert outcome.classification is not None and outcome.classification.is_refusal
        assert outcome.skipped is None
    finally:
        classifier.close()
