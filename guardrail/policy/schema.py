"""The policy file format, declared once: the loader validates with it, and
``guardrail policy schema`` prints it as JSON Schema for editors.
"""

from __future__ import annotations

from typing import Any

from guardrail.policy._containers import Field, ListOf, MapOf, Object
from guardrail.policy._specs import Bool, Enum, Int, Number, Regex, Str, Template
from guardrail.policy.model import NOTE_PLACEHOLDERS
from guardrail.taxonomy import CATEGORIES, KINDS, VERDICTS

__all__ = ["POLICY_SCHEMA", "SCHEMA_ID", "policy_json_schema"]

SCHEMA_ID = "https://guardrail.invalid/schemas/policy-v1.json"

_ID = Str(
    pattern=r"[a-z0-9][a-z0-9_.-]{0,62}",
    pattern_hint="an id (lower-case letters, digits, '_', '.', '-'; at most 63)",
)
_HEADER = Str(
    pattern=r"[a-z0-9!#$%&'*+.^_`|~-]{1,100}", pattern_hint="a lower-case HTTP header name"
)
_ENV = Str(pattern=r"[A-Za-z_][A-Za-z0-9_]{0,127}", pattern_hint="an environment variable name")
_WORDS = ListOf(Str(max_len=256), min_items=1, scalar_ok=True)
_TEXT = Str(max_len=4000)

_BUDGET = Object(
    {
        "per_minute": Field(
            Number(
                minimum=0.0,
                maximum=1e6,
                exclusive_minimum=True,
                description="tokens added per minute",
            ),
            required=True,
        ),
        "burst": Field(
            Int(
                minimum=1,
                maximum=1_000_000,
                description="most tokens held at once (retries in a burst)",
            ),
            required=True,
        ),
    },
    noun="retry budget",
    description="token bucket capping retries",
)

_RETRY = Object(
    {
        "note": Field(
            Template(
                NOTE_PLACEHOLDERS,
                description=(
                    "context note added to the retried request; placeholders: "
                    + ", ".join("{" + p + "}" for p in NOTE_PLACEHOLDERS)
                ),
            ),
            required=True,
        ),
        "role": Field(
            Enum(
                ("system", "developer"),
                noun="role",
                description="role of the added message (default system)",
            )
        ),
        "max_attempts": Field(
            Int(
                minimum=2,
                maximum=5,
                description=("total calls of the wrapped app, the first one included (default 2)"),
            )
        ),
    },
    noun="retry settings",
)

_REPLACE = Object({"message": Field(_TEXT, required=True)}, noun="replace settings")
_BLOCK = Object(
    {
        "status": Field(Int(minimum=400, maximum=599, description="HTTP status (default 403)")),
        "message": Field(_TEXT),
    },
    noun="block settings",
)

_ACTION_FIELDS: dict[str, Field] = {
    "action": Field(Enum(("pass", "retry", "replace", "block"), noun="action"), required=True),
    "retry": Field(_RETRY),
    "replace": Field(_REPLACE),
    "block": Field(_BLOCK),
    "shadow": Field(Bool(description="record what would happen, pass the response unchanged")),
}

_ACTION_RULES: dict[str, Any] = {
    "allOf": [
        {
            "if": {"properties": {"action": {"const": name}}, "required": ["action"]},
            "then": {"required": [name]},
        }
        for name in ("retry", "replace")
    ],
}

_WHEN = Object(
    {
        "verdict": Field(
            ListOf(
                Enum(VERDICTS, noun="verdict"),
                min_items=1,
                scalar_ok=True,
                description="default: partial_refusal, full_refusal",
            )
        ),
        "kind": Field(ListOf(Enum(KINDS, noun="kind"), min_items=1, scalar_ok=True)),
        "category": Field(
            ListOf(Enum(("none", *CATEGORIES), noun="category"), min_items=1, scalar_ok=True)
        ),
        "min_refusal_score": Field(Number(description="refusal_score >= this")),
        "min_category_score": Field(Number(description="category_score >= this")),
        "route": Field(
            ListOf(
                Str(max_len=500),
                min_items=1,
                scalar_ok=True,
                description="route templates, e.g. /v1/chat/completions",
            )
        ),
        "method": Field(
            ListOf(
                Str(pattern=r"[A-Z]{1,16}", pattern_hint="an upper-case method"),
                min_items=1,
                scalar_ok=True,
            )
        ),
        "api": Field(_WORDS),
        "stream": Field(Bool()),
        "model": Field(_WORDS),
        "body_user": Field(_WORDS),
        "metadata": Field(
            MapOf(
                Str(max_len=256), _WORDS, description="request body metadata key -> allowed values"
            )
        ),
        "scopes_any": Field(_WORDS),
        "scopes_all": Field(_WORDS),
        "user": Field(_WORDS),
        "headers": Field(
            MapOf(
                _HEADER,
                _WORDS,
                description=(
                    "trusted header -> allowed values (header listed in context.trusted_headers)"
                ),
            )
        ),
        "user_message": Field(Regex(description="RE2 regex searched in the last user message")),
        "system_prompt": Field(Regex(description="RE2 regex searched in the system prompt")),
    },
    noun="conditions",
    description="all given conditions must hold",
)

_RULE = Object(
    {
        "id": Field(_ID, required=True),
        "description": Field(_TEXT),
        "when": Field(_WHEN),
        **_ACTION_FIELDS,
        "retry_budget": Field(_BUDGET),
    },
    noun="rule",
    extra_schema=_ACTION_RULES,
)

_FLOOR = Object(
    {
        "id": Field(_ID, required=True),
        "description": Field(_TEXT),
        "user_message": Field(Regex(description="RE2 topic regex over the last user message")),
        "category": Field(ListOf(Enum(CATEGORIES, noun="category"), min_items=1, scalar_ok=True)),
    },
    noun="hard floor",
    extra_schema={"anyOf": [{"required": ["user_message"]}, {"required": ["category"]}]},
)

_SIGNED = Object(
    {
        "header": Field(_HEADER),
        "secret_env": Field(_ENV, required=True),
        "if_secret_missing": Field(
            Enum(("fail", "disable"), noun="choice", description="default fail")
        ),
        "leeway_seconds": Field(Int(minimum=0, maximum=600)),
    },
    noun="signed header settings",
)

_CONTEXT = Object(
    {
        "trusted_headers": Field(
            MapOf(
                _HEADER,
                Enum(("scopes", "user", "value"), noun="grant"),
                description="headers set by a trusted gateway",
            )
        ),
        "signed_header": Field(_SIGNED),
    },
    noun="context settings",
)

POLICY_SCHEMA = Object(
    {
        "version": Field(Int(minimum=1, maximum=1, description="format version: 1"), required=True),
        "name": Field(_ID),
        "description": Field(_TEXT),
        "fail_closed": Field(Bool(description="block when the classifier fails (default false)")),
        "context": Field(_CONTEXT),
        "hard_floors": Field(ListOf(_FLOOR, max_items=200)),
        "retry_budget": Field(_BUDGET),
        "rules": Field(ListOf(_RULE, max_items=500)),
        "default": Field(Object(_ACTION_FIELDS, noun="default action", extra_schema=_ACTION_RULES)),
    },
    noun="policy",
)


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a policy file."""
    schema = POLICY_SCHEMA.schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "guardrail policy",
        **schema,
    }
