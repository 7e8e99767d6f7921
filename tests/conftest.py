"""Shared fixtures: async tests run on asyncio through anyio's pytest plugin, and no test
leaks a process-wide structlog configuration into the next one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolate_structlog() -> Iterator[None]:
    # configure_logging() (demo/serve, and its own tests) binds structlog to the stream that
    # was sys.stderr at the time: under pytest that is a capture file closed after the test.
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
