"""The refusal classifier's runtime: ONNX session, tokenizer, windowing and checksums.

``RefusalClassifier.load()`` reads the bundled model (``onnx_models/``); see
:mod:`guardrail.model.windowing` for how long responses are read and
:mod:`guardrail.model._decode` for how logits become a ``Classification``.
"""

from guardrail.model.classifier import DEFAULT_BATCH_WINDOWS, RefusalClassifier
from guardrail.model.config import ModelConfig
from guardrail.model.processes import ProcessClassifier, WorkerError
from guardrail.model.windowing import TextWindows

__all__ = [
    "DEFAULT_BATCH_WINDOWS",
    "ModelConfig",
    "ProcessClassifier",
    "RefusalClassifier",
    "TextWindows",
    "WorkerError",
]
