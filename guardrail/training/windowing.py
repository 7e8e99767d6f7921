"""The windows the runtime (``guardrail.model``) reads, mirrored for training and evaluation.

Contract (config.json; sizes count special tokens): a text whose tokens fit in
``max_window_tokens`` is read whole, ``[CLS] ids [SEP]``. A longer text is read as two windows
in one batch: the **head** (first ``head_tokens - 2`` tokens) and the **tail** (last
``tail_tokens - 2`` tokens), each wrapped in ``[CLS] ... [SEP]``. Long texts are cut in
characters before tokenising (8 characters per wanted token; the tail cut starts after the
first whitespace within 64 characters) so multi-megabyte inputs cost no more than short ones.

Decoding (``decode``): per window, refusal_score = P(partial) + P(full); a window is a refusal
when refusal_score >= 0.5, then partial or full by the larger probability. With two windows,
a refusing head decides; a compliant head with a tail whose refusal_score >=
``tail_refusal_threshold`` gives ``partial_refusal`` (content was given, then something was
declined); otherwise compliance. The model is trained on exactly these windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from guardrail.taxonomy import CATEGORIES, VERDICTS

__all__ = ["WindowSpec", "decode", "load_tokenizer", "windows"]

_CHARS_PER_TOKEN = 8
_BOUNDARY_SEARCH = 64


@dataclass(frozen=True)
class WindowSpec:
    """Window sizes written to config.json (special tokens included)."""

    max_window_tokens: int = 96
    head_tokens: int = 48
    tail_tokens: int = 48
    tail_refusal_threshold: float = 0.8

    def as_config(self) -> dict[str, object]:
        return {
            "mode": "head_and_tail_windows",
            "max_window_tokens": self.max_window_tokens,
            "head_tokens": self.head_tokens,
            "tail_tokens": self.tail_tokens,
            "tail_refusal_threshold": self.tail_refusal_threshold,
        }


def load_tokenizer(path: str) -> Tokenizer:
    """Load tokenizer.json with padding and truncation switched off (we cut windows ourselves)."""
    tok = Tokenizer.from_file(path)
    tok.no_padding()
    tok.no_truncation()
    return tok


def _ids(tok: Tokenizer, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False).ids


def _tail_piece(text: str, n_tokens: int) -> str:
    piece = text[len(text) - n_tokens * _CHARS_PER_TOKEN :]
    for offset, char in enumerate(piece[:_BOUNDARY_SEARCH]):
        if char.isspace():
            return piece[offset + 1 :]
    return piece


def windows(tok: Tokenizer, text: str, spec: WindowSpec) -> tuple[list[int], list[int] | None]:
    """(head, tail) token ids with special tokens; tail is None when the text fits whole."""
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    max_content = spec.max_window_tokens - 2
    head_content = spec.head_tokens - 2
    tail_content = spec.tail_tokens - 2
    if len(text) <= max_content * _CHARS_PER_TOKEN:
        ids = _ids(tok, text)
        if len(ids) <= max_content:
            return [cls_id, *ids, sep_id], None
        head, tail = ids[:head_content], ids[-tail_content:]
    else:
        head = _ids(tok, text[: head_content * _CHARS_PER_TOKEN])[:head_content]
        tail = _ids(tok, _tail_piece(text, tail_content))[-tail_content:]
    return [cls_id, *head, sep_id], [cls_id, *tail, sep_id]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _window_verdict(p: np.ndarray) -> str:
    if p[1] + p[2] < 0.5:
        return "compliance"
    return VERDICTS[1] if p[1] > p[2] else VERDICTS[2]


def decode(
    verdict_logits: np.ndarray,
    category_logits: np.ndarray,
    head: int,
    tail: int | None,
    spec: WindowSpec,
) -> tuple[str, str, float]:
    """(verdict, category, refusal_score) for one text from its window rows (runtime rule)."""
    vp = _softmax(verdict_logits)
    cp = _softmax(category_logits)
    verdict = _window_verdict(vp[head])
    row = head
    tail_refuses = tail is not None and vp[tail][1] + vp[tail][2] >= spec.tail_refusal_threshold
    if verdict == "compliance" and tail_refuses:
        verdict, row = "partial_refusal", tail
    score = float(vp[row][1] + vp[row][2])
    category = "none" if verdict == "compliance" else CATEGORIES[int(cp[row].argmax())]
    return verdict, category, score
