"""Every Prometheus metric guardrail exports, defined once, on an injectable registry.

The names and labels are the public contract of CONTRACT.md. Label values only ever come from
fixed sets: taxonomy ids (guardrail/taxonomy.py), actions / retry outcomes / skip reasons
(guardrail/outcome.py), and bounded sets for the values that originate outside the code (route
templates, rule ids, model names; see ``_bounded``).

One ``GuardrailMetrics`` per registry: Prometheus rejects a second registration of the same
names, so ``GuardrailMetrics.for_registry`` / ``default_metrics()`` hand out the existing one.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Sequence
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, values
from prometheus_client.registry import Collector

from guardrail.errors import ConfigError
from guardrail.observability._bounded import BoundedLabel
from guardrail.observability.multiprocess import ENV_VAR, multiproc_dir
from guardrail.outcome import SKIP_REASONS

__all__ = [
    "DEFAULT_RULE",
    "LATENCY_BUCKETS",
    "POLICY_RELOAD_RESULTS",
    "UNKNOWN",
    "GuardrailMetrics",
    "default_metrics",
]

#: Rule label when no policy rule matched.
DEFAULT_RULE: Final = "default"
#: Model / route label when the request did not name one.
UNKNOWN: Final = "unknown"
#: Values of guardrail_policy_reloads_total{result} (the policy store's on_reload callback).
POLICY_RELOAD_RESULTS: Final = ("success", "failure")

#: Seconds. The classifier takes about a millisecond on one core and the middleware's own work
#: is well below that, so resolution is dense from 0.5 ms to 25 ms; the tail up to 1 s still
#: separates a slow batch from a timeout (classify_timeout is typically 0.1-1 s).
LATENCY_BUCKETS: Final = (
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)

_LOCK = threading.Lock()
_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, GuardrailMetrics] = (
    weakref.WeakKeyDictionary()
)


class GuardrailMetrics:
    """The guardrail metric family objects plus the bounded label mappers they need.

    ``registry``: where to register (None: prometheus_client's default registry). ``models``:
    allow-list of model label values; when empty, the first ``max_models`` distinct model names
    seen are kept and the rest become ``other``. ``routes`` / ``rules`` work the same way (route
    templates come from configuration and rule ids from the policy, but hot reloads and
    misconfiguration must still not create unbounded series).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        models: Sequence[str] = (),
        max_models: int = 10,
        *,
        routes: Sequence[str] = (),
        max_routes: int = 50,
        rules: Sequence[str] = (),
        max_rules: int = 100,
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        _check_limit("max_models", max_models)
        _check_limit("max_routes", max_routes)
        _check_limit("max_rules", max_rules)
        _check_names("models", models)
        _check_names("routes", routes)
        _check_names("rules", rules)
        if not buckets or list(buckets) != sorted(set(buckets)) or buckets[0] <= 0:
            raise ConfigError(f"buckets must be positive and strictly increasing, got {buckets!r}")
        _check_value_class()

        self.registry: CollectorRegistry = REGISTRY if registry is None else registry
        self.model_label = BoundedLabel(allowed=models, max_values=max_models, fixed=[UNKNOWN])
        self.route_label = BoundedLabel(allowed=routes, max_values=max_routes, fixed=[UNKNOWN])
        self.rule_label = BoundedLabel(allowed=rules, max_values=max_rules, fixed=[DEFAULT_RULE])

        self.responses_total = Counter(
            "guardrail_responses_total",
            "Guarded responses that were classified, by route template, model and verdict "
            "(unclassified ones are in guardrail_skipped_total).",
            ["route", "model", "verdict"],
            registry=None,
        )
        self.refusals_total = Counter(
            "guardrail_refusals_total",
            "Classified responses that were full or partial refusals, by kind and category.",
            ["route", "model", "kind", "category"],
            registry=None,
        )
        self.actions_total = Counter(
            "guardrail_actions_total",
            "Policy actions applied (shadow: recorded but not applied), by rule id.",
            ["rule", "action"],
            registry=None,
        )
        self.retries_total = Counter(
            "guardrail_retries_total",
            "Retried responses by their final outcome (recovered, still_refused, error).",
            ["rule", "outcome"],
            registry=None,
        )
        self.retry_attempts_total = Counter(
            "guardrail_retry_attempts_total",
            "Extra calls of the wrapped app made by retries (attempts beyond the first).",
            ["rule"],
            registry=None,
        )
        self.retry_budget_exhausted_total = Counter(
            "guardrail_retry_budget_exhausted_total",
            "Retries the retry budget turned into a pass.",
            ["rule"],
            registry=None,
        )
        self.classifier_seconds = Histogram(
            "guardrail_classifier_seconds",
            "Time to classify one response (including waiting for an inference slot).",
            buckets=buckets,
            registry=None,
        )
        self.overhead_seconds = Histogram(
            "guardrail_overhead_seconds",
            "Time the middleware added to a request, upstream time excluded.",
            buckets=buckets,
            registry=None,
        )
        self.skipped_total = Counter(
            "guardrail_skipped_total",
            "Guarded responses that were not classified, by reason.",
            ["reason"],
            registry=None,
        )
        self.policy_reloads_total = Counter(
            "guardrail_policy_reloads_total",
            "Policy hot reloads by result (success, failure).",
            ["result"],
            registry=None,
        )
        # Series that exist from the start read 0 instead of being absent, so increase() and
        # alerts on them work from the first scrape on.
        for reason in SKIP_REASONS:
            self.skipped_total.labels(reason)
        for result in POLICY_RELOAD_RESULTS:
            self.policy_reloads_total.labels(result)
        self._register()

    @classmethod
    def for_registry(cls, registry: CollectorRegistry | None = None) -> GuardrailMetrics:
        """The registry's GuardrailMetrics, created with default settings on first use."""
        key = REGISTRY if registry is None else registry
        with _LOCK:
            existing = _BY_REGISTRY.get(key)
            if existing is None:
                existing = cls(key)
            return existing

    def _collectors(self) -> tuple[Collector, ...]:
        return (
            self.responses_total,
            self.refusals_total,
            self.actions_total,
            self.retries_total,
            self.retry_attempts_total,
            self.retry_budget_exhausted_total,
            self.classifier_seconds,
            self.overhead_seconds,
            self.skipped_total,
            self.policy_reloads_total,
        )

    def _register(self) -> None:
        done: list[Collector] = []
        try:
            for collector in self._collectors():
                self.registry.register(collector)
                done.append(collector)
        except ValueError as exc:
            for collector in done:
                self.registry.unregister(collector)
            raise ConfigError(
                "guardrail metrics are already registered on this Prometheus registry "
                f"({exc}); use one GuardrailMetrics per registry: "
                "GuardrailMetrics.for_registry(registry), or default_metrics() for the default one"
            ) from None
        _BY_REGISTRY[self.registry] = self


def default_metrics() -> GuardrailMetrics:
    """The process-wide GuardrailMetrics on prometheus_client's default registry."""
    return GuardrailMetrics.for_registry(REGISTRY)


def _check_value_class() -> None:
    # prometheus_client chooses between per-process and file-backed values once, when it is
    # imported. A variable set later would silently give per-worker counts on every scrape.
    if multiproc_dir() is not None and values.ValueClass is values.MutexValue:
        raise ConfigError(
            f"{ENV_VAR} is set, but prometheus_client was imported before it was set, so "
            "metrics would not be shared between workers: set it in the server's environment, "
            "or at the top of the gunicorn config before anything imports guardrail"
        )


def _check_limit(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")


def _check_names(name: str, values: Iterable[str]) -> None:
    if isinstance(values, str):
        raise ConfigError(f"{name} must be a list of strings, not the string {values!r}")
    for value in values:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{name} must hold non-empty strings, got {value!r}")
