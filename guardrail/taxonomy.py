"""The refusal taxonomy of CONTRACT.md: verdicts, kinds and the sixteen categories.

Every label value that reaches a metric, a policy file or a model head comes from the
tuples below, so their order is part of the model's output contract: the ONNX heads emit
logits in exactly this order.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "CANNOT_CATEGORIES",
    "CATEGORIES",
    "CATEGORY_KIND",
    "KINDS",
    "REFUSAL_KINDS",
    "REFUSAL_VERDICTS",
    "SHOULD_NOT_CATEGORIES",
    "VERDICTS",
    "Category",
    "Kind",
    "Verdict",
    "is_refusal",
]

Verdict = Literal["compliance", "partial_refusal", "full_refusal"]
Kind = Literal["none", "should_not", "cannot"]
Category = Literal[
    "none",
    "legal_compliance",
    "information_hazards",
    "privacy",
    "intellectual_property",
    "nsfw",
    "offensive_content",
    "chain_of_command",
    "modality",
    "skill_level",
    "knowledge_cutoff",
    "unknown_information",
    "training_data_limits",
    "missing_context",
    "missing_identity",
    "invalid_premise",
    "unclear",
]

#: Order of the verdict head's logits.
VERDICTS: Final[tuple[Verdict, ...]] = ("compliance", "partial_refusal", "full_refusal")
REFUSAL_VERDICTS: Final[frozenset[str]] = frozenset({"partial_refusal", "full_refusal"})

#: Order of the kind head's logits (refusals only; compliance is always kind "none").
REFUSAL_KINDS: Final[tuple[Kind, ...]] = ("should_not", "cannot")
KINDS: Final[tuple[Kind, ...]] = ("none", "should_not", "cannot")

SHOULD_NOT_CATEGORIES: Final[tuple[Category, ...]] = (
    "legal_compliance",
    "information_hazards",
    "privacy",
    "intellectual_property",
    "nsfw",
    "offensive_content",
    "chain_of_command",
)
CANNOT_CATEGORIES: Final[tuple[Category, ...]] = (
    "modality",
    "skill_level",
    "knowledge_cutoff",
    "unknown_information",
    "training_data_limits",
    "missing_context",
    "missing_identity",
    "invalid_premise",
)

#: Order of the category head's logits: the sixteen refusal categories of CONTRACT.md.
CATEGORIES: Final[tuple[Category, ...]] = (
    *SHOULD_NOT_CATEGORIES,
    *CANNOT_CATEGORIES,
    "unclear",
)

#: The kind each category implies; "unclear" may be either, so the kind head decides it.
CATEGORY_KIND: Final[dict[str, Kind | None]] = {
    **{c: "should_not" for c in SHOULD_NOT_CATEGORIES},
    **{c: "cannot" for c in CANNOT_CATEGORIES},
    "unclear": None,
}


def is_refusal(verdict: str) -> bool:
    """Return True for a full or partial refusal."""
    return verdict in REFUSAL_VERDICTS
