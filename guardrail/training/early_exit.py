"""Fit early-exit heads to the shipped model's own outputs and build them into the graph.

``python -m guardrail.training early-exit --out DIR`` (the last step of ``all``) adds the
exits the artifact lacks, in this order: after the first layer (``layer`` 0), then on the
embeddings (``EMBEDDINGS``, before any layer; fitted to the graph with the first exit, whose
``If`` it wraps). For each:

1. every training window (the windows the model was trained on, each distinct example once)
   runs alone through the artifact's int8 graph with the pooled output the exit reads exposed
   (``exit_graph.feature_model``): features, and the graph's 21 probabilities as targets;
2. the head (``ExitHead``: 384 -> 64 -> 21) is fitted to those targets with soft
   cross-entropy per output (weights 1 / 0.3 / 0.5, as training weighs the three heads);
3. five-fold cross-fitting on the same windows measures, out of sample, how often an exit
   would disagree with the full model, for each ``ExitRule`` of a small grid; the rule used
   is the one with the most exits whose verdict and category disagreements both stay at or
   below ``MAX_DISAGREEMENT`` (0.1 %) of its exits (dev plays no part in the choice);
4. val and dev texts are classified as the runtime does, with and without the exit, from
   the same features (what the graph would do), then the graph is built, checked
   (``check_exit``) and written over the artifact's int8 file, and dev is classified again
   through the written graph with the runtime's own ``RefusalClassifier``;
5. ``exit_report.json`` / ``exit_report_embeddings.json`` (run dir) hold every figure; the
   model card's early-exit section and SHA256SUMS are rewritten.

Needs torch (the ``[train]`` extra) only for fitting; seeds are fixed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import torch

from guardrail.evaluation.metrics import score
from guardrail.model._decode import combine, softmax
from guardrail.model._files import MODEL_FILE
from guardrail.model._session import make_session
from guardrail.training.card_files import write_sha256sums
from guardrail.training.exit_check import exit_file
from guardrail.training.exit_graph import (
    EMBEDDINGS,
    config_key,
    feature_model,
    features_name,
    has_exit,
    report_name,
)
from guardrail.training.exit_head import ExitHead, ExitRule
from guardrail.training.sources import Example
from guardrail.training.train import training_windows
from guardrail.training.windowing import WindowSpec, load_tokenizer, windows

__all__ = ["GATE_QUANTILE", "WIDTH", "NoExitRuleError", "add_early_exit", "choose_rule", "fit_head"]

WIDTH = 64
EPOCHS = 300
SEED = 0
_WEIGHTS = ((0, 3, 1.0), (3, 5, 0.3), (5, 21, 0.5))


class _Features:
    """Runs windows through the graph with the pooled output an exit reads exposed."""

    def __init__(self, model_path: Path, layer: int) -> None:
        tmp = model_path.with_name(model_path.name + ".features")
        onnx.save(feature_model(onnx.load(str(model_path)), layer), str(tmp))
        self.name = features_name(layer)
        try:
            self.session = make_session(tmp, 1).session
        finally:
            tmp.unlink()

    def run(self, window: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(pooled features [H], full-model probabilities [21]) of one window run alone."""
        ids = np.array([list(window)], dtype=np.int64)
        v, k, c, f = self.session.run(
            ["verdict_logits", "kind_logits", "category_logits", self.name],
            {"input_ids": ids, "attention_mask": np.ones_like(ids)},
        )
        return f[0], np.concatenate((softmax(v)[0], softmax(k)[0], softmax(c)[0]))


