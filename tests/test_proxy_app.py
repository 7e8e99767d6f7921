"""The assembled `serve` app in-process: guarded proxy, signed context, metrics, readiness.

The upstream is the scripted model over httpx's ASGI transport, and a phrase-rule classifier
stands in for the ONNX model so the wiring is tested on its own; tests/test_proxy_process.py
runs the real processes with the bundled model.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp

from guardrail._resources import bundled_policy
from guardrail.classification import Classification
from guardrail.demo import ScriptedChatModel
from guardrail.demo._texts import CLINICAL_REFUSAL
from guardrail.demo.server import DOSING_QUESTION
from guardrail.policy import PolicyStore, sign_context
from guardrail.proxy import ProxyConfig
from guardrail.proxy.app import build_proxy_app, guarded_requests

pytestmark = pytest.mark.anyio

SECRET = "in-process-test-secret-0123456789"
REFUSAL = Classification("full_refusal", 0.96, "should_not", "information_hazards", 0.9)
ANSWER = Classification("compliance", 0.03, "none", "none", 0.0)


class PhraseRuleClassifier:
    """Refusal when the text opens with a refusal phrase; ``broken`` makes it raise."""

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken

    def classify(self, text: str) -> Classification:
        if self.broken:
            raise RuntimeError("session lost")
        return REFUSAL if text.startswith(("I'm sorry", "I can't")) else ANSWER

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]:
        return [self.classify(t) for t in texts]


def _app(upstream: ScriptedChatModel, classifier: PhraseRuleClassifier) -> ASGIApp:
    policy = PolicyStore(bundled_policy("clinical"), environ={"GUARDRAIL_CONTEXT_SECRET": SECRET})
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream))
    return build_proxy_app(
        ProxyConfig("http://upstream.test"),
        policy=policy,
        classifier=classifier,
        registry=CollectorRegistry(),
        client=client,
    )


@pytest.fixture
async def pair() -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    upstream = ScriptedChatModel()
    app = _app(upstream, PhraseRuleClassifier())
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy") as p,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream), base_url="http://up") as u,
    ):
        yield p, u


def _chat(text: str, **extra: object) -> dict[str, object]:
    return {"model": "demo-cautious-1", "messages": [{"role": "user", "content": text}], **extra}


@pytest.mark.parametrize("stream", [False, True])
async def test_signed_context_retries_through_the_proxy(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], stream: bool
) -> None:
    """A valid signed x-guardrail-context makes the proxy recover the refusal, JSON or SSE."""
    proxy, _ = pair
    header = sign_context(
        {"sub": "dr-a", "scopes": ["clinician"], "exp": time.time() + 60}, SECRET.encode()
    )
    response = await proxy.post(
        "/v1/chat/completions",
        json=_chat(DOSING_QUESTION, stream=stream),
        headers={"x-guardrail-context": header},
    )
    assert response.status_code == 200
    assert response.headers["x-guardrail-action"] == "retry"
    assert response.headers["x-guardrail-attempts"] == "2"
    if stream:
        assert response.text.endswith("data: [DONE]\n\n")
        assert "N-acetylcysteine" in response.text
    else:
        assert "4 g in 24 hours" in response.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("header", ["forged.0000", None])
async def test_unverified_refusal_passes_through(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], header: str | None
) -> None:
    """A forged or absent context header leaves the refusal as the upstream sent it."""
    proxy, upstream = pair
    headers = {"x-guardrail-context": header} if header else {}
    direct = await upstream.post("/v1/chat/completions", json=_chat(DOSING_QUESTION))
    response = await proxy.post(
        "/v1/chat/completions", json=_chat(DOSING_QUESTION), headers=headers
    )
    assert response.headers["x-guardrail-action"] == "pass"
    assert response.content == direct.content
    assert response.json()["choices"][0]["message"]["content"] == CLINICAL_REFUSAL


async def test_compliant_json_and_stream_are_byte_identical(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    """Compliant answers, JSON or SSE, come through byte for byte with guardrail headers
    (the stream, which the monitor-only policy cannot act on, without a verdict header)."""
    proxy, upstream = pair
    for body in (
        _chat("What is the capital of France?"),
        _chat("Explain photosynthesis", stream=True),
    ):
        direct = await upstream.post("/v1/chat/completions", json=body)
        proxied = await proxy.post("/v1/chat/completions", json=body)
        assert proxied.content == direct.content
        assert proxied.headers["x-guardrail-action"] == "pass"
        verdict = proxied.headers.get("x-guardrail-verdict")
        assert verdict == (None if body.get("stream") else "compliance")


async def test_metrics_health_and_readiness(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    """/metrics counts guarded responses; /healthz and /readyz answer 200."""
    proxy, _ = pair
    await proxy.post("/v1/chat/completions", json=_chat("What is the capital of France?"))
    metrics = (await proxy.get("/metrics")).text
    assert (
        'guardrail_responses_total{model="demo-cautious-1",route="/v1/chat/completions",'
        'verdict="compliance"} 1.0'
    ) in metrics
    assert (await proxy.get("/healthz")).status_code == 200
    assert (await proxy.get("/readyz")).json() == {"status": "ready"}


async def test_readyz_is_503_when_the_model_fails() -> None:
    """A classifier that cannot answer makes /readyz 503 while /healthz stays 200."""
    app = _app(ScriptedChatModel(), PhraseRuleClassifier(broken=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p") as c:
        ready = await c.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "problems": ["RuntimeError: session lost"]}
        assert (await c.get("/healthz")).status_code == 200


async def test_guarded_requests_ask_upstream_for_uncompressed_bodies() -> None:
    """Guarded POSTs go upstream with accept-encoding identity; other requests keep theirs."""
    seen: dict[str, str] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[f"{request.method} {request.url.path}"] = request.headers.get("accept-encoding", "")
        body = b'{"choices":[{"index":0,"message":{"role":"assistant","content":"Paris."}}]}'
        return httpx.Response(200, headers={"content-type": "application/json"}, content=body)

    policy = PolicyStore(bundled_policy("clinical"), environ={})
    app = build_proxy_app(
        ProxyConfig("http://upstream.test"),
        policy=policy,
        classifier=PhraseRuleClassifier(),
        registry=CollectorRegistry(),
        client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    headers = {"accept-encoding": "gzip, br"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p") as c:
        await c.post("/v1/chat/completions", json=_chat("Capital of France?"), headers=headers)
        await c.post("/v1/embeddings", json={"input": "x"}, headers=headers)
        await c.get("/v1/chat/completions", headers=headers)
    assert seen == {
        "POST /v1/chat/completions": "identity",
        "POST /v1/embeddings": "gzip, br",
        "GET /v1/chat/completions": "gzip, br",
    }


def test_guarded_request_templates_match_by_segment() -> None:
    """Route templates match POSTs segment by segment, {name} matching any one segment."""
    matches = guarded_requests(["/v1/chat/completions", "/{tenant}/v1/messages"])
    assert matches("POST", "/v1/chat/completions")
    assert matches("POST", "/v1/chat/completions/")
    assert matches("POST", "/acme/v1/messages")
    assert not matches("POST", "/acme/x/v1/messages")
    assert not matches("GET", "/v1/chat/completions")
