"""The windower's encoder: ASCII text skips BERT's normalizer and gets the very same tokens.

Checked against the bundled tokenizer's own full pipeline, on hand-picked texts, on every
golden text, and on hypothesis-generated ASCII (control characters, tabs, form feeds and
capitals included) and non-ASCII text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, normalizers

from guardrail._resources import bundled_model_dir
from guardrail.model._encoder import Encoder

GOLDEN = Path(__file__).resolve().parent / "golden" / "classifications.json"


def _bundled() -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(bundled_model_dir() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


FULL = _bundled()
ENCODER = Encoder(_bundled())


def _same_as_full(text: str) -> None:
    want = FULL.encode(text, add_special_tokens=False)
    got = ENCODER.encoding(text)
    assert got.ids == want.ids
    assert got.word_ids == want.word_ids
    assert got.offsets == want.offsets
    assert ENCODER.ids(text) == want.ids


def test_the_bundled_tokenizer_takes_the_fast_road() -> None:
    """Its normalizer is BERT's, so ASCII text can skip it."""
    assert ENCODER.fast


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I CAN'T help with that.",
        "Sure!\tHere's how:\n1. Mix the flour.\r\n2. Fry it.",
        "form\x0cfeed and vertical\x0btab",
        "a bell\x07inside a word, a DEL\x7fhere and a NUL\x00too",
        "Café au lait, naïve résumé",
        "抱歉，我无法帮助你。 Mixed ASCII and CJK",
        "",
        "   ",
        "[PAD]",
        "a [CLS] and a [SEP] inside, [MASK] and [UNK] too",
    ],
)
def test_hand_picked_texts_encode_as_the_full_pipeline_does(text: str) -> None:
    """Capitals, whitespace, control characters and non-ASCII text: same ids and offsets."""
    _same_as_full(text)


def test_every_golden_text_encodes_as_the_full_pipeline_does() -> None:
    """The shipped model's golden texts (tests/golden) get the same tokens on either road."""
    for case in json.loads(GOLDEN.read_text())["cases"]:
        _same_as_full(case["text"])


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=300))
def test_any_ascii_text_encodes_as_the_full_pipeline_does(text: str) -> None:
    """Hypothesis over all 128 ASCII characters, control characters included."""
    _same_as_full(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=120))
def test_any_text_encodes_as_the_full_pipeline_does(text: str) -> None:
    """Non-ASCII text takes the full pipeline, so it cannot differ either."""
    _same_as_full(text)


def test_a_tokenizer_with_another_normalizer_always_takes_its_own_pipeline() -> None:
    """No BertNormalizer: nothing is skipped, and capitals stay capitals if it says so."""
    tokenizer = _bundled()
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC()])
    encoder = Encoder(tokenizer)
    assert not encoder.fast
    text = "HELLO there"
    assert encoder.ids(text) == tokenizer.encode(text, add_special_tokens=False).ids
