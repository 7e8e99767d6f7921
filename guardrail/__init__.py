"""guardrail: tell a refusal from a real answer in about a millisecond, and act on it.

Public names are imported lazily so that ``import guardrail`` stays cheap (no onnxruntime
or starlette import until a name that needs it is used).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from guardrail.classification import Classification, Classifier
from guardrail.errors import ConfigError, GuardrailError, ModelLoadError, PolicyError

if TYPE_CHECKING:
    from guardrail.middleware import GuardrailMiddleware, GuardrailOptions
    from guardrail.model import ProcessClassifier, RefusalClassifier
    from guardrail.observability import metrics_app
    from guardrail.policy import Policy, load_policy

__all__ = [
    "Classification",
    "Classifier",
    "ConfigError",
    "GuardrailError",
    "GuardrailMiddleware",
    "GuardrailOptions",
    "ModelLoadError",
    "Policy",
    "PolicyError",
    "ProcessClassifier",
    "RefusalClassifier",
    "load_policy",
    "metrics_app",
]

__version__ = "0.1.0"

_LAZY = {
    "ProcessClassifier": "guardrail.model",
    "RefusalClassifier": "guardrail.model",
    "GuardrailMiddleware": "guardrail.middleware",
    "GuardrailOptions": "guardrail.middleware",
    "metrics_app": "guardrail.observability",
    "Policy": "guardrail.policy",
    "load_policy": "guardrail.policy",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'guardrail' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
