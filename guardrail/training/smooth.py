"""Move activation range into the weights before int8 quantization (SmoothQuant-style).

Dynamic int8 quantization gives each MatMul input one scale per run, set by its largest
value. A few hidden channels of a BERT layer run far larger than the rest, so that one scale
leaves the other channels few int8 steps, while the weights are quantized per output
channel and have range to spare. For ``y = x @ W`` with a per-input-channel factor ``s``:

    y = (x / s) @ (s[:, None] * W)

is the same function in fp32, and with ``s_j = max|x_j| ** alpha / max|W_j| ** (1 - alpha)``
the channels of ``x / s`` and the rows of ``s * W`` are evened out (Xiao et al., 2023,
"SmoothQuant"). Here ``x / s`` is an explicit ``Mul`` in front of the MatMul: in a post-norm
BERT the LayerNorm output is also the residual stream, so the factor cannot be folded into
LayerNorm's weights as it is for pre-norm models; the ``Mul`` costs a few microseconds per
window. MatMuls that read the same tensor (query, key and value) share one ``Mul`` with one
factor (over the rows of all their weights), so they still share one quantization of it.

``max|x_j|`` comes from running the fp32 graph on calibration windows (training windows, each
run alone, as the runtime runs them). Only MatMuls whose second input is a weight
initializer are touched; attention's two activation-by-activation MatMuls are not quantized
anyway.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

__all__ = ["activation_maxima", "smooth_file", "smooth_graph"]


def _weight_matmuls(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Activation tensor -> positions (in graph order) of the MatMul nodes that multiply it
    by a 2-D weight initializer. Positions, not names: node names may be empty."""
    weights = {init.name for init in model.graph.initializer if len(init.dims) == 2}
    found: dict[str, list[int]] = defaultdict(list)
    for position, node in enumerate(model.graph.node):
        if node.op_type == "MatMul" and node.input[1] in weights:
            found[node.input[0]].append(position)
    return dict(found)


def activation_maxima(
    model: onnx.ModelProto, windows: Iterable[Sequence[int]]
) -> dict[str, np.ndarray]:
    """Per-channel max |x| of every weight MatMul's input over ``windows`` (each run alone)."""
    names = sorted(_weight_matmuls(model))
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {out.name for out in probe.graph.output}
    for name in names:
        if name not in known:
            probe.graph.output.append(
                helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(
        probe.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    inputs = {i.name for i in session.get_inputs()}
    maxima: dict[str, np.ndarray] = {}
    for window in windows:
        ids = np.array([list(window)], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        values = session.run(names, {k: v for k, v in feeds.items() if k in inputs})
        for name, value in zip(names, values, strict=True):
            peak = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            maxima[name] = peak if name not in maxima else np.maximum(maxima[name], peak)
    if not maxima:
        raise ValueError("no calibration windows")
    return maxima


def smooth_graph(
    model: onnx.ModelProto, maxima: dict[str, np.ndarray], alpha: float = 0.5
) -> onnx.ModelProto:
    """A copy of ``model`` with each weight MatMul's input scaled down and its weight up."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    inits = {init.name: init for init in out.graph.initializer}
    graph_nodes = out.graph.node
    before: dict[int, onnx.NodeProto] = {}  # first consumer's position -> the Mul to put first
    for index, (tensor, positions) in enumerate(sorted(_weight_matmuls(out).items())):
        matmuls = [graph_nodes[i] for i in positions]
        if tensor not in maxima or len({m.input[1] for m in matmuls}) != len(matmuls):
            continue  # not calibrated, or one weight shared by two MatMuls: left as it is
        weights = [numpy_helper.to_array(inits[m.input[1]]) for m in matmuls]
        w_peak = np.max([np.abs(w).max(axis=1) for w in weights], axis=0).astype(np.float64)
        x_peak = maxima[tensor].astype(np.float64)
        factor = np.maximum(x_peak, 1e-5) ** alpha / np.maximum(w_peak, 1e-5) ** (1.0 - alpha)
        # Bounded: a channel that never fired in calibration must not get an extreme weight.
        factor = np.clip(factor, 1e-2, 1e2).astype(np.float32)
        scaled, inverse = f"{tensor}_smoothed", f"smooth_inverse_{index}"
        out.graph.initializer.append(numpy_helper.from_array(1.0 / factor, inverse))
        for matmul, weight in zip(matmuls, weights, strict=True):
            name = matmul.input[1]
            inits[name].CopyFrom(numpy_helper.from_array(weight * factor[:, None], name))
            matmul.input[0] = scaled
        before[positions[0]] = helper.make_node(
            "Mul", [tensor, inverse], [scaled], name=f"smooth_mul_{index}"
        )
    # The graph must stay in topological order: each Mul goes just before its first reader.
    nodes: list[onnx.NodeProto] = []
    for position, node in enumerate(graph_nodes):
        if position in before:
            nodes.append(before[position])
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        nodes.append(copy)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    onnx.checker.check_model(out)
    return out


def smooth_file(
    fp32: Path, out: Path, windows: Iterable[Sequence[int]], alpha: float = 0.5
) -> None:
    """Smooth the fp32 graph at ``fp32`` (calibrated on ``windows``) into ``out``."""
    model = onnx.load(str(fp32))
    onnx.save(smooth_graph(model, activation_maxima(model, windows), alpha), str(out))
