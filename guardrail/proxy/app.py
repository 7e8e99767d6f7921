"""Assemble ``guardrail serve``: the guarded proxy plus ``/metrics``, ``/healthz``, ``/readyz``.

Everything that can be wrong with the configuration (upstream URL, policy file, model files)
is checked here, before a port is opened. ``/readyz`` then re-checks, on each probe, that the
model still answers (one canary inference, off the event loop) and a valid policy is in
force, so an orchestrator can tell "process up" from "able to guard".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp

from guardrail.classification import Classifier
from guardrail.policy_api import PolicyProvider
from guardrail.proxy.config import ProxyConfig
from guardrail.proxy.dispatch import Hook, PathDispatch
from guardrail.proxy.forward import ReverseProxy
from guardrail.proxy.health import HealthApp, ReadinessCheck, ReadyApp, model_check, policy_check

__all__ = ["SIDE_ROUTES", "build_proxy_app", "guarded_requests"]

#: Paths the proxy answers itself; every other path goes upstream.
SIDE_ROUTES = ("/metrics", "/healthz", "/readyz")


def guarded_requests(templates: Iterable[str]) -> Callable[[str, str], bool]:
    """(method, path) -> True for POSTs the middleware guards (``{name}`` = one segment)."""
    parts = [tuple(template.strip("/").split("/")) for template in templates]

    def matches(method: str, path: str) -> bool:
        if method != "POST":
            return False
        segments = tuple(path.strip("/").split("/"))
        return any(
            len(p) == len(segments)
            and all(t.startswith("{") or t == s for t, s in zip(p, segments, strict=True))
            for p in parts
        )

    return matches


def build_proxy_app(
    config: ProxyConfig,
    *,
    policy: PolicyProvider,
    classifier: Classifier,
    registry: CollectorRegistry | None = None,
    client: httpx.AsyncClient | None = None,
    extra_checks: Sequence[ReadinessCheck] = (),
    on_shutdown: Sequence[Hook] = (),
    **middleware_options: Any,
) -> ASGIApp:
    """The whole ``serve`` app; ``registry=None`` uses prometheus_client's default one."""
    from guardrail.middleware import GuardrailMiddleware, GuardrailOptions
    from guardrail.observability import GuardrailMetrics, MetricsRecorder, metrics_app
    from guardrail.observability.metrics import default_metrics

    metrics = default_metrics() if registry is None else GuardrailMetrics.for_registry(registry)
    options = GuardrailOptions.from_kwargs(middleware_options)
    proxy = ReverseProxy(config, client=client, uncompressed=guarded_requests(options.routes))
    guarded = GuardrailMiddleware(
        proxy,
        policy=policy,
        classifier=classifier,
        recorder=MetricsRecorder(metrics),
        options=options,
    )
    close_policy: Callable[[], object] | None = getattr(policy, "close", None)

    async def shutdown_policy() -> None:
        if close_policy is not None:
            close_policy()

    return PathDispatch(
        guarded,
        {
            "/metrics": metrics_app(registry),
            "/healthz": HealthApp(),
            "/readyz": ReadyApp([model_check(classifier), policy_check(policy), *extra_checks]),
        },
        on_shutdown=[proxy.aclose, shutdown_policy, *on_shutdown],
    )
