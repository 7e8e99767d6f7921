"""Observability for guardrail: Prometheus metrics, structured logs, multi-worker exposition.

``MetricsRecorder`` is the middleware's default ``Recorder``: each guarded response becomes
metric updates on a ``GuardrailMetrics`` (one per Prometheus registry) and one structlog event.
``metrics_app()`` serves the exposition format, merged over all workers when
``PROMETHEUS_MULTIPROC_DIR`` is set. ``configure_logging()`` is for applications (``guardrail
demo`` / ``serve``); importing this package configures nothing.
"""

from __future__ import annotations

from guardrail.observability.exposition import MetricsApp, metrics_app
from guardrail.observability.logs import configure_logging
from guardrail.observability.metrics import (
    DEFAULT_RULE,
    LATENCY_BUCKETS,
    POLICY_RELOAD_RESULTS,
    UNKNOWN,
    GuardrailMetrics,
    default_metrics,
)
from guardrail.observability.multiprocess import (
    mark_worker_dead,
    multiproc_dir,
    multiprocess_registry,
    prepare_multiproc_dir,
)
from guardrail.observability.recorder import LOG_EVENT, MetricsRecorder

__all__ = [
    "DEFAULT_RULE",
    "LATENCY_BUCKETS",
    "LOG_EVENT",
    "POLICY_RELOAD_RESULTS",
    "UNKNOWN",
    "GuardrailMetrics",
    "MetricsApp",
    "MetricsRecorder",
    "configure_logging",
    "default_metrics",
    "mark_worker_dead",
    "metrics_app",
    "multiproc_dir",
    "multiprocess_registry",
    "prepare_multiproc_dir",
]
