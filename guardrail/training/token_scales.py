"""Quantize the int8 graph's activations with one scale per token instead of one per tensor.

``quantize_dynamic`` puts a ``DynamicQuantizeLinear`` in front of every weight product: one
uint8 scale and zero point for the whole activation tensor of a run. A window's hidden
states are not alike from token to token ([CLS] and [SEP] carry far larger values than the
words between them), so the one scale is set by the largest token and the others keep
few levels; in a padded batch it is even set by the neighbours. Measured on the 1,360
validation and training texts of ``benchmarks/int8_modes.py`` (model 0.5.0, against the
same weights with float activations): per-tensor scales move the refusal score by 0.0037
on average (largest 0.17) and flip 9 verdicts; per-token scales 0.0009 (largest 0.05) and
3, for about 12 % more CPU per classification.

The rewrite, for each chain the quantizer writes (``DynamicQuantizeLinear`` -> one or more
``MatMulInteger`` -> ``Cast`` -> ``Mul`` by activation scale x weight scale):

- per activation tensor, once: ``s = max(max |x| over the last axis, tiny) / 127`` and
  ``q = QuantizeLinear(x / s, 1, 128)``: symmetric uint8 around 128, one scale per token
  (per row of a [batch, hidden] input);
- per product: ``MatMulInteger(q, w, 128, w_zero_point)`` -> float -> ``* s`` -> ``* w_scale``.

The weights (per-channel int8, zero point 0) are untouched, so the runtime's uint8-weights
path for CPUs without VNNI (``guardrail.model._int8_weights``) applies as before. Every
output keeps its name; run it on a graph without early exits (``exit_strip``), before
``early_exit`` fits its heads to the result.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "QUANTIZATION_NOTE",
    "TOKEN_SCALES_METADATA",
    "TokenScalesError",
    "has_token_scales",
    "per_token_scales",
    "token_scales_file",
]

#: Metadata key marking a graph whose activations are quantized per token.
TOKEN_SCALES_METADATA = "guardrail.activation_scales"
#: What ``config.json``'s ``quantization`` line gains for a graph rewritten here.
QUANTIZATION_NOTE = "activations quantized per token (guardrail/training/token_scales.py)"
_PREFIX = "tok_scale."
# A row of zeros would divide by zero; with this floor it quantizes to 128 (zero) instead.
_TINY = 1e-12


class TokenScalesError(ValueError):
    """The graph is not a dynamically quantized export this module can rewrite."""


def has_token_scales(model: onnx.ModelProto) -> bool:
    return any(p.key == TOKEN_SCALES_METADATA for p in model.metadata_props)


def _constants() -> list[onnx.TensorProto]:
    def f32(name: str, value: float) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(value, np.float32), _PREFIX + name)

    return [
        f32("tiny", _TINY),
        f32("inv127", 1.0 / 127.0),
        f32("one", 1.0),
        numpy_helper.from_array(np.array(128, np.uint8), _PREFIX + "zero_point"),
    ]


def _quantize_rows(x: str) -> tuple[list[onnx.NodeProto], str, str]:
    """Nodes quantizing activation ``x`` per row; returns (nodes, uint8 name, scale name)."""
    p = x + "_tok"
    n = helper.make_node
    nodes = [
        n("Abs", [x], [p + "_abs"]),
        n("ReduceMax", [p + "_abs"], [p + "_max"], axes=[-1], keepdims=1),
        n("Max", [p + "_max", _PREFIX + "tiny"], [p + "_floor"]),
        n("Mul", [p + "_floor", _PREFIX + "inv127"], [p + "_scale"]),
        n("Div", [x, p + "_scale"], [p + "_scaled"]),
        # round half to even, + 128, saturated to uint8: the scale is already divided out
        n("QuantizeLinear", [p + "_scaled", _PREFIX + "one", _PREFIX + "zero_point"], [p + "_q"]),
    ]
    return nodes, p + "_q", p + "_scale"


def _only_user(
    users: dict[str, list[onnx.NodeProto]], name: str, op_type: str
) -> onnx.NodeProto | None:
    found = users.get(name, [])
    return found[0] if len(found) == 1 and found[0].op_type == op_type else None


def per_token_scales(model: onnx.ModelProto) -> int:
    """Rewrite ``model`` in place (module docstring); return how many products changed."""
    g = model.graph
    if any(nd.op_type == "If" for nd in g.node):
        raise TokenScalesError("the graph has early exits: strip them first (exit_strip)")
    if has_token_scales(model):
        raise TokenScalesError("the graph's activations are quantized per token already")
    inits = {i.name: i for i in g.initializer}
    producer = {o: nd for nd in g.node for o in nd.output}
    users: dict[str, list[onnx.NodeProto]] = {}
    for nd in g.node:
        for name in nd.input:
            users.setdefault(name, []).append(nd)
    replaced: dict[int, list[onnx.NodeProto]] = {}  # id(node) -> nodes standing in its place
    dropped: set[int] = set()
    quantized: dict[str, tuple[str, str]] = {}
    for nd in g.node:
        if nd.op_type != "MatMulInteger":
            continue
        a_q, w_q, _, w_zero = nd.input
        dql = producer.get(a_q)
        if dql is None or dql.op_type != "DynamicQuantizeLinear":
            raise TokenScalesError(f"{nd.name}: not fed by DynamicQuantizeLinear")
        cast = _only_user(users, nd.output[0], "Cast")
        rescale = _only_user(users, cast.output[0] if cast else "", "Mul")
        scales = producer.get(rescale.input[1]) if rescale is not None else None
        if cast is None or rescale is None or scales is None or scales.op_type != "Mul":
            raise TokenScalesError(f"{nd.name}: not followed by Cast and a scale Mul")
        w_scale = scales.input[1]
        if w_q not in inits or w_scale not in inits or w_zero not in inits:
            raise TokenScalesError(f"{nd.name}: weights are not initializers")
        x = dql.input[0]
        new: list[onnx.NodeProto] = []
        if x not in quantized:
            rows, q, s = _quantize_rows(x)
            quantized[x] = (q, s)
            new += rows
        q, s = quantized[x]
        out, acc = rescale.output[0], nd.output[0] + "_tok"
        n = helper.make_node
        new += [
            n("MatMulInteger", [q, w_q, _PREFIX + "zero_point", w_zero], [acc]),
            n("Cast", [acc], [acc + "_f"], to=TensorProto.FLOAT),
            n("Mul", [acc + "_f", s], [acc + "_rows"]),
            n("Mul", [acc + "_rows", w_scale], [out]),
        ]
        for made in new:
            made.name = made.output[0]
        replaced[id(nd)] = new
        dropped |= {id(cast), id(rescale), id(scales), id(dql)}
    if not replaced:
        raise TokenScalesError("no dynamically quantized MatMul in the graph")
    nodes: list[onnx.NodeProto] = []
    for nd in g.node:
        nodes += replaced.get(id(nd), [] if id(nd) in dropped else [nd])
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(_constants())
    helper.set_model_props(
        model, {**{p.key: p.value for p in model.metadata_props}, TOKEN_SCALES_METADATA: "token"}
    )
    onnx.checker.check_model(model)
    return len(replaced)


def token_scales_file(path: Path) -> int:
    """Rewrite the int8 model at ``path`` in place; return how many products changed."""
    model = onnx.load(str(path))
    count = per_token_scales(model)
    tmp = path.with_name(path.name + ".tokens")
    onnx.save(model, str(tmp))
    tmp.replace(path)
    return count
