"""How sure the tail window must be: the tail rule's threshold, swept on the human rows.

A long answer is read as a head window and a tail window; when the head is compliant and the
tail's refusal score reaches ``tail_refusal_threshold`` (config.json), the answer is a partial
refusal, so a decline at the end of a long answer is seen. This script runs the windows of
every human-labelled answer once (the tail too, whatever the head says) and decodes them at
each threshold of a grid with the runtime's rule: binary and macro F1 per split (train, val,
dev of the training code's split), how often the tail rule turns a compliant head into a
refusal and how often that agrees with the human label, and the long-answer probe of the
model card (all of each split's compliant answers of 400+ characters, repeated six times, with a
one-sentence decline or a friendly close appended).

The threshold is chosen on train + val, never dev: the highest binary F1 (ties: the lower
threshold) among the thresholds whose probe sees at most ``--max-probe-loss`` fewer of the
appended declines than trusting any refusing tail (0.5) does.

It also scores the reverse rule the runtime does not have (``reverse``): a long answer whose
head is a full refusal but whose tail is compliant (compliance probability >= c) read as a
partial refusal, since most human partial refusals open with a decline and then help. Only
the verdict mix moves, so it shows in macro-F1 and the per-class F1s.

    python -m benchmarks.tail_threshold [--model-dir DIR] [--max-probe-loss 0.005] [--name N]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import DATA_DIR, write_result
from guardrail.evaluation.metrics import score
from guardrail.model._decode import softmax
from guardrail.model.config import ModelConfig
from guardrail.taxonomy import is_refusal
from guardrail.training.windowing import WindowSpec, decode

__all__ = [
    "GRID",
    "REVERSE_GRID",
    "WindowLogits",
    "choose",
    "main",
    "probe_rates",
    "reverse_sweep",
    "reverse_verdict",
    "sweep",
    "verdict_at",
]

GRID: tuple[float, ...] = (
    0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 0.995,
)  # fmt: skip
REVERSE_GRID: tuple[float, ...] = (0.5, 0.9, 0.99, 0.999)
SELECTION_SPLITS = ("train", "val")


@dataclass(frozen=True)
class WindowLogits:
    """One text's verdict and category logits: one row (whole text) or head and tail rows."""

    verdict: np.ndarray
    category: np.ndarray

    @property
    def has_tail(self) -> bool:
        return len(self.verdict) == 2


def verdict_at(logits: WindowLogits, threshold: float) -> tuple[str, bool]:
    """The runtime's verdict at ``threshold``, and whether the tail rule gave it."""
    spec = WindowSpec(tail_refusal_threshold=threshold)
    tail = 1 if logits.has_tail else None
    verdict, _, _ = decode(logits.verdict, logits.category, 0, tail, spec)
    if tail is None:
        return verdict, False
    head_verdict, _, _ = decode(logits.verdict[:1], logits.category[:1], 0, None, spec)
    return verdict, head_verdict == "compliance" and verdict != "compliance"


def reverse_verdict(logits: WindowLogits, threshold: float, compliant_tail: float) -> str:
    """The runtime's verdict, except that a full-refusal head with a tail whose compliance
    probability reaches ``compliant_tail`` gives ``partial_refusal``."""
    verdict, _ = verdict_at(logits, threshold)
    if verdict != "full_refusal" or not logits.has_tail:
        return verdict
    compliance = softmax(np.asarray(logits.verdict[1], dtype=np.float64))[0]
    return "partial_refusal" if compliance >= compliant_tail else verdict


def reverse_sweep(
    gold: Sequence[str], logits: Sequence[WindowLogits], threshold: float
) -> list[dict[str, Any]]:
    """Per compliant-tail bar (None: the runtime's rule): F1s and how many partials it says."""
    out: list[dict[str, Any]] = []
    for bar in (None, *REVERSE_GRID):
        pred = [
            verdict_at(x, threshold)[0] if bar is None else reverse_verdict(x, threshold, bar)
            for x in logits
        ]
        s = score(list(gold), pred)
        out.append(
            {
                "compliant_tail": bar,
                "binary_f1": s.binary.f1,
                "macro_f1": s.macro_f1,
                "class_f1": {c.label: c.f1 for c in s.per_class},
                "partial_predicted": pred.count("partial_refusal"),
            }
        )
    return out


def sweep(
    gold: Sequence[str], logits: Sequence[WindowLogits], thresholds: Sequence[float]
) -> list[dict[str, float]]:
    """Per threshold: binary and macro F1, tail-rule verdicts and how many were refusals."""
    out = []
    for t in thresholds:
        decoded = [verdict_at(x, t) for x in logits]
        s = score(list(gold), [v for v, _ in decoded])
        fired = [g for g, (_, by_tail) in zip(gold, decoded, strict=True) if by_tail]
        out.append(
            {
                "threshold": t,
                "binary_f1": s.binary.f1,
                "macro_f1": s.macro_f1,
                "tail_rule_refusals": len(fired),
                "tail_rule_right": sum(is_refusal(g) for g in fired),
            }
        )
    return out


