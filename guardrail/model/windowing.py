"""Turn one response text into the one or two token windows the model reads.

Why windows: the model is small and fast because it reads at most ``max_window_tokens``
tokens, but real responses run to thousands of tokens and a refusal can sit at either end
("I can't help with that" up front; or a long answer that ends "...but I can't give you the
exact dose"). So:

- a text that fits in one window is read whole;
- a longer text is read as a **head** window (its first ``head_tokens`` tokens) and, when the
  config sets ``tail_tokens``, a **tail** window (its last ``tail_tokens`` tokens); the model
  reads the head, and the tail too when the head is compliant (a refusing head decides);
  :mod:`guardrail.model._decode` combines the two results;
- when the config sets ``tail_paragraph_tokens``, the tail reaches back to the start of the
  text's last paragraph (after its last blank line) if that paragraph is longer than the tail
  window and fits in ``tail_paragraph_tokens``: a closing paragraph that opens with a decline
  and goes on for a few sentences ("I can't give you the dose. Please ask your pharmacist,
  who ...") is then read whole, where the last ``tail_tokens`` would hold only its polite
  remainder. A paragraph longer than that, or a text whose last blank line lies further back
  than ``tail_paragraph_tokens * _CHARS_PER_TOKEN`` characters, keeps the plain tail.

Window sizes count special tokens, so a window holds ``head_tokens - 2`` text tokens between
``[CLS]`` and ``[SEP]`` (the special tokens are learnt from the tokenizer, not hard-coded).
This is the same cut the training code uses (guardrail/training/windowing.py), so the model
is trained on exactly the windows it reads at run time.

Tokenising is the expensive part for long inputs (about 0.3 µs per character here), and a
5 MB response must not cost seconds, so long texts are cut to a bounded head and tail *in
characters* before tokenising: ``_CHARS_PER_TOKEN`` characters per wanted token, about 2.5x
what English prose needs. Text that packs fewer tokens into that many characters (deep
indentation, runs of spaces) yields a shorter window, never an error.

Tokenising goes through ``_encoder.Encoder``, which sends ASCII text past BERT's normalizer
(the costliest step; the same ids, 2.4x faster on real answers). For classification (in the
inference threads) it uses ``Tokenizer.encode_batch`` with one text, which releases the GIL
while it works (``encode`` holds it), with the tokenizer's own thread pool switched off
(``TOKENIZERS_PARALLELISM=false``, set when a ``Windower`` is built unless the environment
already says otherwise): one response at a time gains nothing from that pool, and its thread
hops cost more than they save. Measured on 300 answers here, two threads tokenising side by
side took 244 ms for what one took 234 ms for alone with ``encode_batch``, and 603 ms against
288 ms with ``encode``, so an inference thread that tokenises no longer holds up the event
loop (in a JSON A/B at 32 clients the two came out the same, 0.68x and 0.67x: there the
model's runs are the limit).

Inputs: ``str`` is read as is; ``bytes``-like values are decoded as UTF-8 with replacement
characters (a response body read off the wire); anything else is a ``TypeError``. Lone
surrogates, which the tokenizer rejects, are replaced too.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from tokenizers import Tokenizer

from guardrail.model._encoder import Encoder
from guardrail.model.config import ModelConfig

__all__ = ["TextWindows", "Windower", "coerce_text"]

#: Characters kept per wanted token when cutting long texts before tokenising.
_CHARS_PER_TOKEN = 8
#: How far into the tail cut to look for a word boundary, so the cut does not split a word.
_BOUNDARY_SEARCH = 64
#: ``head_prefix`` is asked after every chunk of a stream, and tokenising costs about 0.1 ms
#: here, so it first estimates cheaply whether the head can be complete: at least
#: ``_PREFIX_MIN_CHARS_PER_TOKEN`` characters per head token (the head's 46 tokens took 159
#: characters at the 1st percentile of the dev answers, 224 at the median), then at least as
#: many words and punctuation marks as head tokens (each is at least one token), a test that
#: text whose long words split into many word pieces may never pass, so past
#: ``_PREFIX_ALWAYS_CHARS_PER_TOKEN`` characters per head token it is skipped. On 1,500 real
#: answers streamed in 24-character chunks that asks the tokenizer 1.07 times per answer
#: instead of 3.08, holding 0.2 chunks longer on average. The estimate only decides when to
#: ask; the cut is always exact.
_PREFIX_MIN_CHARS_PER_TOKEN = 3
_PREFIX_ALWAYS_CHARS_PER_TOKEN = 6
_WORDS = re.compile(r"\w+|[^\w\s]")
#: A paragraph ends at a blank line (Markdown's rule, which chat answers follow); a line
#: holding only spaces, tabs or the CR of a CRLF line end is blank too.
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r]*\n")


def coerce_text(value: object) -> str:
    """Return ``value`` as text: str unchanged, bytes decoded as UTF-8 with replacement."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    raise TypeError(f"expected a str (or UTF-8 bytes) response text, got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class TextWindows:
    """The token ids (special tokens included) the model will read for one text.

    ``tail`` is None when the text fits in one window or the model has no tail window.
    ``truncated`` is True when tokens between the windows were not read; ``n_content`` counts
    the text tokens read over both windows (special tokens excluded).
    """

    head: tuple[int, ...]
    tail: tuple[int, ...] | None
    truncated: bool
    n_content: int

    @property
    def empty(self) -> bool:
        """True when the text has no tokens at all (empty, whitespace, invisible marks)."""
        return self.n_content == 0

    def windows(self) -> tuple[tuple[int, ...], ...]:
        return (self.head,) if self.tail is None else (self.head, self.tail)


