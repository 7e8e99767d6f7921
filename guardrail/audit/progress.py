"""A one-line progress bar on stderr for long audits (rows, rows/s, and % of bytes read)."""

from __future__ import annotations

import time
from typing import TextIO

__all__ = ["Progress"]

_WIDTH = 28


class Progress:
    """Redraws at most a few times a second; ``close()`` ends the line."""

    def __init__(self, stream: TextIO, total_bytes: int | None, interval: float = 0.25) -> None:
        self.stream = stream
        self.total_bytes = total_bytes or None
        self.interval = interval
        self._start = time.monotonic()
        self._last = 0.0
        self._drawn = False

    def update(self, rows: int, bytes_read: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        elapsed = max(now - self._start, 1e-9)
        rate = f"{rows / elapsed:,.0f} rows/s"
        if self.total_bytes:
            fraction = min(bytes_read / self.total_bytes, 1.0)
            filled = int(fraction * _WIDTH)
            bar = "#" * filled + "-" * (_WIDTH - filled)
            line = f"\raudit [{bar}] {fraction:6.1%}  {rows:,} rows  {rate}"
        else:
            line = f"\raudit {rows:,} rows  {rate}"
        self.stream.write(line)
        self.stream.flush()
        self._drawn = True

    def close(self, rows: int, bytes_read: int) -> None:
        if self._drawn or rows:
            self.update(rows, bytes_read, force=True)
            self.stream.write("\n")
            self.stream.flush()
