"""Ensemble scoring: several checkpoints' window probabilities are averaged, then decoded."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from guardrail.taxonomy import CATEGORIES  # noqa: E402
from guardrail.training.ensemble import predict_ensemble  # noqa: E402
from guardrail.training.train import predict  # noqa: E402
from guardrail.training.windowing import WindowSpec  # noqa: E402


class _Fixed(torch.nn.Module):  # type: ignore[misc]
    """Answers each window with the verdict distribution its first token id names."""

    def __init__(self, table: dict[int, tuple[float, float, float]]) -> None:
        super().__init__()
        self.table = table

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        rows = [[math.log(p) for p in self.table[int(i)]] for i in ids[:, 0]]
        n = len(rows)
        return torch.tensor(rows), torch.zeros((n, 2)), torch.zeros((n, len(CATEGORIES)))


# windows (token id lists); each text is read whole, as one window
_PAIRS = [([1, 5], None), ([2, 5], None), ([3, 5], None)]


def test_the_ensemble_decodes_the_mean_of_the_window_probabilities() -> None:
    """Each window's verdict is decoded from the models' mean distribution, not a vote."""
    first = _Fixed({1: (0.05, 0.05, 0.9), 2: (0.6, 0.1, 0.3), 3: (0.7, 0.1, 0.2)})
    second = _Fixed({1: (0.6, 0.1, 0.3), 2: (0.6, 0.1, 0.3), 3: (0.1, 0.1, 0.8)})
    got = predict_ensemble([first, second], _PAIRS, WindowSpec())
    # means: (0.325, 0.075, 0.6) -> full; (0.6, 0.1, 0.3) -> compliance; (0.4, 0.1, 0.5) ->
    # full, although the first model alone reads the third as compliance
    assert got == ["full_refusal", "compliance", "full_refusal"]


def test_an_ensemble_of_copies_says_what_the_model_says() -> None:
    """Averaging a model with itself changes no verdict against predict() on that model."""
    model = _Fixed({1: (0.05, 0.05, 0.9), 2: (0.6, 0.1, 0.3), 3: (0.2, 0.5, 0.3)})
    spec = WindowSpec()
    assert predict_ensemble([model, model], _PAIRS, spec) == predict(model, _PAIRS, spec)


def test_an_empty_ensemble_is_refused() -> None:
    """No models is a clear error rather than an empty or arbitrary answer."""
    with pytest.raises(ValueError, match="at least one model"):
        predict_ensemble([], _PAIRS, WindowSpec())
