"""The artifact's checksums (SHA256SUMS) and the card's file line (size, sha256)."""

from __future__ import annotations

import hashlib
from pathlib import Path

# the runtime's file name, imported from there so the card needs no torch (export.py does)
from guardrail.model._files import MODEL_FILE as INT8_NAME

__all__ = ["file_line", "refresh_file_line", "sha256_of", "write_sha256sums"]


def sha256_of(path: Path) -> str:
    """Hex sha256 of the file at ``path``."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_sha256sums(out: Path) -> None:
    """``sha256sum``-format checksums of every other file in ``out``."""
    lines = [
        f"{sha256_of(p)}  {p.name}\n"
        for p in sorted(out.iterdir())
        if p.is_file() and p.name != "SHA256SUMS"
    ]
    (out / "SHA256SUMS").write_text("".join(lines), encoding="utf-8")


def file_line(out: Path) -> str:
    size_mb = (out / INT8_NAME).stat().st_size / 1e6
    return (
        f"- File: `{INT8_NAME}` ({size_mb:.1f} MB), sha256 `{sha256_of(out / INT8_NAME)}`; "
        "`tokenizer.json`, `config.json`."
    )


def refresh_file_line(out: Path) -> None:
    """Rewrite the card's file line (size, sha256) after the model file changed, then
    SHA256SUMS; the measured figures stay (only for rewrites that keep every output)."""
    card = out / "MODEL_CARD.md"
    lines = card.read_text(encoding="utf-8").splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if line.startswith(f"- File: `{INT8_NAME}`")]
    if len(at) != 1:
        raise ValueError(f"{card}: expected one '- File:' line, found {len(at)}")
    lines[at[0]] = file_line(out) + "\n"
    card.write_text("".join(lines), encoding="utf-8")
    write_sha256sums(out)
