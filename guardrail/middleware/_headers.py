"""Response header edits: the ``x-guardrail-*`` headers and a corrected Content-Length."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starlette.types import Message

__all__ = ["GuardHeaders", "content_encoding", "content_type", "with_headers"]

_OURS = b"x-guardrail-"
# A body sent whole with its length replaces any chunked framing the app asked for.
_LENGTH_HEADERS = (b"content-length", b"transfer-encoding")


@dataclass(frozen=True, slots=True)
class GuardHeaders:
    """What happened to a response, as the client sees it in ``x-guardrail-*`` headers."""

    action: str
    attempts: int
    request_id: str
    verdict: str | None = None
    rule: str | None = None
    skipped: str | None = None

    def raw(self) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"x-guardrail-action", self.action.encode("latin-1")),
            (b"x-guardrail-attempts", str(self.attempts).encode("latin-1")),
            (b"x-guardrail-request-id", self.request_id.encode("latin-1")),
        ]
        if self.verdict is not None:
            headers.append((b"x-guardrail-verdict", self.verdict.encode("latin-1")))
        if self.rule is not None:
            # Rule ids come from the policy file; keep the header valid whatever they hold.
            headers.append((b"x-guardrail-rule", self.rule.encode("latin-1", "replace")))
        if self.skipped is not None:
            headers.append((b"x-guardrail-skipped", self.skipped.encode("latin-1")))
        return headers


def _header(raw: Sequence[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in raw:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def content_type(start: Message) -> str:
    return _header(start.get("headers", ()), b"content-type")


def content_encoding(start: Message) -> str:
    return _header(start.get("headers", ()), b"content-encoding").strip().lower()


def with_headers(
    start: Message, guard: GuardHeaders, *, content_length: int | None = None
) -> Message:
    """A copy of ``start`` carrying ``guard``; Content-Length replaced when one is given.

    ``x-guardrail-*`` headers from upstream are dropped so a client can trust ours.
    """
    headers = [
        (k, v)
        for k, v in start.get("headers", ())
        if not k.lower().startswith(_OURS)
        and not (content_length is not None and k.lower() in _LENGTH_HEADERS)
    ]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode("latin-1")))
    headers.extend(guard.raw())
    return {**start, "headers": headers}
