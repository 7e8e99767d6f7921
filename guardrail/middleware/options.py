"""``GuardrailOptions``: the middleware's immutable configuration, validated at construction."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from guardrail.errors import ConfigError
from guardrail.middleware.adapters import ADAPTERS, ApiAdapter

__all__ = [
    "DEFAULT_ROUTES",
    "STREAM_HOLDS",
    "STREAM_WINDOW_RULES",
    "GuardrailOptions",
    "default_concurrency",
]

#: Guarded path templates and their adapter, unless ``routes`` says otherwise.
DEFAULT_ROUTES: Mapping[str, str | ApiAdapter] = MappingProxyType(
    {
        "/v1/chat/completions": "openai_chat",
        "/chat/completions": "openai_chat",
        "/v1/responses": "responses",
        "/v1/messages": "anthropic",
    }
)

_MIB = 1024 * 1024

#: How a stream's hold-back window is chosen (``stream_window_rule``).
STREAM_WINDOW_RULES = ("model", "sentence")
#: Which streams are held back at all (``stream_hold``).
STREAM_HOLDS = ("auto", "always")


def default_concurrency() -> int:
    """Classifier threads by default: the CPUs this process may run on, at most 4.

    More inference threads than cores only compete with the event loop for the same cores:
    on 2 cores, 2 threads served 476-483 guarded JSON responses/s at 32 clients where 4 served
    435-444 (benchmarks/RESULTS.md); fewer leave a core idle: 1 thread served 327 where 2
    served 413 in the same run (``benchmarks/results/ab_trees_json_max_concurrency.json``).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


