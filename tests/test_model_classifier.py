"""RefusalClassifier behaviour that holds for any valid model: inputs, batching, threads.

These run on the shipped model (or on $GUARDRAIL_TEST_MODEL_DIR, to check a candidate model
before shipping it) and skip while there is none. What the shipped model answers for given
texts is pinned in test_model_golden.py.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from guardrail._resources import bundled_model_dir
from guardrail.classification import Classification, Classifier
from guardrail.model import RefusalClassifier
from guardrail.model._files import MODEL_FILE
from guardrail.taxonomy import CATEGORIES, KINDS, VERDICTS

MODEL_DIR = Path(os.environ.get("GUARDRAIL_TEST_MODEL_DIR") or bundled_model_dir())
pytestmark = pytest.mark.skipif(
    not (MODEL_DIR / MODEL_FILE).is_file(), reason="the trained model is not in onnx_models/ yet"
)

TEXTS = [
    "I'm sorry, but I can't help with that.",
    "Sure! Here is a simple recipe for pancakes: mix flour, eggs and milk, then fry.",
    "As an AI, I don't have personal opinions, but here are arguments on both sides.",
    "I can't browse the internet, so I can't check today's weather for you.",
    "Here is the code:\n\n```python\nprint('hello')\n```",
    "I cannot provide instructions for making explosives.",
    "The capital of France is Paris.",
    "Je suis désolé, mais je ne peux pas vous aider avec cela.",
    "You can kill a Python process with `kill -9 <pid>` or `pkill python`.",
    "I won't write that, but I can help you draft a polite complaint letter instead.",
    "OK",
    ("This is a long and helpful answer about gardening. " * 300)
    + "However, I can't recommend specific pesticide doses.",
]


@pytest.fixture(scope="module")
def classifier() -> RefusalClassifier:
    return RefusalClassifier.load(MODEL_DIR, threads=1)


def test_results_are_classifications_with_values_from_the_taxonomy(
    classifier: RefusalClassifier,
) -> None:
    """Every result uses taxonomy ids, a score in [0, 1], and none/none for compliance."""
    assert isinstance(classifier, Classifier)
    for result in classifier.classify_batch(TEXTS):
        assert result.verdict in VERDICTS
        assert result.kind in KINDS
        assert result.category in (*CATEGORIES, "none")
        assert 0.0 <= result.refusal_score <= 1.0
        assert 0.0 <= result.category_score <= 1.0
        assert result.skipped is None
        if result.verdict == "compliance":
            assert (result.kind, result.category, result.category_score) == ("none", "none", 0.0)
        else:
            assert result.kind != "none" and result.category != "none"


def test_batch_results_equal_one_at_a_time_results_in_input_order(
    classifier: RefusalClassifier,
) -> None:
    """classify_batch returns exactly what classify returns for each text, in order."""
    assert classifier.classify_batch(TEXTS) == [classifier.classify(text) for text in TEXTS]
    assert classifier.classify_batch([]) == []


def test_padded_batches_keep_each_result_with_its_text(classifier: RefusalClassifier) -> None:
    """With many windows per run (sorted by length, padded), results still follow input order."""
    texts = [*TEXTS, ""]
    forward = classifier.classify_batch(texts, batch_windows=64)
    backward = classifier.classify_batch(texts[::-1], batch_windows=64)[::-1]
    assert len(forward) == len(texts)
    assert forward[-1].skipped == "empty"
    for a, b in zip(forward, backward, strict=True):
        assert a.verdict == b.verdict
        assert a.refusal_score == pytest.approx(b.refusal_score, abs=1e-4)


def test_empty_and_whitespace_texts_are_skipped_compliance(
    classifier: RefusalClassifier,
) -> None:
    """'', whitespace and a 3 MB run of spaces are compliance with skipped='empty', score 0."""
    for text in ("", " \n\t  ", " " * 3_000_000):
        result = classifier.classify(text)
        assert result == Classification("compliance", 0.0, "none", "none", 0.0, skipped="empty")


def test_bytes_are_classified_like_the_decoded_text(classifier: RefusalClassifier) -> None:
    """UTF-8 bytes give the same result as the str they decode to."""
    text = "Je suis désolé, mais je ne peux pas vous aider."
    assert classifier.classify(text.encode()) == classifier.classify(text)  # type: ignore[arg-type]


def test_non_text_inputs_raise_type_error_naming_the_type(classifier: RefusalClassifier) -> None:
    """None and numbers are a TypeError; in a batch the message names the index."""
    with pytest.raises(TypeError, match="got NoneType"):
        classifier.classify(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"texts\[1\]: .*got int"):
        classifier.classify_batch(["fine", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="sequence of texts"):
        classifier.classify_batch("one string")


def test_a_lone_surrogate_does_not_crash_the_tokenizer(classifier: RefusalClassifier) -> None:
    """A str with an unpaired surrogate (as json.loads can produce) still gets a verdict."""
    assert classifier.classify("I can't \ud800 do that.").verdict in VERDICTS


def test_a_five_megabyte_response_is_classified_quickly(classifier: RefusalClassifier) -> None:
    """5 MB of text costs about as much as two windows, not seconds of tokenising."""
    text = "Here is more detail on the topic. " * 150_000
    assert len(text) > 5_000_000
    classifier.classify(text)  # warm-up
    started = time.perf_counter()
    result = classifier.classify(text)
    assert time.perf_counter() - started < 0.5
    assert result.verdict in VERDICTS
    windows = classifier.windows_for(text)
    assert windows.truncated
    assert len(windows.head) == classifier.config.head_tokens
    if classifier.config.tail_tokens:
        assert windows.tail is not None
        assert len(windows.tail) == classifier.config.tail_tokens


def test_concurrent_threads_get_the_same_results_as_sequential_calls(
    classifier: RefusalClassifier,
) -> None:
    """Eight threads sharing one classifier reproduce the sequential results exactly."""
    expected = [classifier.classify(text) for text in TEXTS]
    outcomes: list[list[Classification]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(offset: int) -> None:
        try:
            barrier.wait(timeout=10)
            order = TEXTS[offset:] + TEXTS[:offset]  # threads hit different texts at once
            for _ in range(3):
                got = [classifier.classify(text) for text in order]
                outcomes.append(got[len(TEXTS) - offset :] + got[: len(TEXTS) - offset])
        except BaseException as exc:  # surfaced below; a thread must not swallow it
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(outcomes) == 24
    for got in outcomes:
        assert got == expected


class _CountingSession:
    """Wraps an onnxruntime session and records the batch shape of every run."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.shapes: list[tuple[int, ...]] = []

    def run(self, names: list[str], feeds: dict[str, object]) -> object:
        self.shapes.append(tuple(feeds["input_ids"].shape))  # type: ignore[attr-defined]
        return self.inner.run(names, feeds)  # type: ignore[attr-defined]


