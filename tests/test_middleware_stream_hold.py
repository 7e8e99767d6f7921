"""Which streams are held back: only those the policy could act on (``stream_hold``)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from test_middleware_doubles import (
    ANSWER,
    NOTE,
    REFUSAL,
    SSE,
    FakeClassifier,
    chat_sse,
    drive,
    refuses_without_note,
)
from test_middleware_json import CHAT, fixed, guard

from guardrail.classification import Classification
from guardrail.errors import ConfigError
from guardrail.policy import parse_policy
from guardrail.policy_api import Decision, RequestContext

STREAM = {**CHAT, "stream": True}
MONITOR = parse_policy("version: 1\nname: monitor\nrules: []\ndefault:\n  action: pass\n")
SCOPED_RETRY = parse_policy(
    """
version: 1
name: scoped
rules:
  - id: clinician-retry
    when:
      scopes_any: [clinician]
    action: retry
    retry:
      note: "{note}"
""".replace("{note}", NOTE)
)


def _released_before_the_app_finished(chunks: list[bytes]) -> tuple[Any, anyio.Event]:
    """An upstream that sends one chunk and waits until the client has the response start."""
    started = anyio.Event()

    async def upstream(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": SSE})
        await send({"type": "http.response.body", "body": chunks[0], "more_body": True})
        with anyio.fail_after(2):
            await started.wait()  # a held stream would deadlock here: nothing is judged yet
        for chunk in chunks[1:]:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return upstream, started


@pytest.mark.anyio
async def test_a_stream_no_rule_can_touch_goes_out_at_once_and_is_judged_at_the_end() -> None:
    """Monitor-only: the start leaves before the window fills; the full text is classified."""
    chunks = chat_sse(ANSWER + " More detail follows here. " * 4, pieces=8)
    upstream, started = _released_before_the_app_finished(chunks)

    async def on_message(message: Any) -> None:
        if message["type"] == "http.response.start":
            started.set()

    app, recorder, classifier = guard(upstream, policy=MONITOR)
    got = await drive(app, STREAM, on_message=on_message)
    assert [m.get("body") for m in got.messages[1:]] == [*chunks, b""]
    assert got.headers["x-guardrail-action"] == "pass"
    assert "x-guardrail-verdict" not in got.headers
    outcome = recorder.outcomes[0]
    assert outcome.classification is not None and outcome.classification.verdict == "compliance"
    assert outcome.action == "pass" and outcome.rule_id is None and outcome.skipped is None
    assert classifier.batches == [[ANSWER + " More detail follows here. " * 4]]


@pytest.mark.anyio
async def test_an_unheld_refusal_is_counted_as_one() -> None:
    """A refusing stream under monitor-only passes unchanged and is recorded as a refusal."""
    chunks = chat_sse(REFUSAL)
    app, recorder, _ = guard(fixed(200, SSE, chunks), policy=MONITOR)
    got = await drive(app, STREAM)
    assert got.body == b"".join(chunks)
    outcome = recorder.outcomes[0]
    assert outcome.classification is not None and outcome.classification.is_refusal
    assert outcome.action == "pass"


@pytest.mark.anyio
async def test_stream_hold_always_holds_even_when_the_policy_cannot_act() -> None:
    """With stream_hold="always" a monitor-only stream carries its window's verdict."""
    app, _, _ = guard(fixed(200, SSE, chat_sse(ANSWER)), policy=MONITOR, stream_hold="always")
    got = await drive(app, STREAM)
    assert got.headers["x-guardrail-verdict"] == "compliance"


@pytest.mark.anyio
async def test_only_a_verified_request_that_a_rule_could_retry_is_held() -> None:
    """The clinician's refused stream is retried; the unverified one passes unheld, unretried."""
    upstream = refuses_without_note(stream=True)
    app, recorder, _ = guard(upstream, policy=SCOPED_RETRY)
    clinician = await drive(app, STREAM, extra_scope={"auth": _Auth({"clinician"})})
    assert clinician.headers["x-guardrail-action"] == "retry"
    assert clinician.headers["x-guardrail-verdict"] == "compliance"
    assert len(upstream.requests) == 2
    anonymous = await drive(app, STREAM)
    assert anonymous.headers["x-guardrail-action"] == "pass"
    assert "x-guardrail-verdict" not in anonymous.headers
    assert anonymous.body == b"".join(chat_sse(REFUSAL))
    assert len(upstream.requests) == 3
    assert recorder.outcomes[1].classification is not None
    assert recorder.outcomes[1].classification.is_refusal


class _Auth:
    def __init__(self, scopes: set[str]) -> None:
        self.scopes = scopes


class _LyingPolicy:
    """Says it cannot act, then decides to block: the stream has passed already."""

    fail_closed = False

    def may_act(self, ctx: RequestContext) -> bool:
        return False

    def decide(self, ctx: RequestContext, c: Classification, *, attempt: int) -> Decision:
        return Decision(action="block", rule_id="late-block")


