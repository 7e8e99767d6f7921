"""``GuardrailMiddleware``: the pure ASGI entry point and how its collaborators are chosen."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from guardrail.classification import Classifier, WindowPrefixer
from guardrail.errors import ConfigError, GuardrailError
from guardrail.middleware._exchange import Exchange
from guardrail.middleware._inference import InferencePool
from guardrail.middleware._routes import RouteTable
from guardrail.middleware._services import Services
from guardrail.middleware.options import GuardrailOptions
from guardrail.outcome import Recorder
from guardrail.policy_api import PolicyLike, PolicyProvider

__all__ = ["GuardrailMiddleware", "PolicySource"]

PolicySource = str | os.PathLike[str] | PolicyLike | PolicyProvider | None


class _FixedPolicy:
    """A loaded policy served as a provider that never reloads."""

    def __init__(self, policy: PolicyLike) -> None:
        self._policy = policy

    def current(self) -> PolicyLike:
        return self._policy


def _policy_provider(source: PolicySource, recorder: Recorder) -> PolicyProvider:
    # A loaded policy is checked first: an object offering both decide() and current() is
    # a policy, as guardrail.policy.open_policy also treats it.
    if isinstance(source, PolicyLike):
        return _FixedPolicy(source)
    if isinstance(source, PolicyProvider):
        return source
    if source is not None and not isinstance(source, str | os.PathLike):
        raise ConfigError(
            "policy must be a policy file path, a loaded policy or a policy provider, "
            f"got {type(source).__name__}"
        )
    # Imported here: a user who passes their own policy needs none of the YAML machinery.
    from guardrail._resources import bundled_policy
    from guardrail.policy import open_policy

    path = bundled_policy("default") if source is None else Path(source)
    # Reload counts go to the same metrics as the outcomes when the recorder has them.
    provider = open_policy(path, metrics=getattr(recorder, "metrics", None))
    if not isinstance(provider, PolicyProvider):
        raise ConfigError(f"open_policy returned {type(provider).__name__}, not a policy provider")
    return provider


def _classifier(classifier: Classifier | None, processes: int) -> Classifier:
    if processes and classifier is not None:
        raise ConfigError(
            "classifier_processes runs the bundled model in worker processes; with a "
            "classifier of your own leave it at 0 (pass a ProcessClassifier for a model "
            "directory of your own)"
        )
    if classifier is not None:
        if not isinstance(classifier, Classifier):
            raise ConfigError(
                "classifier must implement classify(text) and classify_batch(texts), "
                f"got {type(classifier).__name__}"
            )
        return classifier
    from guardrail.model import ProcessClassifier, RefusalClassifier

    try:
        if processes:
            return ProcessClassifier(processes=processes)
        return RefusalClassifier.load()
    except GuardrailError:
        raise
    except Exception as exc:  # an unexpected failure still has to say what failed
        raise ConfigError(f"could not load the bundled refusal classifier: {exc}") from exc


def _recorder(recorder: Recorder | None, options: GuardrailOptions) -> Recorder:
    if recorder is not None:
        if not isinstance(recorder, Recorder):
            raise ConfigError(
                f"recorder must have a record(outcome) method, got {type(recorder).__name__}"
            )
        return recorder
    from guardrail.observability import MetricsRecorder

    kwargs: dict[str, Any] = {
        "log_content": options.log_content,
        "max_content_chars": options.excerpt_chars,
    }
    if options.models:
        kwargs["models"] = options.models
    try:
        default: Recorder = MetricsRecorder(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"could not build the default MetricsRecorder: {exc}") from exc
    return default


def _background_workers(classifier: Classifier, workers: int) -> int | None:
    """Half the workers for after-the-last-byte work when they wait on worker processes
    (measured faster on 2 cores); all of them for inference threads (measured slower)."""
    # Not imported for the check: a classifier can only be a ProcessClassifier once its
    # module was loaded, and a custom classifier's user need not load the model package.
    processes = sys.modules.get("guardrail.model.processes")
    if processes is not None and isinstance(classifier, processes.ProcessClassifier):
        return max(1, workers // 2)
    return None


class GuardrailMiddleware:
    """Classify the answers of guarded chat routes and act on them by policy.

    ``GuardrailMiddleware(app, policy="policies/clinical.yaml")``, or with Starlette
    ``Middleware(GuardrailMiddleware, policy=...)``. ``policy`` is a file path, a loaded
    policy, a provider (hot reload) or None for the bundled default policy; ``classifier``
    None loads the bundled model now, so a missing model fails at start-up; ``recorder``
    None records Prometheus metrics and structured logs. Options are ``GuardrailOptions``
    fields, given as keywords or as ``options=``.
    """

    def __init__(
        self,
        app: ASGIApp | None = None,
        /,
        policy: PolicySource = None,
        classifier: Classifier | None = None,
        *,
        recorder: Recorder | None = None,
        options: GuardrailOptions | None = None,
        **option_values: Any,
    ) -> None:
        # ``app`` is positional-only so that Starlette >= 0.41's typed ``Middleware(cls, ...)``
        # accepts this class, yet Starlette 0.37-0.40 build the stack with ``cls(app=app, ...)``:
        # that keyword lands in ``option_values`` and is taken from there.
        if app is None:
            app = option_values.pop("app", None)
            if app is None:
                raise ConfigError("GuardrailMiddleware needs the ASGI app to wrap")
        if options is not None and option_values:
            raise ConfigError(
                "pass either options=GuardrailOptions(...) or option keywords "
                f"({', '.join(sorted(option_values))}), not both"
            )
        if options is not None and not isinstance(options, GuardrailOptions):
            raise ConfigError(f"options must be a GuardrailOptions, got {type(options).__name__}")
        resolved = options or GuardrailOptions.from_kwargs(option_values)
        self.app = app
        self.options = resolved
        self._routes = RouteTable(resolved.routes)
        chosen = _classifier(classifier, resolved.classifier_processes)
        pool = InferencePool(
            chosen,
            max_concurrency=resolved.max_concurrency,
            max_batch=resolved.max_batch_texts,
            background_workers=_background_workers(chosen, resolved.max_concurrency),
        )
        sink = _recorder(recorder, resolved)
        self._services = Services(
            app=app,
            options=resolved,
            pool=pool,
            recorder=sink,
            policies=_policy_provider(policy, sink),
            window_prefix=chosen.window_prefix
            if resolved.stream_window_rule == "model" and isinstance(chosen, WindowPrefixer)
            else None,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        route = self._routes.match(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        await Exchange(self._services, route, scope, receive, send).run()
