"""The latency peer: a distilroberta-base sized classifier, exported to ONNX fp32.

LLM Guard's NoRefusal scanner runs ``ProtectAI/distilroberta-base-rejection-v1``: a
distilroberta-base (6 layers, 768 hidden, 12 heads, vocab 50,265) with a 2-label head,
fed at most 128 tokens by default. Its speed depends on the architecture and the input
length, not on the weights, so random weights stand in for the published ones (accuracy is
not measured here) and the model needs no download. The export is cached in
``benchmarks/.cache/`` (git-ignored) and rebuilt only when missing.

There is no RoBERTa BPE tokenizer offline, so the peer is fed random token ids of the length
the text would have: ``min(n, 128)`` where ``n`` is our own (MiniLM WordPiece) token count
of the text. WordPiece and BPE counts on English prose are within a few percent of each other,
and the peer's cost at 128 tokens is dominated by the encoder, not the tokenizer; the peer
timings leave the tokenizer out, which flatters the peer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks._common import CACHE_DIR

__all__ = ["PEER_MAX_TOKENS", "PEER_VOCAB", "PeerModel", "peer_model_path"]

PEER_MAX_TOKENS = 128
PEER_VOCAB = 50265
_PEER_FILE = "distilroberta-base-random.fp32.onnx"


def peer_model_path(cache_dir: Path = CACHE_DIR) -> Path:
    """Export the peer once (needs torch + transformers) and return its ONNX path."""
    path = cache_dir / _PEER_FILE
    if path.exists():
        return path
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    cache_dir.mkdir(parents=True, exist_ok=True)
    config = RobertaConfig(  # type: ignore[call-arg]  # num_labels is a PretrainedConfig kwarg
        vocab_size=PEER_VOCAB,
        hidden_size=768,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=514,
        type_vocab_size=1,
        num_labels=2,
    )
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(config).eval()  # type: ignore[no-untyped-call]
    ids = torch.randint(3, PEER_VOCAB, (1, 16), dtype=torch.long)
    mask = torch.ones_like(ids)
    tmp = path.with_suffix(".tmp")
    with torch.no_grad():
        torch.onnx.export(
            model,
            (ids, mask),
            str(tmp),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "seq"},
                "attention_mask": {0: "batch", 1: "seq"},
                "logits": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(path)
    return path


class PeerModel:
    """ONNX Runtime session over the peer, fed ids of a given length."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._rng = np.random.default_rng(0)

    def inputs_for(self, n_tokens: int) -> dict[str, np.ndarray]:
        """Random ids framed like RoBERTa input (<s> ... </s>), truncated at 128 tokens."""
        n = max(2, min(n_tokens, PEER_MAX_TOKENS))
        ids = self._rng.integers(3, PEER_VOCAB, size=(1, n), dtype=np.int64)
        ids[0, 0], ids[0, -1] = 0, 2
        return {"input_ids": ids, "attention_mask": np.ones_like(ids)}

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        out: np.ndarray = self._session.run(["logits"], feeds)[0]
        return out
