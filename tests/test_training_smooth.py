"""Smoothing before int8 quantization: the same fp32 function, activation range moved into weights.

Built on a hand-made graph shaped like a BERT block's weight MatMuls: one input read by two
MatMuls (as query and key read one LayerNorm output) and a third MatMul behind a Relu, with a
few input channels far larger than the rest (as BERT's outlier channels are).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
quantization = pytest.importorskip("onnxruntime.quantization")

import inspect  # noqa: E402

import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnxruntime.quantization import onnx_quantizer  # noqa: E402

from guardrail.training.smooth import activation_maxima, smooth_file, smooth_graph  # noqa: E402

HIDDEN = 32
OUTLIERS = (3, 17)


def _embedding() -> np.ndarray:
    rng = np.random.default_rng(0)
    table = rng.normal(0.0, 1.0, (64, HIDDEN)).astype(np.float32)
    table[:, list(OUTLIERS)] *= 40.0  # a few channels far larger than the rest
    return table


def _graph() -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    weights = {
        name: rng.normal(0.0, 0.2, shape).astype(np.float32)
        for name, shape in (("wq", (HIDDEN, HIDDEN)), ("wk", (HIDDEN, HIDDEN)), ("wo", (HIDDEN, 4)))
    }
    # Small weights on the outlier rows, so every channel counts in the output (otherwise the
    # outliers alone decide it and coarse steps on the other channels hardly show).
    for name in ("wq", "wk"):
        weights[name][list(OUTLIERS), :] /= 40.0
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["hidden"], name="embed"),
        helper.make_node("MatMul", ["hidden", "wq"], ["q"], name="query"),
        helper.make_node("MatMul", ["hidden", "wk"], ["k"], name="key"),
        helper.make_node("Add", ["q", "k"], ["qk"], name="add"),
        helper.make_node("Relu", ["qk"], ["act"], name="relu"),
        helper.make_node("MatMul", ["act", "wo"], ["logits"], name="out"),
    ]
    inits = [numpy_helper.from_array(_embedding(), "table")]
    inits += [numpy_helper.from_array(w, name) for name, w in weights.items()]
    graph = helper.make_graph(
        nodes,
        "toy",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, None]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [1, None]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, None, 4])],
        inits,
    )
    # IR 9: the lowest onnxruntime the project supports (1.17) reads no newer files.
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def _windows() -> list[list[int]]:
    rng = np.random.default_rng(2)
    return [list(rng.integers(0, 64, 12)) for _ in range(40)]


def _run(model: onnx.ModelProto | Path, window: list[int]) -> np.ndarray:
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    ids = np.array([window], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    names = {i.name for i in session.get_inputs()}
    return np.asarray(session.run(["logits"], {k: v for k, v in feeds.items() if k in names})[0])


def test_maxima_are_per_channel_peaks_of_each_weight_matmul_input() -> None:
    """Calibration records max |x| per channel for every input of a weight MatMul."""
    maxima = activation_maxima(_graph(), _windows())
    assert sorted(maxima) == ["act", "hidden"]
    assert maxima["hidden"].shape == (HIDDEN,)
    table = _embedding()
    used = sorted({i for w in _windows() for i in w})
    assert np.allclose(maxima["hidden"], np.abs(table[used]).max(axis=0))


def test_smoothed_graph_computes_the_same_function_in_fp32() -> None:
    """Dividing inputs by the factor and multiplying weight rows by it leaves outputs unchanged."""
    model = _graph()
    smoothed = smooth_graph(model, activation_maxima(model, _windows()), alpha=0.5)
    for window in [*_windows()[:5], [5, 9, 60]]:
        assert np.allclose(_run(model, window), _run(smoothed, window), rtol=1e-4, atol=1e-4)


def test_matmuls_reading_one_tensor_share_one_mul() -> None:
    """Query and key read one tensor: one Mul feeds both, so it is still quantized once."""
    model = _graph()
    smoothed = smooth_graph(model, activation_maxima(model, _windows()))
    muls = [n for n in smoothed.graph.node if n.op_type == "Mul"]
    assert len(muls) == 2
    by_name = {n.name: n for n in smoothed.graph.node}
    assert by_name["query"].input[0] == by_name["key"].input[0] == muls[0].output[0]
    assert [n.name for n in smoothed.graph.node].index(muls[0].name) < [
        n.name for n in smoothed.graph.node
    ].index("query")


# onnxruntime 1.17 (the lowest version CI tests) quantizes through ``onnx.mapping``, which
# onnx 1.19 removed; training installs a current onnxruntime, so only that pairing lacks it.
_QUANTIZER_WORKS = hasattr(onnx, "mapping") or "onnx.mapping" not in inspect.getsource(
    onnx_quantizer
)


@pytest.mark.skipif(
    not _QUANTIZER_WORKS, reason="this onnxruntime's quantizer needs onnx.mapping (onnx < 1.19)"
)
def test_smoothing_shrinks_int8_error_on_outlier_channels(tmp_path: Path) -> None:
    """With outlier channels, the smoothed graph quantized to int8 stays nearer to fp32."""
    model = _graph()
    plain, smoothed_fp32 = tmp_path / "plain.onnx", tmp_path / "smoothed.fp32.onnx"
    onnx.save(model, str(plain))
    smooth_file(plain, smoothed_fp32, _windows(), alpha=0.7)
    reference = [_run(model, w) for w in _windows()]
    errors = {}
    for name, source in (("plain", plain), ("smoothed", smoothed_fp32)):
        target = tmp_path / f"{name}.int8.onnx"
        # MatMuls only: smoothing acts on their inputs. The Gather's table would be quantized
        # per tensor, outliers and all, which no smoothing reaches.
        quantization.quantize_dynamic(
            str(source),
            str(target),
            per_channel=True,
            weight_type=quantization.QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
        )
        errors[name] = np.mean(
            [
                np.abs(_run(target, w) - r).max() / np.abs(r).max()
                for w, r in zip(_windows(), reference, strict=True)
            ]
        )
    assert errors["smoothed"] < 0.5 * errors["plain"]


def test_alpha_outside_the_unit_interval_is_refused() -> None:
    """A migration strength outside [0, 1] is a configuration error, not a silent clip."""
    model = _graph()
    with pytest.raises(ValueError, match="alpha"):
        smooth_graph(model, activation_maxima(model, _windows()), alpha=1.5)
