"""The model's ``config.json``, read once at load time and checked against the taxonomy.

The heads emit logits in the orders of :mod:`guardrail.taxonomy`; a model trained with a
different order would silently mislabel every response, so the label lists in the config
must match those orders exactly or loading fails.

Windowing keys (see :mod:`guardrail.model.windowing` for how they are used) may sit at the
top level or under a ``"windowing"`` object; window sizes count every token the model sees,
special tokens included:

- ``max_window_tokens``: a text whose tokens fit in one window of this size is read whole;
- ``head_tokens`` / ``tail_tokens``: the two windows read from a longer text (``tail_tokens``
  0 means "head only");
- ``tail_paragraph_tokens`` (optional): the tail window reaches back to the start of the
  text's last paragraph when that paragraph is longer than the tail window and at most this
  long, so a decline that opens a closing paragraph of a few sentences is read whole; absent
  (older models) the tail is always the last ``tail_tokens``;
- ``tail_refusal_threshold``: how sure the tail window must be before a compliant head with a
  refusing tail becomes ``partial_refusal`` (default 0.8). An operator may override it at
  load time (``with_tail_threshold``) without touching the checksummed file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from guardrail.errors import ConfigError, ModelLoadError
from guardrail.taxonomy import CATEGORIES, REFUSAL_KINDS, VERDICTS

__all__ = [
    "DEFAULT_TAIL_REFUSAL_THRESHOLD",
    "ModelConfig",
    "check_tail_paragraph",
    "check_tail_threshold",
    "with_tail_threshold",
]

DEFAULT_TAIL_REFUSAL_THRESHOLD = 0.8

# Accept both singular and plural spellings of the label-list keys.
_LABEL_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "verdict": (("verdict", "verdicts"), VERDICTS),
    "kind": (("kind", "kinds"), REFUSAL_KINDS),
    "category": (("category", "categories"), CATEGORIES),
}


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Windowing and provenance settings of one model directory."""

    max_window_tokens: int
    head_tokens: int
    tail_tokens: int
    tail_refusal_threshold: float = DEFAULT_TAIL_REFUSAL_THRESHOLD
    tail_paragraph_tokens: int | None = None
    model_version: str = "unknown"
    base_model: str = "unknown"
    layers: int | None = None
    quantization: str | None = None

    @classmethod
    def from_file(cls, path: Path) -> ModelConfig:
        """Parse and validate ``config.json``; any problem is a ModelLoadError naming the file."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"{path}: cannot read model config: {exc}") from exc
        if not isinstance(raw, dict):
            raise ModelLoadError(f"{path}: model config must be a JSON object")
        try:
            return cls.from_mapping(raw)
        except ValueError as exc:
            raise ModelLoadError(f"{path}: {exc}") from exc

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> ModelConfig:
        """Build from the parsed JSON; raises ValueError with a precise message."""
        _check_labels(raw.get("labels"))
        nested = raw.get("windowing")
        win: Mapping[str, Any] = nested if isinstance(nested, Mapping) else {}

        def pick(key: str) -> Any:
            return win.get(key, raw.get(key))

        max_window = _positive_int("max_window_tokens", pick("max_window_tokens"))
        head = pick("head_tokens")
        head_tokens = max_window if head is None else _positive_int("head_tokens", head)
        tail = pick("tail_tokens")
        tail_tokens = 0 if tail is None else _non_negative_int("tail_tokens", tail)
        if head_tokens > max_window or tail_tokens > max_window:
            raise ValueError(
                f"head_tokens ({head_tokens}) and tail_tokens ({tail_tokens}) must not exceed "
                f"max_window_tokens ({max_window})"
            )
        # Two special tokens ([CLS] ... [SEP]) plus at least one text token per window.
        if head_tokens < 3 or (tail_tokens and tail_tokens < 3):
            raise ValueError("head_tokens and tail_tokens (when set) must be at least 3")
        paragraph = pick("tail_paragraph_tokens")
        if paragraph is not None:
            paragraph = check_tail_paragraph(paragraph, tail_tokens, max_window)
        threshold = pick("tail_refusal_threshold")
        if threshold is None:
            threshold = DEFAULT_TAIL_REFUSAL_THRESHOLD
        threshold = check_tail_threshold(threshold, "tail_refusal_threshold")
        layers = raw.get("layers")
        return cls(
            max_window_tokens=max_window,
            head_tokens=head_tokens,
            tail_tokens=tail_tokens,
            tail_refusal_threshold=threshold,
            tail_paragraph_tokens=paragraph,
            model_version=str(raw.get("model_version", "unknown")),
            base_model=str(raw.get("base_model", "unknown")),
            layers=layers if isinstance(layers, int) and not isinstance(layers, bool) else None,
            quantization=None if raw.get("quantization") is None else str(raw["quantization"]),
        )


def check_tail_paragraph(value: Any, tail_tokens: int, max_window_tokens: int) -> int:
    """``value`` as ``tail_paragraph_tokens`` for these window sizes; ValueError otherwise."""
    paragraph = _positive_int("tail_paragraph_tokens", value)
    if not tail_tokens or not tail_tokens < paragraph <= max_window_tokens:
        raise ValueError(
            f"tail_paragraph_tokens ({paragraph}) needs a tail window and must lie above "
            f"tail_tokens ({tail_tokens}) and at most max_window_tokens ({max_window_tokens})"
        )
    return paragraph


def check_tail_threshold(value: Any, name: str) -> float:
    """``value`` as a threshold in [0, 1]; ValueError naming ``name`` otherwise (NaN included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    # ``not 0 <= x <= 1`` is also true for NaN, which would otherwise switch the rule off.
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be within [0, 1], got {value}")
    return float(value)


def with_tail_threshold(config: ModelConfig, threshold: float | None) -> ModelConfig:
    """``config`` with the tail rule's threshold overridden (None keeps the model's own).

    A bad value is a ConfigError: it comes from the operator, not from the model directory.
    """
    if threshold is None:
        return config
    try:
        checked = check_tail_threshold(threshold, "tail_threshold")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return replace(config, tail_refusal_threshold=checked)


def _check_labels(labels: Any) -> None:
    if not isinstance(labels, Mapping):
        raise ValueError('"labels" must be an object with the verdict, kind and category orders')
    for head, (keys, expected) in _LABEL_KEYS.items():
        found = next((labels[k] for k in keys if k in labels), None)
        if found is None:
            raise ValueError(f'"labels" lacks the {head} order (key "{keys[0]}")')
        if list(found) != list(expected):
            raise ValueError(
                f"labels.{keys[0]} is {list(found)}, but this guardrail version expects "
                f"{list(expected)} (the head order of guardrail.taxonomy)"
            )


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value
