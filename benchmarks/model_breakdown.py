"""Where one classification's time goes: tokenising/windowing vs the ONNX session itself.

Times, on one thread, ``RefusalClassifier.windows_for`` (tokenise + window) and ``classify``
over real responses, and ``InferenceSession.run`` alone on the window shapes the model sees
([1, 96] whole, [2, 48] head + tail, [1, 40] short; random token ids, which the early exit of
model 0.3.0 mostly takes) for the shipped int8 model and, when given, other ONNX exports of it
(e.g. the fp32 one) to compare. Sessions are built as the runtime builds them (``make_session``).

``--compare-dir`` classifies the same texts with another model directory as well, interleaved
text by text (3 passes, CPU time of the calling thread), the fair way to compare two models on
a machine whose speed drifts.

    python -m benchmarks.model_breakdown [--compare path/to/model.fp32.onnx ...]
        [--compare-dir path/to/other/onnx_models]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import stats_ms, write_result
from benchmarks.classifier_latency import sample_texts

__all__ = ["main"]

_SHAPES = ((1, 96), (2, 48), (1, 40))


def _session_times(path: Path, reps: int) -> dict[str, Any]:
    from guardrail.model._session import make_session

    session = make_session(path, threads=1).session
    names = {i.name for i in session.get_inputs()}
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    for shape in _SHAPES:
        ids = rng.integers(1000, 20000, size=shape, dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        for _ in range(10):
            session.run(None, feeds)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            session.run(None, feeds)
            times.append(time.perf_counter() - t0)
        out[f"{shape[0]}x{shape[1]}"] = stats_ms(times).as_dict()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="tokenising vs inference time per response")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--compare", type=Path, nargs="*", default=[])
    parser.add_argument("--compare-dir", type=Path, action="append", default=[])
    parser.add_argument("--texts", type=int, default=500)
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args(argv)

    from guardrail import RefusalClassifier

    clf = RefusalClassifier.load(model_dir=args.model_dir, threads=1)
    texts = sample_texts(args.texts)
    for text in texts[:20]:
        clf.classify(text)
    windowing, classify = [], []
    for text in texts:
        t0 = time.perf_counter()
        clf.windows_for(text)
        windowing.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        clf.classify(text)
        classify.append(time.perf_counter() - t0)
    sessions = {
        "shipped": _session_times(clf.model_dir / "refusal-classifier.int8.onnx", args.reps)
    }
    for path in args.compare:
        sessions[str(path)] = _session_times(path, args.reps)
    payload: dict[str, Any] = {
        "texts": len(texts),
        "windows_for": stats_ms(windowing).as_dict(),
        "classify": stats_ms(classify).as_dict(),
        "session_run_by_shape": sessions,
    }
    if args.compare_dir:
        payload["classify_interleaved_cpu"] = _interleaved(args.model_dir, args.compare_dir, texts)
    print(f"-> {write_result('model_breakdown', payload)}")
    print(
        f"windows_for mean {payload['windows_for']['mean_ms']:.2f} ms, "
        f"classify mean {payload['classify']['mean_ms']:.2f} ms"
    )
    for name, shapes in sessions.items():
        print(name, {k: round(v["p50_ms"], 2) for k, v in shapes.items()})
    for name, figures in payload.get("classify_interleaved_cpu", {}).items():
        print(f"classify, interleaved, CPU: {name}: mean {figures['mean_ms']:.3f} ms")
    return 0


def _interleaved(
    model_dir: Path | None, others: list[Path], texts: list[str], passes: int = 3
) -> dict[str, Any]:
    """Mean thread-CPU time per ``classify`` of each model, the models taking turns per text."""
    from guardrail import RefusalClassifier

    arms = {
        "shipped" if model_dir is None else str(model_dir): model_dir,
        **{str(d): d for d in others},
    }
    # no memo: the same text classified again must cost what it did the first time
    clfs = {
        k: RefusalClassifier.load(model_dir=d, threads=1, memo_entries=0) for k, d in arms.items()
    }
    times: dict[str, list[float]] = {k: [] for k in clfs}
    for text in texts[:20]:
        for clf in clfs.values():
            clf.classify(text)
    for _ in range(passes):
        for text in texts:
            for name, clf in clfs.items():
                t0 = time.thread_time()
                clf.classify(text)
                times[name].append(time.thread_time() - t0)
    return {k: stats_ms(v).as_dict() for k, v in times.items()}


if __name__ == "__main__":
    raise SystemExit(main())