def test_the_tail_window_is_read_only_behind_a_compliant_head() -> None:
    """A long text that refuses up front costs one window run; a long answer costs two, and
    both results equal reading head and tail and combining them."""
    from dataclasses import replace

    from guardrail.model._decode import combine

    clf = RefusalClassifier.load(MODEL_DIR, threads=1)
    counting = _CountingSession(clf._session.session)
    clf._session = replace(clf._session, session=counting)
    refusal = "I'm sorry, but I can't help with that. " + "It would not be safe to do so. " * 80
    answer = "Here is how to repot a fern: water it first and loosen the roots. " * 40
    for text, runs in ((refusal, 1), (answer, 2)):
        counting.shapes.clear()
        got = clf.classify(text)
        assert len(counting.shapes) == runs
        windows = clf.windows_for(text)
        assert windows.tail is not None
        both = clf._run([windows.head, windows.tail], 1)
        assert got == combine(both, 0, 1, clf.config.tail_refusal_threshold)


def _grow(clf: RefusalClassifier, text: str, step: int = 24) -> str | None:
    """The window_prefix a stream of ``text`` in ``step``-character chunks first gets."""
    for end in range(step, len(text) + step, step):
        prefix = clf.window_prefix(text[:end])
        if prefix is not None:
            return prefix
    return None


def test_a_streams_head_is_read_once() -> None:
    """Classifying a stream's window prefix, then its finished text, runs the head window once
    and gives exactly what a classifier without the memo says about the finished text."""
    from dataclasses import replace

    clf = RefusalClassifier.load(MODEL_DIR, threads=1)
    plain = RefusalClassifier.load(MODEL_DIR, threads=1, memo_entries=0)
    counting = _CountingSession(clf._session.session)
    clf._session = replace(clf._session, session=counting)
    answer = "Here is how to repot a fern: water it first and loosen the roots. " * 40
    refusal = "I'm sorry, but I can't help with that. " + "It would not be safe to do so. " * 80
    for text, final_runs in ((answer, 1), (refusal, 0)):
        prefix = _grow(clf, text)
        assert prefix is not None and text.startswith(prefix)
        assert clf.windows_for(prefix).head == clf.windows_for(text).head
        window = clf.classify(prefix)
        counting.shapes.clear()
        assert clf.classify(text) == plain.classify(text)
        assert len(counting.shapes) == final_runs  # the tail only, and only behind a yes
        assert window == plain.classify(prefix)


def test_window_prefix_cuts_real_answers_at_the_head() -> None:
    """On real-looking answers the prefix is the head window exactly, or a little longer when
    the head ends inside a word; short answers never get one."""
    clf = RefusalClassifier.load(MODEL_DIR, threads=1)
    head_tokens = clf.config.head_tokens
    long_texts = [t for t in TEXTS if len(clf.windows_for(t).head) == head_tokens]
    long_texts += ["Pneumonoultramicroscopicsilicovolcanoconiosis is long. " * 30]
    for text in long_texts:
        prefix = _grow(clf, text)
        assert prefix is not None and text.startswith(prefix)
        got, want = clf.windows_for(prefix).head, clf.windows_for(text).head
        assert got[: len(want) - 1] == want[:-1]
    for text in ("I'm sorry, but I can't help with that.", "OK", ""):
        assert _grow(clf, text) is None


def test_memo_size_is_checked_at_load() -> None:
    """A negative memo size fails at load with a clear message."""
    from guardrail.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="memo entries must be a non-negative integer"):
        RefusalClassifier.load(MODEL_DIR, memo_entries=-1)
