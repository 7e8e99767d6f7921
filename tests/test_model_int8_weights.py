"""Int8 weights run as uint8 on x86 CPUs without VNNI: which CPUs, the conversion, its limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from guardrail._resources import bundled_model_dir
from guardrail.errors import ModelLoadError
from guardrail.model import RefusalClassifier
from guardrail.model._files import MODEL_FILE
from guardrail.model._int8_weights import (
    ENV_VAR,
    choose_weight_mode,
    cpu_needs_unsigned,
    unsigned_weights,
)
from guardrail.model._session import make_session

MODEL = bundled_model_dir() / MODEL_FILE
GOLDEN = Path(__file__).resolve().parent / "golden" / "classifications.json"
needs_model = pytest.mark.skipif(not MODEL.is_file(), reason="no bundled model")

_EPYC = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma bmi2\n"
_XEON = "model name\t: Intel(R) Xeon(R)\nflags\t\t: avx2 avx512f avx512_vnni amx_int8\n"


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """``graph`` and every graph nested in its nodes' attributes (the exits' If branches)."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attribute.g)


def _tensors(model: onnx.ModelProto) -> dict[str, tuple[int, np.ndarray[Any, Any]]]:
    return {
        tensor.name: (tensor.data_type, numpy_helper.to_array(tensor))
        for graph in _graphs(model.graph)
        for tensor in graph.initializer
    }


def _without_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for graph in _graphs(copy.graph):
        del graph.initializer[:]
    return copy


def _matmul_model(weights: np.ndarray[Any, Any], zero_point: np.ndarray[Any, Any]) -> bytes:
    """y = MatMulInteger(x, W, 0, zp): an int8 weight whose zero point sits in int32_data."""
    w = numpy_helper.from_array(weights, "w")
    zp = helper.make_tensor("zp", TensorProto.INT8, zero_point.shape, zero_point.tolist())
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["x", "w", "", "zp"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [None, weights.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [None, weights.shape[1]])],
        [w, zp],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


@pytest.mark.parametrize(
    ("machine", "cpuinfo", "expected"),
    [
        ("x86_64", _EPYC, True),
        ("x86_64", _XEON, False),
        ("AMD64", None, True),
        ("x86_64", "processor\t: 0\n", True),
        ("aarch64", "Features\t: fp asimd asimddp\n", False),
        ("arm64", None, False),
    ],
)
def test_only_x86_cpus_without_vnni_need_unsigned_weights(
    machine: str, cpuinfo: str | None, expected: bool
) -> None:
    """AVX2-only x86 (or x86 whose flags cannot be read) converts; VNNI and ARM do not."""
    assert cpu_needs_unsigned(machine, cpuinfo) is expected


def test_the_environment_variable_overrides_the_choice_and_a_bad_value_is_named() -> None:
    """signed / unsigned win over the CPU test; anything else but auto is an error."""
    assert choose_weight_mode({ENV_VAR: "signed"}) == "signed"
    assert choose_weight_mode({ENV_VAR: " Unsigned "}) == "unsigned"
    assert choose_weight_mode({ENV_VAR: "auto"}) in ("signed", "unsigned")
    with pytest.raises(ValueError, match="must be auto, signed or unsigned, got 'u8'"):
        choose_weight_mode({ENV_VAR: "u8"})


def test_a_bad_environment_value_fails_loading_with_a_model_load_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The classifier does not start with a misspelt override."""
    monkeypatch.setenv(ENV_VAR, "fast")
    with pytest.raises(ModelLoadError, match=ENV_VAR):
        RefusalClassifier.load()


@needs_model
def test_the_shipped_model_converts_to_the_same_values_as_uint8_and_nothing_else_changes() -> None:
    """Every int8 tensor becomes uint8 holding value + 128; nodes and the rest are unchanged."""
    original = onnx.load_from_string(MODEL.read_bytes())
    converted_bytes = unsigned_weights(MODEL.read_bytes())
    assert converted_bytes is not None
    converted = onnx.load_from_string(converted_bytes)
    before, after = _tensors(original), _tensors(converted)
    assert before.keys() == after.keys()
    changed = 0
    for name, (dtype, values) in before.items():
        new_dtype, new_values = after[name]
        if dtype == TensorProto.INT8:
            changed += 1
            assert new_dtype == TensorProto.UINT8, name
            assert np.array_equal(new_values.astype(np.int16), values.astype(np.int16) + 128)
        else:
            assert new_dtype == dtype and np.array_equal(new_values, values), name
    assert changed == 30  # 15 MatMulInteger weights and their zero points
    assert _without_initializers(converted) == _without_initializers(original)


def test_negative_zero_points_and_weights_keep_their_products() -> None:
    """A zero point stored as negative varints converts too; the integer products are equal."""
    rng = np.random.default_rng(3)
    weights = rng.integers(-128, 128, size=(8, 4)).astype(np.int8)
    model = _matmul_model(weights, np.array([-3, 0, 5, -128], dtype=np.int8))
    converted = unsigned_weights(model)
    assert converted is not None
    x = rng.integers(0, 256, size=(5, 8)).astype(np.uint8)
    options = ort.SessionOptions()
    want = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    got = ort.InferenceSession(converted, options, providers=["CPUExecutionProvider"])
    assert np.array_equal(got.run(None, {"x": x})[0], want.run(None, {"x": x})[0])


def test_an_int8_tensor_used_other_than_as_a_weight_blocks_the_conversion() -> None:
    """An int8 initializer that a Cast also reads is left alone, and so is every other one."""
    weights = np.ones((2, 2), dtype=np.int8)
    graph = helper.make_graph(
        [
            helper.make_node("MatMulInteger", ["x", "w"], ["y"]),
            helper.make_node("Cast", ["w"], ["wf"], to=TensorProto.FLOAT),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [None, 2])],
        [
            helper.make_tensor_value_info("y", TensorProto.INT32, [None, 2]),
            helper.make_tensor_value_info("wf", TensorProto.FLOAT, [2, 2]),
        ],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert unsigned_weights(model.SerializeToString()) is None


def test_a_model_without_int8_weights_is_reported_as_none(tmp_path: Path) -> None:
    """An fp32 graph asked to run unsigned weights runs as it is, and says so."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert unsigned_weights(model.SerializeToString()) is None


