"""The runtime's windowing and decoding rules, in the shapes the training code uses.

The model must be trained and evaluated on exactly the windows the runtime reads, so this
module owns no rule of its own: ``windows`` cuts with ``guardrail.model.windowing.Windower``
and ``decode`` combines with ``guardrail.model._decode.combine`` (both documented there).
``WindowSpec`` is what training writes into config.json.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from guardrail.model._decode import combine, softmax
from guardrail.model.config import ModelConfig
from guardrail.model.windowing import Windower

__all__ = ["WindowSpec", "decode", "load_tokenizer", "windows"]


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

    def model_config(self) -> ModelConfig:
        return ModelConfig(
            max_window_tokens=self.max_window_tokens,
            head_tokens=self.head_tokens,
            tail_tokens=self.tail_tokens,
            tail_refusal_threshold=self.tail_refusal_threshold,
        )


def load_tokenizer(path: str) -> Tokenizer:
    """Load tokenizer.json with padding and truncation switched off (we cut windows ourselves)."""
    tok = Tokenizer.from_file(path)
    tok.no_padding()
    tok.no_truncation()
    return tok


# One Windower per (tokenizer, spec): building one encodes a probe text, and training calls
# windows() for every example.
_WINDOWERS: dict[tuple[int, WindowSpec], Windower] = {}


def windows(tok: Tokenizer, text: str, spec: WindowSpec) -> tuple[list[int], list[int] | None]:
    """(head, tail) token ids with special tokens; tail is None when the text fits whole."""
    key = (id(tok), spec)
    windower = _WINDOWERS.get(key)
    if windower is None:
        windower = _WINDOWERS[key] = Windower(tok, spec.model_config())
    cut = windower.windows_for(text)
    return list(cut.head), None if cut.tail is None else list(cut.tail)


def decode(
    verdict_logits: np.ndarray,
    category_logits: np.ndarray,
    head: int,
    tail: int | None,
    spec: WindowSpec,
) -> tuple[str, str, float]:
    """(verdict, category, refusal_score) for one text from its window rows (runtime rule)."""
    verdict_p = softmax(np.asarray(verdict_logits, dtype=np.float64))
    category_p = softmax(np.asarray(category_logits, dtype=np.float64))
    # The kind head only matters for "unclear" refusals, which training does not score here.
    kind_p = np.zeros((len(verdict_p), 2))
    c = combine((verdict_p, kind_p, category_p), head, tail, spec.tail_refusal_threshold)
    return c.verdict, c.category, c.refusal_score
