"""`python -m guardrail.training windowing`: an artifact's windowing rewritten, nothing else.

Torch-free, like the stage: it only rewrites config.json and SHA256SUMS.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from guardrail._resources import bundled_model_dir
from guardrail.model import RefusalClassifier
from guardrail.model._files import MODEL_FILE
from guardrail.model.config import ModelConfig
from guardrail.training.__main__ import main
from guardrail.training.paths import MODEL_VERSION
from guardrail.training.windowing import WindowSpec

pytestmark = pytest.mark.skipif(
    not (bundled_model_dir() / MODEL_FILE).is_file(), reason="no bundled model"
)


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    out = tmp_path / "model"
    shutil.copytree(bundled_model_dir(), out)
    return out


def _config(out: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((out / "config.json").read_text(encoding="utf-8"))
    return data


def test_the_stage_writes_the_paragraph_tail_and_the_checksums(artifact: Path) -> None:
    """The new key, its description and the version land in config.json; the model loads."""
    graph = (artifact / MODEL_FILE).read_bytes()
    assert main(["windowing", "--out", str(artifact), "--tail-paragraph-tokens", "80"]) == 0
    config = _config(artifact)
    assert config["windowing"] == WindowSpec(tail_paragraph_tokens=80).as_config()
    assert config["model_version"] == MODEL_VERSION
    assert (artifact / MODEL_FILE).read_bytes() == graph
    clf = RefusalClassifier.load(model_dir=artifact)  # the checksums were rewritten
    assert clf.config.tail_paragraph_tokens == 80
    closing = (
        "I can't tell you the dose. Please ask your pharmacist, who knows your other "
        "medicines and can check them against this one. They can also tell you what to do "
        "if you miss a dose, and which side effects mean you should call a doctor at once."
    )
    text = "Here is how the tablets work. " * 40 + "\n\n" + closing
    tail = clf.windows_for(text).tail
    assert tail is not None and clf.config.tail_tokens < len(tail) <= 80


def test_without_the_flag_the_stage_writes_the_plain_tail(artifact: Path) -> None:
    """The windowing block is then exactly what export writes for the default spec."""
    main(["windowing", "--out", str(artifact), "--tail-paragraph-tokens", "96"])
    main(["windowing", "--out", str(artifact)])
    assert _config(artifact)["windowing"] == WindowSpec().as_config()
    assert RefusalClassifier.load(model_dir=artifact).config.tail_paragraph_tokens is None


def test_a_window_the_runtime_would_refuse_is_a_usage_error(artifact: Path) -> None:
    """Not above the tail or over the whole window: exit 2 before any file changes."""
    before = (artifact / "config.json").read_bytes()
    for value in ("48", "200"):
        with pytest.raises(SystemExit) as info:
            main(["windowing", "--out", str(artifact), "--tail-paragraph-tokens", value])
        assert info.value.code == 2
    assert (artifact / "config.json").read_bytes() == before


def test_a_folder_without_a_config_is_named(tmp_path: Path) -> None:
    """The message names the folder instead of a traceback."""
    with pytest.raises(SystemExit, match=r"no config\.json to rewrite"):
        main(["windowing", "--out", str(tmp_path)])


def test_the_spec_and_the_runtime_read_the_same_windowing() -> None:
    """What a spec writes, the runtime's config parser reads back field for field."""
    spec = WindowSpec(tail_paragraph_tokens=72)
    labels = _config(bundled_model_dir())["labels"]
    read = ModelConfig.from_mapping({"labels": labels, "windowing": spec.as_config()})
    assert read == spec.model_config()
    with pytest.raises(ValueError, match="tail_paragraph_tokens"):
        WindowSpec(tail_paragraph_tokens=40)
