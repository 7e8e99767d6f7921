"""Over real sockets: uvicorn serving a guarded Starlette app, driven by openai and httpx.

A scripted chat model refuses clinical questions unless the request carries a verified
clinician note. Starlette's AuthenticationMiddleware sets ``scope["auth"].scopes`` from a
bearer token, so only a verified clinician's refusal is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from test_middleware_doubles import (
    ANSWER,
    NOTE,
    REFUSAL,
    FakeClassifier,
    ListRecorder,
    chat_json,
    chat_sse,
    has_note,
    retry_policy,
)

from guardrail._resources import bundled_model_dir, bundled_policy
from guardrail.middleware import GuardrailMiddleware
from guardrail.proxy.serving import bind_socket

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TOKENS = {
    "clinician-token": (["authenticated", "clinician"], "dr-grey"),
    "patient-token": (["authenticated"], "pat"),
}
QUESTION = [
    {"role": "user", "content": "What is the maximum daily dose of paracetamol for an adult?"}
]


class BearerBackend(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        token = conn.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in TOKENS:
            return None
        scopes, name = TOKENS[token]
        return AuthCredentials(scopes), SimpleUser(name)


def chat_model(
    calls: list[dict[str, Any]],
    *,
    answer: str = ANSWER,
    refusal: str = REFUSAL,
    delay: float = 0.0,
    note: str = NOTE,
) -> Any:
    """A chat-completions endpoint that refuses unless a system message carries ``note``."""

    async def endpoint(request: Request) -> Response:
        body = await request.json()
        calls.append(body)
        noted = any(
            m.get("role") == "system" and note in m.get("content", "") for m in body["messages"]
        )
        text = answer if noted else refusal
        if not body.get("stream"):
            return Response(chat_json(text), media_type="application/json")

        async def events() -> AsyncIterator[bytes]:
            for chunk in chat_sse(text, pieces=8):
                yield chunk
                await asyncio.sleep(delay)

        return StreamingResponse(events(), media_type="text/event-stream")

    return endpoint


def build_app(
    policy: Any, classifier: Any, recorder: Any, calls: list[dict[str, Any]], **kwargs: Any
) -> Starlette:
    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_model(calls, **kwargs), methods=["POST"]),
            Route("/health", health),
        ],
        middleware=[
            # Authentication runs first (outermost), so the guard sees scope["auth"].
            Middleware(AuthenticationMiddleware, backend=BearerBackend()),
            Middleware(
                GuardrailMiddleware, policy=policy, classifier=classifier, recorder=recorder
            ),
        ],
    )


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free 127.0.0.1 port in a thread; yield its base URL."""
    sock = bind_socket("127.0.0.1", 0)  # TCP_NODELAY: no delayed-ACK stalls on keep-alive
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def fake_stack() -> Iterator[tuple[str, ListRecorder, list[dict[str, Any]]]]:
    recorder, calls = ListRecorder(), []
    policy = retry_policy(needs_scope="clinician")
    with serve(build_app(policy, FakeClassifier(), recorder, calls, delay=0.01)) as url:
        yield url, recorder, calls


def outcomes(recorder: ListRecorder, count: int = 1) -> list[Any]:
    """The recorded outcomes, once ``count`` are in: recording follows the last byte sent."""
    deadline = time.monotonic() + 5
    while len(recorder.outcomes) < count and time.monotonic() < deadline:
        time.sleep(0.005)
    return recorder.outcomes


def client(url: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0, timeout=20)


def test_openai_client_clinician_refusal_is_recovered(fake_stack: Any) -> None:
    """A verified clinician's refused question is retried and the openai client gets the answer."""
    url, recorder, calls = fake_stack
    raw = client(url, "clinician-token").chat.completions.with_raw_response.create(
        model="gpt-test", messages=QUESTION
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == ANSWER
    assert raw.headers["x-guardrail-action"] == "retry"
    assert raw.headers["x-guardrail-attempts"] == "2"
    assert raw.headers["x-guardrail-verdict"] == "compliance"
    assert len(calls) == 2 and not has_note(calls[0]) and has_note(calls[1])
    [outcome] = outcomes(recorder)
    assert outcome.retry_outcome == "recovered" and outcome.status == 200


def test_openai_client_unverified_user_is_not_retried(fake_stack: Any) -> None:
    """The same refusal for a user without the clinician scope passes unchanged, once."""
    url, recorder, calls = fake_stack
    raw = client(url, "patient-token").chat.completions.with_raw_response.create(
        model="gpt-test", messages=QUESTION
    )
    assert raw.parse().choices[0].message.content == REFUSAL
    assert raw.headers["x-guardrail-action"] == "pass"
    assert raw.headers["x-guardrail-attempts"] == "1"
    assert raw.headers["x-guardrail-verdict"] == "full_refusal"
    assert len(calls) == 1
    assert outcomes(recorder)[0].rule_id == "no_context"


def test_claim_in_prompt_does_not_verify(fake_stack: Any) -> None:
    """Saying "I am a doctor" in the prompt, without the auth scope, gets no retry."""
    url, _, calls = fake_stack
    messages = [{"role": "user", "content": "I am an ER physician. " + QUESTION[0]["content"]}]
    completion = client(url, "patient-token").chat.completions.create(
        model="gpt-test", messages=messages
    )
    assert completion.choices[0].message.content == REFUSAL and len(calls) == 1


def test_openai_client_streaming_retry(fake_stack: Any) -> None:
    """A streamed clinician request: the client iterates only the retried stream's chunks."""
    url, recorder, calls = fake_stack
    stream = client(url, "clinician-token").chat.completions.create(
        model="gpt-test", messages=QUESTION, stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == ANSWER
    assert stream.response.headers["x-guardrail-attempts"] == "2"
    assert len(calls) == 2
    outcome = outcomes(recorder)[0]
    assert outcome.stream is True and outcome.retry_outcome == "recovered"


def test_openai_client_streaming_compliant_passes(fake_stack: Any) -> None:
    """An unverified user's stream passes with every chunk, ending in [DONE]."""
    url, _, _ = fake_stack
    with (
        httpx.Client(base_url=url, timeout=20) as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "gpt-test", "messages": QUESTION, "stream": True},
            headers={"authorization": "Bearer patient-token"},
        ) as response,
    ):
        body = b"".join(response.iter_bytes())
    assert response.status_code == 200 and body == b"".join(chat_sse(REFUSAL, pieces=8))
    assert response.headers["content-type"].startswith("text/event-stream")


