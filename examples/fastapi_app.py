"""A FastAPI chat service guarded by guardrail, with scopes from a bearer token.

Run it (from the repository root)::

    uvicorn examples.fastapi_app:app --port 8000
    # several workers, shared metrics: gunicorn -c deploy/gunicorn.conf.py examples.fastapi_app:app

then try ``python examples/client.py``. The chat endpoint answers with the scripted demo model
(``guardrail.demo``) so the example runs offline; set ``UPSTREAM_BASE_URL`` (and
``UPSTREAM_API_KEY``) to forward to a real OpenAI-compatible server instead.

The pieces that matter for your own app:

* ``AuthenticationMiddleware`` runs *outside* ``GuardrailMiddleware`` (listed first), so the
  policy sees ``scope["auth"].scopes``. ``policies/clinical.yaml`` retries a refused clinical
  answer with a clinical-context system message only when those scopes contain
  ``clinician``, which only this server-side backend can set; a prompt that *claims* to be
  from a doctor changes nothing.
* ``/metrics`` serves the Prometheus metrics the guardrail records.
"""

from __future__ import annotations

import hmac
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    SimpleUser,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.routing import Route

from guardrail import GuardrailMiddleware, RefusalClassifier
from guardrail._resources import bundled_policy
from guardrail.demo import reply_to
from guardrail.observability import metrics_app

MODEL = "demo-cautious-1"

# token -> (user, scopes). A real service validates a JWT or asks its identity provider here.
TOKENS: dict[str, tuple[str, tuple[str, ...]]] = {
    os.environ.get("CLINICIAN_TOKEN", "token-dr-alice"): ("alice", ("clinician",)),
    os.environ.get("USER_TOKEN", "token-bob"): ("bob", ()),
}


class BearerTokenBackend(AuthenticationBackend):
    """``Authorization: Bearer <token>`` -> user and scopes; unknown tokens are anonymous."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        scheme, _, token = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        for known, (user, scopes) in TOKENS.items():
            if hmac.compare_digest(token.strip().encode(), known.encode()):
                return AuthCredentials(["authenticated", *scopes]), SimpleUser(user)
        return None


# Loaded once per process and shared by all requests (thread-safe); GUARDRAIL_MODEL_DIR picks
# a model other than the bundled one.
classifier = RefusalClassifier.load(os.environ.get("GUARDRAIL_MODEL_DIR"))

app = FastAPI(
    title="guarded chat",
    middleware=[
        # Listed first = outermost: scopes are set before the guardrail reads them.
        Middleware(AuthenticationMiddleware, backend=BearerTokenBackend()),
        Middleware(
            GuardrailMiddleware,
            policy=str(bundled_policy("clinical")),
            classifier=classifier,
            models=(MODEL,),
        ),
    ],
)
# A plain Route, not a Mount: a Mount would redirect /metrics to /metrics/.
app.router.routes.append(Route("/metrics", endpoint=metrics_app()))


async def _upstream(body: dict[str, Any]) -> dict[str, Any]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(
        base_url=os.environ["UPSTREAM_BASE_URL"], api_key=os.environ.get("UPSTREAM_API_KEY", "-")
    )
    completion = await client.chat.completions.create(
        model=body.get("model", MODEL), messages=body["messages"]
    )
    return completion.model_dump()


@app.post("/v1/chat/completions", response_model=None)
async def chat(request: Request) -> JSONResponse | StreamingResponse:
    """OpenAI Chat Completions; the guardrail wraps this route without any code here."""
    body = await request.json()
    if os.environ.get("UPSTREAM_BASE_URL"):
        return JSONResponse(await _upstream(body))
    text = reply_to(body["messages"]).text
    base = {
        "id": "chatcmpl-example",
        "created": int(time.time()),
        "model": body.get("model", MODEL),
    }
    if body.get("stream"):

        async def events() -> AsyncIterator[str]:
            for i, word in enumerate(text.split(" ")):
                delta = {"content": word if i == 0 else " " + word}
                chunk = {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                }
                yield f"data: {json.dumps(chunk)}\n\n"
            end = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
            yield f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
    return JSONResponse(
        {
            **base,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
        }
    )
