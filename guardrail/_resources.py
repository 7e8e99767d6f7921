"""Locate files bundled with the package: the ONNX model and the stock policies.

In a wheel they live under ``guardrail/_bundled/``; in a source checkout (editable
install, tests) they live at the repository root, so both places are searched.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["bundled_model_dir", "bundled_policy", "bundled_policy_dir"]

_PKG = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for candidate in (_PKG / "_bundled" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    return _PKG / "_bundled" / name


def bundled_model_dir() -> Path:
    """Directory holding the shipped int8 model, tokenizer and model card."""
    return _find("onnx_models")


def bundled_policy_dir() -> Path:
    """Directory holding the stock policy files (default.yaml, clinical.yaml, ...)."""
    return _find("policies")


def bundled_policy(name: str) -> Path:
    """Path of a stock policy by file stem, e.g. ``bundled_policy("clinical")``."""
    return bundled_policy_dir() / f"{name.removesuffix('.yaml')}.yaml"
