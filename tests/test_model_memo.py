"""The head memo: bounded, each entry used once, and results identical with or without it."""

from __future__ import annotations

import numpy as np
import pytest

from guardrail.model._memo import HeadMemo


def row(value: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.full(3, value, dtype=np.float32),
        np.full(2, value, dtype=np.float32),
        np.full(16, value, dtype=np.float32),
    )


def test_an_entry_is_taken_once() -> None:
    """take() returns what put() left for the same window, then nothing."""
    memo = HeadMemo(8)
    memo.put((1, 2, 3), row(0.5))
    got = memo.take((1, 2, 3))
    assert got is not None and float(got[0][0]) == 0.5
    assert memo.take((1, 2, 3)) is None and memo.hits == 1


def test_the_oldest_entry_goes_when_full() -> None:
    """A full memo drops its oldest entry, so it never holds more than it was given."""
    memo = HeadMemo(2)
    for i in range(3):
        memo.put((i,), row(float(i)))
    assert len(memo) == 2
    assert memo.take((0,)) is None and memo.take((2,)) is not None


def test_stored_rows_are_copies() -> None:
    """Changing the arrays after put() does not change what the memo returns."""
    memo = HeadMemo(2)
    values = row(0.25)
    memo.put((7,), values)
    values[0][:] = 9.0
    got = memo.take((7,))
    assert got is not None and float(got[0][0]) == 0.25


def test_zero_entries_switch_it_off_and_bad_sizes_fail() -> None:
    """memo_entries 0 keeps nothing; negative or non-integer sizes are refused."""
    memo = HeadMemo(0)
    memo.put((1,), row(0.1))
    assert memo.take((1,)) is None
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="non-negative integer"):
            HeadMemo(bad)  # type: ignore[arg-type]
