"""The shipped model's answers on fixed texts, and what it must see in long responses.

tests/golden/classifications.json holds the shipped model's output on ~20 texts (written by
scripts/make_golden.py): verdict, kind and category must match exactly, scores within
SCORE_TOLERANCE. The scores were made with onnxruntime 1.31 on an AVX-512 VNNI CPU; int8
kernels differ slightly between onnxruntime versions and CPUs (onnxruntime 1.17, the lowest
supported, moved one score of model 0.1.0 by 2.3e-4 and one of model 0.2.0 by 1.07e-3), so the
tolerance is 5e-3 rather than float noise: far below any decision threshold (0.5, 0.8).
On x86 CPUs without VNNI the runtime runs the weights as uint8, whose kernel reproduces the
VNNI scores exactly (the signed kernel there saturates and moved a score by 0.027; see
guardrail/model/_int8_weights.py).
These tests use only the bundled model and skip while onnx_models/ holds none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from guardrail._resources import bundled_model_dir
from guardrail.model import RefusalClassifier
from guardrail.model._files import MODEL_FILE

SCORE_TOLERANCE = 5e-3
GOLDEN = Path(__file__).resolve().parent / "golden" / "classifications.json"
pytestmark = pytest.mark.skipif(
    not (bundled_model_dir() / MODEL_FILE).is_file(),
    reason="the trained model is not in onnx_models/ yet",
)

_ANSWER = (
    "To keep a sourdough starter healthy, feed it equal weights of flour and water every day "
    "and keep it somewhere warm. Discard half before each feeding so the yeast always has "
    "fresh food, and use unbleached flour because it carries more wild yeast. "
)


def long_answer(closing: str, words: int = 3000) -> str:
    """A helpful answer of about ``words`` words, ending with the paragraph ``closing``."""
    paragraphs: list[str] = []
    while sum(len(p.split()) for p in paragraphs) < words:
        paragraphs.append(f"Tip {len(paragraphs) + 1}. {_ANSWER * 3}")
    return "\n\n".join([*paragraphs, closing])


def _read_by_paragraph(classifier: RefusalClassifier, closing: str) -> str:
    """The long answer ending in ``closing``, checked to be read with its whole last paragraph
    as the tail window (longer than the plain tail)."""
    text = long_answer(closing)
    tail = classifier.windows_for(text).tail
    assert tail is not None and len(tail) > classifier.config.tail_tokens
    return text


@pytest.fixture(scope="module")
def classifier() -> RefusalClassifier:
    return RefusalClassifier.load(threads=1)


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return data


def test_golden_file_was_made_with_the_shipped_model(
    classifier: RefusalClassifier, golden: dict[str, Any]
) -> None:
    """The golden file names the shipped files' checksums (else: run scripts/make_golden.py)."""
    pinned = {name: classifier.checksums[name] for name in golden["artifact_sha256"]}
    assert golden["artifact_sha256"] == pinned, (
        "onnx_models/ changed since the goldens were made: run scripts/make_golden.py and "
        "review the diff of tests/golden/classifications.json"
    )
    assert golden["model_sha256"] == classifier.model_sha256
    assert len(golden["artifact_sha256"]) == 3
    assert len(golden["cases"]) >= 20


def test_shipped_model_reproduces_the_golden_outputs(
    classifier: RefusalClassifier, golden: dict[str, Any]
) -> None:
    """Verdict, kind, category and skipped match exactly; scores within SCORE_TOLERANCE."""
    cases = golden["cases"]
    results = classifier.classify_batch([case["text"] for case in cases])
    for case, result in zip(cases, results, strict=True):
        got = result.to_dict()
        for key in ("verdict", "kind", "category", "skipped"):
            assert got[key] == case[key], f"{case['id']}: {key}"
        for key in ("refusal_score", "category_score"):
            assert got[key] == pytest.approx(case[key], abs=SCORE_TOLERANCE), f"{case['id']}: {key}"


def test_obvious_refusal_and_obvious_answer_are_told_apart(classifier: RefusalClassifier) -> None:
    """A flat decline is a full refusal; a plain factual answer is compliance."""
    refusal = classifier.classify("I'm sorry, but I can't help with that request.")
    assert refusal.verdict == "full_refusal"
    assert refusal.refusal_score > 0.5
    answer = classifier.classify("The capital of France is Paris, on the river Seine.")
    assert answer.verdict == "compliance"
    assert answer.refusal_score < 0.5


def test_a_refusal_in_the_last_paragraph_of_a_3000_word_answer_is_seen(
    classifier: RefusalClassifier,
) -> None:
    """Content first, a decline at the very end: the tail window makes it a partial refusal."""
    text = long_answer(
        "I hope these tips help. However, I can't tell you how much of the preservative would "
        "be a lethal dose; please ask a doctor or a poison control centre."
    )
    assert len(text.split()) >= 3000
    windows = classifier.windows_for(text)
    assert windows.truncated and windows.tail is not None
    result = classifier.classify(text)
    assert result.verdict == "partial_refusal"
    assert result.refusal_score >= classifier.config.tail_refusal_threshold


def test_a_decline_opening_a_last_paragraph_of_several_sentences_is_seen(
    classifier: RefusalClassifier,
) -> None:
    """The decline comes first in the closing paragraph and three sentences follow it: the
    tail reads that whole paragraph, where its last 46 tokens hold only the advice after it."""
    closing = (
        "I can't tell you how much of the preservative would be a lethal dose, though. "
        "Please ask a doctor or a poison control centre if you are worried. A professional "
        "can look at your situation and give you advice that fits it. In the meantime, the "
        "tips above should keep your starter healthy for months."
    )
    result = classifier.classify(_read_by_paragraph(classifier, closing))
    assert result.verdict == "partial_refusal"


def test_a_friendly_last_paragraph_of_several_sentences_stays_compliance(
    classifier: RefusalClassifier,
) -> None:
    """Read whole, a closing paragraph of good wishes and an offer of more help is no decline."""
    closing = (
        "I hope these tips help. Remember to take your time, check each step, and enjoy the "
        "process. If anything is unclear, let me know and I can go into more detail about "
        "feeding schedules, flour types or keeping the starter in the fridge."
    )
    result = classifier.classify(_read_by_paragraph(classifier, closing))
    assert result.verdict == "compliance"


def test_the_same_long_answer_without_the_refusal_stays_compliance(
    classifier: RefusalClassifier,
) -> None:
    """The long answer alone, ending in a friendly closing, is compliance."""
    result = classifier.classify(long_answer("Happy baking, and enjoy your bread!"))
    assert result.verdict == "compliance"
