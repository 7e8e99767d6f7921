"""A small guarded chat app for the multi-worker and Prometheus tests.

``/v1/chat/completions`` is a scripted model: it refuses when the last user message contains
"refuse" and answers otherwise. It is wrapped by ``GuardrailMiddleware`` with a keyword
classifier (real Classifier protocol, deterministic, no model files needed) and a policy that
passes everything, so each request is exactly one classified response. ``/metrics`` is
``metrics_app()``. Every response carries ``x-worker-pid`` so tests can see which worker
answered.

Run: ``uvicorn apps.guarded_app:app`` with ``tests/`` on PYTHONPATH.
"""

from __future__ import annotations

import os

from apps.doubles import KeywordClassifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guardrail.classification import Classification
from guardrail.middleware import GuardrailMiddleware
from guardrail.observability import metrics_app
from guardrail.policy_api import Decision, RequestContext

REFUSAL_TEXT = "I'm sorry, but I can't help with that."
ANSWER_TEXT = "Sure. Paris is the capital of France."


class PassPolicy:
    """A policy whose every decision is pass: the tests count responses, not actions."""

    @property
    def fail_closed(self) -> bool:
        return False

    def decide(
        self, ctx: RequestContext, classification: Classification, *, attempt: int
    ) -> Decision:
        return Decision(action="pass")


async def chat_completions(request: Request) -> JSONResponse:
    body = await request.json()
    last_user = next(
        (
            m.get("content", "")
            for m in reversed(body.get("messages", []))
            if m.get("role") == "user"
        ),
        "",
    )
    text = REFUSAL_TEXT if "refuse" in str(last_user) else ANSWER_TEXT
    return JSONResponse(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "scripted"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
        }
    )


class WorkerPid:
    """Adds x-worker-pid to every HTTP response (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        pid = str(os.getpid()).encode()  # after fork, not at import

        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-worker-pid", pid)],
                }
            await send(message)

        await self.app(scope, receive, send_with_pid)


def build_app() -> ASGIApp:
    chat = Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])
    # recorder=None: the middleware's default MetricsRecorder on the default registry.
    guarded = GuardrailMiddleware(chat, policy=PassPolicy(), classifier=KeywordClassifier())
    metrics = metrics_app()

    async def router(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics":
            await metrics(scope, receive, send)
        else:
            await guarded(scope, receive, send)

    return WorkerPid(router)


app = build_app()
