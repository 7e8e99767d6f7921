"""How the early-exit stage picks its rule from the cross-fitted grid (training extra only)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from guardrail.training.early_exit import (
    _GRID,
    MAX_DISAGREEMENT,
    NoExitRuleError,
    choose_rule,
)
from guardrail.training.exit_head import ExitRule


def _cell(exits: int, verdicts: int, categories: int = 0) -> dict[str, float]:
    return {
        "windows": 10_000,
        "exits": exits,
        "verdict_disagreements": verdicts,
        "category_disagreements": categories,
    }


_LOOSE = ExitRule(compliance_below=0.1, full_refusal_from=0.95, category_from=0.8)
_TIGHT = ExitRule(compliance_below=0.02, full_refusal_from=2.0, category_from=2.0)


def test_the_rule_with_most_exits_within_the_bound_is_chosen() -> None:
    """A looser rule that disagrees too often loses to a tighter one that stays within 0.1 %."""
    grid = [(_LOOSE, _cell(8000, 40)), (_TIGHT, _cell(5000, 2))]
    rule, chosen = choose_rule(grid, layer=0)
    assert rule == _TIGHT
    assert chosen["exits"] == 5000


def test_a_grid_with_no_rule_within_the_bound_is_refused_with_the_layer_named() -> None:
    """Every rule too far from the model: a NoExitRuleError naming the layer and the bound."""
    grid = [(_LOOSE, _cell(8000, 40)), (_TIGHT, _cell(5000, 6, 1))]
    assert MAX_DISAGREEMENT * 5000 < 6
    with pytest.raises(NoExitRuleError, match=r"no early exit at layer 0: .*0\.1%.*fewest.*: 7"):
        choose_rule(grid, layer=0)


def test_the_grid_reaches_strict_compliance_thresholds_and_picks_most_exits_within() -> None:
    """Stricter compliance thresholds are on the grid, yet a looser rule within the bound wins."""
    thresholds = {rule.compliance_below for rule in _GRID}
    assert {0.0005, 0.002, 0.005, 0.01, 0.1} <= thresholds
    assert {rule.full_refusal_from for rule in _GRID} >= {0.95, 0.995}
    assert {rule.category_from for rule in _GRID} >= {0.8, 0.98}
    strict = ExitRule(compliance_below=0.01, full_refusal_from=0.98, category_from=0.9)
    assert strict in _GRID
    # a head too loose at 0.02 (11 disagreements in 8,397 exits) keeps its exit at 0.01
    grid = [(_TIGHT, _cell(8397, 11)), (strict, _cell(8316, 8))]
    assert choose_rule(grid, layer=0)[0] == strict
    grid.append((_LOOSE, _cell(8834, 8)))
    assert choose_rule(grid, layer=0)[0] == _LOOSE
