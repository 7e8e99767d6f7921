"""Hold an exit graph to the graph it was built from before it replaces that graph on disk.

``check_exit`` runs the graphs ``exit_graph.add_exit`` builds against the original on random
padded batches (the path through the remaining layers bit-identical, the exit the head's own
logits, the exit taken exactly when the rule and gate say so); ``exit_file`` writes an exit
only after that passes. Kept apart from the graph surgery (``exit_graph.py``): it runs the
graphs in ONNX Runtime and is the gate on what ships, not a step in building one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx

from guardrail.training.exit_graph import (
    OUTPUTS,
    ExitGraphError,
    add_exit,
    feature_model,
    features_name,
)
from guardrail.training.exit_head import ExitHead, ExitRule

__all__ = ["check_exit", "exit_file"]


def check_exit(
    original: Path,
    head: ExitHead,
    rule: ExitRule,
    trials: int = 200,
    seed: int = 0,
    layer: int = 0,
) -> tuple[int, int]:
    """Check the exit graph against ``original`` on random padded batches; return (runs, exits).

    Graphs built and compared: with a rule no window satisfies, every output must be
    bit-identical to the original's (the remaining layers are untouched); with a rule every
    window satisfies and no gate, the outputs must be the head's logits computed in numpy from
    the pooled features (to 1e-4); with ``rule``, a run must exit exactly when
    ``ExitRule.sure`` and the head's gate say so (runs within 1e-4 of a threshold are not
    judged). A gated head is also built with its limit at the median distance of the random
    batches, which are far from any training window, so that the gate itself is seen to both
    pass and stop runs. Raises ExitGraphError on any mismatch.
    """
    import tempfile

    from guardrail.model._session import make_session
    from guardrail.training.graph_tidy import random_padded_feeds

    model = onnx.load(str(original))
    bare = replace(head, center=None, whiten=None, limit=float("inf"))
    always = ExitRule(compliance_below=2.0)
    with tempfile.TemporaryDirectory() as tmp:
        features_path = Path(tmp) / "features.onnx"
        onnx.save(feature_model(model, layer), str(features_path))
        read = make_session(features_path, 1).session
        batches = [
            (feeds, read.run([features_name(layer)], feeds)[0])
            for feeds in random_padded_feeds(model, trials, seed, max_batch=2)
        ]
        graphs = {
            "never": (
                head,
                ExitRule(compliance_below=-1.0, full_refusal_from=2.0, category_from=2.0),
            ),
            "always": (bare, always),
            "rule": (head, rule),
        }
        if head.center is not None:
            middle = float(np.median(np.concatenate([head.distance(f) for _, f in batches])))
            graphs["gate"] = (replace(head, limit=middle), always)
        runs = {}
        for name, (h, r) in graphs.items():
            path = Path(tmp) / f"{name}.onnx"
            onnx.save(add_exit(model, h, r, layer), str(path))
            runs[name] = make_session(path, 1).session.run
        base = make_session(original, 1).session
        exited = 0
        for feeds, features in batches:
            want = base.run(None, feeds)
            if not _same(want, runs["never"](None, feeds)):
                raise ExitGraphError("the path through the remaining layers changed the outputs")
            logits = head.logits(features)
            for (_, a, b), y in zip(OUTPUTS, runs["always"](None, feeds), strict=True):
                if not np.allclose(logits[:, a:b], y, atol=1e-4):
                    raise ExitGraphError("the exit's logits differ from the head's")
            if "gate" in graphs:
                gated = graphs["gate"][0]
                if not _near_limit(gated, features):
                    inside = bool(gated.inside(features).all())
                    if inside == _same(want, runs["gate"](None, feeds)):
                        raise ExitGraphError(f"the gate let through={not inside} in the graph")
            verdict_p, category_p = _softmax(logits[:, 0:3]), _softmax(logits[:, 5:21])
            if _near_threshold(rule, verdict_p, category_p) or _near_limit(head, features):
                continue
            sure = bool((rule.sure(verdict_p, category_p) & head.inside(features)).all())
            took = not _same(want, runs["rule"](None, feeds))
            if sure != took:
                raise ExitGraphError(f"exit taken={took} where the rule says {sure}")
            exited += sure
    return trials, exited


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _near_threshold(rule: ExitRule, verdict_p: np.ndarray, category_p: np.ndarray) -> bool:
    gaps = (
        verdict_p[:, 1] + verdict_p[:, 2] - rule.compliance_below,
        verdict_p[:, 2] - rule.full_refusal_from,
        category_p.max(axis=1) - rule.category_from,
    )
    return any(bool((np.abs(g) < 1e-4).any()) for g in gaps)


def _near_limit(head: ExitHead, features: np.ndarray) -> bool:
    """Is a row's distance within float noise of the gate's limit (so not judged)?"""
    if head.center is None:
        return False
    return bool((np.abs(head.distance(features) - head.limit) < 1e-4 * head.limit).any())


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def exit_file(path: Path, head: ExitHead, rule: ExitRule, layer: int = 0) -> tuple[int, int]:
    """Give the int8 model at ``path`` its exit at ``layer`` in place, after ``check_exit``
    passes."""
    checked = check_exit(path, head, rule, layer=layer)
    tmp = path.with_name(path.name + ".exit")
    onnx.save(add_exit(onnx.load(str(path)), head, rule, layer), str(tmp))
    tmp.replace(path)
    return checked