class Windower:
    """Cuts texts into windows for one tokenizer and config; safe to share across threads.

    The tokenizer is configured once here (no padding, no truncation: the shipped
    tokenizer.json may pin both) and afterwards only read, so concurrent calls are safe.
    """

    def __init__(self, tokenizer: Tokenizer, config: ModelConfig) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # see the module docstring
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._encoder = Encoder(tokenizer)  # after the two calls above: it copies them
        # Learn the special tokens the post-processor wraps a sequence in ([CLS] ... [SEP]
        # for BERT, <s> ... </s> for RoBERTa) by comparing one encoding with and without them.
        bare = tokenizer.encode("a", add_special_tokens=False).ids
        full = tokenizer.encode("a", add_special_tokens=True).ids
        start = next(i for i in range(len(full)) if full[i : i + len(bare)] == bare)
        self._prefix = tuple(full[:start])
        self._suffix = tuple(full[start + len(bare) :])
        n_special = len(self._prefix) + len(self._suffix)
        self.n_special = n_special
        self.max_content = config.max_window_tokens - n_special
        self.head_content = config.head_tokens - n_special
        self.tail_content = max(0, config.tail_tokens - n_special) if config.tail_tokens else 0
        paragraph = config.tail_paragraph_tokens
        self.paragraph_content = paragraph - n_special if paragraph and self.tail_content else 0
        if self.max_content < 1 or self.head_content < 1:
            raise ValueError("window sizes leave no room for text after the special tokens")
        pad = tokenizer.token_to_id("[PAD]")
        if pad is None:
            pad = tokenizer.token_to_id("<pad>")
        self.pad_id = 0 if pad is None else pad

    def _encode(self, text: str) -> list[int]:
        return self._encoder.ids(text)

    def _wrap(self, ids: list[int]) -> tuple[int, ...]:
        return (*self._prefix, *ids, *self._suffix)

    def windows_for(self, value: object) -> TextWindows:
        """Return the windows the model reads for ``value`` (see the module docstring)."""
        text = coerce_text(value)
        full_chars = self.max_content * _CHARS_PER_TOKEN
        if len(text) <= full_chars:
            ids = self._encode(text)
            if len(ids) <= self.max_content:
                return TextWindows(self._wrap(ids), None, truncated=False, n_content=len(ids))
            head_ids, tail_ids = ids[: self.head_content], ids
        else:
            head_ids = self._encode(text[: self.head_content * _CHARS_PER_TOKEN])
            head_ids = head_ids[: self.head_content]
            tail_ids = None
        if not self.tail_content:
            return TextWindows(self._wrap(head_ids), None, True, len(head_ids))
        tail = self._last_paragraph(text)
        if tail is None:
            if tail_ids is None:
                tail_ids = self._encode(self._tail_piece(text))
            tail = tail_ids[-self.tail_content :]
        return TextWindows(self._wrap(head_ids), self._wrap(tail), True, len(head_ids) + len(tail))

    def head_prefix(self, value: object) -> str | None:
        """The start of a growing text (a stream) that holds exactly its head window.

        Returns the shortest prefix whose tokens are the first ``head_tokens - 2`` tokens of
        every longer text that begins with it, cut at a word boundary so more text cannot
        change them; ``windows_for`` of that prefix is then the head window of the finished
        text. When the head ends inside a word, the prefix runs to that word's end (a window
        a little longer than the head). None while the text is not long enough to tell.
        """
        text = coerce_text(value)
        n = self.head_content
        if len(text) < n * _PREFIX_MIN_CHARS_PER_TOKEN:
            return None
        piece = text[: n * _CHARS_PER_TOKEN]
        if len(text) < n * _PREFIX_ALWAYS_CHARS_PER_TOKEN and len(_WORDS.findall(piece)) < n:
            return None
        # ``encode``, which keeps the GIL: this runs on the event loop, and a loop that lets
        # the GIL go waits to get it back from the inference threads (under stream load a
        # 0.12 ms tokenisation took 0.4 ms of the loop's time that way).
        encoding = self._encoder.encoding(piece)
        words = encoding.word_ids
        if len(words) <= n:
            return None
        last = n - 1
        # word_ids tell where the pre-tokenizer split (whitespace, punctuation): the head is
        # final once a token of another word follows its last token's word.
        while last + 1 < len(words) and words[last + 1] == words[last]:
            last += 1
        if last + 1 >= len(words):
            return None  # that word may still go on in the next chunk
        return text[: encoding.offsets[last][1]]

    def _last_paragraph(self, text: str) -> list[int] | None:
        """The ids of the last paragraph when it makes the tail window (module docstring)."""
        if not self.paragraph_content:
            return None
        end = len(text.rstrip())  # trailing blank lines do not start an empty paragraph
        start = max(0, end - self.paragraph_content * _CHARS_PER_TOKEN)
        breaks = list(_PARAGRAPH_BREAK.finditer(text, start, end))
        last = breaks[-1] if breaks else None
        # A paragraph has at least one character per token, so one no longer than the
        # plain tail in characters cannot be longer in tokens: skip tokenising it.
        if last is None or end - last.end() <= self.tail_content:
            return None
        ids = self._encode(text[last.end() : end])
        return ids if self.tail_content < len(ids) <= self.paragraph_content else None

    def _tail_piece(self, text: str) -> str:
        cut = len(text) - self.tail_content * _CHARS_PER_TOKEN
        piece = text[cut:]
        if text[cut - 1].isspace():
            return piece  # the cut already sits on a word boundary
        # Start after the first whitespace so the first word is not a fragment.
        for offset, char in enumerate(piece[:_BOUNDARY_SEARCH]):
            if char.isspace():
                return piece[offset + 1 :]
        return piece