class _BrokenScope(_LyingPolicy):
    def may_act(self, ctx: RequestContext) -> bool:
        raise RuntimeError("may_act bug")


@pytest.mark.anyio
async def test_a_policy_acting_after_saying_it_would_not_is_recorded_as_shadow() -> None:
    """The bytes already went out unchanged, so the late block is recorded as a shadow."""
    chunks = chat_sse(REFUSAL)
    app, recorder, _ = guard(fixed(200, SSE, chunks), policy=_LyingPolicy())
    got = await drive(app, STREAM)
    assert got.status == 200 and got.body == b"".join(chunks)
    outcome = recorder.outcomes[0]
    assert (outcome.action, outcome.shadow_action, outcome.rule_id) == (
        "shadow",
        "block",
        "late-block",
    )


@pytest.mark.anyio
async def test_a_failing_may_act_holds_the_stream() -> None:
    """When may_act raises, the stream is held and judged as before (here: blocked)."""
    app, _, _ = guard(fixed(200, SSE, chat_sse(REFUSAL)), policy=_BrokenScope())
    got = await drive(app, STREAM)
    assert got.headers["x-guardrail-action"] == "block"


@pytest.mark.anyio
async def test_json_answers_are_judged_before_they_leave_whatever_the_policy() -> None:
    """A complete body is always classified first: it carries its verdict header."""
    app, _, classifier = guard(refuses_without_note(), policy=MONITOR)
    got = await drive(app, CHAT)
    assert got.headers["x-guardrail-verdict"] == "full_refusal"
    assert isinstance(classifier, FakeClassifier)


def test_stream_hold_must_be_auto_or_always() -> None:
    """A misspelt stream_hold fails at construction with the allowed values."""
    with pytest.raises(ConfigError, match="stream_hold must be one of 'auto', 'always'"):
        guard(fixed(200, SSE, []), stream_hold="never")


@pytest.mark.anyio
@pytest.mark.parametrize("api", ["anthropic", "responses"])
async def test_unheld_streams_of_the_other_apis_are_read_whole_after_the_last_byte(
    api: str,
) -> None:
    """Anthropic and Responses streams pass unheld and byte for byte, classified at the end."""
    from test_middleware_adapters import anthropic_sse, responses_sse

    if api == "anthropic":
        chunks, path = anthropic_sse(REFUSAL), "/v1/messages"
        request: dict[str, Any] = {
            "model": "claude-test",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "hi"}],
        }
    else:
        chunks, path = responses_sse(REFUSAL), "/v1/responses"
        request = {"model": "gpt-test", "input": "hi"}
    app, recorder, classifier = guard(fixed(200, SSE, chunks), policy=MONITOR)
    got = await drive(app, {**request, "stream": True}, path=path)
    assert got.body == b"".join(chunks)
    assert "x-guardrail-verdict" not in got.headers
    assert classifier.batches == [[REFUSAL]]
    outcome = recorder.outcomes[0]
    assert outcome.stream is True and outcome.action == "pass"
    assert outcome.classification is not None and outcome.classification.is_refusal


class _CountingScope(_LyingPolicy):
    def __init__(self) -> None:
        self.asked = 0

    def may_act(self, ctx: RequestContext) -> bool:
        self.asked += 1
        return True

    def decide(self, ctx: RequestContext, c: Classification, *, attempt: int) -> Decision:
        return Decision()


@pytest.mark.anyio
async def test_may_act_is_asked_once_per_streamed_request_and_never_for_json() -> None:
    """The question is only put when a stream starts (its regexes cost nothing for JSON)."""
    from test_middleware_doubles import JSON, chat_json

    policy = _CountingScope()
    app, _, _ = guard(fixed(200, JSON, [chat_json(ANSWER)]), policy=policy)
    await drive(app, CHAT)
    assert policy.asked == 0
    app, _, _ = guard(fixed(200, SSE, chat_sse(ANSWER)), policy=policy)
    got = await drive(app, STREAM)
    assert policy.asked == 1 and got.headers["x-guardrail-verdict"] == "compliance"


@pytest.mark.anyio
async def test_an_unheld_stream_that_cannot_be_read_is_counted_as_skipped() -> None:
    """Not JSON events -> 'unsupported', past max_response_bytes -> 'too_large'; bytes intact."""
    chunks = [b"data: {not json}\n\n", b"data: more\n\n"]
    app, recorder, classifier = guard(fixed(200, SSE, chunks), policy=MONITOR)
    got = await drive(app, STREAM)
    assert got.body == b"".join(chunks)
    assert recorder.outcomes[0].skipped == "unsupported"
    assert recorder.outcomes[0].classification is None

    long = chat_sse(ANSWER + " And more. " * 400, pieces=40)
    app, recorder, classifier = guard(
        fixed(200, SSE, long), policy=MONITOR, max_response_bytes=2048
    )
    got = await drive(app, STREAM)
    assert got.body == b"".join(long)
    assert recorder.outcomes[0].skipped == "too_large"
    assert recorder.outcomes[0].classification is None and classifier.batches == []