@dataclass(frozen=True)
class GuardrailOptions:
    """How the middleware guards; every field is checked when the middleware is built.

    ``routes`` maps path templates (``/v1/messages``, ``/{tenant}/v1/messages``: a
    ``{name}`` matches one path segment) to an adapter name (``openai_chat``, ``responses``,
    ``anthropic``, ``plain_text``) or an ``ApiAdapter`` object. Only POST requests to these
    paths are guarded; everything else passes straight through.

    A streamed answer is held back until the classifier's first window is full
    (``stream_window_rule`` ``"model"``, the default, for a classifier that offers
    ``window_prefix`` like the bundled one: the decision reads exactly what the model will
    read first of the finished answer, about 46 tokens, and that window is not computed twice;
    any other classifier gets the sentence rule) or, with ``"sentence"``, until its text has a
    sentence end at or after ``stream_window_min_chars``; always at the latest when the text
    reaches ``stream_window_max_chars``, or the stream ends. With ``stream_hold`` ``"auto"``
    (default) only streams the policy could act on are held: when its ``may_act`` says no
    rule can change a response to the request (the bundled monitor-only policy, or rules
    whose route, model or verified-context conditions rule the request out), the stream
    goes out at once with ``x-guardrail-action: pass`` and no verdict header, and is
    classified in full after its last byte. ``"always"`` holds every stream, so each one
    carries its window's verdict.
    ``max_request_bytes`` bounds the request body kept for retries and
    ``max_response_bytes`` the response kept for classification; larger ones stream through
    unclassified (skip reason ``too_large``). ``classify_timeout`` (seconds) is the
    deadline of each classification, queueing included (skip reason ``timeout``);
    ``max_concurrency`` classifier threads serve all requests, batching up to
    ``max_batch_texts`` texts per call (default 1: no micro-batching, see the field);
    ``classifier_processes`` N > 0 runs the bundled model in N worker processes instead
    (``classifier`` must then be None; the threads only wait for the workers, so keep
    ``max_concurrency`` at N or more).
    ``models`` is the model-name label allow-list handed to the default recorder;
    ``log_content`` puts excerpts of ``excerpt_chars`` characters into outcomes.
    ``block_message`` is the text of a block (or replace) decision that brings none;
    ``unavailable_message`` that of the 503 a ``fail_closed`` policy sends when
    classification failed.
    """

    routes: Mapping[str, str | ApiAdapter] = field(default_factory=lambda: DEFAULT_ROUTES)
    max_request_bytes: int = 4 * _MIB
    max_response_bytes: int = 4 * _MIB
    stream_window_rule: str = "model"
    stream_hold: str = "auto"
    stream_window_min_chars: int = 24
    stream_window_max_chars: int = 320
    classify_timeout: float = 1.0
    max_concurrency: int = field(default_factory=default_concurrency)
    # 1: the bundled int8 model runs each window alone anyway (RefusalClassifier's
    # DEFAULT_BATCH_WINDOWS), so a micro-batch only made every text in it wait for the whole
    # batch on one thread while the other workers idled: 325 vs 400 guarded JSON responses/s
    # at 32 clients (benchmarks/RESULTS.md). Raise it for a classifier whose batches pay.
    max_batch_texts: int = 1
    # 0: the classifier runs on threads of this process. N: the bundled model runs in N
    # worker processes (guardrail.model.processes), so that classifying does not hold this
    # interpreter's lock that the event loop needs; the middleware then loads no model itself.
    classifier_processes: int = 0
    models: tuple[str, ...] = ()
    log_content: bool = False
    excerpt_chars: int = 200
    block_message: str = "This response was withheld by the service's content policy."
    unavailable_message: str = "The response could not be checked and was withheld."

    def __post_init__(self) -> None:
        problems: list[str] = []
        for name in (
            "max_request_bytes",
            "max_response_bytes",
            "stream_window_min_chars",
            "stream_window_max_chars",
            "max_concurrency",
            "max_batch_texts",
            "excerpt_chars",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        processes = self.classifier_processes
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 0:
            problems.append(
                f"classifier_processes must be 0 (threads) or a positive integer, got {processes!r}"
            )
        if not problems and self.stream_window_min_chars > self.stream_window_max_chars:
            problems.append(
                f"stream_window_min_chars ({self.stream_window_min_chars}) must not exceed "
                f"stream_window_max_chars ({self.stream_window_max_chars})"
            )
        if self.stream_window_rule not in STREAM_WINDOW_RULES:
            problems.append(
                f"stream_window_rule must be one of {', '.join(map(repr, STREAM_WINDOW_RULES))}"
                f", got {self.stream_window_rule!r}"
            )
        if self.stream_hold not in STREAM_HOLDS:
            problems.append(
                f"stream_hold must be one of {', '.join(map(repr, STREAM_HOLDS))}"
                f", got {self.stream_hold!r}"
            )
        timeout = self.classify_timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            problems.append(
                f"classify_timeout must be a positive number of seconds, got {timeout!r}"
            )
        if not isinstance(self.log_content, bool):
            problems.append(f"log_content must be True or False, got {self.log_content!r}")
        if isinstance(self.models, str) or not all(isinstance(m, str) for m in self.models):
            problems.append(f"models must be a sequence of model names, got {self.models!r}")
        for name in ("block_message", "unavailable_message"):
            if not isinstance(getattr(self, name), str):
                problems.append(f"{name} must be a string, got {getattr(self, name)!r}")
        problems.extend(_route_problems(self.routes))
        if problems:
            raise ConfigError("invalid GuardrailMiddleware options: " + "; ".join(problems))
        # Copies: a caller mutating its dict/list later must not change a running middleware.
        object.__setattr__(self, "routes", MappingProxyType(dict(self.routes)))
        object.__setattr__(self, "models", tuple(self.models))

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> GuardrailOptions:
        """Build from keyword arguments; unknown names fail with the list of valid ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ConfigError(
                f"unknown GuardrailMiddleware option(s) {', '.join(map(repr, unknown))}; "
                f"valid options are: {', '.join(sorted(known))}"
            )
        return cls(**kwargs)


def _route_problems(routes: Any) -> list[str]:
    if not isinstance(routes, Mapping) or not routes:
        return [f"routes must be a non-empty mapping of path template to adapter, got {routes!r}"]
    problems: list[str] = []
    for template, adapter in routes.items():
        if not isinstance(template, str) or not template.startswith("/"):
            problems.append(f"route template {template!r} must be a string starting with '/'")
            continue
        for segment in template.strip("/").split("/"):
            if ("{" in segment or "}" in segment) and not (
                segment.startswith("{")
                and segment.endswith("}")
                and len(segment) > 2
                and segment[1:-1].isidentifier()
            ):
                problems.append(
                    f"route template {template!r}: placeholder segment {segment!r} must be "
                    "a whole path segment like '{tenant}'"
                )
        if isinstance(adapter, str):
            if adapter not in ADAPTERS:
                problems.append(
                    f"route {template!r}: unknown adapter {adapter!r} "
                    f"(known: {', '.join(sorted(ADAPTERS))})"
                )
        elif not isinstance(adapter, ApiAdapter):
            problems.append(
                f"route {template!r}: adapter must be an adapter name or an ApiAdapter, "
                f"got {type(adapter).__name__}"
            )
    return problems
