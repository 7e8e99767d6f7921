"""Take the early exits out of an int8 graph again: the full network, exactly as exported.

``exit_graph.add_exit`` moves every node after the exit point into the ``else`` branch of an
``If`` whose outputs carry the graph's output names, and adds the exit head's nodes,
initializers and a metadata key beside it. Undoing it: put each ``If``'s ``else`` branch
back in its place (its outputs already have the right names), drop every node the outputs
no longer need (the heads and their conditions) and every initializer nothing reads, and
remove the exits' metadata. The result runs every layer for every window, with the numbers
of the exits' not-taken path.

It lets a shipped model's graph be changed below its exits (``token_scales``) and the exits
be fitted again to the changed graph (``python -m guardrail.training requantize``).
"""

from __future__ import annotations

import onnx
from onnx import helper

from guardrail.training.exit_graph import EXIT_METADATA, ExitGraphError, ancestors, has_exit

__all__ = ["strip_exits"]


def _inline_else(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    flat: list[onnx.NodeProto] = []
    for nd in nodes:
        if nd.op_type != "If":
            flat.append(nd)
            continue
        (branch,) = [a.g for a in nd.attribute if a.name == "else_branch"]
        if [o.name for o in branch.output] != list(nd.output):
            raise ExitGraphError(f"{nd.name}: not an early exit's If (outputs differ)")
        if branch.initializer:
            raise ExitGraphError(f"{nd.name}: its else branch holds initializers")
        flat += _inline_else(list(branch.node))
    return flat


def strip_exits(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` without its early exits (module docstring)."""
    if not has_exit(model):
        raise ExitGraphError("the graph has no early exit to strip")
    g = model.graph
    flat = _inline_else(list(g.node))
    needed = ancestors(flat, [o.name for o in g.output])
    nodes = [nd for nd in flat if nd.output[0] in needed]
    read = {name for nd in nodes for name in nd.input}
    graph = helper.make_graph(
        nodes,
        g.name,
        list(g.input),
        list(g.output),
        [i for i in g.initializer if i.name in read],
    )
    out = helper.make_model(
        graph, opset_imports=list(model.opset_import), producer_name=model.producer_name
    )
    out.ir_version = model.ir_version
    helper.set_model_props(
        out,
        {p.key: p.value for p in model.metadata_props if not p.key.startswith(EXIT_METADATA)},
    )
    onnx.checker.check_model(out)
    return out
