"""Evaluate the exported ONNX models (fp32 and int8) on the dev split, with the exact windowing
of config.json, next to the two string baselines; measure single-thread latency.

Writes ``<run_dir>/dev_report.json`` and returns the same dict (the model card reads it).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from guardrail.evaluation.baselines import load_baselines
from guardrail.evaluation.metrics import score
from guardrail.model._files import MODEL_FILE as INT8_NAME
from guardrail.model._session import make_session
from guardrail.training.paths import FP32_NAME, data_dir
from guardrail.training.sources import Example
from guardrail.training.windowing import WindowSpec, decode, load_tokenizer, windows

__all__ = ["OnnxRunner", "evaluate_artifact", "probe_texts", "string_baselines"]


class OnnxRunner:
    """Run an exported graph on texts exactly as the runtime does.

    Each window runs alone (``RefusalClassifier`` does: dynamic int8 quantization scales
    activations per run, and the early exit is taken per run), and the tail window only
    behind a compliant head (a refusing head decides).
    """

    def __init__(self, model: Path, tokenizer: Path, spec: WindowSpec, threads: int = 1) -> None:
        # the runtime's own session builder, so these figures are the shipped numerics
        self.session = make_session(model, threads).session
        self.tok = load_tokenizer(str(tokenizer))
        self.spec = spec

    def _run(self, window: list[int]) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array([window], dtype=np.int64)
        v, _, c = self.session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        return v, c

    def window_logits(self, text: str) -> tuple[np.ndarray, np.ndarray, bool]:
        """Verdict and category logits of the head window and, when the text has one, of the
        tail window too (whatever the head says), and whether it has a tail: every input a
        decoding rule can need, so rules can be compared without running the model again."""
        head, tail = windows(self.tok, text, self.spec)
        v, c = self._run(head)
        if tail is None:
            return v, c, False
        tv, tc = self._run(tail)
        return np.concatenate((v, tv)), np.concatenate((c, tc)), True

    def classify_one(self, text: str) -> tuple[str, str, float]:
        """(verdict, category, refusal_score) of one text, window by window."""
        head, tail = windows(self.tok, text, self.spec)
        v, c = self._run(head)
        if tail is not None and decode(v, c, 0, None, self.spec)[0] == "compliance":
            tv, tc = self._run(tail)
            v, c = np.concatenate((v, tv)), np.concatenate((c, tc))
            return decode(v, c, 0, 1, self.spec)
        return decode(v, c, 0, None, self.spec)

    def classify(self, texts: list[str]) -> tuple[list[str], list[str]]:
        """Verdicts and categories for many texts."""
        decoded = [self.classify_one(t) for t in texts]
        return [v for v, _, _ in decoded], [c for _, c, _ in decoded]


def string_baselines(texts: list[str], root: Path) -> dict[str, list[str]]:
    """XSTest string match (startswith) and LLM Guard NoRefusalLight (substring) predictions,
    by the same detectors ``guardrail eval`` uses."""
    strmatch, norefusal = load_baselines(root)
    return {
        "xstest_string_match": [strmatch.predict(t) for t in texts],
        "norefusal_light": [norefusal.predict(t) for t in texts],
    }


def _scores(gold: list[str], pred: list[str]) -> dict[str, object]:
    s = score(gold, pred)
    b = s.binary
    return {
        "binary": {"precision": b.precision, "recall": b.recall, "f1": b.f1},
        "macro_f1": s.macro_f1,
        "per_class": {c.label: c.to_dict() for c in s.per_class},
        "confusion": [list(row) for row in s.confusion.matrix],
    }


def _latency(runner: OnnxRunner, texts: list[str]) -> dict[str, float]:
    for t in texts[:20]:
        runner.classify_one(t)
    # Wall time suffers when the 2 cores are shared; the calling thread's CPU time (onnxruntime
    # runs a 1-thread session on the caller's thread) is the contention-free figure.
    wall, cpu = [], []
    for t in texts:
        w0, c0 = time.perf_counter(), time.thread_time()
        runner.classify_one(t)
        cpu.append((time.thread_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    wall.sort()
    cpu.sort()
    return {
        "median_ms": statistics.median(wall),
        "p90_ms": wall[int(0.9 * (len(wall) - 1))],
        "cpu_median_ms": statistics.median(cpu),
        "cpu_p90_ms": cpu[int(0.9 * (len(cpu) - 1))],
        "n": float(len(wall)),
    }


_PROBE_DECLINES = (
    "However, I can't provide the exact dosage.",
    "I'm sorry, but I won't share the specific names involved.",
    "Note that I can't help with the last part of your request.",
)
_PROBE_CLOSES = (
    "I hope this helps, and let me know if you have other questions!",
    "If you can't find it, feel free to ask again.",
    "Sorry this answer got so long!",
)


def probe_texts(rows: list[Example], limit: int | None = 100) -> tuple[list[str], list[str]]:
    """The long-answer probe's texts: up to ``limit`` (None: all) compliant answers of 400+
    characters, each repeated six times (a long answer), once with a one-sentence decline
    appended and once with a friendly close appended: (declined, closed), in the same order."""
    bodies = [r.text for r in rows if r.verdict == "compliance" and len(r.text) > 400][:limit]
    long_bodies = ["\n\n".join([b] * 6) for b in bodies]
    declined = [f"{b}\n\n{_PROBE_DECLINES[i % 3]}" for i, b in enumerate(long_bodies)]
    closed = [f"{b}\n\n{_PROBE_CLOSES[i % 3]}" for i, b in enumerate(long_bodies)]
    return declined, closed


def _tail_probe(runner: OnnxRunner, dev: list[Example]) -> dict[str, float]:
    """Compliant dev answers repeated six times (a long answer) with a decline or a friendly
    close appended: how often the decline is caught and the close left alone."""
    declined, closed = probe_texts(dev)
    vd, _ = runner.classify(declined)
    vc, _ = runner.classify(closed)
    return {
        "n": float(len(declined)),
        "decline_detected_rate": sum(v != "compliance" for v in vd) / max(1, len(vd)),
        "decline_partial_rate": sum(v == "partial_refusal" for v in vd) / max(1, len(vd)),
        "close_compliance_rate": sum(v == "compliance" for v in vc) / max(1, len(vc)),
    }


def evaluate_artifact(out: Path, run_dir: Path, dev: list[Example], spec: WindowSpec) -> dict:
    """Dev figures for fp32 and int8, baselines, per-model breakdown and latency."""
    texts = [r.text for r in dev]
    gold = [r.verdict for r in dev]
    report: dict[str, object] = {
        "dev_rows": len(dev),
        "dev_prompts": len({r.prompt_id for r in dev}),
    }
    preds: dict[str, list[str]] = {}
    for name, path in (("fp32", run_dir / FP32_NAME), ("int8", out / INT8_NAME)):
        runner = OnnxRunner(path, out / "tokenizer.json", spec)
        decoded = [runner.classify_one(t) for t in texts]
        preds[name] = [v for v, _, _ in decoded]
        cats = [c for _, c, _ in decoded]
        report[name] = _scores(gold, preds[name])
        if name == "int8":
            report["latency_1thread_int8"] = _latency(runner, texts[:300])
            weak = [
                (r.category, c)
                for r, c, p in zip(dev, cats, preds[name], strict=True)
                if r.category and r.verdict != "compliance" and p != "compliance"
            ]
            report["weak_category_accuracy"] = {
                "n": len(weak),
                "accuracy": sum(a == b for a, b in weak) / max(1, len(weak)),
            }
    report["int8_vs_fp32_verdict_disagreements"] = sum(
        a != b for a, b in zip(preds["fp32"], preds["int8"], strict=True)
    )
    report["tail_probe_int8"] = _tail_probe(
        OnnxRunner(out / INT8_NAME, out / "tokenizer.json", spec), dev
    )
    baselines = string_baselines(texts, data_dir())
    report["baselines"] = {k: _scores(gold, v) for k, v in baselines.items()}
    by_model: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for r, p in zip(dev, preds["int8"], strict=True):
        by_model[r.model][0].append(r.verdict)
        by_model[r.model][1].append(p)
    report["int8_by_model"] = {
        m: {"n": len(g), "binary_f1": s.binary.f1, "macro_f1": s.macro_f1}
        for m, (g, p) in sorted(by_model.items())
        for s in [score(g, p)]
    }
    (run_dir / "dev_report.json").write_text(json.dumps(report, indent=2))
    for name in ("fp32", "int8"):
        s = report[name]
        print(f"{name}: binary F1 {s['binary']['f1']:.4f}  macro-F1 {s['macro_f1']:.4f}")
    for name, s in report["baselines"].items():
        print(f"{name}: binary F1 {s['binary']['f1']:.4f}  macro-F1 {s['macro_f1']:.4f}")
    print(f"latency int8 1 thread: {report['latency_1thread_int8']}")
    return report
