"""Cutting texts into head and tail token windows, with a small word-level tokenizer.

The tokenizer is built here (one token per word ``w0``..``w9999``, ``[CLS] ... [SEP]`` around
each sequence) so the expected windows can be written down exactly.
"""

from __future__ import annotations

import time

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from guardrail.model.config import ModelConfig
from guardrail.model.windowing import Windower, coerce_text

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
PAD, UNK, CLS, SEP = range(4)
CONFIG = ModelConfig(max_window_tokens=16, head_tokens=12, tail_tokens=8)


def word_tokenizer() -> Tokenizer:
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    vocab.update({f"w{n}": n + len(SPECIALS) for n in range(10_000)})
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", CLS), ("[SEP]", SEP)]
    )
    return tokenizer


def words(start: int, stop: int) -> str:
    return " ".join(f"w{n}" for n in range(start, stop))


def ids(start: int, stop: int) -> list[int]:
    return [n + len(SPECIALS) for n in range(start, stop)]


@pytest.fixture(scope="module")
def windower() -> Windower:
    return Windower(word_tokenizer(), CONFIG)


def test_a_text_that_fits_is_read_whole_in_one_window(windower: Windower) -> None:
    """Up to max_window_tokens (special tokens included) the text is one window."""
    plan = windower.windows_for(words(0, 14))
    assert plan.head == (CLS, *ids(0, 14), SEP)
    assert plan.tail is None
    assert not plan.truncated
    assert plan.n_content == 14


def test_a_longer_text_is_read_as_head_and_tail_windows(windower: Windower) -> None:
    """One token over the window: the first 10 and last 6 text tokens, each wrapped."""
    plan = windower.windows_for(words(0, 15))
    assert plan.head == (CLS, *ids(0, 10), SEP)
    assert plan.tail == (CLS, *ids(9, 15), SEP)
    assert plan.truncated
    assert plan.n_content == 16
    assert plan.windows() == (plan.head, plan.tail)


def test_a_very_long_text_is_cut_in_characters_without_changing_the_windows(
    windower: Windower,
) -> None:
    """Past the character budget the head and tail windows are the same as exact tokenising."""
    plan = windower.windows_for(words(0, 5000))
    assert plan.head == (CLS, *ids(0, 10), SEP)
    assert plan.tail == (CLS, *ids(4994, 5000), SEP)


def test_the_tail_cut_never_starts_in_the_middle_of_a_word(windower: Windower) -> None:
    """The tail is cut at a word boundary, so no fragment of a word becomes a token."""
    # Words padded with spaces: the 48-character tail cut holds fewer than 6 tokens, so a
    # fragment at the cut would survive into the window if the cut split a word.
    for shift in range(12):
        text = "".join(f"w{n}       " for n in range(1000, 1400)).rstrip() + " " * shift
        plan = windower.windows_for(text)
        assert plan.tail is not None
        assert UNK not in plan.tail
        assert plan.tail[-2] == ids(1399, 1400)[0]
        assert list(plan.tail[1:-1]) == ids(1400 - len(plan.tail) + 2, 1400)


def test_five_megabytes_are_windowed_quickly(windower: Windower) -> None:
    """A 5 MB text is cut before tokenising, so windowing it takes milliseconds, not seconds."""
    text = words(0, 1000) + " " + "w5 " * 1_700_000 + words(9000, 9010)
    assert len(text) > 5_000_000
    started = time.perf_counter()
    plan = windower.windows_for(text)
    assert time.perf_counter() - started < 0.5
    assert plan.head == (CLS, *ids(0, 10), SEP)
    assert plan.tail == (CLS, *ids(9004, 9010), SEP)


def test_empty_and_whitespace_only_texts_have_no_tokens(windower: Windower) -> None:
    """Empty and whitespace-only texts are 'empty' plans, even when enormous."""
    for text in ("", "   \n\t ", " " * 3_000_000):
        assert windower.windows_for(text).empty


def test_a_model_without_a_tail_window_reads_the_head_only() -> None:
    """tail_tokens 0 truncates long texts to the head window."""
    windower = Windower(word_tokenizer(), ModelConfig(16, 12, 0))
    plan = windower.windows_for(words(0, 40))
    assert plan.head == (CLS, *ids(0, 10), SEP)
    assert plan.tail is None
    assert plan.truncated


def test_truncation_and_padding_pinned_in_the_tokenizer_file_are_turned_off() -> None:
    """A tokenizer that pins truncation at 4 tokens and padding still yields full windows."""
    tokenizer = word_tokenizer()
    tokenizer.enable_truncation(max_length=4)
    tokenizer.enable_padding(length=32)
    plan = Windower(tokenizer, CONFIG).windows_for(words(0, 14))
    assert plan.head == (CLS, *ids(0, 14), SEP)


def test_bytes_are_decoded_as_utf8_with_replacement_and_other_types_rejected() -> None:
    """bytes become text (bad bytes replaced); None and numbers raise TypeError."""
    assert coerce_text(b"caf\xc3\xa9 \xff") == "café \ufffd"
    assert coerce_text(bytearray(b"w1")) == "w1"
    with pytest.raises(TypeError, match="got NoneType"):
        coerce_text(None)
    with pytest.raises(TypeError, match="got int"):
        coerce_text(42)


def test_lone_surrogates_are_replaced_instead_of_crashing_the_tokenizer(
    windower: Windower,
) -> None:
    """A str holding a lone surrogate (valid in Python, not in UTF-8) is still windowed."""
    plan = windower.windows_for("w1 \ud800 w2")
    assert plan.head == (CLS, *ids(1, 2), UNK, *ids(2, 3), SEP)


def test_head_prefix_waits_until_the_head_is_final() -> None:
    """No prefix while the text is short; then the prefix holding exactly the head tokens."""
    windower = Windower(word_tokenizer(), CONFIG)  # head: 10 text tokens
    # Each word "wN " is 3-5 characters, so 12 words clear the 4-characters-per-token gate.
    assert windower.head_prefix(words(0, 9)) is None  # too short to hold the head
    assert windower.head_prefix(words(0, 10)) is None  # the 10th word may still go on
    text = words(100, 130)
    prefix = windower.head_prefix(text)
    assert prefix == words(100, 110)
    assert windower.windows_for(prefix).head == windower.windows_for(text).head
    assert windower.windows_for(prefix).tail is None


def test_head_prefix_is_the_head_of_every_longer_text() -> None:
    """Whatever follows, a finished text too long for one window has the prefix as its head
    (one that stays within a window is read whole instead)."""
    windower = Windower(word_tokenizer(), CONFIG)
    prefix = windower.head_prefix(words(500, 520))
    assert prefix is not None
    for rest in (" " + words(0, 5), "  " + words(0, 400), "\n\n" + words(7000, 9000)):
        finished = windower.windows_for(prefix + rest)
        assert finished.tail is not None
        assert finished.head == windower.windows_for(prefix).head


def test_head_prefix_of_a_huge_text_is_quick() -> None:
    """Asking for the prefix of a 5 MB text reads only its start."""
    windower = Windower(word_tokenizer(), CONFIG)
    text = words(0, 30) + " " + "w5 " * 1_700_000
    started = time.perf_counter()
    assert windower.head_prefix(text) == words(0, 10)
    assert time.perf_counter() - started < 0.5
