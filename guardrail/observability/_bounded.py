"""Bounded label sets: map raw strings onto a fixed, small set of Prometheus label values.

Every distinct label value is a new time series that lives until the process restarts, so a
label fed from request data (a model name sent by a client, a route, a rule id from a policy
that can be hot-reloaded) must be bounded. A ``BoundedLabel`` admits either the values of an
explicit allow-list, or the first ``max_values`` distinct well-formed values it sees; anything
else becomes ``other``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

__all__ = ["OTHER", "BoundedLabel"]

OTHER = "other"

# Label values end up in dashboards and alert texts; keep them to a conservative character set
# and length so a client cannot smuggle control characters or megabytes into the TSDB.
_WELL_FORMED = re.compile(r"[A-Za-z0-9/][A-Za-z0-9._:/@+{}\-]{0,127}")


class BoundedLabel:
    """Thread-safe mapping from raw values to at most ``max_values`` label values + ``other``.

    ``allowed`` non-empty: exactly those values are kept, everything else is ``other``.
    ``allowed`` empty: the first ``max_values`` distinct well-formed values are admitted in
    arrival order. Values named in ``fixed`` (e.g. "default", "unknown") are always kept and do
    not count against the limit.
    """

    __slots__ = ("_allowed", "_fixed", "_lock", "_max", "_seen")

    def __init__(
        self,
        *,
        allowed: Iterable[str] = (),
        max_values: int = 10,
        fixed: Iterable[str] = (),
    ) -> None:
        if max_values < 0:
            raise ValueError(f"max_values must be >= 0, got {max_values}")
        self._allowed = frozenset(allowed)
        self._fixed = frozenset(fixed)
        self._max = max_values
        self._seen: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    @property
    def values(self) -> frozenset[str]:
        """The label values admitted so far (or the allow-list), without ``other``."""
        return self._allowed if self._allowed else self._seen

    def __call__(self, raw: str) -> str:
        if raw in self._fixed:
            return raw
        if self._allowed:
            return raw if raw in self._allowed else OTHER
        # Fast path without the lock: ``_seen`` is an immutable frozenset swapped atomically.
        seen = self._seen
        if raw in seen:
            return raw
        if len(seen) >= self._max or raw == OTHER or not _WELL_FORMED.fullmatch(raw):
            return OTHER
        with self._lock:
            if raw in self._seen:
                return raw
            if len(self._seen) >= self._max:
                return OTHER
            self._seen = self._seen | {raw}
        return raw
