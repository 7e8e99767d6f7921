"""Give the int8 graph an early exit: a small head after the first layer may skip the rest.

Most windows are easy. A clearly helpful answer, or a plain "I can't help with that", is
already plain after the first transformer layer, and the second layer (about 45 % of a
window's time here) only confirms it. So the graph gets a second, tiny head on the first
layer's mean-pooled output (``exit_head.ExitHead``: 384 -> 64, GELU, -> 21 logits: verdict,
kind, category in the runtime's order) and an ``If``:

- the exit head is *sure* of every window in the run -> its logits are the outputs;
- otherwise -> the rest of the original graph runs, exactly as before (same nodes, same
  numbers: ``exit_check.check_exit`` holds the not-exiting path to bit-identical outputs).

Sure means one of (``exit_head.ExitRule``):
- compliance: P(partial) + P(full) < ``compliance_below``;
- full refusal: P(full) > ``full_refusal_from`` and the top category's probability >
  ``category_from``, so a window exits as a refusal only when its category is plain too
  (policies match on it).

The graph keeps its inputs and outputs, so the runtime does not change; it only runs
faster. The head is fitted to the full model's own outputs (``early_exit.py``), not to
gold labels: the exit is meant to agree with the full model, not to second-guess it.
In a batch of several windows the exit is taken only when every window is sure (an ``If``
has one condition); the runtime runs one window at a time by default.

Exits stack: a graph may get a second exit *before* its first one, reading the embeddings
(``EMBEDDINGS``: the mean of the first layer's input, a bag of positioned word pieces) and
fitted to the outputs of the graph it is added to. Its ``If`` is the outermost: when it is
not sure, the first layer runs, then the first exit's ``If`` as before. Each exit keeps its
own name prefix, features output and metadata key, so either can be checked on its own.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from guardrail.training.exit_head import ExitHead, ExitRule

__all__ = [
    "EMBEDDINGS",
    "EXIT_FEATURES",
    "EXIT_METADATA",
    "EXIT_ORDER",
    "OUTPUTS",
    "ExitGraphError",
    "add_exit",
    "ancestors",
    "config_key",
    "exit_layers",
    "feature_model",
    "features_name",
    "has_exit",
    "layer_output",
    "report_name",
]

#: Metadata key the exit graph carries (its rule, as JSON); the producer name stays the
#: source graph's, so a tidied graph still reads as tidied (graph_tidy.is_tidy).
EXIT_METADATA = "guardrail.early_exit"
#: Name of the pooled first-layer output in ``feature_model`` (what the head reads).
EXIT_FEATURES = "exit_features"
#: ``layer`` of the exit that reads the embeddings, before the first transformer layer.
EMBEDDINGS = -1
#: The exits ``python -m guardrail.training early-exit`` adds, in this order: each new one
#: wraps the ones before it.
EXIT_ORDER = (0, EMBEDDINGS)
_EMBEDDINGS_OUTPUT = "/encoder/embeddings/LayerNorm/LayerNormalization_output_0"
#: The graph's outputs, in order, as (name, start, stop): each one's slice of the 21 logits.
OUTPUTS = (("verdict_logits", 0, 3), ("kind_logits", 3, 5), ("category_logits", 5, 21))


def _prefix(layer: int) -> str:
    """Prefix of every name the exit at ``layer`` adds (the first exit's is plain "exit.")."""
    return "exit." if layer == 0 else "exit_emb." if layer == EMBEDDINGS else f"exit{layer}."


def _metadata_key(layer: int) -> str:
    if layer == 0:
        return EXIT_METADATA
    return f"{EXIT_METADATA}.{'embeddings' if layer == EMBEDDINGS else f'layer{layer}'}"


def config_key(layer: int) -> str:
    """The artifact's config.json entry (early_exit.py) describing the exit at ``layer``."""
    return "early_exit" if layer == 0 else "early_exit_embeddings"


def report_name(layer: int) -> str:
    """The run directory's report file (early_exit.py) of the exit at ``layer``."""
    return "exit_report.json" if layer == 0 else "exit_report_embeddings.json"


def features_name(layer: int = 0) -> str:
    """The pooled output ``feature_model(model, layer)`` adds (what that exit's head reads)."""
    return EXIT_FEATURES if layer == 0 else _prefix(layer) + "features"


class ExitGraphError(ValueError):
    """The graph is not one this module can give an exit (or, in exit_check, the exit changed
    its numbers)."""


def exit_layers(model: onnx.ModelProto) -> list[int]:
    """Where the graph's exits read from (``EMBEDDINGS`` or a layer index), from its metadata."""
    keys = {p.key for p in model.metadata_props}
    return sorted(layer for layer in (EMBEDDINGS, *range(12)) if _metadata_key(layer) in keys)


def has_exit(model: onnx.ModelProto, layer: int | None = None) -> bool:
    """Whether the graph has an exit at all (``layer`` None) or one at ``layer``."""
    found = exit_layers(model)
    return bool(found) if layer is None else layer in found


def layer_output(model: onnx.ModelProto, layer: int = 0) -> str:
    """Name of transformer layer ``layer``'s output (its last LayerNorm) in an exported graph;
    ``EMBEDDINGS``: the embeddings' LayerNorm output, the first layer's input."""
    if layer == EMBEDDINGS:
        if not any(_EMBEDDINGS_OUTPUT in n.output for n in model.graph.node):
            raise ExitGraphError(
                f"no embeddings output ({_EMBEDDINGS_OUTPUT}): not a guardrail export"
            )
        if not any("/encoder/encoder/layer.0/" in n.name for n in model.graph.node):
            raise ExitGraphError("no first layer after the embeddings: nothing to skip")
        return _EMBEDDINGS_OUTPUT
    name = f"/encoder/encoder/layer.{layer}/output/LayerNorm/LayerNormalization_output_0"
    if not any(name in n.output for n in model.graph.node):
        raise ExitGraphError(f"no output of layer {layer} ({name}): not a guardrail export")
    if not any(f"/encoder/encoder/layer.{layer + 1}/" in n.name for n in model.graph.node):
        raise ExitGraphError(f"layer {layer} is the last layer: nothing to skip")
    return name


def _final_pooling(
    model: onnx.ModelProto,
) -> tuple[onnx.NodeProto, onnx.NodeProto, onnx.NodeProto]:
    """The exporter's mean pooling ``ReduceSum(h * mask) / count``: its Mul, ReduceSum, Div
    (in a graph with an exit, the exit's pooling: the same mask and count, outside the If)."""
    nodes = list(model.graph.node)
    producer = {o: nd for nd in nodes for o in nd.output}
    for nd in nodes:
        if nd.op_type != "ReduceSum":
            continue
        mul = producer.get(nd.input[0])
        div = next((m for m in nodes if nd.output[0] in m.input), None)
        if mul is not None and mul.op_type == "Mul" and div is not None and div.op_type == "Div":
            return mul, nd, div
    raise ExitGraphError("no mean pooling (ReduceSum(h * mask) / count) found")


def _pooling(model: onnx.ModelProto, layer: int) -> tuple[list[onnx.NodeProto], list[str]]:
    """Mean over the attention mask of ``layer``'s output, computed as the exporter's own
    pooling is (same mask and count tensors, same ReduceSum): the nodes, and the tensors they
    need."""
    layer_out, p = layer_output(model, layer), _prefix(layer)
    mul, reduce, div = _final_pooling(model)
    mask, count = mul.input[1], div.input[1]
    n = helper.make_node
    summed = n("ReduceSum", [p + "masked", *reduce.input[1:]], [p + "sum"])
    summed.attribute.extend(reduce.attribute)
    pool = [
        n("Mul", [layer_out, mask], [p + "masked"]),
        summed,
        n("Div", [p + "sum", count], [features_name(layer)]),
    ]
    return pool, [mask, count]


def feature_model(model: onnx.ModelProto, layer: int = 0) -> onnx.ModelProto:
    """The graph with the pooled output of ``layer`` as one more output (for fitting a head)."""
    pool, _ = _pooling(model, layer)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.node.extend(pool)
    out.graph.output.append(
        helper.make_tensor_value_info(features_name(layer), TensorProto.FLOAT, ["batch", "hidden"])
    )
    return out


def ancestors(nodes: list[onnx.NodeProto], targets: list[str]) -> set[str]:
    """First output names of the nodes ``targets`` depend on."""
    producer = {o: nd for nd in nodes for o in nd.output}
    seen: set[str] = set()
    stack = list(targets)
    while stack:
        nd = producer.get(stack.pop())
        if nd is not None and nd.output[0] not in seen:
            seen.add(nd.output[0])
            stack.extend(i for i in nd.input if i)
    return seen


def add_exit(
    model: onnx.ModelProto, head: ExitHead, rule: ExitRule, layer: int = 0
) -> onnx.ModelProto:
    """Return a copy of ``model`` with the exit head after ``layer`` (module docstring)."""
    present = exit_layers(model)
    if layer in present:
        raise ExitGraphError("the graph has an early exit there already")
    if any(other < layer for other in present):
        raise ExitGraphError("an exit can only go before the graph's exits (its If is outermost)")
    g = model.graph
    if [o.name for o in g.output] != [name for name, _, _ in OUTPUTS]:
        raise ExitGraphError(f"unexpected outputs {[o.name for o in g.output]}")
    hidden = layer_output(model, layer)
    if head.w2.shape[1] != 21:
        raise ExitGraphError(f"the head must give 21 logits, gives {head.w2.shape[1]}")
    nodes = list(g.node)
    pool, needs = _pooling(model, layer)
    features = features_name(layer)
    p = _prefix(layer)
    # the mask and count of the pooling move out of the skipped part: both parts use them
    early = ancestors(nodes, [hidden, *needs])
    outer = [nd for nd in nodes if nd.output[0] in early or nd.op_type == "Constant"]
    rest = [nd for nd in nodes if not (nd.output[0] in early or nd.op_type == "Constant")]
    inits: list[onnx.TensorProto] = []

    def f32(name: str, value: object) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, np.float32), p + name)

    def i64(name: str, value: list[int]) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(value, np.int64), p + name)

    inits += [
        f32("w1", head.w1),
        f32("b1", head.b1),
        f32("w2", head.w2),
        f32("b2", head.b2),
        f32("sqrt2", np.sqrt(2.0)),
        f32("half", 0.5),
        f32("one", 1.0),
        f32("zero", 0.0),
        # verdict probabilities -> [refusal - compliance_below, full_refusal_from - full]
        f32("margins_w", [[0.0, 0.0], [1.0, 0.0], [1.0, -1.0]]),
        f32("margins_b", [-rule.compliance_below, rule.full_refusal_from]),
        f32("category_from", rule.category_from),
        i64("axis1", [1]),
    ]
    for name, start, stop in OUTPUTS:
        inits += [i64(name + "_start", [start]), i64(name + "_stop", [stop])]
    n = helper.make_node
    mlp = [
        n("MatMul", [features, p + "w1"], [p + "h0"]),
        n("Add", [p + "h0", p + "b1"], [p + "h1"]),
        # GELU written out (erf form, as BERT's): opset 17 has no Gelu operator
        n("Div", [p + "h1", p + "sqrt2"], [p + "g0"]),
        n("Erf", [p + "g0"], [p + "g1"]),
        n("Add", [p + "g1", p + "one"], [p + "g2"]),
        n("Mul", [p + "h1", p + "g2"], [p + "g3"]),
        n("Mul", [p + "g3", p + "half"], [p + "h2"]),
        n("MatMul", [p + "h2", p + "w2"], [p + "l0"]),
        n("Add", [p + "l0", p + "b2"], [p + "logits"]),
    ]
    for name, _, _ in OUTPUTS:
        mlp.append(
            n(
                "Slice",
                [p + "logits", p + name + "_start", p + name + "_stop", p + "axis1"],
                [p + name],
            )
        )
    gate: list[onnx.NodeProto] | None = None
    if head.center is not None and head.whiten is not None:
        # distance - limit < 0 is needed as well: max() with the reading's margin
        inits += [
            f32("center", head.center),
            f32("whiten", head.whiten),
            f32("limit", head.limit),
        ]
        gate = [
            n("Sub", [features, p + "center"], [p + "centered"]),
            n("MatMul", [p + "centered", p + "whiten"], [p + "z"]),
            n("Mul", [p + "z", p + "z"], [p + "z2"]),
            n("ReduceSum", [p + "z2", p + "axis1"], [p + "distance"], keepdims=1),
            n("Sub", [p + "distance", p + "limit"], [p + "distance_margin"]),
            n("Max", [p + "read_margin", p + "distance_margin"], [p + "margin"]),
        ]
    # A window is sure when min(refusal - lo, max(hi - full, cc - top category)) < 0, i.e.
    # refusal < lo, or full > hi and top category > cc; the run exits when every window is
    # sure: max over windows < 0. Few nodes on purpose: each costs a kernel call per run.
    sure = [
        n("Softmax", [p + "verdict_logits"], [p + "verdict_p"], axis=-1),
        n("Softmax", [p + "category_logits"], [p + "category_p"], axis=-1),
        n("MatMul", [p + "verdict_p", p + "margins_w"], [p + "margins0"]),
        n("Add", [p + "margins0", p + "margins_b"], [p + "margins"]),
        n("Split", [p + "margins"], [p + "ok_margin", p + "full_margin"], axis=1),
        n("ReduceMax", [p + "category_p"], [p + "category_top"], axes=[1], keepdims=1),
        n("Sub", [p + "category_from", p + "category_top"], [p + "category_margin"]),
        n("Max", [p + "full_margin", p + "category_margin"], [p + "refusal_margin"]),
        n(
            "Min",
            [p + "ok_margin", p + "refusal_margin"],
            [p + "margin" if gate is None else p + "read_margin"],
        ),
        *([] if gate is None else gate),
        n("ReduceMax", [p + "margin"], [p + "worst"], keepdims=0),
        n("Less", [p + "worst", p + "zero"], [p + "sure"]),
    ]

    def out_info(name: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, None)

    then_branch = helper.make_graph(
        [n("Identity", [p + name], [p + name + "_out"]) for name, _, _ in OUTPUTS],
        "early_exit",
        [],
        [out_info(p + name + "_out") for name, _, _ in OUTPUTS],
    )
    else_branch = helper.make_graph(
        rest, "remaining_layers", [], [out_info(name) for name, _, _ in OUTPUTS]
    )
    branch = n(
        "If",
        [p + "sure"],
        [name for name, _, _ in OUTPUTS],
        name=p + "if",
        then_branch=then_branch,
        else_branch=else_branch,
    )
    for nd in (*pool, *mlp, *sure, *then_branch.node):
        nd.name = nd.name or nd.output[0]  # named, so profiles can tell the exit's nodes apart
    graph = helper.make_graph(
        [*outer, *pool, *mlp, *sure, branch],
        g.name,
        list(g.input),
        list(g.output),
        [*g.initializer, *inits],
    )
    out = helper.make_model(
        graph, opset_imports=list(model.opset_import), producer_name=model.producer_name
    )
    out.ir_version = model.ir_version
    helper.set_model_props(
        out,
        {
            **{p.key: p.value for p in model.metadata_props},
            _metadata_key(layer): json.dumps(rule.as_config()),
        },
    )
    onnx.checker.check_model(out)
    return out
