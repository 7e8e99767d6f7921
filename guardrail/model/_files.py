"""Check a model directory before anything is loaded: files present, checksums right.

Loading a truncated or swapped ONNX file can crash deep inside onnxruntime or, worse, load
fine and give wrong answers, so every file named in ``SHA256SUMS`` is hashed first and a
mismatch is reported with the file's name (fastembed checks files up front the same way).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from guardrail.errors import ModelLoadError

__all__ = [
    "CONFIG_FILE",
    "MODEL_FILE",
    "REQUIRED_FILES",
    "SUMS_FILE",
    "TOKENIZER_FILE",
    "read_sums",
    "verify_model_dir",
]

MODEL_FILE = "refusal-classifier.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "config.json"
SUMS_FILE = "SHA256SUMS"
REQUIRED_FILES = (MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE)

# `sha256sum` output: 64 hex digits, a space, then " " (text) or "*" (binary) and the name.
_SUM_LINE = re.compile(r"^(?P<digest>[0-9a-fA-F]{64}) [ *](?P<name>\S.*)$")
_CHUNK = 1 << 20


def read_sums(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum``-format file into {file name: lowercase hex digest}."""
    sums: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: cannot read checksums: {exc}") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _SUM_LINE.match(line.rstrip("\r"))
        if match is None:
            raise ModelLoadError(f"{path}:{number}: not a sha256sum line: {line[:80]!r}")
        name = match["name"].removeprefix("./")
        if "/" in name or name in ("", ".", ".."):
            raise ModelLoadError(f"{path}:{number}: file names must be plain names, got {name!r}")
        sums[name] = match["digest"].lower()
    return sums


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_model_dir(model_dir: Path, *, verify_checksums: bool = True) -> dict[str, str]:
    """Fail with a ModelLoadError naming the first missing or corrupt file.

    Returns the digests from ``SHA256SUMS`` (empty when checksums are not verified).
    """
    if not model_dir.is_dir():
        raise ModelLoadError(f"model directory {model_dir} does not exist or is not a directory")
    for name in REQUIRED_FILES:
        if not (model_dir / name).is_file():
            raise ModelLoadError(f"model file {model_dir / name} is missing")
    if not verify_checksums:
        return {}
    sums_path = model_dir / SUMS_FILE
    if not sums_path.is_file():
        raise ModelLoadError(f"checksum file {sums_path} is missing")
    sums = read_sums(sums_path)
    for name in REQUIRED_FILES:
        if name not in sums:
            raise ModelLoadError(f"{sums_path} does not list {name}")
    for name, expected in sums.items():
        path = model_dir / name
        if not path.is_file():
            raise ModelLoadError(f"model file {path} is missing (listed in {SUMS_FILE})")
        actual = _sha256(path)
        if actual != expected:
            raise ModelLoadError(
                f"model file {path} is corrupt: sha256 {actual} does not match {expected} "
                f"from {SUMS_FILE}"
            )
    return sums
