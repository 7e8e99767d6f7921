"""``configure_logging()``: structlog set-up for the ``guardrail demo`` / ``serve`` processes.

The library never configures logging on import (that is the application's decision); these
servers are applications, so they call this once at start: JSON lines (or a console format for
humans) on stderr, filtered at ``level``.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

from guardrail.errors import ConfigError

__all__ = ["configure_logging"]

_LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}


def configure_logging(
    json: bool = True, level: str | int = "INFO", stream: TextIO | None = None
) -> None:
    """Configure structlog process-wide: one event per line on ``stream`` (default stderr).

    ``json=True`` renders JSON objects with ISO-8601 UTC timestamps and the log level;
    ``json=False`` a human-readable console format. An unknown ``level`` is a ConfigError.
    """
    if isinstance(level, str):
        numeric = _LEVELS.get(level.upper())
        if numeric is None:
            raise ConfigError(f"unknown log level {level!r}; use one of {', '.join(_LEVELS)}")
    elif level in _LEVELS.values():
        numeric = level
    else:
        raise ConfigError(f"unknown log level {level!r}; use one of {', '.join(_LEVELS)}")

    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if json:
        # JSON needs the traceback as a string field; the console renderer formats it itself.
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        # Loggers are resolved per call: the servers log one line per request, and an
        # uncached logger keeps structlog.testing.capture_logs usable in their tests.
        cache_logger_on_first_use=False,
    )