def fit_head(
    features: np.ndarray, targets: np.ndarray, width: int = WIDTH, epochs: int = EPOCHS
) -> ExitHead:
    """Fit ``ExitHead`` to the full model's probabilities (soft cross-entropy per output)."""
    torch.manual_seed(SEED)
    x, t = torch.tensor(features), torch.tensor(targets)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], width), torch.nn.GELU(), torch.nn.Linear(width, 21)
    )
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
    gen = torch.Generator().manual_seed(SEED)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), 512):
            rows = order[start : start + 512]
            out = net(x[rows])
            loss = sum(
                w * -(t[rows, a:b] * torch.log_softmax(out[:, a:b], -1)).sum(-1).mean()
                for a, b, w in _WEIGHTS
            )
            opt.zero_grad()
            loss.backward()  # type: ignore[union-attr]
            opt.step()
    first, last = net[0], net[2]
    return ExitHead(
        w1=first.weight.detach().numpy().T.copy(),
        b1=first.bias.detach().numpy().copy(),
        w2=last.weight.detach().numpy().T.copy(),
        b2=last.bias.detach().numpy().copy(),
    )


#: Exits whose head is gated (``ExitHead``): the share of training windows the gate passes.
#: The embeddings head read a bare "No." (a golden text) as sure compliance where the layers
#: read a refusal; such windows lie far outside its training windows (squared Mahalanobis
#: distance 14,000 against a 99th percentile of 920), as do short refusals in other languages
#: (1,300-9,400), so past the 99th percentile the layers decide.
GATE_QUANTILE = {EMBEDDINGS: 0.99}


def _head_probs(head: ExitHead, features: np.ndarray) -> np.ndarray:
    z = head.logits(features)
    return np.concatenate((softmax(z[:, 0:3]), softmax(z[:, 3:5]), softmax(z[:, 5:21])), 1)


def _window_verdict(p: np.ndarray) -> np.ndarray:
    refusal = p[:, 1] + p[:, 2]
    return np.where(refusal < 0.5, 0, np.where(p[:, 1] > p[:, 2], 1, 2))


def _disagreements(
    teacher: np.ndarray, probs: np.ndarray, inside: np.ndarray, rule: ExitRule
) -> dict[str, float]:
    """Of the windows that would exit: how many the full model reads differently."""
    sure = rule.sure(probs[:, 0:3], probs[:, 5:21]) & inside
    verdict_t, verdict_h = _window_verdict(teacher), _window_verdict(probs)
    refusing = sure & (verdict_h != 0)
    category = refusing & (teacher[:, 5:].argmax(1) != probs[:, 5:].argmax(1))
    return {
        "windows": len(sure),
        "exits": int(sure.sum()),
        "exit_rate": float(sure.mean()),
        "refusal_exits": int(refusing.sum()),
        "verdict_disagreements": int((sure & (verdict_t != verdict_h)).sum()),
        "category_disagreements": int(category.sum()),
    }


