"""``MetricsRecorder``: turns each GuardOutcome into metric updates and ONE structured log event.

It is the default ``guardrail.outcome.Recorder`` of the middleware. It never raises: a metrics
or logging failure must not break the response it describes. Request and response text are
never logged unless ``log_content=True``, and then only truncated excerpts; headers are never
logged at all (they carry API keys and signed context).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Sequence
from typing import Any, Literal

import structlog

from guardrail.errors import ConfigError
from guardrail.observability._bounded import OTHER, BoundedLabel
from guardrail.observability.metrics import (
    DEFAULT_RULE,
    POLICY_RELOAD_RESULTS,
    UNKNOWN,
    GuardrailMetrics,
    default_metrics,
)
from guardrail.outcome import ACTIONS, RETRY_OUTCOMES, SKIP_REASONS, GuardOutcome
from guardrail.taxonomy import CATEGORIES, REFUSAL_KINDS, REFUSAL_VERDICTS, VERDICTS

__all__ = ["LOG_EVENT", "MetricsRecorder"]

#: The event name of the per-response log line.
LOG_EVENT = "guarded_response"

_MAX_MODEL_CHARS = 128
# Classifier trouble is worth a warning: it means responses went out unchecked.
_WARN_SKIPS = frozenset({"timeout", "error"})


def _fold(value: str, allowed: Collection[str]) -> str:
    """Keep label values inside their fixed set even if a custom classifier misbehaves."""
    return value if value in allowed else OTHER


class MetricsRecorder:
    """Records guarded responses as Prometheus metrics and structlog events.

    ``metrics``: a GuardrailMetrics (default: ``default_metrics()``, on the default registry).
    ``logger``: a structlog logger (default: ``structlog.get_logger("guardrail")``; the library
    never configures structlog itself). ``log_content``: include request/response excerpts,
    truncated to ``max_content_chars``. ``models``: a model-name allow-list for this
    recorder's labels, overriding the metrics' own setting (so several middlewares can share
    the default registry's single GuardrailMetrics with different allow-lists).
    """

    __slots__ = ("_log", "_model_label", "log_content", "max_content_chars", "metrics")

    def __init__(
        self,
        metrics: GuardrailMetrics | None = None,
        logger: Any = None,
        log_content: bool = False,
        max_content_chars: int = 200,
        *,
        models: Sequence[str] | None = None,
    ) -> None:
        if isinstance(max_content_chars, bool) or not isinstance(max_content_chars, int):
            raise ConfigError(f"max_content_chars must be an integer, got {max_content_chars!r}")
        if max_content_chars < 0:
            raise ConfigError(f"max_content_chars must be >= 0, got {max_content_chars}")
        self.metrics = default_metrics() if metrics is None else metrics
        self._log = structlog.get_logger("guardrail") if logger is None else logger
        self.log_content = bool(log_content)
        self.max_content_chars = max_content_chars
        if models is None or not models:
            self._model_label = self.metrics.model_label
        else:
            if isinstance(models, str) or not all(isinstance(m, str) and m for m in models):
                raise ConfigError(f"models must be a list of non-empty strings, got {models!r}")
            self._model_label = BoundedLabel(allowed=models, fixed=[UNKNOWN])

    def record(self, outcome: GuardOutcome) -> None:
        """Count the outcome and log it; swallows (and reports) any failure of its own."""
        try:
            self._count(outcome)
        except Exception:
            self._report_failure("metrics")
        try:
            self._emit(outcome)
        except Exception:
            self._report_failure("log")

    def on_policy_reload(
        self, result: Literal["success", "failure"], error: str | None = None
    ) -> None:
        """Callback for the policy store: counts guardrail_policy_reloads_total{result}.

        The policy package logs reload failures itself (logger ``guardrail.policy``), so this
        only counts, to avoid duplicate log lines.
        """
        try:
            label = result if result in POLICY_RELOAD_RESULTS else "failure"
            self.metrics.policy_reloads_total.labels(label).inc()
        except Exception:
            self._report_failure("metrics")

    def _count(self, outcome: GuardOutcome) -> None:
        m = self.metrics
        rule = m.rule_label(outcome.rule_id or DEFAULT_RULE)
        c = outcome.classification
        if c is not None:
            route = m.route_label(outcome.route or UNKNOWN)
            model = self._model_label(outcome.model or UNKNOWN)
            verdict = _fold(c.verdict, VERDICTS)
            m.responses_total.labels(route, model, verdict).inc()
            if verdict in REFUSAL_VERDICTS:
                m.refusals_total.labels(
                    route, model, _fold(c.kind, REFUSAL_KINDS), _fold(c.category, CATEGORIES)
                ).inc()
        if outcome.skipped is not None:
            m.skipped_total.labels(_fold(outcome.skipped, SKIP_REASONS)).inc()
        m.actions_total.labels(rule, _fold(outcome.action, ACTIONS)).inc()
        if outcome.retry_outcome is not None:
            m.retries_total.labels(rule, _fold(outcome.retry_outcome, RETRY_OUTCOMES)).inc()
        if outcome.attempts > 1:
            m.retry_attempts_total.labels(rule).inc(outcome.attempts - 1)
        if outcome.budget_exhausted:
            m.retry_budget_exhausted_total.labels(rule).inc()
        if outcome.classifier_seconds > 0:
            m.classifier_seconds.observe(outcome.classifier_seconds)
        m.overhead_seconds.observe(max(outcome.overhead_seconds, 0.0))

    def _emit(self, outcome: GuardOutcome) -> None:
        c = outcome.classification
        fields: dict[str, Any] = {
            "request_id": outcome.request_id,
            "route": outcome.route,
            "api": outcome.api,
            "model": None if outcome.model is None else outcome.model[:_MAX_MODEL_CHARS],
            "status": outcome.status,
            "stream": outcome.stream,
            "verdict": None if c is None else c.verdict,
            "kind": None if c is None else c.kind,
            "category": None if c is None else c.category,
            "score": None if c is None else round(c.refusal_score, 4),
            "action": outcome.action,
            "shadow_action": outcome.shadow_action,
            "rule": outcome.rule_id,
            "attempts": outcome.attempts,
            "retry_outcome": outcome.retry_outcome,
            "budget_exhausted": outcome.budget_exhausted,
            "classifier_ms": round(outcome.classifier_seconds * 1000.0, 3),
            "overhead_ms": round(outcome.overhead_seconds * 1000.0, 3),
            "skipped": outcome.skipped or (None if c is None else c.skipped),
        }
        if self.log_content:
            limit = self.max_content_chars
            if outcome.request_excerpt is not None:
                fields["request_text"] = outcome.request_excerpt[:limit]
            if outcome.response_excerpt is not None:
                fields["response_text"] = outcome.response_excerpt[:limit]
        if outcome.skipped in _WARN_SKIPS:
            self._log.warning(LOG_EVENT, **fields)
        else:
            self._log.info(LOG_EVENT, **fields)

    def _report_failure(self, part: str) -> None:
        # If logging itself is broken there is nowhere left to report to, and the response
        # must still go out.
        with contextlib.suppress(Exception):
            self._log.exception("guardrail_recorder_failed", part=part)
