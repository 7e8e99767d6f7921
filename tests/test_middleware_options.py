"""Configuration: validated at construction, routes matched by template, the rest untouched."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from test_middleware_doubles import (
    REFUSAL,
    FakeClassifier,
    ListRecorder,
    ScriptedPolicy,
    chat_json,
    drive,
)
from test_middleware_json import guard

from guardrail.errors import ConfigError
from guardrail.middleware import GuardrailMiddleware, GuardrailOptions
from guardrail.middleware._routes import RouteTable
from guardrail.policy_api import Decision


def build(**options: Any) -> GuardrailMiddleware:
    return GuardrailMiddleware(
        PlainTextResponse("x"),
        policy=ScriptedPolicy(),
        classifier=FakeClassifier(),
        recorder=ListRecorder(),
        **options,
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_request_bytes": 0}, "max_request_bytes must be a positive integer, got 0"),
        ({"max_response_bytes": True}, "max_response_bytes must be a positive integer, got True"),
        (
            {"stream_window_min_chars": 50, "stream_window_max_chars": 10},
            "stream_window_min_chars (50) must not exceed stream_window_max_chars (10)",
        ),
        ({"classify_timeout": 0}, "classify_timeout must be a positive number of seconds, got 0"),
        (
            {"classify_timeout": float("nan")},
            "classify_timeout must be a positive number of seconds, got nan",
        ),
        ({"max_concurrency": 2.5}, "max_concurrency must be a positive integer, got 2.5"),
        (
            {"routes": {"/v1/x": "grpc"}},
            "route '/v1/x': unknown adapter 'grpc' (known: anthropic, openai_chat, plain_text, "
            "responses)",
        ),
        (
            {"routes": {"v1/x": "openai_chat"}},
            "route template 'v1/x' must be a string starting with '/'",
        ),
        (
            {"routes": {"/v1/{x": "openai_chat"}},
            "placeholder segment '{x' must be a whole path segment",
        ),
        ({"routes": {}}, "routes must be a non-empty mapping"),
        ({"models": "gpt-4o"}, "models must be a sequence of model names"),
        (
            {"stream_window_rule": "tokens"},
            "stream_window_rule must be one of 'model', 'sentence', got 'tokens'",
        ),
        (
            {"stream_window": 3},
            "unknown GuardrailMiddleware option(s) 'stream_window'; valid options are:",
        ),
    ],
)
def test_bad_options_fail_at_construction(options: dict[str, Any], message: str) -> None:
    """Each bad option fails at start-up with a message naming the option and the value."""
    with pytest.raises(ConfigError) as raised:
        build(**options)
    assert message in str(raised.value)


def test_options_object_and_keywords_are_exclusive() -> None:
    """Passing both options= and option keywords is refused."""
    with pytest.raises(ConfigError, match="not both"):
        build(options=GuardrailOptions(), log_content=True)


def test_bad_collaborators_fail_at_construction() -> None:
    """A classifier, policy or recorder of the wrong shape fails with the type named."""
    with pytest.raises(ConfigError, match="classifier must implement"):
        GuardrailMiddleware(
            PlainTextResponse("x"),
            policy=ScriptedPolicy(),
            classifier=object(),
            recorder=ListRecorder(),
        )  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="policy must be a policy file path"):
        GuardrailMiddleware(
            PlainTextResponse("x"), policy=42, classifier=FakeClassifier(), recorder=ListRecorder()
        )  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="recorder must have a record"):
        GuardrailMiddleware(
            PlainTextResponse("x"),
            policy=ScriptedPolicy(),
            classifier=FakeClassifier(),
            recorder=object(),
        )  # type: ignore[arg-type]


def test_options_are_frozen_copies() -> None:
    """Options cannot be changed after construction, not even through the caller's dict."""
    routes = {"/v1/chat/completions": "openai_chat"}
    options = GuardrailOptions(routes=routes)
    routes["/other"] = "plain_text"
    assert dict(options.routes) == {"/v1/chat/completions": "openai_chat"}
    with pytest.raises(AttributeError):
        options.max_concurrency = 9  # type: ignore[misc]


