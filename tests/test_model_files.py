"""Start-up checks of a model directory: files present, checksums right, config valid.

The checksum tests build small directories in tmp_path; the load tests copy the shipped
model (or the directory in $GUARDRAIL_TEST_MODEL_DIR, to check a candidate model before
shipping it) and break the copy, and skip while there is no model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from guardrail._resources import bundled_model_dir
from guardrail.errors import ModelLoadError
from guardrail.model import ModelConfig, RefusalClassifier
from guardrail.model._files import MODEL_FILE, read_sums, verify_model_dir
from guardrail.taxonomy import CATEGORIES, REFUSAL_KINDS, VERDICTS

LABELS = {"verdict": list(VERDICTS), "kind": list(REFUSAL_KINDS), "category": list(CATEGORIES)}


def write_dir(root: Path, files: dict[str, bytes], listed: list[str] | None = None) -> Path:
    """A model-like directory with SHA256SUMS over ``listed`` (default: every file)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    lines = [
        f"{hashlib.sha256(files[name]).hexdigest()}  {name}" for name in (listed or sorted(files))
    ]
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return root


FILES = {
    MODEL_FILE: b"onnx bytes",
    "tokenizer.json": b"{}",
    "config.json": b"{}",
    "MODEL_CARD.md": b"# card",
}


def test_a_complete_directory_with_matching_checksums_passes(tmp_path: Path) -> None:
    """verify_model_dir returns the listed digests when every file matches."""
    sums = verify_model_dir(write_dir(tmp_path / "m", FILES))
    assert sums[MODEL_FILE] == hashlib.sha256(b"onnx bytes").hexdigest()
    assert set(sums) == set(FILES)


def test_a_corrupt_file_is_named_in_the_error(tmp_path: Path) -> None:
    """A file whose bytes changed after SHA256SUMS was written fails naming that file."""
    root = write_dir(tmp_path / "m", FILES)
    (root / "MODEL_CARD.md").write_bytes(b"# edited")
    with pytest.raises(ModelLoadError, match=r"MODEL_CARD\.md is corrupt: sha256 [0-9a-f]{64}"):
        verify_model_dir(root)


def test_a_missing_required_or_listed_file_is_named(tmp_path: Path) -> None:
    """A required file that is absent, or a listed one, fails naming the file."""
    root = write_dir(tmp_path / "m", FILES)
    (root / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json is missing"):
        verify_model_dir(root)
    root = write_dir(tmp_path / "n", FILES)
    (root / "MODEL_CARD.md").unlink()
    with pytest.raises(ModelLoadError, match=r"MODEL_CARD\.md is missing \(listed in SHA256SUMS\)"):
        verify_model_dir(root)


def test_missing_or_incomplete_checksum_file_is_an_error(tmp_path: Path) -> None:
    """No SHA256SUMS, or one that does not list the ONNX file, stops the load."""
    root = write_dir(tmp_path / "m", FILES, listed=["tokenizer.json", "config.json"])
    with pytest.raises(ModelLoadError, match=rf"does not list {MODEL_FILE}"):
        verify_model_dir(root)
    (root / "SHA256SUMS").unlink()
    with pytest.raises(ModelLoadError, match="SHA256SUMS is missing"):
        verify_model_dir(root)
    assert verify_model_dir(root, verify_checksums=False) == {}


def test_checksum_lines_in_text_and_binary_mode_parse_and_garbage_is_rejected(
    tmp_path: Path,
) -> None:
    """Both sha256sum line forms parse; a malformed line is reported with its line number."""
    digest = "ab" * 32
    path = tmp_path / "SHA256SUMS"
    path.write_text(f"{digest}  a.onnx\n{digest.upper()} *b.json\n\n")
    assert read_sums(path) == {"a.onnx": digest, "b.json": digest}
    path.write_text(f"{digest}  a.onnx\nnot a checksum\n")
    with pytest.raises(ModelLoadError, match=r"SHA256SUMS:2: not a sha256sum line"):
        read_sums(path)


def test_a_missing_model_directory_is_named(tmp_path: Path) -> None:
    """Loading from a directory that does not exist names that directory."""
    with pytest.raises(ModelLoadError, match="does not exist"):
        RefusalClassifier.load(tmp_path / "nowhere")


def config(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"labels": LABELS, "max_window_tokens": 128}
    base.update(overrides)
    return base


def test_config_reads_windowing_from_the_top_level_or_a_windowing_object() -> None:
    """Window sizes may sit at the top level or under "windowing"; defaults fill the rest."""
    flat = ModelConfig.from_mapping(config(head_tokens=96, tail_tokens=64, model_version="v1"))
    assert (flat.max_window_tokens, flat.head_tokens, flat.tail_tokens) == (128, 96, 64)
    assert flat.tail_refusal_threshold == 0.8
    assert flat.model_version == "v1"
    nested = ModelConfig.from_mapping(
        config(windowing={"head_tokens": 80, "tail_tokens": 48, "tail_refusal_threshold": 0.9})
    )
    assert (nested.head_tokens, nested.tail_tokens, nested.tail_refusal_threshold) == (80, 48, 0.9)
    default = ModelConfig.from_mapping(config())
    assert (default.head_tokens, default.tail_tokens) == (128, 0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"labels": {**LABELS, "verdict": ["compliance", "full_refusal", "partial_refusal"]}},
            "labels.verdict is",
        ),
        ({"labels": {"verdict": list(VERDICTS)}}, "lacks the kind order"),
        ({"max_window_tokens": 0}, "max_window_tokens must be a positive integer"),
        ({"head_tokens": 200}, "must not exceed max_window_tokens"),
        ({"tail_tokens": -1}, "tail_tokens must be a non-negative integer"),
        ({"tail_refusal_threshold": 1.5}, "within"),
    ],
)
def test_bad_config_values_fail_with_a_precise_message(
    overrides: dict[str, Any], message: str
) -> None:
    """Each invalid config value is rejected with a message naming the key."""
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_mapping(config(**overrides))


