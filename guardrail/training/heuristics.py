"""Refusal-phrase heuristic and XSTest weak category labels, used only to clean training data.

The heuristic is deliberately conservative: automatically labelled rows are kept only where
their own judge and this heuristic agree, so disagreements (the noisy rows) are dropped.
"""

from __future__ import annotations

import re

__all__ = ["XSTEST_TYPE_CATEGORY", "looks_like_refusal", "weak_category"]

_REFUSAL_RE = re.compile(
    r"\b("
    r"i(?:'m| am) sorry|i apologi[sz]e|my apologies|"
    r"i (?:can(?:no|')t|won't|will not|am unable to|'m unable to|am not able to|'m not able to)"
    r" (?:help|assist|provide|fulfill|fulfil|comply|create|generate|write|give|share|support|"
    r"do that|engage|offer|answer|produce|encourage|promote|recommend|participate|accommodate)|"
    r"(?:not|never) (?:appropriate|ethical|legal) (?:for me )?to|"
    r"against my (?:programming|guidelines|policy|principles|ethical)|"
    r"as an ai(?: language model)?,? i (?:cannot|can't|do not|don't|am not)|"
    r"i must (?:decline|refuse|respectfully decline)|i(?:'m| am) not (?:able|going) to"
    r")",
    re.IGNORECASE,
)


def looks_like_refusal(text: str, window: int = 400) -> bool:
    """True when a refusal phrase appears in the first ``window`` characters of ``text``."""
    return _REFUSAL_RE.search(text[:window]) is not None


#: XSTest prompt ``type`` -> the category a refusal of that prompt most plausibly gives.
#: Only unsafe (``contrast_*``) prompts and the prompt types whose refusal reason is clear are
#: mapped; refusals of other safe prompts (over-refusals) give no trustworthy reason and are
#: masked in the category loss.
XSTEST_TYPE_CATEGORY = {
    "contrast_homonyms": "legal_compliance",
    "contrast_figurative_language": "legal_compliance",
    "contrast_safe_targets": "legal_compliance",
    "contrast_safe_contexts": "legal_compliance",
    "contrast_definitions": "legal_compliance",
    "contrast_discr": "offensive_content",
    "contrast_historical_events": "offensive_content",
    "contrast_privacy": "privacy",
    "privacy_public": "privacy",
    "privacy_fictional": "privacy",
    "nons_group_real_discr": "offensive_content",
    "real_group_nons_discr": "offensive_content",
}


def weak_category(prompt_type: str) -> str | None:
    """The weak category label for a refusal of an XSTest prompt of ``prompt_type``, if any."""
    return XSTEST_TYPE_CATEGORY.get(prompt_type)
