"""Mutation fuzzing (benchmarks/fuzz.py) of adapters and middleware, as a slow test.

Run with ``pytest -m slow``; the long run is ``python -m benchmarks.fuzz --iterations 20000``.
The hypothesis property tests scale with ``GUARDRAIL_FUZZ_EXAMPLES`` (default 150 each).
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(autouse=True)
def _only_when_asked(request: pytest.FixtureRequest) -> None:
    # The marker's promise ("excluded by default") is kept here, not by addopts.
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("slow fuzz: run with -m slow")


@pytest.mark.parametrize("seed", [11, 12])
def test_mutated_bodies_never_crash_and_pass_through_unchanged(seed: int) -> None:
    """3,000 mutated real bodies: adapters never raise; guarded bytes equal unguarded bytes."""
    from benchmarks.fuzz import fuzz

    result = fuzz(3_000, seed)
    assert result["failures"] == {}, result["failure_examples"][:3]
    assert result["middleware_checks"] == 750
    assert result["mutants_still_understood"] > 100  # the fuzz reached the parsing code