def test_an_unreadable_config_file_is_a_model_load_error_naming_it(tmp_path: Path) -> None:
    """config.json that is not JSON fails as ModelLoadError with the path."""
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"config\.json: cannot read model config"):
        ModelConfig.from_file(path)
    path.write_text(json.dumps(config(max_window_tokens="128")))
    with pytest.raises(ModelLoadError, match=r"config\.json: max_window_tokens must be"):
        ModelConfig.from_file(path)


# --- a copy of the shipped model, broken on purpose -------------------------------------------

SHIPPED = Path(os.environ.get("GUARDRAIL_TEST_MODEL_DIR") or bundled_model_dir())
needs_model = pytest.mark.skipif(
    not (SHIPPED / MODEL_FILE).is_file(), reason="the trained model is not in onnx_models/ yet"
)


@needs_model
def test_a_truncated_copy_of_the_shipped_model_fails_to_load_naming_the_file(
    tmp_path: Path,
) -> None:
    """Cutting the ONNX file short is caught by the checksum before onnxruntime sees it."""
    copy = Path(shutil.copytree(SHIPPED, tmp_path / "model"))
    data = (copy / MODEL_FILE).read_bytes()
    (copy / MODEL_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match=rf"{MODEL_FILE} is corrupt"):
        RefusalClassifier.load(copy)


@needs_model
def test_a_copy_without_checksum_verification_still_rejects_an_unloadable_graph(
    tmp_path: Path,
) -> None:
    """With checksums off, a broken ONNX file is still a ModelLoadError, not a crash."""
    copy = Path(shutil.copytree(SHIPPED, tmp_path / "model"))
    (copy / MODEL_FILE).write_bytes(b"not an onnx graph")
    with pytest.raises(ModelLoadError, match="cannot load ONNX model"):
        RefusalClassifier.load(copy, verify_checksums=False)


@needs_model
def test_an_intact_copy_loads_and_reports_its_checksum(tmp_path: Path) -> None:
    """An untouched copy loads; model_sha256 is the ONNX file's digest."""
    copy = Path(shutil.copytree(SHIPPED, tmp_path / "model"))
    classifier = RefusalClassifier.load(copy, threads=1)
    assert classifier.model_sha256 == hashlib.sha256((copy / MODEL_FILE).read_bytes()).hexdigest()
    assert classifier.threads == 1
    with pytest.raises(ModelLoadError, match="threads must be a positive integer"):
        RefusalClassifier.load(copy, threads=0)
