"""Where the external training data lives (never copied into the repository), and the name of
the fp32 export a run keeps beside its checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["FP32_NAME", "REPO_ROOT", "data_dir"]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The fp32 ONNX export, written into the run directory (the int8 model goes to ``--out``).
FP32_NAME = "refusal-classifier.fp32.onnx"


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``explicit``, else ``$GUARDRAIL_DATA_DIR``, else ``../shared/data``."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("GUARDRAIL_DATA_DIR")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "data"
