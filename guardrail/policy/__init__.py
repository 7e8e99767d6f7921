"""The policy engine: YAML policy files -> frozen rules -> a ``Decision`` per response.

Typical use::

    from guardrail.policy import load_policy, open_policy

    policy = load_policy("policies/clinical.yaml")   # PolicyError lists FILE:LINE:COL problems
    provider = open_policy("policies/clinical.yaml") # hot-reloading PolicyStore
    decision = provider.current().decide(ctx, classification, attempt=1)

The file format is described in docs/policy-guide.md and, for editors, by the JSON Schema
that ``guardrail policy schema`` prints.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from guardrail.errors import PolicyError
from guardrail.policy.budget import BudgetSpec, RetryBudget
from guardrail.policy.context import VerifiedContext, sign_context, verify_signed_context
from guardrail.policy.engine import Policy
from guardrail.policy.loader import parse_spec, read_spec
from guardrail.policy.model import PolicySpec
from guardrail.policy.reload import PolicyStore, StaticPolicyProvider, open_policy
from guardrail.policy.schema import policy_json_schema

__all__ = [
    "BudgetSpec",
    "Policy",
    "PolicyError",
    "PolicySpec",
    "PolicyStore",
    "RetryBudget",
    "StaticPolicyProvider",
    "VerifiedContext",
    "load_policy",
    "open_policy",
    "parse_policy",
    "policy_json_schema",
    "sign_context",
    "verify_signed_context",
]


def load_policy(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> Policy:
    """Load and validate a policy file; raise ``PolicyError`` listing every problem.

    ``environ`` (default ``os.environ``) is where ``secret_env`` names are looked up.
    """
    return Policy(read_spec(path, environ=environ))


def parse_policy(
    text: str, filename: str = "<policy>", *, environ: Mapping[str, str] | None = None
) -> Policy:
    """Like ``load_policy`` for text already in memory; ``filename`` is used in messages."""
    return Policy(parse_spec(text, filename, environ=environ))
