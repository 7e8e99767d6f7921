"""The ``guardrail`` command line: a thin argparse dispatcher over per-command modules.

Each command module exposes ``register(subparsers)`` which adds its parser and sets
``func`` to a callable taking the parsed namespace and returning an exit code. Errors the
user can cause surface as one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from guardrail.errors import GuardrailError

__all__ = ["build_parser", "main"]

# Order here is the order of ``guardrail --help``.
_COMMAND_MODULES = (
    "guardrail.cli.classify_cmd",
    "guardrail.cli.eval_cmd",
    "guardrail.cli.audit_cmd",
    "guardrail.cli.policy_cmd",
    "guardrail.cli.demo_cmd",
    "guardrail.cli.serve_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="guardrail",
        description="Refusal classifier and policy middleware for LLM services.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        # Command modules keep their heavy imports (onnxruntime, uvicorn) inside their run
        # functions, so registering all of them for --help stays cheap.
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except GuardrailError as exc:
        print(f"guardrail: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and friends: exit quietly like other Unix tools.
        return 0
    return int(code or 0)
