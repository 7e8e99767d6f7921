"""``RefusalClassifier``: the shipped ONNX model behind the ``Classifier`` Protocol.

Run-time dependencies are onnxruntime, tokenizers and numpy only. Loading checks the model
directory first (files present, SHA256SUMS right, config labels in taxonomy order, graph
inputs/outputs as the contract says) so that a broken install fails at start-up with one
clear ``ModelLoadError``, never at the first request.

Thread safety: after ``load`` nothing is mutated. ``InferenceSession.run`` and
``Tokenizer.encode`` are safe to call from several threads at once, so one instance serves a
whole process; parallelism comes from concurrent calls (or ``threads`` > 1 per call).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from guardrail._resources import bundled_model_dir
from guardrail.classification import Classification
from guardrail.errors import ModelLoadError
from guardrail.model._decode import (
    EMPTY,
    Row,
    combine,
    combine_rows,
    decode_window,
    refuses,
    softmax,
)
from guardrail.model._files import CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE, verify_model_dir
from guardrail.model._memo import DEFAULT_MEMO_ENTRIES, HeadMemo
from guardrail.model._session import SessionInfo, make_session
from guardrail.model.config import ModelConfig, with_tail_threshold
from guardrail.model.windowing import TextWindows, Windower, coerce_text

__all__ = ["DEFAULT_BATCH_WINDOWS", "RefusalClassifier"]

#: Windows per session run in ``classify_batch``. Up to model 0.5.0 the int8 graph quantized
#: activations with one scale per input tensor, padding included, so in a padded batch a
#: text's scores depended on its neighbours (300 dev responses, batches of 8 windows: refusal
#: scores moved by up to 0.27, 2 verdicts flipped; the fp32 graph: 0.000000). Since 0.5.1 the
#: scales are per token, but a batch still takes an early exit only when every window in it
#: is sure, so scores still move (up to 0.18 on the same texts, no verdict flipped), and
#: batching ran no faster (1 thread). So by default each window runs alone and
#: ``classify_batch`` returns exactly what ``classify`` returns. Batched windows are sorted by
#: length so padding stays small.
DEFAULT_BATCH_WINDOWS = 1

Int64s = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]


class RefusalClassifier:
    """Classify assistant responses as compliance, partial or full refusal (thread-safe).

    Build it with :meth:`load`; the constructor takes already-checked parts.
    """

    def __init__(
        self,
        session: SessionInfo,
        windower: Windower,
        config: ModelConfig,
        model_dir: Path,
        checksums: dict[str, str],
        memo: HeadMemo | None = None,
    ) -> None:
        self._session = session
        self._windower = windower
        self._memo = HeadMemo() if memo is None else memo
        self.config = config
        self.model_dir = model_dir
        #: sha256 of each verified file, from SHA256SUMS (empty when not verified).
        self.checksums = dict(checksums)
        #: sha256 of the ONNX file ("" when not verified).
        self.model_sha256 = checksums.get(MODEL_FILE, "")

    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        *,
        verify_checksums: bool = True,
        memo_entries: int = DEFAULT_MEMO_ENTRIES,
        tail_threshold: float | None = None,
    ) -> RefusalClassifier:
        """Load a model directory (None: the bundled model) with ``threads`` per inference.

        ``threads`` None means 1: in a server many requests run at once and each inference
        on one thread gives the best throughput and steady latency. Raise it for a single
        caller with large batches (the ``classify`` CLI). ``memo_entries`` bounds the memo
        of stream heads (see :meth:`window_prefix`; 0 switches it off). ``tail_threshold``
        overrides the model's ``tail_refusal_threshold`` (None keeps it; outside [0, 1] is a
        ConfigError): how sure a long answer's tail must be to make it a partial refusal.
        """
        directory = bundled_model_dir() if model_dir is None else Path(model_dir)
        checksums = verify_model_dir(directory, verify_checksums=verify_checksums)
        config = ModelConfig.from_file(directory / CONFIG_FILE)
        # Checked before the session is built, so a bad value fails fast and costs nothing.
        config = with_tail_threshold(config, tail_threshold)
        try:
            tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise ModelLoadError(
                f"cannot load tokenizer {directory / TOKENIZER_FILE}: {exc}"
            ) from exc
        try:
            windower = Windower(tokenizer, config)
        except ValueError as exc:
            raise ModelLoadError(f"{directory / CONFIG_FILE}: {exc}") from exc
        try:
            memo = HeadMemo(memo_entries)
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from None
        session = make_session(directory / MODEL_FILE, 1 if threads is None else threads)
        return cls(session, windower, config, directory, checksums, memo)

    @property
    def threads(self) -> int:
        return self._session.threads

    @property
    def int8_weights(self) -> str:
        """How the int8 weights run on this CPU: "signed" (as stored), "unsigned" or "none"."""
        return self._session.int8_weights

    def windows_for(self, text: str | bytes) -> TextWindows:
        """The token windows the model reads for ``text`` (for benchmarks and debugging)."""
        return self._windower.windows_for(text)

    def window_prefix(self, text: str | bytes) -> str | None:
        """The start of a growing response (a stream) that fills the model's first window.

        None while ``text`` is too short to tell; then the prefix (cut at a word boundary)
        whose window is the head window of every longer text beginning with it. A stream
        held back until this prefix exists is judged on exactly what the model reads first
        of the finished answer, and classifying that prefix leaves its result in a memo, so
        classifying the finished text later runs only its tail window.
        """
        return self._windower.head_prefix(text)

    def classify(self, text: str) -> Classification:
        """Classify one response text; empty or whitespace-only text is compliance, skipped."""
        coerce_text(text)  # a wrong type fails here with a message that has no batch index
        return self.classify_batch((text,))[0]

    def classify_batch(
        self, texts: Sequence[str], *, batch_windows: int = DEFAULT_BATCH_WINDOWS
    ) -> list[Classification]:
        """Classify many texts; results are in input order.

        Raises TypeError naming the index of an item that is neither str nor bytes.
        """
        if isinstance(texts, str | bytes):
            raise TypeError("classify_batch expects a sequence of texts, not a single text")
        plans: list[TextWindows | None] = []
        for index, text in enumerate(texts):
            try:
                plan = self._windower.windows_for(text)
            except TypeError as exc:
                raise TypeError(f"texts[{index}]: {exc}") from None
            plans.append(None if plan.empty else plan)
        batch = max(1, batch_windows)
        if batch == 1:
            # The default: every window runs alone, so text by text gives the same results as
            # the batched path below with far fewer numpy calls, which hold the GIL that the
            # event loop of a server wants (about 40 us less per text here).
            return [EMPTY if plan is None else self._one(plan) for plan in plans]
        read = [plan for plan in plans if plan is not None]
        heads = self._heads(read, batch)
        # A refusing head decides the verdict whatever the tail says (_decode.combine), so a
        # tail window is read only behind a compliant head: the same results for less work
        # (a quarter fewer window runs on the benchmarks' mix of real answers).
        tails: list[tuple[int, ...]] = []
        tail_of: list[int | None] = []
        for index, plan in enumerate(read):
            if plan.tail is None or refuses(heads[0][index]):
                tail_of.append(None)
            else:
                tail_of.append(len(read) + len(tails))
                tails.append(plan.tail)
        probs = heads
        if tails:
            more = self._run(tails, batch)
            probs = (
                np.concatenate((heads[0], more[0])),
                np.concatenate((heads[1], more[1])),
                np.concatenate((heads[2], more[2])),
            )
        threshold = self.config.tail_refusal_threshold
        results: list[Classification] = []
        at = 0
        for maybe in plans:
            if maybe is None:
                results.append(EMPTY)
                continue
            results.append(combine(probs, at, tail_of[at], threshold))
            at += 1
        return results

    def _one(self, plan: TextWindows) -> Classification:
        """One text, window by window: the head (or its memo), then the tail behind a
        compliant head; the memo rule is ``_may_head_a_stream``, as in ``_heads``."""
        head = self._memo.take(plan.head) if plan.tail is not None else None
        if head is None:
            head = self._window(plan.head)
            if self._may_head_a_stream(plan):
                self._memo.put(plan.head, head)
        if plan.tail is None or refuses(head[0]):
            return decode_window(*head)
        return combine_rows(head, self._window(plan.tail), self.config.tail_refusal_threshold)

    def _may_head_a_stream(self, plan: TextWindows) -> bool:
        """A whole window exactly head-sized may be a stream's hold-back prefix, so its result
        is worth leaving in the memo for that stream's full text."""
        return plan.tail is None and plan.n_content == self._windower.head_content

    def _window(self, window: tuple[int, ...]) -> Row:
        """Softmaxed head outputs of one window run alone."""
        v, k, c = self._session.session.run(self._session.output_names, self._feeds([window]))
        return softmax(v)[0], softmax(k)[0], softmax(c)[0]

    def _heads(self, read: list[TextWindows], batch: int) -> tuple[Floats, Floats, Floats]:
        """Head-window probabilities of every text; a long text's head may come from the memo.

        A whole window exactly as long as a head window may be a stream's hold-back prefix
        (``window_prefix``), so its result is left in the memo for that stream's full text.
        """
        memo = self._memo
        found = [memo.take(plan.head) if plan.tail is not None else None for plan in read]
        todo = [i for i, row in enumerate(found) if row is None]
        if len(todo) == len(read):
            heads = self._run([plan.head for plan in read], batch)
        else:
            ran = self._run([read[i].head for i in todo], batch)
            heads = (
                np.empty((len(read), 3), dtype=np.float32),
                np.empty((len(read), 2), dtype=np.float32),
                np.empty((len(read), 16), dtype=np.float32),
            )
            for i, row in enumerate(found):
                if row is not None:
                    for target, values in zip(heads, row, strict=True):
                        target[i] = values
            for target, values in zip(heads, ran, strict=True):
                target[todo] = values
        for i in todo:
            plan = read[i]
            if self._may_head_a_stream(plan):
                memo.put(plan.head, (heads[0][i], heads[1][i], heads[2][i]))
        return heads

    def _run(
        self, windows: list[tuple[int, ...]], batch_windows: int
    ) -> tuple[Floats, Floats, Floats]:
        """Softmaxed head outputs for every window, in the order given."""
        n = len(windows)
        out = (
            np.empty((n, 3), dtype=np.float32),
            np.empty((n, 2), dtype=np.float32),
            np.empty((n, 16), dtype=np.float32),
        )
        if n == 0:
            return out
        order = sorted(range(n), key=lambda i: len(windows[i]))
        for start in range(0, n, batch_windows):
            chunk = order[start : start + batch_windows]
            feeds = self._feeds([windows[i] for i in chunk])
            results = self._session.session.run(self._session.output_names, feeds)
            for target, logits in zip(out, results, strict=True):
                target[chunk] = logits
        # One softmax per head over all rows: on tiny arrays numpy's per-call cost dominates.
        return (softmax(out[0]), softmax(out[1]), softmax(out[2]))

    def _feeds(self, windows: list[tuple[int, ...]]) -> dict[str, Int64s]:
        if len(windows) == 1:  # the default path: no padding to build
            ids = np.array(windows, dtype=np.int64)
            mask = np.ones_like(ids)
        else:
            width = max(len(w) for w in windows)
            ids = np.full((len(windows), width), self._windower.pad_id, dtype=np.int64)
            mask = np.zeros((len(windows), width), dtype=np.int64)
            for row, window in enumerate(windows):
                ids[row, : len(window)] = window
                mask[row, : len(window)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._session.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return {name: feeds[name] for name in self._session.input_names}

    def __repr__(self) -> str:
        return (
            f"RefusalClassifier(model_dir={str(self.model_dir)!r}, "
            f"version={self.config.model_version!r}, threads={self.threads}, "
            f"tail_threshold={self.config.tail_refusal_threshold}, "
            f"int8_weights={self.int8_weights!r})"
        )
