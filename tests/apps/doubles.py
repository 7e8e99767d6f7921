"""Test doubles shared by the in-test apps and the tests that drive them.

Kept apart from ``guarded_app`` because importing that module builds its app.
"""

from __future__ import annotations

from collections.abc import Sequence

from guardrail.classification import Classification

__all__ = ["KeywordClassifier"]


class KeywordClassifier:
    """Says full_refusal (cannot / skill_level) for texts containing "I can't"."""

    def classify(self, text: str) -> Classification:
        if "I can't" in text:
            return Classification("full_refusal", 0.99, "cannot", "skill_level", 0.9)
        return Classification("compliance", 0.01, "none", "none", 0.0)

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]:
        return [self.classify(t) for t in texts]
