"""Verified request context: what a policy may believe about who is asking.

Only three sources count, and none of them is the conversation itself:

* ``scope["auth"].scopes`` / ``scope["user"]`` (``RequestContext.scopes``/``.user``), which
  only server-side code such as Starlette's ``AuthenticationMiddleware`` can set;
* headers the policy names under ``context.trusted_headers`` (a gateway in front of the
  service sets or strips them); every other header grants nothing;
* a signed context header, ``<base64url(json claims)>.<signature>``, where the signature
  is HMAC-SHA256 of the first part under a secret read from the environment, given as
  hex or base64url. The claims must carry ``exp`` (unix seconds) and may carry ``scopes``
  (list of strings) and ``sub`` (the user).

A claim written in a prompt ("I'm an ER physician") is text for the model, never context.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from guardrail.policy_api import RequestContext

__all__ = [
    "SignedContextError",
    "SignedHeader",
    "TrustedHeader",
    "VerifiedContext",
    "resolve_context",
    "sign_context",
    "verify_signed_context",
]

#: Larger header values are rejected before any decoding work is done.
MAX_SIGNED_HEADER_BYTES = 4096
_MAX_SCOPES = 64
_MAX_CLAIM_CHARS = 256

Grant = Literal["scopes", "user", "value"]


@dataclass(frozen=True, slots=True)
class TrustedHeader:
    """A header that a trusted gateway sets; ``grants`` says what its value means."""

    name: str
    grants: Grant


@dataclass(frozen=True, slots=True)
class SignedHeader:
    """Signed-context header settings. ``secret`` is None when the signal is disabled."""

    header: str
    secret_env: str
    secret: bytes | None = field(default=None, repr=False)
    leeway_seconds: int = 5


@dataclass(frozen=True, slots=True)
class VerifiedContext:
    """The context a rule may rely on; ``signed_error`` says why a signed header was ignored."""

    scopes: frozenset[str] = frozenset()
    user: str | None = None
    header_values: Mapping[str, str] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    signed_error: str | None = None


class SignedContextError(ValueError):
    """A signed context header is malformed, badly signed or expired."""


def _b64url_decode(text: str) -> bytes:
    if not text or any(c not in _B64URL for c in text):
        raise SignedContextError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SignedContextError("not base64url") from None


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_HEX = frozenset("0123456789abcdefABCDEF")


def _signature_bytes(text: str) -> bytes:
    # 64 hex digits or 43 base64url characters (padding stripped) both encode 32 bytes.
    if len(text) == 64 and all(c in _HEX for c in text):
        return bytes.fromhex(text)
    return _b64url_decode(text.rstrip("="))


def sign_context(claims: Mapping[str, Any], secret: bytes) -> str:
    """Build a signed context header value (for gateways, tests and the CLI)."""
    payload = base64.urlsafe_b64encode(
        json.dumps(dict(claims), separators=(",", ":"), sort_keys=True).encode()
    ).rstrip(b"=")
    signature = hmac.new(secret, payload, hashlib.sha256).hexdigest()
    return f"{payload.decode('ascii')}.{signature}"


def verify_signed_context(
    value: str, secret: bytes, *, now: float, leeway_seconds: int = 5
) -> dict[str, Any]:
    """Return the claims of a valid, unexpired header value; raise ``SignedContextError``."""
    if len(value) > MAX_SIGNED_HEADER_BYTES:
        raise SignedContextError("header too long")
    payload, sep, signature = value.strip().rpartition(".")
    if not sep or not payload:
        raise SignedContextError("expected <claims>.<signature>")
    expected = hmac.new(secret, payload.encode("ascii", "replace"), hashlib.sha256).digest()
    # Constant-time comparison: the time taken must not reveal how much of it was right.
    if not hmac.compare_digest(expected, _signature_bytes(signature)):
        raise SignedContextError("bad signature")
    try:
        claims = json.loads(_b64url_decode(payload))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise SignedContextError("claims are not JSON") from None
    if not isinstance(claims, dict):
        raise SignedContextError("claims are not a JSON object")
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        raise SignedContextError("claim 'exp' (unix seconds) is required")
    if now > exp + leeway_seconds:
        raise SignedContextError("expired")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and not isinstance(nbf, bool) and now < nbf - leeway_seconds:
        raise SignedContextError("not valid yet")
    return claims


def _claim_scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    raw = claims.get("scopes", [])
    if isinstance(raw, str):
        raw = raw.split()
    if not isinstance(raw, list) or len(raw) > _MAX_SCOPES:
        raise SignedContextError("claim 'scopes' must be a list of strings")
    if not all(isinstance(s, str) and 0 < len(s) <= _MAX_CLAIM_CHARS for s in raw):
        raise SignedContextError("claim 'scopes' must be a list of strings")
    return frozenset(raw)


def _claim_user(claims: Mapping[str, Any]) -> str | None:
    user = claims.get("sub", claims.get("user"))
    if user is None:
        return None
    if not isinstance(user, str) or not 0 < len(user) <= _MAX_CLAIM_CHARS:
        raise SignedContextError("claim 'sub' must be a short string")
    return user


def _split_scopes(value: str) -> frozenset[str]:
    return frozenset(s for s in value.replace(",", " ").split() if s)


def resolve_context(
    ctx: RequestContext,
    trusted: tuple[TrustedHeader, ...],
    signed: SignedHeader | None,
    *,
    now: float,
) -> VerifiedContext:
    """Collect the verified scopes, user and trusted header values of one request."""
    scopes = set(ctx.scopes)
    user = ctx.user
    sources: list[str] = []
    if ctx.scopes or ctx.user:
        sources.append("auth")
    values: dict[str, str] = {}
    for header in trusted:
        value = ctx.headers.get(header.name)
        if value is None:
            continue
        values[header.name] = value
        sources.append(f"header:{header.name}")
        if header.grants == "scopes":
            scopes |= _split_scopes(value)
        elif header.grants == "user" and user is None and value.strip():
            user = value.strip()[:_MAX_CLAIM_CHARS]
    signed_error = None
    if signed is not None and signed.secret is not None:
        raw = ctx.headers.get(signed.header)
        if raw is not None:
            try:
                claims = verify_signed_context(
                    raw, signed.secret, now=now, leeway_seconds=signed.leeway_seconds
                )
                claim_scopes, claim_user = _claim_scopes(claims), _claim_user(claims)
            except SignedContextError as exc:
                signed_error = str(exc)
            else:
                scopes |= claim_scopes
                user = user if user is not None else claim_user
                sources.append("signed")
    return VerifiedContext(frozenset(scopes), user, values, tuple(sources), signed_error)
