"""Demo authentication: a fixed bearer token stands in for a real identity provider.

``Authorization: Bearer demo-clinician`` authenticates as a clinician (scope ``clinician``),
which ``policies/clinical.yaml`` trusts because the *server* checked it, the same way it would
trust scopes set by a real OAuth/OIDC backend. Any other bearer token (the openai client
always sends one) is an ordinary user; no header is anonymous. Never use this outside a demo.
"""

from __future__ import annotations

import hmac

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    SimpleUser,
)
from starlette.requests import HTTPConnection

__all__ = ["CLINICIAN_TOKEN", "USER_TOKEN", "DemoTokenBackend"]

CLINICIAN_TOKEN = "demo-clinician"
USER_TOKEN = "demo-user"


class DemoTokenBackend(AuthenticationBackend):
    """Maps the demo clinician token to scopes ``authenticated`` + ``clinician``."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        header = conn.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        token = token.strip()
        # Constant-time compare: the habit matters even for a demo secret.
        if hmac.compare_digest(token.encode(), CLINICIAN_TOKEN.encode()):
            return AuthCredentials(["authenticated", "clinician"]), SimpleUser("demo-clinician")
        return AuthCredentials(["authenticated"]), SimpleUser("demo-user")
