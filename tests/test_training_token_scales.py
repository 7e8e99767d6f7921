"""Per-token activation scales: each window's numbers stop depending on its neighbours.

Built on tests/fixtures/exported_tiny.int8.onnx (a toy RefusalNet exported and quantized as
export_artifact does), tidied first as export does.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from guardrail.model._session import make_session  # noqa: E402
from guardrail.training.graph_tidy import random_padded_feeds, tidy_model  # noqa: E402
from guardrail.training.token_scales import (  # noqa: E402
    QUANTIZATION_NOTE,
    TOKEN_SCALES_METADATA,
    TokenScalesError,
    has_token_scales,
    per_token_scales,
    token_scales_file,
)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "exported_tiny.int8.onnx"


def _ops(model: object) -> collections.Counter[str]:
    return collections.Counter(n.op_type for n in model.graph.node)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(tidied per-tensor graph, the same graph with per-token scales)."""
    folder = tmp_path_factory.mktemp("tokens")
    tensor, token = folder / "tensor.onnx", folder / "token.onnx"
    onnx.save(tidy_model(onnx.load(str(FIXTURE))), str(tensor))
    onnx.save(tidy_model(onnx.load(str(FIXTURE))), str(token))
    token_scales_file(token)
    return tensor, token


def _run(path: Path, ids: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    return make_session(path, 1).session.run(None, {"input_ids": ids, "attention_mask": mask})  # type: ignore[no-any-return]


def _with_neighbour(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ids`` (one window) padded into a batch beside a longer window of other tokens."""
    rng = np.random.default_rng(3)
    width = ids.shape[1] + 20
    batch = np.zeros((2, width), np.int64)
    mask = np.zeros((2, width), np.int64)
    batch[0, : ids.shape[1]], mask[0, : ids.shape[1]] = ids[0], 1
    batch[1] = rng.integers(5, 90, width)
    mask[1] = 1
    return batch, mask


def test_every_dynamic_quantization_becomes_a_per_token_one(graphs: tuple[Path, Path]) -> None:
    """No DynamicQuantizeLinear is left; each product reads a row-wise quantized input."""
    tensor, token = (onnx.load(str(p)) for p in graphs)
    before, after = _ops(tensor), _ops(token)
    assert before["DynamicQuantizeLinear"] > 0 and after["DynamicQuantizeLinear"] == 0
    assert after["MatMulInteger"] == before["MatMulInteger"]
    assert after["QuantizeLinear"] == before["DynamicQuantizeLinear"]
    assert has_token_scales(token) and not has_token_scales(tensor)
    assert [o.name for o in token.graph.output] == [o.name for o in tensor.graph.output]
    meta = {p.key: p.value for p in token.metadata_props}
    assert meta[TOKEN_SCALES_METADATA] == "token"


def test_a_window_gets_the_same_numbers_alone_and_beside_a_neighbour(
    graphs: tuple[Path, Path],
) -> None:
    """Padded beside another window, per-token outputs stay put; per-tensor ones move."""
    tensor, token = graphs
    ids = np.array([[1, 17, 42, 8, 33, 2]], np.int64)
    batch, mask = _with_neighbour(ids)
    moved = {}
    for name, path in (("tensor", tensor), ("token", token)):
        alone = _run(path, ids, np.ones_like(ids))
        beside = _run(path, batch, mask)
        moved[name] = max(
            float(np.abs(a[0] - b[0]).max()) for a, b in zip(alone, beside, strict=True)
        )
    assert moved["token"] < 1e-5
    assert moved["tensor"] > 10 * max(moved["token"], 1e-7)


def test_per_token_outputs_stay_near_the_per_tensor_ones(graphs: tuple[Path, Path]) -> None:
    """The rewrite changes rounding only: on random padded batches the logits stay close."""
    tensor, token = graphs
    for feeds in random_padded_feeds(onnx.load(str(tensor)), 8, seed=5, max_batch=3):
        a = _run(tensor, feeds["input_ids"], feeds["attention_mask"])
        b = _run(token, feeds["input_ids"], feeds["attention_mask"])
        for x, y in zip(a, b, strict=True):
            assert np.all(np.isfinite(y))
            assert float(np.abs(x - y).max()) < 0.25 * max(1.0, float(np.abs(x).max()))


def _one_quantized_product(weight: np.ndarray) -> onnx.ModelProto:
    """``y = x @ weight`` laid out as ``quantize_dynamic`` writes it: per-channel int8 weights,
    the input quantized per tensor (built by hand, so no quantizer version is involved)."""
    h, nh = onnx.helper, onnx.numpy_helper
    scale = (np.abs(weight).max(axis=0) / 127.0).astype(np.float32)
    w_q = np.clip(np.round(weight / scale), -127, 127).astype(np.int8)
    nodes = [
        h.make_node("DynamicQuantizeLinear", ["x"], ["x_q", "x_scale", "x_zero"]),
        h.make_node("Mul", ["x_scale", "w_scale"], ["scales"]),
        h.make_node("MatMulInteger", ["x_q", "w_q", "x_zero", "w_zero"], ["acc"]),
        h.make_node("Cast", ["acc"], ["acc_f"], to=onnx.TensorProto.FLOAT),
        h.make_node("Mul", ["acc_f", "scales"], ["y"]),
    ]
    graph = h.make_graph(
        nodes,
        "one",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 8])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 5])],
        [
            nh.from_array(w_q, "w_q"),
            nh.from_array(scale, "w_scale"),
            nh.from_array(np.zeros(5, np.int8), "w_zero"),
        ],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8  # opset 17's; onnxruntime 1.17 (the lowest supported) reads up to 9
    return model


def test_one_product_is_exact_per_row_and_a_row_of_zeros_stays_zero(tmp_path: Path) -> None:
    """On a lone MatMul each row is quantized on its own scale; zeros give zeros, not NaN."""
    import onnxruntime as ort

    weight = np.random.default_rng(0).normal(size=(8, 5)).astype(np.float32)
    int8 = tmp_path / "int8.onnx"
    onnx.save(_one_quantized_product(weight), str(int8))
    assert token_scales_file(int8) == 1
    x = np.zeros((3, 8), np.float32)
    x[1] = np.linspace(-1.0, 1.0, 8)
    x[2] = 1000.0 * np.linspace(1.0, -1.0, 8)  # a huge row beside a small one
    session = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x})
    assert np.all(y[0] == 0.0)
    expected = x @ weight
    for row in (1, 2):  # each within int8 rounding of its own size, the small one too
        assert np.allclose(y[row], expected[row], atol=0.03 * np.abs(expected[row]).max())


def test_a_rewritten_graph_or_one_with_exits_is_refused(graphs: tuple[Path, Path]) -> None:
    """A second rewrite, a graph with an If and a graph with nothing to rewrite are named."""
    token = onnx.load(str(graphs[1]))
    with pytest.raises(TokenScalesError, match="per token already"):
        per_token_scales(token)
    tensor = onnx.load(str(graphs[0]))
    tensor.graph.node.append(
        onnx.helper.make_node(
            "If", ["c"], ["o"], then_branch=tensor.graph, else_branch=tensor.graph
        )
    )
    with pytest.raises(TokenScalesError, match="strip them first"):
        per_token_scales(tensor)
    plain = onnx.helper.make_model(
        onnx.helper.make_graph(
            [onnx.helper.make_node("Relu", ["x"], ["y"])],
            "plain",
            [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
            [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
        )
    )
    with pytest.raises(TokenScalesError, match="no dynamically quantized MatMul"):
        per_token_scales(plain)


def test_the_shipped_model_quantizes_activations_per_token() -> None:
    """The shipped graph, exits included, has no per-tensor quantization left, and says so."""
    from guardrail._resources import bundled_model_dir
    from guardrail.model._files import CONFIG_FILE, MODEL_FILE

    model = onnx.load(str(bundled_model_dir() / MODEL_FILE))
    assert has_token_scales(model)
    ops: collections.Counter[str] = collections.Counter()
    stack = [model.graph]
    while stack:
        graph = stack.pop()
        ops.update(n.op_type for n in graph.node)
        stack += [a.g for n in graph.node for a in n.attribute if a.type == a.GRAPH]
    assert ops["DynamicQuantizeLinear"] == 0 and ops["MatMulInteger"] > 0
    config = json.loads((bundled_model_dir() / CONFIG_FILE).read_text())
    assert QUANTIZATION_NOTE in config["quantization"]
