"""Pure ASGI middleware that classifies LLM answers and acts on refusals by policy.

``GuardrailMiddleware`` wraps any ASGI app (Starlette, FastAPI, a proxy) and guards the POST
routes configured in ``GuardrailOptions.routes``: OpenAI Chat Completions, the OpenAI
Responses API, Anthropic Messages and plain text, each through an ``ApiAdapter``. For each
answer it asks the policy for a ``Decision`` (pass, retry with a context note, replace,
block, or shadow) and reports one ``GuardOutcome`` to the recorder.

Latency. A JSON answer is held until it is complete, so the time added is one
classification (about a millisecond with the bundled model, plus queueing when more than
``max_concurrency`` requests classify at once; bounded by ``classify_timeout``). A stream
is held back until the classifier's first window is full (``stream_window_rule="model"``,
about 46 tokens for the bundled model) or, with ``"sentence"``, until its text has a
sentence end at or after ``stream_window_min_chars`` characters; under either rule at most
until it reaches ``stream_window_max_chars``, or ends. Then one classification decides.
The added time to first byte is therefore at most the time upstream takes to produce that
window, plus one classification (at most ``classify_timeout``); after release the held
chunks go out in one write and every later chunk as it arrives. The full text is classified
again after the last byte is sent, for metrics only, behind any classification a client is
waiting for and on at most half of the workers; with the model rule its head window is not
computed again. A retry costs a
whole second upstream call: the discarded attempt is drained (and kept as the fallback
answer should the retry fail) before the retry starts.

Failure. At request time the middleware fails open: upstream errors and non-2xx answers,
bodies it cannot read (``unsupported``), compressed bodies (``encoded``), bodies over the
size limits (``too_large``), classifier errors (``error``) and timeouts (``timeout``) leave
the client with exactly what the unguarded app would have sent, plus ``x-guardrail-*``
headers. A policy with ``fail_closed`` turns classifier errors and timeouts into a 503 in
the API's error format. Classification runs in worker threads, never on the event loop,
and can micro-batch concurrent requests into one ``classify_batch`` call
(``max_batch_texts``; off by default because the bundled model gains nothing from batches).
With ``classifier_processes`` the bundled model runs in worker processes instead
(``guardrail.model.ProcessClassifier``), which also read unheld streams' events themselves,
so the event loop keeps such a stream's bytes without parsing them.

Asyncio only: the worker pool hands results back with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

from guardrail.middleware.adapters import (
    ApiAdapter,
    Rendered,
    RequestInfo,
    ResponseTexts,
    StreamCollector,
)
from guardrail.middleware.middleware import GuardrailMiddleware, PolicySource
from guardrail.middleware.options import DEFAULT_ROUTES, GuardrailOptions

__all__ = [
    "DEFAULT_ROUTES",
    "ApiAdapter",
    "GuardrailMiddleware",
    "GuardrailOptions",
    "PolicySource",
    "Rendered",
    "RequestInfo",
    "ResponseTexts",
    "StreamCollector",
]
