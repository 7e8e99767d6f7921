"""The tail window that reaches back to the start of a text's last paragraph.

Same word-level tokenizer as test_model_windowing (one token per word), with windows of 16
tokens, a head of 12, a tail of 8 and paragraphs of up to 14: so 10 head, 6 tail and 12
paragraph text tokens between [CLS] and [SEP].
"""

from __future__ import annotations

from typing import Any

import pytest
from test_model_windowing import CLS, SEP, ids, word_tokenizer, words

from guardrail.model.config import ModelConfig
from guardrail.model.windowing import Windower
from guardrail.taxonomy import CATEGORIES, REFUSAL_KINDS, VERDICTS

CONFIG = ModelConfig(max_window_tokens=16, head_tokens=12, tail_tokens=8, tail_paragraph_tokens=14)
LABELS = {"verdict": VERDICTS, "kind": REFUSAL_KINDS, "category": CATEGORIES}


@pytest.fixture(scope="module")
def windower() -> Windower:
    return Windower(word_tokenizer(), CONFIG)


def test_a_last_paragraph_longer_than_the_tail_is_the_tail_window(windower: Windower) -> None:
    """Nine tokens after the last blank line: all nine are read, not just the last six."""
    plan = windower.windows_for(f"{words(0, 30)}\n\n{words(30, 39)}")
    assert plan.head == (CLS, *ids(0, 10), SEP)
    assert plan.tail == (CLS, *ids(30, 39), SEP)
    assert plan.n_content == 10 + 9


def test_a_paragraph_of_exactly_the_limit_is_read_whole(windower: Windower) -> None:
    """Twelve text tokens fill a 14-token paragraph window."""
    plan = windower.windows_for(f"{words(0, 30)}\n\n{words(30, 42)}")
    assert plan.tail == (CLS, *ids(30, 42), SEP)


def test_a_short_last_paragraph_keeps_the_plain_tail(windower: Windower) -> None:
    """Three tokens after the break: the tail is still the last six, reaching across it."""
    plan = windower.windows_for(f"{words(0, 30)}\n\n{words(30, 33)}")
    assert plan.tail == (CLS, *ids(27, 33), SEP)


def test_a_last_paragraph_over_the_limit_keeps_the_plain_tail(windower: Windower) -> None:
    """Thirteen tokens after the break are more than a paragraph window holds."""
    plan = windower.windows_for(f"{words(0, 30)}\n\n{words(30, 43)}")
    assert plan.tail == (CLS, *ids(37, 43), SEP)


def test_trailing_blank_lines_do_not_make_an_empty_last_paragraph(windower: Windower) -> None:
    """Blank lines at the end are ignored; a line of spaces between paragraphs is a break."""
    plan = windower.windows_for(f"{words(0, 30)}\n  \t\n{words(30, 38)}\n\n \n")
    assert plan.tail == (CLS, *ids(30, 38), SEP)


def test_crlf_line_ends_make_a_blank_line_too(windower: Windower) -> None:
    """A text sent with Windows line ends finds its last paragraph the same way."""
    plan = windower.windows_for(f"{words(0, 30)}\r\n\r\n{words(30, 38)}\r\n")
    assert plan.tail == (CLS, *ids(30, 38), SEP)


def test_a_single_line_break_does_not_end_a_paragraph(windower: Windower) -> None:
    """A list item per line is one paragraph; without a blank line the plain tail holds."""
    plan = windower.windows_for(f"{words(0, 30)}\n{words(30, 38)}")
    assert plan.tail == (CLS, *ids(32, 38), SEP)


def test_a_text_read_whole_is_not_affected(windower: Windower) -> None:
    """Up to max_window_tokens there is one window, paragraphs or not."""
    plan = windower.windows_for(f"{words(0, 4)}\n\n{words(4, 14)}")
    assert plan.head == (CLS, *ids(0, 14), SEP)
    assert plan.tail is None


def test_a_very_long_text_finds_its_last_paragraph_too(windower: Windower) -> None:
    """Past the character cut (the head and tail are cut before tokenising) the rule holds."""
    text = f"{words(0, 2000)}\n\n{words(2000, 2010)}"
    assert windower.windows_for(text).tail == (CLS, *ids(2000, 2010), SEP)


def test_without_the_setting_the_tail_is_the_last_tokens() -> None:
    """A model directory without tail_paragraph_tokens is read as before."""
    plain = Windower(word_tokenizer(), ModelConfig(16, 12, 8))
    assert plain.windows_for(f"{words(0, 30)}\n\n{words(30, 39)}").tail == (CLS, *ids(33, 39), SEP)


def _config(**window: Any) -> dict[str, Any]:
    return {
        "labels": LABELS,
        "windowing": {"max_window_tokens": 96, "head_tokens": 48, "tail_tokens": 48, **window},
    }


def test_config_json_sets_the_paragraph_window() -> None:
    """The key is read from the windowing object."""
    config = ModelConfig.from_mapping(_config(tail_paragraph_tokens=96))
    assert config.tail_paragraph_tokens == 96
    assert ModelConfig.from_mapping(_config()).tail_paragraph_tokens is None


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ({"tail_paragraph_tokens": 48}, "must lie above tail_tokens (48)"),
        ({"tail_paragraph_tokens": 97}, "at most max_window_tokens (96)"),
        ({"tail_paragraph_tokens": 64, "tail_tokens": 0}, "needs a tail window"),
        ({"tail_paragraph_tokens": "96"}, "must be a positive integer"),
    ],
)
def test_a_bad_paragraph_window_is_refused_with_a_precise_message(
    window: dict[str, Any], message: str
) -> None:
    """Values the windower cannot honour fail at load time, naming the key."""
    with pytest.raises(ValueError, match="tail_paragraph_tokens") as info:
        ModelConfig.from_mapping(_config(**window))
    assert message in str(info.value)
