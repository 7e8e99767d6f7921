"""The request side: bounded body buffering, replay to the wrapped app, RequestContext."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Message, Receive, Scope

from guardrail.middleware._routes import GuardedRoute
from guardrail.middleware.adapters import RequestInfo
from guardrail.policy_api import RequestContext

__all__ = [
    "BufferedBody",
    "body_receive",
    "build_context",
    "header_map",
    "read_body",
    "replay_receive",
    "request_id",
    "scope_with_body_length",
]

_MAX_REQUEST_ID = 128


@dataclass(slots=True)
class BufferedBody:
    """The request body, or (``complete`` False) what was read before giving up on it."""

    body: bytes
    complete: bool
    messages: list[Message] = field(default_factory=list)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> BufferedBody:
    """Read the whole body if it fits in ``limit`` bytes; stop early (incomplete) if not."""
    declared = _declared_length(scope)
    if declared is not None and declared > limit:
        return BufferedBody(b"", False)
    chunks: list[bytes] = []
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return BufferedBody(b"", False, messages)  # the client went away mid-body
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return BufferedBody(b"", False, messages)
        if not message.get("more_body", False):
            return BufferedBody(b"".join(chunks), True, messages)


def replay_receive(messages: list[Message], receive: Receive) -> Receive:
    """Hand the app the messages already read, then the live ones."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def body_receive(body: bytes, receive: Receive) -> Receive:
    """One attempt's receive: the (possibly rewritten) body once, then the live channel.

    Later calls go to the client's channel, so an app waiting for ``http.disconnect`` still
    learns when the client leaves.
    """
    sent = False

    async def receive_body() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_body


def scope_with_body_length(scope: Scope, length: int) -> Scope:
    """A copy of ``scope`` whose Content-Length matches a rewritten body."""
    headers = [
        (k, v) for k, v in scope["headers"] if k not in (b"content-length", b"transfer-encoding")
    ]
    headers.append((b"content-length", str(length).encode("latin-1")))
    return {**scope, "headers": headers}


def _header_map(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def request_id(headers: dict[str, str]) -> str:
    """The client's ``x-request-id`` when it is a sane token, otherwise a fresh one."""
    given = headers.get("x-request-id", "")
    if 0 < len(given) <= _MAX_REQUEST_ID and given.isascii() and given.isprintable():
        return given
    return uuid.uuid4().hex


def _auth_scopes(scope: Scope) -> frozenset[str]:
    # Starlette's AuthCredentials; only server-side code (an auth backend) can put it here.
    scopes: Any = getattr(scope.get("auth"), "scopes", None)
    if isinstance(scopes, list | tuple | set | frozenset):
        return frozenset(s for s in scopes if isinstance(s, str))
    return frozenset()


def _user(scope: Scope) -> str | None:
    user = scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    for attribute in ("identity", "display_name"):
        try:
            value = getattr(user, attribute, None)
        except NotImplementedError:
            continue  # Starlette's BaseUser.identity raises unless a subclass defines it
        if isinstance(value, str) and value:
            return value
    return None


def build_context(
    scope: Scope, route: GuardedRoute, info: RequestInfo, headers: dict[str, str]
) -> RequestContext:
    """Everything the policy may look at about this request."""
    return RequestContext(
        route=route.template,
        method=scope["method"],
        api=route.adapter.name,
        path=scope["path"],
        headers=headers,
        scopes=_auth_scopes(scope),
        user=_user(scope),
        model=info.model,
        body_user=info.body_user,
        metadata=info.metadata,
        last_user_message=info.last_user_message,
        system_prompt=info.system_prompt,
        stream=info.stream,
    )


def header_map(scope: Scope) -> dict[str, str]:
    """Lower-cased request header names to their raw values (repeats joined by ", ")."""
    return _header_map(scope["headers"])
