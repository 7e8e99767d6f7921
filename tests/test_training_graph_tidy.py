"""The graph tidy: fewer nodes, the same outputs, and nothing lost when it cannot apply.

tests/fixtures/exported_tiny.int8.onnx is a toy RefusalNet (random weights, hidden 16)
exported and quantized as export_artifact does (scripts/make_tidy_fixture.py wrote it).
"""

from __future__ import annotations

import collections
import hashlib
import shutil
from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")

from onnx import numpy_helper  # noqa: E402

from guardrail._resources import bundled_model_dir  # noqa: E402
from guardrail.model import RefusalClassifier  # noqa: E402
from guardrail.model._files import MODEL_FILE  # noqa: E402
from guardrail.training import graph_tidy  # noqa: E402
from guardrail.training.__main__ import main as training_main  # noqa: E402
from guardrail.training.graph_tidy import (  # noqa: E402
    GraphTidyError,
    check_same_outputs,
    is_tidy,
    tidy_file,
    tidy_model,
)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "exported_tiny.int8.onnx"


def _ops(model: object) -> collections.Counter[str]:
    return collections.Counter(n.op_type for n in model.graph.node)  # type: ignore[attr-defined]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tidy_drops_the_shape_arithmetic_and_keeps_every_output(tmp_path: Path) -> None:
    """Half the nodes go (one Shape is left), and outputs match bit for bit on padded batches."""
    before = onnx.load(str(FIXTURE))
    after = tidy_model(before)
    assert is_tidy(after) and not is_tidy(before)
    assert len(after.graph.node) < 0.6 * len(before.graph.node)
    assert _ops(before)["Shape"] > 5 and _ops(after)["Shape"] == 1
    for op in ("Expand", "Where", "Range", "ConstantOfShape", "Concat", "Equal"):
        assert _ops(after)[op] == 0, op
    assert _ops(after)["MatMulInteger"] == _ops(before)["MatMulInteger"]
    out = tmp_path / "tidy.onnx"
    onnx.save(after, str(out))
    assert check_same_outputs(FIXTURE, out, trials=60) == 0.0


def test_tidy_file_rewrites_in_place_and_refuses_a_second_time(tmp_path: Path) -> None:
    """tidy_file replaces the file; on a tidied graph it stops with a clear error."""
    path = tmp_path / MODEL_FILE
    shutil.copy(FIXTURE, path)
    assert tidy_file(path) == 0.0
    assert is_tidy(onnx.load(str(path)))
    tidied = _sha(path)
    with pytest.raises(GraphTidyError, match="tidied already"):
        tidy_file(path)
    assert _sha(path) == tidied
    assert sorted(p.name for p in tmp_path.iterdir()) == [MODEL_FILE]


def test_a_failed_check_leaves_the_original_file_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the outputs differ, the original stays byte for byte and no temp file is left."""
    path = tmp_path / MODEL_FILE
    shutil.copy(FIXTURE, path)
    original = _sha(path)

    def differs(a: Path, b: Path, trials: int = 200, seed: int = 0) -> float:
        raise GraphTidyError("the tidied graph's outputs differ by up to 0.5")

    monkeypatch.setattr(graph_tidy, "check_same_outputs", differs)
    with pytest.raises(GraphTidyError, match="differ"):
        tidy_file(path)
    assert _sha(path) == original
    assert sorted(p.name for p in tmp_path.iterdir()) == [MODEL_FILE]


def test_check_same_outputs_catches_a_changed_weight(tmp_path: Path) -> None:
    """A graph whose one bias moved is reported with the size of the difference."""
    model = tidy_model(onnx.load(str(FIXTURE)))
    for init in model.graph.initializer:
        if init.name == "verdict.bias":
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + 0.25, init.name))
    out = tmp_path / "changed.onnx"
    onnx.save(model, str(out))
    with pytest.raises(GraphTidyError, match=r"differ by up to 0\.25"):
        check_same_outputs(FIXTURE, out, trials=5)


def test_a_graph_of_another_layout_is_named_not_mangled() -> None:
    """A graph without the exporter's embedding nodes fails naming the first missing node."""
    model = onnx.load(str(FIXTURE))
    kept = [n for n in model.graph.node if n.name != "/encoder/embeddings/Add_1"]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    with pytest.raises(GraphTidyError, match="/encoder/embeddings/Add_1 not found"):
        tidy_model(model)


def test_the_training_cli_tidies_an_artifact_and_refreshes_card_and_sums(tmp_path: Path) -> None:
    """`python -m guardrail.training tidy --out DIR` rewrites the model, the card's file
    line and SHA256SUMS; run again it exits with the reason and changes nothing."""
    shutil.copy(FIXTURE, tmp_path / MODEL_FILE)
    (tmp_path / "MODEL_CARD.md").write_text(
        f"# card\n\n- File: `{MODEL_FILE}` (0.2 MB), sha256 `old`; `tokenizer.json`.\n- more\n",
        encoding="utf-8",
    )
    assert training_main(["tidy", "--out", str(tmp_path)]) == 0
    sha = _sha(tmp_path / MODEL_FILE)
    card = (tmp_path / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert f"sha256 `{sha}`" in card and card.endswith("- more\n")
    sums = (tmp_path / "SHA256SUMS").read_text(encoding="utf-8")
    assert f"{sha}  {MODEL_FILE}\n" in sums
    assert f"{_sha(tmp_path / 'MODEL_CARD.md')}  MODEL_CARD.md\n" in sums
    with pytest.raises(SystemExit, match="tidied already"):
        training_main(["tidy", "--out", str(tmp_path)])
    assert _sha(tmp_path / MODEL_FILE) == sha


def test_the_shipped_model_is_tidied() -> None:
    """The bundled graph is the tidied one (no shape arithmetic left to pay for per run)."""
    path = bundled_model_dir() / MODEL_FILE
    if not path.is_file():
        pytest.skip("no bundled model")
    model = onnx.load(str(path))
    assert is_tidy(model)
    assert _ops(model)["Shape"] == 1
    assert RefusalClassifier.load().classify("I can't help with that.").verdict != "compliance"