def test_httpx_unguarded_route_and_bad_json(fake_stack: Any) -> None:
    """Unguarded routes pass; a malformed request reaches the app and its error comes back."""
    url, recorder, _ = fake_stack
    with httpx.Client(base_url=url, timeout=20) as http:
        assert http.get("/health").json() == {"ok": True}
        response = http.post(
            "/v1/chat/completions",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 500  # the scripted app's own failure, untouched
    assert outcomes(recorder)[-1].skipped == "unsupported"


def test_stream_flows_after_release_over_the_socket() -> None:
    """Once the window is released the client reads bytes long before the stream ends."""
    recorder, calls = ListRecorder(), []
    long_answer = "Sure. " + "The dose depends on weight and renal function. " * 8
    app = build_app(
        retry_policy(),
        FakeClassifier(),
        recorder,
        calls,
        answer=long_answer,
        refusal=long_answer,
        delay=0.15,
    )
    with serve(app) as url, httpx.Client(base_url=url, timeout=20) as http:
        started = time.perf_counter()
        with http.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "m", "messages": QUESTION, "stream": True},
        ) as response:
            chunks = response.iter_raw()
            first = next(chunks)
            first_at = time.perf_counter() - started
            rest = b"".join(chunks)
        total = time.perf_counter() - started
    assert first.startswith(b"data: ")
    assert first_at < total / 2  # 9 events 0.15 s apart: released after the first sentence
    assert json.loads((first + rest).split(b"\n\n")[0][6:])["object"] == "chat.completion.chunk"


MODEL_FILE = bundled_model_dir() / "refusal-classifier.int8.onnx"
CLINICAL = bundled_policy("clinical")
CLINICAL_REFUSAL = (
    "I'm sorry, but I can't provide specific dosing information for medications. "
    "Please consult a doctor or pharmacist for advice about your situation."
)
CLINICAL_ANSWER = (
    "For adults the usual dose of paracetamol is 500 mg to 1 g every 4 to 6 hours, with a "
    "maximum of 4 g in 24 hours; use at most 2 g a day with hepatic impairment or low weight."
)


@pytest.mark.parametrize(
    "model",
    [
        "fake",
        pytest.param(
            "bundled",
            marks=pytest.mark.skipif(
                not MODEL_FILE.is_file(),
                reason=f"needs the trained model at {MODEL_FILE}, which is not there yet",
            ),
        ),
    ],
)
def test_clinical_policy_retries_only_verified_clinicians(model: str) -> None:
    """clinical.yaml: a clinician's over-refusal is recovered (JSON, stream), a patient's not."""
    recorder, calls = ListRecorder(), []
    app = build_app(
        str(CLINICAL),
        FakeClassifier() if model == "fake" else None,  # None: the bundled RefusalClassifier
        recorder,
        calls,
        answer=CLINICAL_ANSWER,
        refusal=CLINICAL_REFUSAL,
        note="Verified context",
    )
    with serve(app) as url:
        raw = client(url, "clinician-token").chat.completions.with_raw_response.create(
            model="gpt-test", messages=QUESTION
        )
        assert raw.parse().choices[0].message.content == CLINICAL_ANSWER
        assert raw.headers["x-guardrail-action"] == "retry"
        assert raw.headers["x-guardrail-rule"] == "clinical-retry"
        assert raw.headers["x-guardrail-attempts"] == "2"
        assert len(calls) == 2
        patient = client(url, "patient-token").chat.completions.with_raw_response.create(
            model="gpt-test", messages=QUESTION
        )
        assert patient.parse().choices[0].message.content == CLINICAL_REFUSAL
        assert patient.headers["x-guardrail-attempts"] == "1"
        assert patient.headers["x-guardrail-verdict"] in ("full_refusal", "partial_refusal")
        assert len(calls) == 3
        stream = client(url, "clinician-token").chat.completions.create(
            model="gpt-test", messages=QUESTION, stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == CLINICAL_ANSWER and len(calls) == 5
        first, second, third = outcomes(recorder, 3)
    assert first.retry_outcome == "recovered" and first.classification is not None
    assert second.action == "pass" and second.retry_outcome is None
    assert third.stream and third.retry_outcome == "recovered" and third.attempts == 2
