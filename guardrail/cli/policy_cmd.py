"""``guardrail policy check|test|schema|sign``: validate, table-test and describe policies.

``check`` prints ``FILE:LINE:COL: message`` lines (problems, then ``warning:`` lines) on
stdout and exits 1 if any file is invalid; ``test`` prints a pass/fail table and exits 1 on
any failure; ``schema`` prints the JSON Schema of the file format; ``sign`` prints a signed
context header value made with the secret in an environment variable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from guardrail.errors import ConfigError, PolicyError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "policy",
        help="check, test and describe policy files",
        description="Validate, table-test and describe policy files.",
    )
    sub = parser.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)

    check = sub.add_parser("check", help="validate policy files (exit 1 on problems)")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(func=_check)

    test = sub.add_parser("test", help="run a policy's table tests")
    test.add_argument("file", metavar="FILE", help="policy file")
    test.add_argument("cases", metavar="CASES.yaml", help="cases file")
    test.set_defaults(func=_test)

    schema = sub.add_parser("schema", help="print the JSON Schema of policy files")
    schema.set_defaults(func=_schema)

    sign = sub.add_parser("sign", help="print a signed context header value")
    sign.add_argument(
        "--secret-env",
        default="GUARDRAIL_CONTEXT_SECRET",
        help="environment variable holding the HMAC secret",
    )
    sign.add_argument(
        "--scope", action="append", default=[], dest="scopes", help="scope to grant (repeatable)"
    )
    sign.add_argument("--sub", help="user id claim")
    sign.add_argument("--ttl", type=int, default=300, help="seconds until expiry (default 300)")
    sign.set_defaults(func=_sign)


def _check(args: argparse.Namespace) -> int:
    from guardrail.policy import load_policy

    failed = False
    for name in args.files:
        try:
            policy = load_policy(name)
        except PolicyError as exc:
            failed = True
            print("\n".join(exc.problems))
            continue
        for warning in policy.warnings:
            head, sep, message = warning.partition(": ")
            print(f"{head}{sep}warning: {message}")
        print(
            f"{name}: ok ({len(policy.spec.rules)} rules, "
            f"{len(policy.spec.hard_floors)} hard floors)"
        )
    return 1 if failed else 0


def _test(args: argparse.Namespace) -> int:
    from guardrail.policy.cases import format_results, run_case_file

    try:
        results = run_case_file(args.file, args.cases)
    except PolicyError as exc:
        print("\n".join(exc.problems))
        return 1
    print(format_results(results, args.cases))
    return 0 if all(r.passed for r in results) else 1


def _schema(args: argparse.Namespace) -> int:
    from guardrail.policy import policy_json_schema

    json.dump(policy_json_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from guardrail.policy import sign_context

    secret = os.environ.get(args.secret_env, "")
    if not secret:
        raise ConfigError(f"environment variable {args.secret_env} is not set")
    claims: dict[str, Any] = {"exp": int(time.time()) + args.ttl, "scopes": args.scopes}
    if args.sub:
        claims["sub"] = args.sub
    print(sign_context(claims, secret.encode("utf-8")))
    return 0
