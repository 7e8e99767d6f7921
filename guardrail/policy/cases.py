"""Table tests for policies: request context + classification -> expected action and rule.

A cases file (``policies/tests/<name>.cases.yaml``) lists cases; ``run_cases`` runs each
through ``Policy.decide`` exactly as the middleware would, with a fresh retry budget and a
frozen clock, so results never depend on timing. ``guardrail policy test`` and the
project's own tests both go through here. Format::

    environment: {GUARDRAIL_CONTEXT_SECRET: "a test secret of 16+ bytes"}  # optional
    now: 1767225600            # optional unix time used for signed-header expiry
    cases:
      - name: verified clinician, dose question refused -> retried
        request: {scopes: [clinician], user_message: "Max dose of ...?"}
        classification: {verdict: full_refusal, category: information_hazards}
        expect: {action: retry, rule: clinical-retry}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guardrail.classification import Classification
from guardrail.errors import PolicyError
from guardrail.policy._containers import Field, ListOf, MapOf, Object
from guardrail.policy._specs import Bool, Enum, Int, Nullable, Number, Obj, Str
from guardrail.policy._yaml_tree import Mark, Problems, YamlSyntaxError, compose_tree
from guardrail.policy.context import sign_context
from guardrail.policy.engine import Policy
from guardrail.policy.loader import decode_policy_bytes, read_spec
from guardrail.policy_api import Decision, RequestContext
from guardrail.taxonomy import CATEGORIES, CATEGORY_KIND, REFUSAL_KINDS, VERDICTS

__all__ = [
    "CASES_SCHEMA",
    "CaseResult",
    "format_results",
    "load_cases",
    "run_case_file",
    "run_cases",
]

_TEXT = Str(min_len=0, max_len=100_000)
_SIGNED = Object(
    {
        "scopes": Field(ListOf(Str(max_len=256))),
        "sub": Field(Str(max_len=256)),
        "expires_in": Field(
            Int(
                minimum=-(10**9),
                maximum=10**9,
                description="seconds from 'now' (negative: already expired)",
            )
        ),
        "secret": Field(Str(description="sign with this instead of the policy's secret")),
    },
    noun="signed context",
)
_REQUEST = Object(
    {
        "route": Field(Str()),
        "method": Field(Str()),
        "api": Field(Str()),
        "path": Field(Str()),
        "headers": Field(MapOf(Str(max_len=200), Str(min_len=0))),
        "scopes": Field(ListOf(Str(max_len=256))),
        "user": Field(Str(max_len=256)),
        "model": Field(Str()),
        "body_user": Field(Str()),
        "metadata": Field(MapOf(Str(), Str(min_len=0))),
        "user_message": Field(_TEXT),
        "system_prompt": Field(_TEXT),
        "stream": Field(Bool()),
        "signed_context": Field(_SIGNED),
    },
    noun="request",
)
_CLASSIFICATION = Object(
    {
        "verdict": Field(Enum(VERDICTS, noun="verdict"), required=True),
        "refusal_score": Field(Number()),
        "kind": Field(Enum(("none", *REFUSAL_KINDS), noun="kind")),
        "category": Field(Enum(("none", *CATEGORIES), noun="category")),
        "category_score": Field(Number()),
    },
    noun="classification",
)
_EXPECT = Object(
    {
        "action": Field(Enum(("pass", "retry", "replace", "block"), noun="action"), required=True),
        "rule": Field(Nullable(Str(), description="expected rule id; null for the default")),
        "shadow": Field(Bool()),
        "hard_floor": Field(Bool()),
        "budget_exhausted": Field(Bool()),
        "note_contains": Field(ListOf(Str(), scalar_ok=True)),
        "note_excludes": Field(ListOf(Str(), scalar_ok=True)),
    },
    noun="expectation",
)
_CASE = Object(
    {
        "name": Field(Str(max_len=200), required=True),
        "request": Field(_REQUEST),
        "classification": Field(_CLASSIFICATION, required=True),
        "attempt": Field(Int(minimum=1, maximum=10)),
        "repeat": Field(
            Int(
                minimum=1,
                maximum=10_000,
                description="decide this many times; the last decision is checked",
            )
        ),
        "expect": Field(_EXPECT, required=True),
    },
    noun="case",
)
CASES_SCHEMA = Object(
    {
        "environment": Field(MapOf(Str(), Str(min_len=0))),
        "now": Field(Int(minimum=0, maximum=2**40)),
        "cases": Field(ListOf(_CASE, min_items=1, max_items=10_000), required=True),
    },
    noun="cases file",
)

_DEFAULT_NOW = 1_767_225_600  # 2026-01-01T00:00:00Z: fixed, so expiry cases are stable


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    line: int
    passed: bool
    expected: str
    got: str
    detail: str = ""


def load_cases(path: str | os.PathLike[str]) -> Obj:
    """Read and validate a cases file (``PolicyError`` with positions when it is bad)."""
    filename = os.fspath(path)
    try:
        data = Path(filename).read_bytes()
    except OSError as exc:
        raise PolicyError(
            [f"{filename}:1:1: cannot read cases file: {exc.strerror or exc}"]
        ) from None
    problems = Problems(filename)
    try:
        root = compose_tree(decode_policy_bytes(data, filename), problems)
    except YamlSyntaxError as exc:
        problems.add(exc.mark, exc.message)
        raise PolicyError(problems.lines()) from None
    if root is None:
        problems.add(Mark(1, 1), "cases file is empty; it needs a 'cases' list")
        raise PolicyError(problems.lines())
    doc = CASES_SCHEMA.check(root, problems, "")
    if problems or not isinstance(doc, Obj):
        raise PolicyError(problems.lines())
    return doc


def run_case_file(
    policy_path: str | os.PathLike[str], cases_path: str | os.PathLike[str]
) -> list[CaseResult]:
    """Load the cases, then the policy (with the cases' environment), and run them all."""
    cases = load_cases(cases_path)
    environ = {**os.environ, **cases.get("environment", {})}
    return run_cases(Policy(read_spec(policy_path, environ=environ)), cases, environ=environ)


def run_cases(
    policy: Policy, cases: Obj, *, environ: Mapping[str, str] | None = None
) -> list[CaseResult]:
    environ = os.environ if environ is None else environ
    now = float(cases.get("now", _DEFAULT_NOW))
    results = []
    for index, case in enumerate(cases["cases"]):
        # A fresh budget and a frozen clock per case: results never depend on timing.
        fresh = Policy(policy.spec, clock=lambda: now, monotonic=lambda: 0.0)
        ctx = _context(case.get("request", {}), fresh, environ, now)
        classification = _classification(case["classification"])
        decision = Decision()
        for _ in range(case.get("repeat", 1)):
            decision = fresh.decide(ctx, classification, attempt=case.get("attempt", 1))
        results.append(_compare(case, cases["cases"].marks[index].line, decision))
    return results


def _context(
    req: Mapping[str, Any], policy: Policy, environ: Mapping[str, str], now: float
) -> RequestContext:
    headers = {k.lower(): v for k, v in req.get("headers", {}).items()}
    signed = req.get("signed_context")
    if signed is not None:
        cfg = policy.spec.signed_header
        header = cfg.header if cfg is not None else "x-guardrail-context"
        secret = signed.get("secret") or (environ.get(cfg.secret_env, "") if cfg else "")
        claims: dict[str, Any] = {"exp": int(now) + signed.get("expires_in", 300)}
        if "scopes" in signed:
            claims["scopes"] = list(signed["scopes"])
        if "sub" in signed:
            claims["sub"] = signed["sub"]
        headers[header] = sign_context(claims, (secret or "no-secret-configured").encode())
    return RequestContext(
        route=req.get("route", "/v1/chat/completions"),
        method=req.get("method", "POST"),
        api=req.get("api", "openai_chat"),
        path=req.get("path", req.get("route", "")),
        headers=headers,
        scopes=frozenset(req.get("scopes", ())),
        user=req.get("user"),
        model=req.get("model"),
        body_user=req.get("body_user"),
        metadata=dict(req.get("metadata", {})),
        last_user_message=req.get("user_message", ""),
        system_prompt=req.get("system_prompt", ""),
        stream=req.get("stream", False),
    )


def _classification(c: Mapping[str, Any]) -> Classification:
    verdict = c["verdict"]
    refusal = verdict != "compliance"
    category = c.get("category", "unclear" if refusal else "none")
    kind = c.get("kind", (CATEGORY_KIND.get(category) or "should_not") if refusal else "none")
    return Classification(
        verdict=verdict,
        refusal_score=c.get("refusal_score", 0.95 if refusal else 0.02),
        kind=kind,
        category=category,
        category_score=c.get("category_score", 0.9 if refusal else 0.0),
    )


def _describe(action: str, rule: str | None, flags: list[str]) -> str:
    text = f"{action} {rule if rule is not None else '(default)'}"
    return text + (f" [{', '.join(flags)}]" if flags else "")


def _compare(case: Mapping[str, Any], line: int, d: Decision) -> CaseResult:
    expect = case["expect"]
    flags = [f for f in ("shadow", "hard_floor", "budget_exhausted") if getattr(d, f)]
    got = _describe(d.action, d.rule_id, flags)
    want_flags = [f for f in ("shadow", "hard_floor", "budget_exhausted") if expect.get(f)]
    expected = _describe(expect["action"], expect.get("rule"), want_flags)
    wrong = []
    if d.action != expect["action"]:
        wrong.append("action")
    if "rule" in expect and d.rule_id != expect["rule"]:
        wrong.append("rule")
    wrong += [
        f
        for f in ("shadow", "hard_floor", "budget_exhausted")
        if f in expect and getattr(d, f) != expect[f]
    ]
    note = d.retry_message or ""
    wrong += [f"note lacks {s!r}" for s in expect.get("note_contains", ()) if s not in note]
    wrong += [f"note has {s!r}" for s in expect.get("note_excludes", ()) if s in note]
    if "rule" not in expect:
        expected = _describe(expect["action"], "*", want_flags)
    return CaseResult(case["name"], line, not wrong, expected, got, "; ".join(wrong))


def format_results(results: list[CaseResult], source: str = "") -> str:
    """A pass/fail table plus a summary line."""
    rows = [("RESULT", "LINE", "CASE", "EXPECTED", "GOT")]
    rows += [
        (
            "ok" if r.passed else "FAIL",
            str(r.line),
            r.name,
            r.expected,
            r.got + (f"  ({r.detail})" if r.detail else ""),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)).rstrip()
        for row in rows
    ]
    failed = sum(not r.passed for r in results)
    lines.append(
        f"{source + ': ' if source else ''}{len(results)} cases, "
        f"{len(results) - failed} passed, {failed} failed"
    )
    return "\n".join(lines)
