"""Load a policy file: positioned YAML -> schema check -> cross-checks -> frozen PolicySpec.

Every problem is collected before anything is raised, so one ``guardrail policy check``
run lists all of them as ``FILE:LINE:COL: message`` lines. Only syntax errors stop early:
after one, YAML positions of later content can no longer be trusted.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from guardrail.errors import PolicyError
from guardrail.policy._specs import INVALID, Obj, Seq
from guardrail.policy._yaml_tree import Mark, Problems, YamlSyntaxError, compose_tree
from guardrail.policy._yaml_tree import mark_at_offset as _mark_at_offset
from guardrail.policy.budget import BudgetSpec
from guardrail.policy.conditions import Conditions, FloorConditions
from guardrail.policy.context import SignedHeader, TrustedHeader
from guardrail.policy.model import (
    DEFAULT_BLOCK_MESSAGE,
    DEFAULT_RETRY_BUDGET,
    ActionSpec,
    HardFloor,
    PolicySpec,
    Rule,
)
from guardrail.policy.schema import POLICY_SCHEMA
from guardrail.taxonomy import REFUSAL_VERDICTS

__all__ = ["MAX_POLICY_BYTES", "MIN_SECRET_BYTES", "decode_policy_bytes", "parse_spec", "read_spec"]

MAX_POLICY_BYTES = 1 << 20
MIN_SECRET_BYTES = 16
DEFAULT_SIGNED_HEADER = "x-guardrail-context"


def decode_policy_bytes(data: bytes, filename: str) -> str:
    """UTF-8 text of a policy file, or a positioned PolicyError."""
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError([f"{filename}:1:1: policy file is larger than {MAX_POLICY_BYTES} bytes"])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8-sig", "replace")
        mark = _mark_at_offset(prefix, len(prefix))
        raise PolicyError(
            [f"{filename}:{mark.line}:{mark.col}: not valid UTF-8 (byte 0x{data[exc.start]:02x})"]
        ) from None


def read_spec(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> PolicySpec:
    """Read and validate a policy file."""
    filename = os.fspath(path)
    try:
        data = Path(filename).read_bytes()
    except OSError as exc:
        raise PolicyError(
            [f"{filename}:1:1: cannot read policy file: {exc.strerror or exc}"]
        ) from None
    return parse_spec(decode_policy_bytes(data, filename), filename, environ=environ)


def parse_spec(
    text: str, filename: str = "<policy>", *, environ: Mapping[str, str] | None = None
) -> PolicySpec:
    """Validate policy text; raise ``PolicyError`` listing every problem found."""
    problems = Problems(filename)
    try:
        root = compose_tree(text, problems)
    except YamlSyntaxError as exc:
        problems.add(exc.mark, exc.message)
        raise PolicyError(problems.lines()) from None
    if root is None:
        problems.add(Mark(1, 1), "policy file is empty; it needs at least 'version: 1'")
        raise PolicyError(problems.lines())
    doc = POLICY_SCHEMA.check(root, problems, "")
    if doc is INVALID:
        raise PolicyError(problems.lines())
    builder = _Builder(problems, os.environ if environ is None else environ)
    spec = builder.build(doc, filename, hashlib.sha256(text.encode("utf-8", "replace")))
    if problems:
        raise PolicyError(problems.lines())
    assert spec is not None
    return spec


def _words(value: Any) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


class _Builder:
    """Cross-field checks, then construction of the frozen model."""

    def __init__(self, problems: Problems, environ: Mapping[str, str]) -> None:
        self.p = problems
        self.environ = environ
        self.warnings = Problems(problems.filename)

    def build(self, doc: Obj, filename: str, digest: Any) -> PolicySpec | None:
        context = doc.get("context") or Obj(doc.mark)
        trusted = self._trusted(context)
        signed = self._signed(context, trusted)
        floors = self._floors(doc.get("hard_floors") or Seq(doc.mark))
        rules = self._rules(doc.get("rules") or Seq(doc.mark), trusted)
        default = doc.get("default")
        default_action = self._action(default, "default") if default is not None else ActionSpec()
        if self.p:
            return None
        budget = doc.get("retry_budget")
        return PolicySpec(
            source=filename,
            name=doc.get("name", Path(filename).stem),
            description=doc.get("description", ""),
            fail_closed=doc.get("fail_closed", False),
            trusted_headers=tuple(TrustedHeader(n, g) for n, g in trusted.items()),
            signed_header=signed,
            hard_floors=floors,
            rules=rules,
            default=default_action,
            retry_budget=DEFAULT_RETRY_BUDGET if budget is None else _budget(budget),
            warnings=tuple(self.warnings.lines()),
            sha256=digest.hexdigest(),
        )

    def _trusted(self, context: Obj) -> dict[str, Any]:
        return dict(context.get("trusted_headers") or {})

    def _signed(self, context: Obj, trusted: Mapping[str, Any]) -> SignedHeader | None:
        cfg = context.get("signed_header")
        if cfg is None:
            return None
        header = cfg.get("header", DEFAULT_SIGNED_HEADER)
        if header in trusted:
            self.p.add(
                cfg.marks.get("header", cfg.mark),
                f"context.signed_header.header: "
                f"{header!r} is also a trusted header; a header is either signed or "
                "trusted",
            )
        env = cfg.get("secret_env")
        if env is None:
            return None
        mark = cfg.marks["secret_env"]
        raw = self.environ.get(env, "")
        if not raw:
            if cfg.get("if_secret_missing", "fail") == "disable":
                self.warnings.add(
                    mark,
                    f"environment variable {env} is not set: signed "
                    f"context headers ({header}) are ignored until it is",
                )
                return SignedHeader(header, env, None, cfg.get("leeway_seconds", 5))
            self.p.add(
                mark,
                f"context.signed_header.secret_env: environment variable {env} "
                "is not set (it holds the HMAC secret for signed context headers; set "
                "it, or set 'if_secret_missing: disable')",
            )
            return None
        secret = raw.encode("utf-8")
        if len(secret) < MIN_SECRET_BYTES:
            self.p.add(
                mark,
                f"context.signed_header.secret_env: the secret in {env} is "
                f"{len(secret)} bytes; use at least {MIN_SECRET_BYTES} (32 random "
                "bytes recommended)",
            )
        return SignedHeader(header, env, secret, cfg.get("leeway_seconds", 5))

    def _floors(self, items: Seq) -> tuple[HardFloor, ...]:
        out: list[HardFloor] = []
        seen: dict[str, Mark] = {}
        for index, floor in zip(items.indices, items, strict=True):
            where = f"hard_floors[{index}]"
            self._unique(floor, where, seen, "hard floor")
            if "user_message" not in floor and "category" not in floor:
                self.p.add(floor.mark, f"{where}: a hard floor needs 'user_message' or 'category'")
            if "id" in floor:
                cond = FloorConditions(floor.get("user_message"), _words(floor.get("category")))
                out.append(
                    HardFloor(floor["id"], cond, floor.get("description", ""), floor.mark.line)
                )
        return tuple(out)

    def _rules(self, items: Seq, trusted: Mapping[str, Any]) -> tuple[Rule, ...]:
        out: list[Rule] = []
        seen: dict[str, Mark] = {}
        catch_all: Rule | None = None
        for index, rule in zip(items.indices, items, strict=True):
            where = f"rules[{index}]"
            self._unique(rule, where, seen, "rule")
            when = rule.get("when") or Obj(rule.mark)
            conditions = self._conditions(when, where, trusted)
            action = self._action(rule, where)
            if rule.get("retry_budget") is not None and rule.get("action") != "retry":
                self.p.add(
                    rule.marks["retry_budget"],
                    f"{where}.retry_budget: only used when action is retry",
                )
            if rule.get("action") == "retry" and "compliance" in conditions.verdicts:
                self.p.add(
                    when.marks.get("verdict", when.mark),
                    f"{where}.when.verdict: "
                    "retry cannot apply to compliance (the answer was already given)",
                )
            if "id" not in rule:
                continue
            if catch_all is not None and conditions.verdicts <= REFUSAL_VERDICTS:
                self.warnings.add(
                    rule.mark,
                    f"{where}: rule {rule['id']!r} is never reached; "
                    f"rule {catch_all.id!r} (line {catch_all.line}) matches every "
                    "refusal first",
                )
            built = Rule(
                rule["id"], conditions, action, rule.get("description", ""), rule.mark.line
            )
            if not when and catch_all is None:
                catch_all = built
            out.append(built)
        return tuple(out)

    def _unique(self, item: Obj, where: str, seen: dict[str, Mark], noun: str) -> None:
        ident = item.get("id")
        if ident is None:
            return
        if ident in seen:
            self.p.add(
                item.marks["id"],
                f"{where}.id: duplicate {noun} id {ident!r} (first "
                f"used at line {seen[ident].line})",
            )
        else:
            seen[ident] = item.marks["id"]

    def _conditions(self, when: Obj, where: str, trusted: Mapping[str, Any]) -> Conditions:
        headers = when.get("headers") or Obj(when.mark)
        for name in headers:
            if name not in trusted:
                self.p.add(
                    headers.key_marks.get(name, when.mark),
                    f"{where}.when.headers: {name!r} is not in context.trusted_headers;"
                    " an untrusted header cannot be a condition",
                )
        return Conditions(
            verdicts=_words(when.get("verdict")) or REFUSAL_VERDICTS,
            kinds=_words(when.get("kind")),
            categories=_words(when.get("category")),
            min_refusal_score=when.get("min_refusal_score"),
            min_category_score=when.get("min_category_score"),
            routes=_words(when.get("route")),
            methods=_words(when.get("method")),
            apis=_words(when.get("api")),
            stream=when.get("stream"),
            models=_words(when.get("model")),
            body_users=_words(when.get("body_user")),
            metadata=tuple((k, frozenset(v)) for k, v in (when.get("metadata") or {}).items()),
            scopes_any=_words(when.get("scopes_any")),
            scopes_all=_words(when.get("scopes_all")),
            users=_words(when.get("user")),
            headers=tuple((k, frozenset(v)) for k, v in headers.items()),
            user_message=when.get("user_message"),
            system_prompt=when.get("system_prompt"),
        )

    def _action(self, item: Obj, where: str) -> ActionSpec:
        action = item.get("action")
        for name in ("retry", "replace", "block"):
            if name in item and action is not None and action != name:
                self.p.add(
                    item.marks[name],
                    f"{where}.{name}: settings for action {name!r} but the action is {action!r}",
                )
        if action in ("retry", "replace") and action not in item:
            self.p.add(
                item.marks.get("action", item.mark),
                f"{where}: action {action!r} needs a '{action}:' block ({_NEEDS[action]})",
            )
        retry = item.get("retry") or {}
        replace = item.get("replace") or {}
        block = item.get("block") or {}
        budget = item.get("retry_budget")
        return ActionSpec(
            action=action or "pass",
            shadow=item.get("shadow", False),
            retry_note=retry.get("note"),
            retry_role=retry.get("role", "system"),
            max_attempts=retry.get("max_attempts", 2),
            retry_budget=None if budget is None else _budget(budget),
            replace_text=replace.get("message"),
            block_status=block.get("status", 403),
            block_message=block.get("message", DEFAULT_BLOCK_MESSAGE),
        )


_NEEDS = {"retry": "with a 'note'", "replace": "with a 'message'"}


def _budget(value: Mapping[str, Any]) -> BudgetSpec:
    # A budget with a bad field was already reported; the default stands in until fixed.
    if "per_minute" not in value or "burst" not in value:
        return DEFAULT_RETRY_BUDGET
    return BudgetSpec(per_minute=float(value["per_minute"]), burst=int(value["burst"]))
