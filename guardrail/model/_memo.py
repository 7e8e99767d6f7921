"""A bounded, thread-safe memo of head-window results, so a stream's head is computed once.

A guarded stream is classified twice: its hold-back window before release (to decide), and
its whole text after the last byte (for metrics and logs). When the hold-back window is the
model's first window exactly (``RefusalClassifier.window_prefix``), the second classification
would read the very same head window again. The first run leaves its probabilities here; the
second finds them by the window's token ids and runs only the tail window.

Only windows that can be someone's head are kept (exactly ``head_tokens`` long), and an entry
is taken out when it is used, so the memo holds about one entry per stream in flight; when it
is full the oldest entry goes. A miss only costs the run the memo would have saved: results
are the same either way (a window runs alone, so its scores do not depend on neighbours).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_MEMO_ENTRIES", "HeadMemo"]

#: Entries kept by default: streams in flight between their hold-back and their last byte.
#: An entry is about 1 KB (a window of 48 token ids and 21 probabilities).
DEFAULT_MEMO_ENTRIES = 4096

Row = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]


class HeadMemo:
    """Window token ids -> (verdict, kind, category) probabilities of that window."""

    def __init__(self, entries: int = DEFAULT_MEMO_ENTRIES) -> None:
        if isinstance(entries, bool) or not isinstance(entries, int) or entries < 0:
            raise ValueError(f"memo entries must be a non-negative integer, got {entries!r}")
        self.entries = entries
        self._rows: OrderedDict[tuple[int, ...], Row] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    def __len__(self) -> int:
        return len(self._rows)

    def put(self, window: tuple[int, ...], row: Row) -> None:
        if not self.entries:
            return
        # Copies: the caller's arrays are views into a batch that will be reused.
        kept = (row[0].copy(), row[1].copy(), row[2].copy())
        with self._lock:
            self._rows[window] = kept
            self._rows.move_to_end(window)
            while len(self._rows) > self.entries:
                self._rows.popitem(last=False)

    def take(self, window: tuple[int, ...]) -> Row | None:
        """The row left for ``window``, removed from the memo; None when there is none."""
        with self._lock:
            row = self._rows.pop(window, None)
            if row is not None:
                self.hits += 1
            return row