def probe_rates(
    declined: Sequence[WindowLogits], closed: Sequence[WindowLogits], thresholds: Sequence[float]
) -> list[dict[str, float]]:
    """Per threshold: share of appended declines seen, share of friendly closes left alone."""
    out = []
    for t in thresholds:
        seen = sum(verdict_at(x, t)[0] != "compliance" for x in declined)
        kept = sum(verdict_at(x, t)[0] == "compliance" for x in closed)
        out.append(
            {
                "threshold": t,
                "declines": len(declined),
                "declines_seen": seen,
                "closes_kept": kept,
                "decline_seen_rate": seen / max(1, len(declined)),
                "close_kept_rate": kept / max(1, len(closed)),
            }
        )
    return out


def choose(
    figures: Sequence[dict[str, float]], probe: Sequence[dict[str, float]], max_probe_loss: float
) -> float:
    """The threshold with the highest binary F1 whose probe rate is within ``max_probe_loss``
    of the loosest threshold's (the first of the grid); ties go to the lower threshold."""
    floor = probe[0]["decline_seen_rate"] - max_probe_loss - 1e-12
    allowed = [f for f, p in zip(figures, probe, strict=True) if p["decline_seen_rate"] >= floor]
    best = max(allowed, key=lambda f: (round(f["binary_f1"], 12), -f["threshold"]))
    return float(best["threshold"])


def _logits(model_dir: Path, data_dir: Path) -> dict[str, Any]:
    """Window logits of every human row and of each split's probe texts."""
    from guardrail.training.dataset import build
    from guardrail.training.evaluate import OnnxRunner, probe_texts

    data = build(data_dir, human_repeat=1)
    # The model's own windows (a tail that reaches back to the last paragraph, since 0.5.2).
    spec = WindowSpec.of(ModelConfig.from_file(model_dir / "config.json"))
    runner = OnnxRunner(
        model_dir / "refusal-classifier.int8.onnx", model_dir / "tokenizer.json", spec
    )

    def run(texts: Sequence[str]) -> list[WindowLogits]:
        return [WindowLogits(*runner.window_logits(t)[:2]) for t in texts]

    splits: dict[str, Any] = {}
    for name, rows in (("train", data.train), ("val", data.val), ("dev", data.dev)):
        human = [r for r in rows if r.source.startswith("xstest")]
        declined, closed = probe_texts(human, limit=None)
        splits[name] = {
            "gold": [r.verdict for r in human],
            "rows": run([r.text for r in human]),
            "declined": run(declined),
            "closed": run(closed),
        }
    return splits


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=None, help="default: the bundled model")
    parser.add_argument("--max-probe-loss", type=float, default=0.005)
    parser.add_argument("--name", default="tail_threshold", help="results/<name>.json")
    args = parser.parse_args(argv)
    from guardrail._resources import bundled_model_dir

    model_dir = args.model_dir or bundled_model_dir()
    splits = _logits(model_dir, DATA_DIR)
    splits["train+val"] = {
        key: [x for name in SELECTION_SPLITS for x in splits[name][key]]
        for key in ("gold", "rows", "declined", "closed")
    }
    report: dict[str, Any] = {"grid": list(GRID), "max_probe_loss": args.max_probe_loss}
    for name, s in splits.items():
        report[name] = {
            "human_rows": len(s["gold"]),
            "figures": sweep(s["gold"], s["rows"], GRID),
            "probe": probe_rates(s["declined"], s["closed"], GRID),
        }
    threshold = ModelConfig.from_file(model_dir / "config.json").tail_refusal_threshold
    for name in ("train+val", "dev"):
        report[name]["reverse"] = reverse_sweep(
            splits[name]["gold"], splits[name]["rows"], threshold
        )
    chosen = choose(
        report["train+val"]["figures"], report["train+val"]["probe"], args.max_probe_loss
    )
    report["chosen_on_train_val"] = chosen
    for name in ("train+val", "dev"):
        for f, p in zip(report[name]["figures"], report[name]["probe"], strict=True):
            print(
                f"{name:9} {f['threshold']:.3f}  binary F1 {f['binary_f1']:.4f}  macro-F1 "
                f"{f['macro_f1']:.4f}  tail rule {f['tail_rule_right']}/"
                f"{f['tail_rule_refusals']} right  probe declines {p['decline_seen_rate']:.3f} "
                f"closes kept {p['close_kept_rate']:.3f}"
            )
    print(f"chosen on train+val: {chosen}")
    for name in ("train+val", "dev"):
        for r in report[name]["reverse"]:
            print(
                f"{name:9} reverse rule, compliant tail >= {r['compliant_tail']}: macro-F1 "
                f"{r['macro_f1']:.4f}  partial F1 {r['class_f1']['partial_refusal']:.3f}  full "
                f"F1 {r['class_f1']['full_refusal']:.3f}  partials said {r['partial_predicted']}"
            )
    print(f"-> {write_result(args.name, report)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
