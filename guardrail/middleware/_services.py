"""What every exchange of one middleware shares, and how an exchange calls an adapter.

``Services`` is built once when the middleware is constructed and never changes; each
request's ``Exchange`` reads it. ``safely`` is the one way an exchange calls into an adapter:
an adapter is an extension point, so one that raises must cost the request its guard, never
its response.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from starlette.types import ASGIApp

from guardrail.outcome import Recorder
from guardrail.policy_api import PolicyProvider

if TYPE_CHECKING:
    from guardrail.middleware._inference import InferencePool
    from guardrail.middleware.options import GuardrailOptions

__all__ = ["Services", "safely"]

_log = logging.getLogger("guardrail.middleware")
_In = TypeVar("_In")
_Out = TypeVar("_Out")


@dataclass(frozen=True, slots=True)
class Services:
    """What every exchange of one middleware shares; built once at construction."""

    app: ASGIApp
    options: GuardrailOptions
    pool: InferencePool
    recorder: Recorder
    policies: PolicyProvider
    # The classifier's window_prefix when streams are held back by the model's first window
    # (stream_window_rule "model"); None: the sentence rule.
    window_prefix: Callable[[str], str | None] | None = None


def safely(method: Callable[[_In], _Out], argument: _In) -> _Out | None:
    """Call an adapter method; an adapter that raises has "not understood" (None)."""
    try:
        return method(argument)
    except Exception:
        _log.exception("guardrail adapter failed; the exchange goes on without it")
        return None
