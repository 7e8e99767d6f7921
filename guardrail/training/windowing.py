"""The runtime's windowing and decoding rules, in the shapes the training code uses.

The model must be trained and evaluated on exactly the windows the runtime reads, so this
module owns no rule of its own: ``windows`` cuts with ``guardrail.model.windowing.Windower``
and ``decode`` combines with ``guardrail.model._decode.combine`` (both documented there).
``WindowSpec`` is what training writes into config.json.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from tokenizers import Tokenizer

from guardrail.model._decode import combine, softmax
from guardrail.model.config import ModelConfig, check_tail_paragraph
from guardrail.model.windowing import Windower

__all__ = ["WindowSpec", "decode", "load_tokenizer", "windows"]


@dataclass(frozen=True)
class WindowSpec:
    """Window sizes written to config.json (special tokens included)."""

    max_window_tokens: int = 96
    head_tokens: int = 48
    tail_tokens: int = 48
    tail_refusal_threshold: float = 0.8
    #: None: the tail is always the last ``tail_tokens`` (how every model up to 0.5.1 was
    #: trained and read); else the tail reaches back to a last paragraph of up to this many.
    tail_paragraph_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.tail_paragraph_tokens is not None:  # the runtime's check, at construction
            check_tail_paragraph(
                self.tail_paragraph_tokens, self.tail_tokens, self.max_window_tokens
            )

    @classmethod
    def of(cls, config: ModelConfig) -> WindowSpec:
        """The spec a model directory's config.json describes (to read its windows exactly)."""
        return cls(**{name: getattr(config, name) for name in _SHARED})

    def as_config(self) -> dict[str, object]:
        window: dict[str, object] = {
            "mode": "head_and_tail_windows",
            "max_window_tokens": self.max_window_tokens,
            "head_tokens": self.head_tokens,
            "tail_tokens": self.tail_tokens,
            "tail_refusal_threshold": self.tail_refusal_threshold,
        }
        if self.tail_paragraph_tokens is not None:
            window["tail_paragraph_tokens"] = self.tail_paragraph_tokens
        return {**window, "description": self.description()}

    def description(self) -> str:
        """The windowing rule in words, for config.json."""
        paragraph = (
            ""
            if self.tail_paragraph_tokens is None
            else " When the text's last paragraph (after its last blank line) has more than "
            "tail_tokens-2 and at most tail_paragraph_tokens-2 ids, the tail is [CLS] that "
            "paragraph's ids [SEP] instead."
        )
        return (
            "Sizes count special tokens. Tokenise without special tokens; a text with at most "
            "max_window_tokens-2 tokens is read whole as [CLS] ids [SEP]. A longer text is read "
            "as two windows, each run alone: head = [CLS] first head_tokens-2 ids [SEP], tail = "
            f"[CLS] last tail_tokens-2 ids [SEP].{paragraph} Per window refusal_score = "
            "p(partial_refusal) + p(full_refusal), refusal when >= 0.5, then the larger of "
            "partial/full. A refusing head decides (the tail is then not run); a compliant head "
            "with a tail refusal_score >= tail_refusal_threshold gives partial_refusal "
            "(kind/category from the tail); otherwise compliance."
            + (
                " The model was trained on exactly these head, tail and whole windows."
                if self.tail_paragraph_tokens is None
                else ""
            )
        )

    def model_config(self) -> ModelConfig:
        return ModelConfig(**{name: getattr(self, name) for name in _SHARED})


#: The fields a WindowSpec shares with the runtime's ModelConfig (all of the spec's).
_SHARED = tuple(f.name for f in fields(WindowSpec))


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
