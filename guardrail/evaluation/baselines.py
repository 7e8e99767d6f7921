"""The two string-matching baselines the model is compared with, read from external data.

- ``xstest_strmatch``: XSTest's string match (paul-rottger/exaggerated-safety). Refusal when
  the lower-cased, stripped response starts with one of its prefixes.
- ``norefusal_light``: LLM Guard's NoRefusalLight scanner (protectai/llm-guard). Refusal when
  any of its substrings occurs anywhere in the response, case-insensitively.

Both say only refusal or not; a refusal is reported as ``full_refusal`` (neither can tell a
partial refusal), so their 3-class figures show what that blind spot costs.

The phrase lists are public data kept outside this repository; ``find_data_dir`` locates
them: an explicit directory, else ``$GUARDRAIL_DATA_DIR``, else ``../shared/data`` relative
to the repository root or the current directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from guardrail.errors import ConfigError
from guardrail.taxonomy import Verdict

__all__ = [
    "DATA_DIR_ENV",
    "NOREFUSAL_FILE",
    "STRMATCH_FILE",
    "Baseline",
    "find_data_dir",
    "load_baselines",
]

DATA_DIR_ENV = "GUARDRAIL_DATA_DIR"
STRMATCH_FILE = Path("xstest") / "xstest_strmatch_prefixes.json"
NOREFUSAL_FILE = Path("baselines") / "norefusal_light_substrings.json"
_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Baseline:
    """A phrase-matching refusal detector: prefix (startswith) or substring (contains)."""

    name: str
    phrases: tuple[str, ...]  # lower-cased
    mode: str  # "prefix" or "substring"

    def predict(self, text: str) -> Verdict:
        lowered = text.lower()
        if self.mode == "prefix":
            hit = lowered.strip().startswith(self.phrases)
        else:
            hit = any(phrase in lowered for phrase in self.phrases)
        return "full_refusal" if hit else "compliance"


def find_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The first existing data directory among explicit, env, ../shared/data; else None."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    for base in (_REPO_ROOT, Path.cwd()):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


def _phrases(path: Path, key: str) -> tuple[str, ...]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read baseline phrases: {exc}") from exc
    values = raw.get(key) if isinstance(raw, dict) else None
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{path}: expected a non-empty list of strings under {key!r}")
    return tuple(v.lower() for v in values)


def load_baselines(data_dir: Path) -> tuple[Baseline, ...]:
    """Both baselines from ``data_dir``; ConfigError naming the file that is missing or bad."""
    strmatch, norefusal = data_dir / STRMATCH_FILE, data_dir / NOREFUSAL_FILE
    for path in (strmatch, norefusal):
        if not path.is_file():
            raise ConfigError(f"baseline data {path} not found")
    return (
        Baseline("xstest_strmatch", _phrases(strmatch, "prefixes"), "prefix"),
        Baseline("norefusal_light", _phrases(norefusal, "substrings"), "substring"),
    )
