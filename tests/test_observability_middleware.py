"""End to end in process: GuardrailMiddleware → MetricsRecorder → a private registry + logs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from apps.doubles import KeywordClassifier
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from structlog.testing import capture_logs

from guardrail.classification import Classification
from guardrail.middleware import GuardrailMiddleware
from guardrail.observability import GuardrailMetrics, MetricsRecorder
from guardrail.policy_api import Decision, RequestContext

ROUTE = "/v1/chat/completions"
REFUSAL = "I'm sorry, but I can't help with that."


class KeywordPolicy:
    """Retries refusals of "dose" questions once with a note; shadow-blocks "shadow" ones."""

    @property
    def fail_closed(self) -> bool:
        return False

    def decide(
        self, ctx: RequestContext, classification: Classification, *, attempt: int
    ) -> Decision:
        if not classification.is_refusal:
            return Decision()
        if "shadow" in ctx.last_user_message:
            return Decision(action="block", rule_id="shadow-block", shadow=True)
        if "dose" in ctx.last_user_message and attempt == 1:
            return Decision(
                action="retry", rule_id="clinical-retry", retry_message="NOTE", max_attempts=2
            )
        return Decision()


async def chat(request: Request) -> Response:
    body: dict[str, Any] = await request.json()
    messages = body["messages"]
    user = messages[-1]["content"]
    if "garbage" in user:
        return Response(b"not json at all", media_type="application/json")
    noted = any(m["role"] == "system" and "NOTE" in m["content"] for m in messages)
    text = "Here is the answer." if noted or "please" not in user else REFUSAL
    return JSONResponse(
        {
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        }
    )


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def client(registry: CollectorRegistry) -> httpx.AsyncClient:
    app = GuardrailMiddleware(
        Starlette(routes=[Route(ROUTE, chat, methods=["POST"])]),
        policy=KeywordPolicy(),
        classifier=KeywordClassifier(),
        recorder=MetricsRecorder(GuardrailMetrics(registry, max_models=1)),
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def _ask(client: httpx.AsyncClient, text: str, model: str = "m1") -> httpx.Response:
    response = await client.post(
        ROUTE, json={"model": model, "messages": [{"role": "user", "content": text}]}
    )
    assert response.status_code == 200
    return response


@pytest.mark.anyio
async def test_recovered_retry_is_counted(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    """A refusal recovered by one retry: retries_total{recovered}, 1 extra attempt, 1 log event."""
    with capture_logs() as logs:
        response = await _ask(client, "please, what dose?")
    assert response.headers["x-guardrail-attempts"] == "2"
    rule = {"rule": "clinical-retry"}
    assert (
        registry.get_sample_value("guardrail_retries_total", {**rule, "outcome": "recovered"}) == 1
    )
    assert registry.get_sample_value("guardrail_retry_attempts_total", rule) == 1
    assert registry.get_sample_value("guardrail_actions_total", {**rule, "action": "retry"}) == 1
    labels = {"route": ROUTE, "model": "m1", "verdict": "compliance"}
    assert registry.get_sample_value("guardrail_responses_total", labels) == 1
    events = [e for e in logs if e["event"] == "guarded_response"]
    assert len(events) == 1
    assert (events[0]["attempts"], events[0]["retry_outcome"]) == (2, "recovered")


@pytest.mark.anyio
async def test_shadow_and_skip_and_model_folding(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    """Shadow rules count as shadow, unparseable bodies as skipped, a 2nd model as other."""
    await _ask(client, "please do the shadow thing")
    await _ask(client, "garbage please")
    await _ask(client, "plain question", model="m2")
    shadow = {"rule": "shadow-block", "action": "shadow"}
    assert registry.get_sample_value("guardrail_actions_total", shadow) == 1
    assert registry.get_sample_value("guardrail_skipped_total", {"reason": "unsupported"}) == 1
    refused = {"route": ROUTE, "model": "m1", "kind": "cannot", "category": "skill_level"}
    assert registry.get_sample_value("guardrail_refusals_total", refused) == 1
    other = {"route": ROUTE, "model": "other", "verdict": "compliance"}
    assert registry.get_sample_value("guardrail_responses_total", other) == 1
    assert registry.get_sample_value("guardrail_overhead_seconds_count") == 3
