"""Stripping early exits gives back the full network, and `requantize` builds on that.

Built on tests/fixtures/exported_tiny.int8.onnx (a toy RefusalNet exported as the real one
is) and on the shipped model, whose exits are stripped and compared with its own
not-exiting path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from guardrail._resources import bundled_model_dir  # noqa: E402
from guardrail.model._files import MODEL_FILE, verify_model_dir  # noqa: E402
from guardrail.model._session import make_session  # noqa: E402
from guardrail.training.__main__ import _requantize  # noqa: E402
from guardrail.training.exit_graph import ExitGraphError, add_exit, has_exit  # noqa: E402
from guardrail.training.exit_head import ExitHead, ExitRule  # noqa: E402
from guardrail.training.exit_strip import strip_exits  # noqa: E402
from guardrail.training.graph_tidy import (  # noqa: E402
    check_same_outputs,
    random_padded_feeds,
    tidy_model,
)
from guardrail.training.token_scales import QUANTIZATION_NOTE, has_token_scales  # noqa: E402

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "exported_tiny.int8.onnx"
#: a head whose logits are all zero: every window reads as 1/3 refusal, so none exits
NEVER = ExitRule(compliance_below=0.1, full_refusal_from=0.99, category_from=0.99)


def _zero_head(hidden: int) -> ExitHead:
    z = np.zeros
    return ExitHead(
        z((hidden, 4), np.float32), z(4, np.float32), z((4, 21), np.float32), z(21, np.float32)
    )


@pytest.fixture()
def exited(tmp_path: Path) -> tuple[Path, Path]:
    """(the tidied toy graph, the same graph with an exit after its first layer)."""
    plain, exited = tmp_path / "plain.onnx", tmp_path / "exited.onnx"
    model = tidy_model(onnx.load(str(FIXTURE)))
    onnx.save(model, str(plain))
    hidden = next(i for i in model.graph.initializer if "LayerNorm.weight" in i.name).dims[0]
    onnx.save(add_exit(model, _zero_head(hidden), NEVER), str(exited))
    return plain, exited


def _forced_else(model: Any) -> Any:
    """``model`` with every If's condition a constant False: its not-exiting path."""
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array(False), "never"))
    stack = [model.graph]
    while stack:
        graph = stack.pop()
        for node in graph.node:
            if node.op_type == "If":
                node.input[0] = "never"
            stack += [a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH]
    return model


def test_stripping_an_exit_gives_back_the_graph_it_was_added_to(
    exited: tuple[Path, Path], tmp_path: Path
) -> None:
    """Toy: add an exit, strip it: every output identical, no If, no exit metadata or weights."""
    plain, with_exit = exited
    stripped = strip_exits(onnx.load(str(with_exit)))
    assert not has_exit(stripped)
    assert all(n.op_type != "If" for n in stripped.graph.node)
    assert not any(i.name.startswith("exit.") for i in stripped.graph.initializer)
    path = tmp_path / "stripped.onnx"
    onnx.save(stripped, str(path))
    assert check_same_outputs(plain, path, trials=30) == 0.0


def test_the_shipped_model_stripped_runs_its_not_exiting_path_exactly(tmp_path: Path) -> None:
    """Shipped graph: stripped == both exits forced off, on random padded batches."""
    source = onnx.load(str(bundled_model_dir() / MODEL_FILE))
    assert has_exit(source)
    forced, stripped = tmp_path / "forced.onnx", tmp_path / "stripped.onnx"
    onnx.save(strip_exits(source), str(stripped))
    onnx.save(_forced_else(source), str(forced))
    a, b = make_session(forced, 1).session, make_session(stripped, 1).session
    for feeds in random_padded_feeds(onnx.load(str(stripped)), 12, seed=2, max_batch=3):
        for x, y in zip(a.run(None, feeds), b.run(None, feeds), strict=True):
            assert np.array_equal(x, y)


def test_a_graph_without_exits_is_refused(exited: tuple[Path, Path]) -> None:
    """Nothing to strip is an error that says so, not a silent copy."""
    with pytest.raises(ExitGraphError, match="no early exit"):
        strip_exits(onnx.load(str(exited[0])))


def test_requantize_strips_rewrites_and_updates_config_and_sums(
    exited: tuple[Path, Path], tmp_path: Path
) -> None:
    """The stage leaves a per-token graph without exits, a config that says so, valid sums."""
    out = tmp_path / "artifact"
    out.mkdir()
    (out / MODEL_FILE).write_bytes(exited[1].read_bytes())
    config = {"model_version": "0.0.1", "quantization": "int8", "early_exit": {"x": 1}}
    (out / "config.json").write_text(json.dumps(config))
    (out / "tokenizer.json").write_text("{}")
    _requantize(out)
    model = onnx.load(str(out / MODEL_FILE))
    assert has_token_scales(model) and not has_exit(model)
    written = json.loads((out / "config.json").read_text())
    assert "early_exit" not in written
    assert written["quantization"] == f"int8, {QUANTIZATION_NOTE}"
    verify_model_dir(out)
    with pytest.raises(SystemExit, match="per token already"):
        _requantize(out)


def test_requantize_names_a_folder_without_a_model(tmp_path: Path) -> None:
    """A folder that holds no artifact stops with its path, before touching anything."""
    with pytest.raises(SystemExit, match=r"no refusal-classifier\.int8\.onnx and config\.json"):
        _requantize(tmp_path)


def test_activation_scales_default_to_per_token_and_refuse_other_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--activation-scales` is token unless told tensor; anything else is a usage error."""
    from guardrail.training.cli_args import build_parser

    parser = build_parser()
    assert parser.parse_args(["export"]).activation_scales == "token"
    assert parser.parse_args(["export", "--activation-scales", "tensor"]).activation_scales == (
        "tensor"
    )
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["export", "--activation-scales", "channel"])
    assert stop.value.code == 2
    assert "invalid choice: 'channel'" in capsys.readouterr().err
