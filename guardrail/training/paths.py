"""Where the external training data lives; it is never copied into the repository."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO_ROOT", "data_dir"]

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``explicit``, else ``$GUARDRAIL_DATA_DIR``, else ``../shared/data``."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("GUARDRAIL_DATA_DIR")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "data"
