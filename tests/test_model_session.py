"""The one session builder: thread settings, graph rewrites it refuses, and input checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from guardrail._resources import bundled_model_dir
from guardrail.errors import ModelLoadError
from guardrail.model._files import MODEL_FILE
from guardrail.model._int8_weights import unsigned_weights
from guardrail.model._session import DISABLED_OPTIMIZERS, make_session

MODEL = bundled_model_dir() / MODEL_FILE
pytestmark = pytest.mark.skipif(not MODEL.is_file(), reason="no bundled model")


def _unoptimised(path: Path) -> ort.InferenceSession:
    """The file's graph, unfused, with its weights as uint8: exact integer products on any
    CPU (signed int8 products saturate on x86 CPUs without VNNI, see _int8_weights)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    exact = unsigned_weights(path.read_bytes())
    assert exact is not None
    return ort.InferenceSession(exact, options, providers=["CPUExecutionProvider"])


def test_the_session_computes_what_the_onnx_file_says_up_to_float_noise() -> None:
    """Logits match the unoptimised graph within 1e-3 on 60 windows (a fused SkipLayerNorm
    moved one in eight of them by up to 0.02: int8 rounding of its reordered sums)."""
    info = make_session(MODEL, threads=1)
    reference = _unoptimised(MODEL)
    rng = np.random.default_rng(7)
    worst = 0.0
    for _ in range(60):
        ids = rng.integers(1000, 30000, size=(1, int(rng.integers(3, 97)))).astype(np.int64)
        ids[0, 0], ids[0, -1] = 101, 102
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        got = info.session.run(list(info.output_names), feeds)
        want = reference.run(list(info.output_names), feeds)
        worst = max(worst, *(float(np.abs(g - w).max()) for g, w in zip(got, want, strict=True)))
    assert worst < 1e-3
    assert DISABLED_OPTIMIZERS == ("SkipLayerNormFusion",)


def test_session_reports_its_threads_and_feeds_only_declared_inputs() -> None:
    """The bundled graph declares input_ids and attention_mask, and only those are fed."""
    info = make_session(MODEL, threads=2)
    assert info.threads == 2
    assert info.input_names == ("input_ids", "attention_mask")
    assert info.output_names == ("verdict_logits", "kind_logits", "category_logits")


@pytest.mark.parametrize("threads", [0, -1, True, 1.5, "2"])
def test_a_bad_thread_count_is_rejected_before_loading(threads: object) -> None:
    """threads must be a positive int; bools, floats and strings are named in the error."""
    with pytest.raises(ModelLoadError, match="threads must be a positive integer"):
        make_session(MODEL, threads=threads)  # type: ignore[arg-type]
