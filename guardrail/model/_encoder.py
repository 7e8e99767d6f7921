"""Tokenising for the windower: the tokenizer's own pipeline, and a faster road for ASCII.

BERT's normalizer (clean text, space around CJK characters, strip accents, lowercase) costs
more than the rest of tokenising put together because it keeps an alignment for every
character: on the 868 ASCII dev answers (their first 752 characters, what a window reads)
``encode_batch`` took 367 µs per text with it and 151 µs without it, lowercasing in Python
first (ids identical on all of them). For ASCII text without control characters that
normalizer only lowercases:

- clean text removes control characters (none here) and maps whitespace to a space, which
  the pre-tokenizer splits on anyway;
- there are no CJK characters to pad and no accents to strip;
- ``str.lower`` of ASCII is ASCII lowercasing, one character for one, so offsets into the
  lowercased text are offsets into the original.

So such text goes to a copy of the tokenizer without its normalizer, lowercased by Python;
any other text, and every text of a tokenizer whose normalizer is not BERT's, takes the
tokenizer's full pipeline. Both roads give the same ids, word ids and offsets
(``tests/test_model_windowing.py`` holds them to that, hypothesis included).
"""

from __future__ import annotations

import json
import re
from typing import Any

from tokenizers import Encoding, Tokenizer, normalizers

__all__ = ["Encoder"]

# Control characters (Unicode Cc) BERT's clean text removes; tab, LF and CR it keeps.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _valid_utf8(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. from json.loads of "\ud800"
        return text.encode("utf-8", errors="replace").decode("utf-8")
    return text


def _without_bert_normalizer(
    serialized: str, described: dict[str, Any]
) -> tuple[Tokenizer | None, bool]:
    """A copy of the tokenizer (``serialized``, parsed as ``described``) minus its
    BertNormalizer, and whether that lowercased; (None, False) when the normalizer is
    something else (no fast road then)."""
    spec = described.get("normalizer")
    if not isinstance(spec, dict) or spec.get("type") != "BertNormalizer":
        return None, False
    bare = Tokenizer.from_str(serialized)
    bare.normalizer = normalizers.Sequence([])
    return bare, bool(spec.get("lowercase", True))


class Encoder:
    """Encodes text without special tokens; read-only after construction (thread-safe).

    Build it after the tokenizer's padding and truncation are set: the copy takes them over.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._full = tokenizer
        serialized = tokenizer.to_str()
        described = json.loads(serialized)  # once: the tokenizer file is ~700 KB of JSON
        self._bare, self._lower = _without_bert_normalizer(serialized, described)
        # Added tokens ("[PAD]", "[CLS]" ...) are matched in the raw text, before the
        # normalizer: lowercased for the fast road they would split into word pieces, so a
        # text that contains one takes the full pipeline.
        added = [t.get("content") for t in described.get("added_tokens", [])]
        contents = sorted({c for c in added if isinstance(c, str) and c}, key=len, reverse=True)
        self._added = re.compile("|".join(map(re.escape, contents))) if contents else None

    @property
    def fast(self) -> bool:
        """Whether ASCII text takes the road without the normalizer."""
        return self._bare is not None

    def _road(self, text: str) -> tuple[Tokenizer, str]:
        if (
            self._bare is not None
            and text.isascii()
            and _CONTROL.search(text) is None
            and (self._added is None or self._added.search(text) is None)
        ):
            return self._bare, text.lower() if self._lower else text
        return self._full, _valid_utf8(text)

    def ids(self, text: str) -> list[int]:
        """Token ids of ``text``; ``encode_batch`` lets the GIL go while it works."""
        tokenizer, ready = self._road(text)
        ids: list[int] = tokenizer.encode_batch([ready], add_special_tokens=False)[0].ids
        return ids

    def encoding(self, text: str) -> Encoding:
        """The full encoding (word ids, offsets into ``text``), keeping the GIL (``encode``)."""
        tokenizer, ready = self._road(text)
        return tokenizer.encode(ready, add_special_tokens=False)
