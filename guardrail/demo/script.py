"""What the scripted demo model says: an over-cautious assistant in a few dozen lines.

The demo needs a model that refuses the way real chat models do, so that the guardrail has
something to recover. This one refuses clinical dosing questions unless a *verified*
clinical context arrives as a system (or developer) message, which is exactly what the
``clinical.yaml`` retry adds, refuses weapons questions always, and answers everything else.
A clinician claim inside the user's own text changes nothing: only operator-side roles count.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from guardrail.demo import _texts

__all__ = ["Reply", "ReplyKind", "has_verified_clinical_context", "last_user_text", "reply_to"]

ReplyKind = Literal["answer", "clinical_answer", "clinical_refusal", "weapons_refusal"]

# Roles only the server side is expected to write; a user cannot add them through a guarded
# deployment without the policy's verification, which is the point of the demo.
_OPERATOR_ROLES = frozenset({"system", "developer"})

_CLINICAL_SUBJECT = re.compile(
    r"\b(dose|doses|dosage|dosing|overdose|mg/kg|milligrams?|toxic(ity)?|lethal|"
    r"maximum (safe )?amount|how much .{0,40}(take|give))\b",
    re.IGNORECASE,
)
_WEAPONS = re.compile(
    r"\b(bomb|explosives?|detonat\w*|pipe ?bomb|napalm|nerve agent|sarin|ricin|"
    r"untraceable (gun|firearm)|ghost gun|silencer|suppressor|full[- ]auto|"
    r"(make|build|assemble|3d[- ]print) (a |an )?(gun|firearm|rifle|weapon))\b",
    re.IGNORECASE,
)
_CONTEXT_SUBJECT = re.compile(
    r"\b(clinician|clinical|healthcare professional|medical professional|physician)", re.I
)
_CONTEXT_VERIFIED = re.compile(r"\b(verified|authenticated|licensed|credentialed)\b", re.I)


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer: the text and why the script chose it."""

    text: str
    kind: ReplyKind


def _content_text(content: Any) -> str:
    # OpenAI content is a string or a list of parts ({"type": "text", "text": ...}).
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """Text of the last ``user`` message ("" when there is none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def has_verified_clinical_context(messages: Sequence[Mapping[str, Any]]) -> bool:
    """True when an operator-side message states a verified clinical context."""
    for message in messages:
        if message.get("role") not in _OPERATOR_ROLES:
            continue
        text = _content_text(message.get("content"))
        if _CONTEXT_SUBJECT.search(text) and _CONTEXT_VERIFIED.search(text):
            return True
    return False


def reply_to(messages: Sequence[Mapping[str, Any]]) -> Reply:
    """The scripted model's reply to a chat conversation."""
    question = last_user_text(messages)
    if _WEAPONS.search(question):
        return Reply(_texts.WEAPONS_REFUSAL, "weapons_refusal")
    if _CLINICAL_SUBJECT.search(question) and _texts.mentions_medication(question):
        if has_verified_clinical_context(messages):
            return Reply(_texts.clinical_answer(question), "clinical_answer")
        return Reply(_texts.CLINICAL_REFUSAL, "clinical_refusal")
    return Reply(_texts.general_answer(question), "answer")
