"""The operator's ``tail_threshold``: it overrides the model's tail rule everywhere a model loads.

The rule under test (``_decode.combine_rows``): a compliant head with a tail window whose
refusal score reaches the threshold gives ``partial_refusal``. Runs on the shipped model (or
$GUARDRAIL_TEST_MODEL_DIR) and skips while there is none.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from test_model_classifier import MODEL_DIR
from test_model_golden import long_answer

from guardrail.cli import main
from guardrail.errors import ConfigError
from guardrail.evaluation.baselines import DATA_DIR_ENV
from guardrail.model import ProcessClassifier, RefusalClassifier
from guardrail.model._files import CONFIG_FILE, MODEL_FILE
from guardrail.model.config import ModelConfig, with_tail_threshold

pytestmark = pytest.mark.skipif(
    not (MODEL_DIR / MODEL_FILE).is_file(), reason="the trained model is not in onnx_models/ yet"
)

DECLINE = long_answer(
    "I hope these tips help. However, I can't tell you how much of the preservative would be "
    "a lethal dose; please ask a doctor or a poison control centre."
)
FRIENDLY = long_answer("Happy baking, and enjoy your bread!")


@pytest.fixture(scope="module")
def model_threshold() -> float:
    return ModelConfig.from_file(MODEL_DIR / CONFIG_FILE).tail_refusal_threshold


@pytest.fixture(scope="module")
def tail_score() -> float:
    """The refusal score of DECLINE's tail window (threshold 0 lets every tail decide)."""
    result = RefusalClassifier.load(MODEL_DIR, tail_threshold=0.0).classify(DECLINE)
    assert result.verdict == "partial_refusal"
    return result.refusal_score


def test_without_an_override_the_model_config_decides(model_threshold: float) -> None:
    """None keeps the threshold of the model's config.json, and the config object itself."""
    config = ModelConfig.from_file(MODEL_DIR / CONFIG_FILE)
    assert with_tail_threshold(config, None) is config
    loaded = RefusalClassifier.load(MODEL_DIR)
    assert loaded.config.tail_refusal_threshold == model_threshold


def test_the_threshold_is_inclusive_at_the_tail_score(tail_score: float) -> None:
    """A tail scoring exactly the threshold fires; a threshold just above it does not."""
    at = RefusalClassifier.load(MODEL_DIR, tail_threshold=tail_score)
    above = RefusalClassifier.load(MODEL_DIR, tail_threshold=math.nextafter(tail_score, 2.0))
    assert at.classify(DECLINE).verdict == "partial_refusal"
    assert above.classify(DECLINE).verdict == "compliance"
    assert above.classify_batch([DECLINE, FRIENDLY]) == [
        above.classify(DECLINE),
        above.classify(FRIENDLY),
    ]


def test_a_low_threshold_lets_a_friendly_tail_make_a_partial_refusal(
    model_threshold: float,
) -> None:
    """At 0 every compliant long answer's tail decides, so the override is really applied."""
    assert RefusalClassifier.load(MODEL_DIR).classify(FRIENDLY).verdict == "compliance"
    low = RefusalClassifier.load(MODEL_DIR, tail_threshold=0.0)
    assert low.classify(FRIENDLY).verdict == "partial_refusal"
    assert low.config.tail_refusal_threshold == 0.0 != model_threshold


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan, math.inf, True, "0.9"])
def test_a_value_outside_zero_to_one_is_a_config_error_naming_it(bad: Any) -> None:
    """Bad values fail at load with a ConfigError that names the option and the value."""
    with pytest.raises(ConfigError, match=r"^tail_threshold must be"):
        RefusalClassifier.load(MODEL_DIR, tail_threshold=bad)


def test_process_workers_apply_the_override(model_threshold: float) -> None:
    """ProcessClassifier hands the threshold to every worker, as the local model uses it."""
    with ProcessClassifier(MODEL_DIR, processes=1, tail_threshold=0.0) as workers:
        assert workers.config.tail_refusal_threshold == 0.0
        assert workers.classify(FRIENDLY).verdict == "partial_refusal"
    with pytest.raises(ConfigError, match="tail_threshold must be within"):
        ProcessClassifier(MODEL_DIR, processes=1, tail_threshold=2.0)


def test_classify_and_eval_take_the_option_and_eval_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--tail-threshold` reaches the model in classify and is written into eval's report."""
    assert main(["classify", "--tail-threshold", "0", FRIENDLY]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "partial_refusal"
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"text": FRIENDLY, "label": "compliance"}) + "\n")
    out = tmp_path / "report.json"
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "no-baselines"))
    assert main(["eval", str(rows), "--json", str(out), "--tail-threshold", "0"]) == 0
    report = json.loads(out.read_text())
    assert report["model"]["tail_threshold"] == 0.0
    assert report["systems"]["guardrail"]["confusion"]["matrix"][0] == [0, 1, 0]


@pytest.mark.parametrize("command", ["classify", "eval", "audit", "serve", "demo"])
def test_every_command_that_loads_the_model_rejects_a_bad_value_as_a_usage_error(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Out-of-range values stop the command in argument parsing (exit 2), naming the option."""
    with pytest.raises(SystemExit) as stop:
        main([command, "--tail-threshold", "1.5"])
    assert stop.value.code == 2
    assert "--tail-threshold: must be within [0, 1], got 1.5" in capsys.readouterr().err
