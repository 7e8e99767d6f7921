"""Policy regexes, compiled with RE2 so attacker-controlled text cannot cause a ReDoS.

Python's ``re`` backtracks: ``(a+)+$`` against ``"a" * 50_000 + "!"`` runs for ages.
RE2 guarantees time linear in the text, at the price of refusing backreferences and
look-around; such patterns are rejected at load time with a positioned message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import re2

__all__ = ["Pattern", "RegexCompileError", "compile_pattern"]


class RegexCompileError(ValueError):
    """RE2 cannot compile the pattern."""


def _options() -> Any:
    options = re2.Options()
    # RE2 logs parse errors to stderr by itself; the loader reports them with positions.
    options.log_errors = False
    return options


_OPTIONS = _options()


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled RE2 pattern together with its source text (for messages and equality)."""

    source: str
    _compiled: Any = field(repr=False, compare=False)

    def search(self, text: str) -> bool:
        """True when the pattern matches anywhere in ``text``."""
        try:
            return self._compiled.search(text) is not None
        except UnicodeEncodeError:
            # Lone surrogates (legal in JSON "\\ud800" escapes) cannot be UTF-8 encoded.
            return self._compiled.search(text.encode("utf-8", "replace")) is not None


def compile_pattern(source: str) -> Pattern:
    """Compile ``source`` with RE2, or raise ``RegexCompileError`` explaining why not."""
    try:
        compiled = re2.compile(source, options=_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        hint = ""
        if "perl operator" in str(reason) or "escape sequence" in str(reason):
            hint = " (RE2 has no look-around or backreferences; they can take exponential time)"
        raise RegexCompileError(f"invalid regex {source!r}: {reason}{hint}") from None
    except (UnicodeError, TypeError, ValueError) as exc:
        raise RegexCompileError(f"invalid regex {source!r}: {exc}") from None
    return Pattern(source, compiled)
