"""Where the external training data lives (never copied into the repository), the name of
the fp32 export a run keeps beside its checkpoints, and the version the artifacts get.

Torch-free, so stages that only rewrite an artifact (``requantize``) can run without it."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["FP32_NAME", "MODEL_VERSION", "REPO_ROOT", "data_dir"]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The fp32 ONNX export, written into the run directory (the int8 model goes to ``--out``).
FP32_NAME = "refusal-classifier.fp32.onnx"
#: ``model_version`` in the config.json of what ``export``, ``early-exit`` and ``requantize``
#: write.
MODEL_VERSION = "0.5.2"


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``explicit``, else ``$GUARDRAIL_DATA_DIR``, else ``../shared/data``."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("GUARDRAIL_DATA_DIR")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "data"
