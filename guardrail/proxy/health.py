"""``/healthz`` (the process answers) and ``/readyz`` (model loaded and policy valid)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from anyio import to_thread
from starlette.types import Receive, Scope, Send

from guardrail._asgi import send_complete
from guardrail.classification import Classifier
from guardrail.policy_api import PolicyProvider

__all__ = ["HealthApp", "ReadinessCheck", "ReadyApp", "model_check", "policy_check"]

#: Returns None when ready, else a short reason (shown in the 503 body).
ReadinessCheck = Callable[[], str | None]

_CANARY = "I'm sorry, but I can't help with that."


def model_check(classifier: Classifier) -> ReadinessCheck:
    """Ready when a canary text classifies (the session is loaded and answers)."""

    def check() -> str | None:
        classifier.classify(_CANARY)  # raises when the model cannot answer
        return None

    return check


def policy_check(provider: PolicyProvider) -> ReadinessCheck:
    """Ready when the provider hands out a policy."""

    def check() -> str | None:
        return None if provider.current() is not None else "no valid policy loaded"

    return check


async def _send(send: Send, status: int, payload: dict[str, object]) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    no_store = [(b"cache-control", b"no-store")]
    await send_complete(send, status, body, "application/json", extra_headers=no_store)


class HealthApp:
    """Liveness: answers 200 whenever the event loop is running."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await _send(send, 200, {"status": "ok"})


class ReadyApp:
    """Readiness: 200 when every check passes, 503 with the failing reasons otherwise."""

    def __init__(self, checks: Sequence[ReadinessCheck]) -> None:
        self.checks = tuple(checks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        # Checks may touch the model (a canary inference), so they run off the event loop.
        problems = await to_thread.run_sync(self._problems)
        if problems:
            await _send(send, 503, {"status": "unavailable", "problems": problems})
        else:
            await _send(send, 200, {"status": "ready"})

    def _problems(self) -> list[str]:
        problems = []
        for check in self.checks:
            try:
                problem = check()
            except Exception as exc:  # a crashing check means "not ready", never a 500
                problem = f"{type(exc).__name__}: {exc}"
            if problem:
                problems.append(problem)
        return problems