def test_truncated_model_bytes_are_an_error_not_a_crash() -> None:
    """A model cut short raises ValueError from the wire reader (make_session names the file)."""
    data = (
        MODEL.read_bytes()[:5000]
        if MODEL.is_file()
        else _matmul_model(np.ones((2, 2), dtype=np.int8), np.zeros(2, dtype=np.int8))[:-3]
    )
    with pytest.raises((ValueError, IndexError)):
        unsigned_weights(data)


@needs_model
@pytest.mark.parametrize("mode", ["signed", "unsigned"])
def test_make_session_reports_the_weight_mode_it_used(mode: str) -> None:
    """The session says whether it runs the stored or the converted weights."""
    info = make_session(MODEL, 1, weights=mode)  # type: ignore[arg-type]
    assert info.int8_weights == mode


@needs_model
def test_unsigned_weights_reproduce_the_golden_outputs_on_any_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The uint8 kernel cannot saturate: the goldens (made on a VNNI CPU) hold within the
    golden tolerance, 5e-3 (onnxruntime versions differ by up to ~1e-3; signed weights on an
    AVX2 CPU were 0.027 off)."""
    monkeypatch.setenv(ENV_VAR, "unsigned")
    classifier = RefusalClassifier.load()
    assert classifier.int8_weights == "unsigned"
    cases = json.loads(GOLDEN.read_text(encoding="utf-8"))["cases"]
    results = classifier.classify_batch([case["text"] for case in cases])
    for case, result in zip(cases, results, strict=True):
        assert result.verdict == case["verdict"], case["id"]
        assert result.category == case["category"], case["id"]
        for key in ("refusal_score", "category_score"):
            want = pytest.approx(case[key], abs=5e-3)
            assert getattr(result, key) == want, f"{case['id']}: {key}"


@needs_model
def test_the_converted_model_leaves_no_temporary_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The uint8 copy goes through a temporary directory, removed once the session exists."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    info = make_session(MODEL, 1, weights="unsigned")
    assert info.int8_weights == "unsigned"
    assert list(tmp_path.iterdir()) == []


@needs_model
def test_without_a_writable_temporary_directory_the_bytes_are_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No temporary file: the converted bytes go to onnxruntime directly, same outputs."""
    reference = make_session(MODEL, 1, weights="unsigned")

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError("read-only file system")

    monkeypatch.setattr("tempfile.TemporaryDirectory", refuse)
    info = make_session(MODEL, 1, weights="unsigned")
    assert info.int8_weights == "unsigned"
    ids = np.array([[101, 7592, 102]], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    got, want = info.session.run(None, feeds), reference.session.run(None, feeds)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


def test_a_converted_model_onnxruntime_rejects_is_a_model_load_error(tmp_path: Path) -> None:
    """Conversion succeeds but the graph is wrong (an int32 product declared float): the
    error names the file, and the mapped file is released cleanly."""
    data = onnx.load_from_string(
        _matmul_model(np.ones((2, 2), dtype=np.int8), np.zeros(2, dtype=np.int8))
    )
    data.graph.output[0].type.tensor_type.elem_type = TensorProto.FLOAT
    path = tmp_path / "bad.onnx"
    path.write_bytes(data.SerializeToString())
    with pytest.raises(ModelLoadError, match=r"cannot load ONNX model .*bad\.onnx") as caught:
        make_session(path, 1, weights="unsigned")
    assert "exported pointers" not in str(caught.value)  # the mapping closed cleanly