def test_default_concurrency_follows_the_cpus_the_process_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One classifier thread per usable CPU, at least 1 and at most 4."""
    import guardrail.middleware.options as options_module

    for cpus, expected in ((1, 1), (2, 2), (3, 3), (16, 4)):
        monkeypatch.setattr(
            options_module.os, "sched_getaffinity", lambda _pid, n=cpus: set(range(n))
        )
        assert GuardrailOptions().max_concurrency == expected
    monkeypatch.delattr(options_module.os, "sched_getaffinity")
    monkeypatch.setattr(options_module.os, "cpu_count", lambda: None)
    assert GuardrailOptions().max_concurrency == 1


def test_route_table_matches_templates() -> None:
    """Exact paths, trailing slashes and one-segment placeholders match; others do not."""
    table = RouteTable(
        {"/v1/messages": "anthropic", "/{tenant}/v1/chat/completions": "openai_chat"}
    )
    assert table.match("/v1/messages").template == "/v1/messages"  # type: ignore[union-attr]
    assert table.match("/v1/messages/").template == "/v1/messages"  # type: ignore[union-attr]
    assert table.match("/acme/v1/chat/completions").template == "/{tenant}/v1/chat/completions"  # type: ignore[union-attr]
    for path in ("/v1/chat/completions", "/a/b/v1/chat/completions", "/v1/messages/x", "/"):
        assert table.match(path) is None


def test_default_routes() -> None:
    """By default the OpenAI chat, Responses and Anthropic paths are guarded."""
    table = RouteTable(GuardrailOptions().routes)
    apis = {
        p: table.match(p).adapter.name
        for p in ("/v1/chat/completions", "/chat/completions", "/v1/responses", "/v1/messages")
    }  # type: ignore[union-attr]
    assert apis == {
        "/v1/chat/completions": "openai_chat",
        "/chat/completions": "openai_chat",
        "/v1/responses": "responses",
        "/v1/messages": "anthropic",
    }


@pytest.mark.anyio
async def test_unguarded_requests_pass_straight_through() -> None:
    """GET requests, other paths and non-HTTP scopes reach the app untouched and unrecorded."""
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])
        if scope["type"] == "http":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": chat_json(REFUSAL)})

    middleware, recorder, classifier = guard(
        app, ScriptedPolicy(on_refusal=Decision(action="block"))
    )
    got = await drive(middleware, b"", method="GET")
    assert got.body == chat_json(REFUSAL) and "x-guardrail-action" not in got.headers
    got = await drive(middleware, b"{}", path="/v1/models")
    assert got.status == 200 and "x-guardrail-action" not in got.headers

    async def receive() -> Any:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        return None

    await middleware({"type": "lifespan"}, receive, send)
    assert calls == ["http", "http", "lifespan"]
    assert recorder.outcomes == [] and classifier.batches == []


def test_works_as_starlette_middleware_entry() -> None:
    """Middleware(GuardrailMiddleware, ...) in a Starlette app guards its chat route."""

    async def chat(request: Request) -> JSONResponse:
        await request.json()
        return JSONResponse(
            {
                "object": "chat.completion",
                "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": REFUSAL}}],
            }
        )

    recorder = ListRecorder()
    app = Starlette(
        routes=[Route("/v1/chat/completions", chat, methods=["POST"])],
        middleware=[
            Middleware(
                GuardrailMiddleware,
                policy=ScriptedPolicy(on_refusal=Decision(action="block", rule_id="deny")),
                classifier=FakeClassifier(),
                recorder=recorder,
            )
        ],
    )
    with TestClient(app) as client:
        response = client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "q"}]},
        )
    assert response.status_code == 403
    assert response.headers["x-guardrail-rule"] == "deny"
    assert recorder.outcomes[0].action == "block"


@pytest.mark.anyio
async def test_defaults_load_bundled_policy_and_record_metrics() -> None:
    """policy=None loads the bundled default policy; recorder=None counts Prometheus metrics."""
    from prometheus_client import REGISTRY

    def responses() -> float:
        total = 0.0
        for metric in REGISTRY.collect():
            for sample in metric.samples:
                if (
                    sample.name == "guardrail_responses_total"
                    and sample.labels.get("route") == "/v1/chat/completions"
                ):
                    total += sample.value
        return total

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": chat_json(REFUSAL)})

    before = responses()
    middleware = GuardrailMiddleware(app, classifier=FakeClassifier())
    got = await drive(middleware, {"model": "m", "messages": [{"role": "user", "content": "q"}]})
    assert got.status == 200 and got.headers["x-guardrail-verdict"] == "full_refusal"
    assert responses() == before + 1


def test_app_may_be_given_by_keyword_as_older_starlette_does() -> None:
    """Starlette 0.37-0.40 build middleware as cls(app=app, ...); that form works too."""

    async def chat(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    guard_kw = GuardrailMiddleware(
        app=chat, policy=ScriptedPolicy(), classifier=FakeClassifier(), recorder=ListRecorder()
    )
    assert guard_kw.app is chat
    with pytest.raises(ConfigError, match="needs the ASGI app"):
        GuardrailMiddleware(policy=ScriptedPolicy(), classifier=FakeClassifier())


def test_missing_policy_file_fails_at_construction(tmp_path: Any) -> None:
    """A policy path that does not exist is a start-up error naming the file."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as raised:
        GuardrailMiddleware(
            PlainTextResponse("x"),
            policy=str(missing),
            classifier=FakeClassifier(),
            recorder=ListRecorder(),
        )
    assert "nope.yaml" in str(raised.value)
