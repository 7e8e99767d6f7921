"""Ways to quantize one fp32 export to int8, held against that export.

For each mode the fp32 graph is quantized afresh and every text is classified as the runtime
classifies it (window by window; ``OnnxRunner``). Reported per mode: verdicts and categories
that differ from the fp32 graph's, the mean and largest change of the refusal score, the file
size, and the median time of one classification on one thread (the first 300 texts, twice).

Modes: ``dynamic`` is ``quantize_dynamic`` as it writes the graph (per-channel int8 weights,
activations quantized per run with one scale per tensor); ``dynamic_per_token`` is what
``export`` ships since model 0.5.1: the same with one activation scale per token
(``guardrail/training/token_scales.py``); ``dynamic_layer0_fp32`` is ``dynamic`` with the
first transformer layer's products left in fp32; ``weights8_b<B>_a<L>`` keeps activations
in float and stores the MatMul weights as 8-bit blocks of B (onnxruntime's MatMulNBits;
accuracy level 4 computes in int8 with per-block activation scales, none in fp32). The texts
are the validation split and 1,000 human training answers: never dev, which picks nothing
here either.

    python -m benchmarks.int8_modes --fp32 training_runs/R/refusal-classifier.fp32.onnx

Needs the ``[train]`` extra (it reads the training data with the training code).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import DATA_DIR, write_result

__all__ = ["main"]

_LATENCY_TEXTS = 300


def _dynamic(src: Path, dst: Path, keep_float: Sequence[str] = ()) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src),
        str(dst),
        per_channel=True,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=list(keep_float),
    )


def _dynamic_layer0_fp32(src: Path, dst: Path) -> None:
    import onnx

    names = [n.name for n in onnx.load(str(src)).graph.node]
    _dynamic(src, dst, [n for n in names if "/encoder/encoder/layer.0/" in n])


def _dynamic_per_token(src: Path, dst: Path) -> None:
    from guardrail.training.token_scales import token_scales_file

    _dynamic(src, dst)
    token_scales_file(dst)


def _weights8(block: int, level: int | None) -> Callable[[Path, Path], None]:
    def run(src: Path, dst: Path) -> None:
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        q = MatMulNBitsQuantizer(
            onnx.load(str(src)), bits=8, block_size=block, is_symmetric=True, accuracy_level=level
        )
        q.process()
        q.model.save_model_to_file(str(dst), False)

    return run


MODES: dict[str, Callable[[Path, Path], None]] = {
    "dynamic": _dynamic,
    "dynamic_per_token": _dynamic_per_token,
    "dynamic_layer0_fp32": _dynamic_layer0_fp32,
    "weights8_b32_a4": _weights8(32, 4),
    "weights8_b128_a4": _weights8(128, 4),
    "weights8_b32_fp32": _weights8(32, None),
}


def _texts(count: int) -> list[str]:
    from guardrail.training.dataset import HUMAN_SOURCES, build

    data = build(DATA_DIR)
    human = sorted({e.text for e in data.train if e.source in HUMAN_SOURCES})
    return [e.text for e in data.val] + random.Random(0).sample(human, count)


def _measure(runner: Any, texts: Sequence[str], reference: list[tuple[str, str, float]]) -> dict:
    got = [runner.classify_one(t) for t in texts]
    moved = [abs(a[2] - b[2]) for a, b in zip(got, reference, strict=True)]
    times = []
    for _ in range(2):
        for text in texts[:_LATENCY_TEXTS]:
            start = time.perf_counter()
            runner.classify_one(text)
            times.append(time.perf_counter() - start)
    return {
        "verdicts_differing": sum(a[0] != b[0] for a, b in zip(got, reference, strict=True)),
        "categories_differing": sum(a[1] != b[1] for a, b in zip(got, reference, strict=True)),
        "refusal_score_change_mean": round(float(np.mean(moved)), 5),
        "refusal_score_change_max": round(max(moved), 4),
        "classify_median_ms": round(statistics.median(times) * 1e3, 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.int8_modes")
    parser.add_argument("--fp32", required=True, help="an fp32 export (`export` writes one)")
    parser.add_argument("--train-texts", type=int, default=1000)
    args = parser.parse_args(argv)
    fp32 = Path(args.fp32)
    if not fp32.is_file():
        raise SystemExit(f"fp32 model not found: {fp32}")
    from guardrail.training.evaluate import OnnxRunner
    from guardrail.training.model import encoder_path
    from guardrail.training.windowing import WindowSpec

    spec, tokenizer = WindowSpec(), encoder_path() / "tokenizer.json"
    texts = _texts(args.train_texts)
    reference = OnnxRunner(fp32, tokenizer, spec)
    base = [reference.classify_one(t) for t in texts]
    modes = {
        "fp32": {**_measure(reference, texts, base), "mb": round(fp32.stat().st_size / 1e6, 1)}
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, quantize in MODES.items():
            path = Path(tmp) / f"{name}.onnx"
            quantize(fp32, path)
            row = _measure(OnnxRunner(path, tokenizer, spec), texts, base)
            modes[name] = {**row, "mb": round(path.stat().st_size / 1e6, 1)}
            print(name, modes[name], flush=True)
    out = write_result("int8_modes", {"fp32": str(fp32), "texts": len(texts), "modes": modes})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
