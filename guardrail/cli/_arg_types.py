"""Value types for argparse options, shared by every command.

Each is a callable from the option's text to its value that raises
``argparse.ArgumentTypeError``, which argparse reports as a usage error (exit 2) naming the
option, so a bad flag never reaches a model load or a socket bind.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["int_at_least", "number_between", "port_number", "positive_number"]


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An integer no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _number(text: str, unit: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number{unit}, got {text!r}") from None
    # float() accepts "nan", and every comparison with NaN is false: refuse it here so that
    # no range check below can let it through.
    if math.isnan(value):
        raise argparse.ArgumentTypeError(f"expected a number{unit}, got {text!r}")
    return value


def number_between(low: float, high: float, *, unit: str = "") -> Callable[[str], float]:
    """A number in [low, high]; ``unit`` (e.g. " of seconds") only words the messages."""

    def parse(text: str) -> float:
        value = _number(text, unit)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be within [{low:g}, {high:g}], got {text}")
        return value

    return parse


def positive_number(unit: str = "") -> Callable[[str], float]:
    """A finite number above zero (timeouts)."""

    def parse(text: str) -> float:
        value = _number(text, unit)
        if not 0 < value < math.inf:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def port_number(text: str) -> int:
    """A TCP port; 0 asks the system for a free one."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {port}")
    return port
