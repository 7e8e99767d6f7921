"""Write tests/fixtures/exported_tiny.int8.onnx: a tiny RefusalNet as export_artifact writes it.

The graph-tidy tests need a graph laid out exactly as ``torch.onnx.export`` + ``quantize_dynamic``
write the real model, without shipping a second 16 MB model. This builds the same module tree
(``RefusalNet``: ``encoder`` = BertModel, eager attention, three heads) with random weights and a
toy size (vocab 8192, hidden 16, 2 heads, 2 layers), exports and quantizes it the same way.
Needs the ``[train]`` extra: ``python scripts/make_tidy_fixture.py``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from torch import nn
from transformers import BertConfig, BertModel

from guardrail.training.export import _export_fp32
from guardrail.training.model import RefusalNet

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "exported_tiny.int8.onnx"


def tiny_net() -> RefusalNet:
    torch.manual_seed(0)
    net = RefusalNet.__new__(RefusalNet)
    nn.Module.__init__(net)
    config = BertConfig(
        vocab_size=8192,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        attn_implementation="eager",
    )
    net.encoder = BertModel(config, add_pooling_layer=False)
    net.dropout = nn.Dropout(0.0)
    net.verdict, net.kind, net.category = nn.Linear(16, 3), nn.Linear(16, 2), nn.Linear(16, 16)
    return net.eval()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "tiny.fp32.onnx"
        _export_fp32(tiny_net(), fp32)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        quantize_dynamic(str(fp32), str(OUT), per_channel=True, weight_type=QuantType.QInt8)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