#: Rules tried; the loosest whose cross-fitted exits stay within ``MAX_DISAGREEMENT`` is used.
#: The compliance thresholds reach down to 0.0005: a head whose compliant exits are a little
#: too loose at 0.02 can still skip most windows at a stricter threshold (a model trained with
#: another seed exits 80 % of its windows at 0.01 and none at 0.02). The refusal side reaches
#: 0.995 / 0.98 for the same reason: the embeddings heads of three fold-teacher students missed
#: the bound by 6-7 windows on the old grid (ending at 0.99 / 0.9) and one of them exits 67 %
#: of its windows within it at 0.002 / 0.995 / 0.9.
_GRID = tuple(
    ExitRule(compliance_below=lo, full_refusal_from=hi, category_from=cat)
    for lo in (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
    for hi in (0.95, 0.98, 0.99, 0.995, 2.0)
    for cat in ((0.8, 0.9, 0.95, 0.98) if hi <= 1.0 else (2.0,))
)
#: Largest share of exits the full model may read differently (verdict, and category).
MAX_DISAGREEMENT = 0.001


def _within(d: dict[str, float]) -> bool:
    limit = MAX_DISAGREEMENT * d["exits"]
    return d["verdict_disagreements"] <= limit and d["category_disagreements"] <= limit


class NoExitRuleError(Exception):
    """No rule on the grid lets an exit head stand in for the model closely enough."""


def choose_rule(
    grid: list[tuple[ExitRule, dict[str, float]]], layer: int
) -> tuple[ExitRule, dict[str, float]]:
    """The rule with the most exits among those within ``MAX_DISAGREEMENT``.

    A model whose cheap head cannot mimic it closely enough gets no exit at that layer, and
    the stage says so instead of building one that changes the model's answers.
    """
    allowed = [(r, d) for r, d in grid if _within(d)]
    if not allowed:
        fewest = min(d["verdict_disagreements"] + d["category_disagreements"] for _, d in grid)
        raise NoExitRuleError(
            f"no early exit at layer {layer}: every rule on the grid disagrees with the model "
            f"on more than {MAX_DISAGREEMENT:.1%} of its exits (fewest disagreements: "
            f"{fewest:g}); the artifact is left without this exit"
        )
    return max(allowed, key=lambda pair: pair[1]["exits"])


def _fit(features: np.ndarray, targets: np.ndarray, gate: float | None) -> ExitHead:
    head = fit_head(features, targets)
    return head if gate is None else head.with_gate(features, gate)


def _cross_fitted(
    features: np.ndarray, targets: np.ndarray, gate: float | None, folds: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold head probabilities and gate verdicts of every window."""
    fold = np.random.default_rng(SEED).integers(0, folds, len(features))
    out = np.zeros_like(targets)
    inside = np.ones(len(features), bool)
    for k in range(folds):
        head = _fit(features[fold != k], targets[fold != k], gate)
        out[fold == k] = _head_probs(head, features[fold == k])
        inside[fold == k] = head.inside(features[fold == k])
    return out, inside


def _simulate(
    rows: list[tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]],
    head: ExitHead,
    rule: ExitRule,
    threshold: float,
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]], int, int]:
    """Runtime results of texts without and with the exit; (base, exited, runs, exits)."""

    def result(wins: list[np.ndarray]) -> tuple[str, str, str]:
        v = np.array([w[0:3] for w in wins])
        k = np.array([w[3:5] for w in wins])
        c = np.array([w[5:21] for w in wins])
        r = combine((v, k, c), 0, 1 if len(wins) > 1 else None, threshold)
        return r.verdict, r.category, r.kind

    def window(f: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, bool]:
        q = _head_probs(head, f[None])
        sure = bool((rule.sure(q[:, 0:3], q[:, 5:21]) & head.inside(f[None]))[0])
        return (q[0] if sure else p), sure

    base, exited = [], []
    runs = exits = 0
    for (fh, ph), tail in rows:
        plain = [ph]
        if tail is not None and result([ph])[0] == "compliance":
            plain.append(tail[1])
        base.append(result(plain))
        h, sure = window(fh, ph)
        runs, exits = runs + 1, exits + sure
        wins = [h]
        if tail is not None and result([h])[0] == "compliance":
            t, sure = window(*tail)
            runs, exits = runs + 1, exits + sure
            wins.append(t)
        exited.append(result(wins))
    return base, exited, runs, exits


def _text_rows(feats: _Features, tok: object, spec: WindowSpec, examples: list[Example]) -> list:
    rows = []
    for ex in examples:
        head, tail = windows(tok, ex.text, spec)  # type: ignore[arg-type]
        rows.append((feats.run(head), None if tail is None else feats.run(tail)))
    return rows


def _text_figures(gold: list[str], base: list, exited: list, runs: int, exits: int) -> dict:
    sb, se = score(gold, [b[0] for b in base]), score(gold, [e[0] for e in exited])
    return {
        "texts": len(gold),
        "window_runs": runs,
        "exits": exits,
        "exit_rate": exits / max(1, runs),
        "verdict_changes": sum(a[0] != b[0] for a, b in zip(base, exited, strict=True)),
        "category_or_kind_changes": sum(
            a[0] == b[0] and a[0] != "compliance" and a[1:] != b[1:]
            for a, b in zip(base, exited, strict=True)
        ),
        "without_exit": {"binary_f1": sb.binary.f1, "macro_f1": sb.macro_f1},
        "with_exit": {"binary_f1": se.binary.f1, "macro_f1": se.macro_f1},
    }


def _write_config(out: Path, rule: ExitRule, layer: int, head: ExitHead) -> None:
    from guardrail.training.paths import MODEL_VERSION

    path = out / "config.json"
    cfg = json.loads(path.read_text())
    cfg["model_version"] = MODEL_VERSION
    read = "embedding output" if layer == EMBEDDINGS else "layer output"
    cfg[config_key(layer)] = entry = {
        "after_layer": layer + 1,
        "head": f"mean-pooled {read} -> {WIDTH} (GELU) -> 21 logits",
        **rule.as_config(),
        "description": "When the exit head is sure of every window in a run, its logits are "
        "the outputs and the remaining layers are skipped (an If node in the graph); "
        "guardrail/training/exit_graph.py.",
    }
    if head.center is not None:
        entry["gate"] = {
            "distance_below": round(head.limit, 3),
            "description": "squared Mahalanobis distance of the pooled features from the "
            "training windows' mean; only windows nearer than this may exit",
        }
    path.write_text(json.dumps(cfg, indent=2) + "\n")


def _runtime_dev(out: Path, dev: list[Example], simulated: list[str]) -> dict[str, float]:
    """Dev through the written artifact with the runtime itself, against the simulation."""
    from guardrail.model import RefusalClassifier

    clf = RefusalClassifier.load(out)
    verdicts = [clf.classify(ex.text).verdict for ex in dev]
    s = score([ex.verdict for ex in dev], verdicts)
    return {
        "binary_f1": s.binary.f1,
        "macro_f1": s.macro_f1,
        "differs_from_simulation": sum(a != b for a, b in zip(verdicts, simulated, strict=True)),
    }


def add_early_exit(
    out: Path,
    run_dir: Path,
    train: list[Example],
    val: list[Example],
    dev: list[Example],
    spec: WindowSpec,
    layer: int = 0,
) -> dict:
    """Fit, check and build the exit at ``layer`` into ``out``'s int8 graph; return the
    report."""
    model_path = out / MODEL_FILE
    if has_exit(onnx.load(str(model_path)), layer):
        raise SystemExit(f"{model_path} has that early exit already")
    started = time.perf_counter()
    tok = load_tokenizer(str(out / "tokenizer.json"))
    feats = _Features(model_path, layer)
    distinct = list({(ex.source, ex.text): ex for ex in train}.values())
    pairs = [feats.run(ids) for ids, _ in training_windows(tok, distinct, spec)]
    features = np.stack([f for f, _ in pairs]).astype(np.float32)
    targets = np.stack([p for _, p in pairs]).astype(np.float32)
    gate = GATE_QUANTILE.get(layer)
    cross, inside = _cross_fitted(features, targets, gate)
    grid = [(r, _disagreements(targets, cross, inside, r)) for r in _GRID]
    rule, chosen = choose_rule(grid, layer)
    report: dict[str, object] = {
        "layer": layer,
        "rule": rule.as_config(),
        "width": WIDTH,
        "epochs": EPOCHS,
        "train_windows_cross_fitted": chosen,
        "grid": [{**r.as_config(), **d} for r, d in grid],
    }
    head = _fit(features, targets, gate)
    if gate is not None:
        report["gate"] = {"quantile": gate, "limit": head.limit}
    threshold = spec.tail_refusal_threshold
    for name, examples in (("val", val), ("dev", dev)):
        rows = _text_rows(feats, tok, spec, examples)
        base, exited, runs, exits = _simulate(rows, head, rule, threshold)
        report[name] = _text_figures([ex.verdict for ex in examples], base, exited, runs, exits)
    simulated = [e[0] for e in exited]  # dev, the last split simulated
    runs, exits = exit_file(model_path, head, rule, layer)
    report["graph_check"] = {"random_runs": runs, "exits": exits}
    _write_config(out, rule, layer, head)
    write_sha256sums(out)
    report["dev_runtime"] = _runtime_dev(out, dev, simulated)
    report["seconds"] = time.perf_counter() - started
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / report_name(layer)).write_text(json.dumps(report, indent=2))
    return report
