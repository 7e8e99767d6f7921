"""Small schema combinators: one description drives both validation and the JSON Schema.

Each ``Spec`` checks a positioned ``Node`` (adding every problem it finds, with its
position, to ``Problems``) and can describe itself as JSON Schema. Keeping the two in one
place means the editor schema printed by ``guardrail policy schema`` cannot drift from
what the loader accepts.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from guardrail.policy._regex import RegexCompileError, compile_pattern
from guardrail.policy._yaml_tree import Mark, Node, Problems

__all__ = [
    "INVALID",
    "Bool",
    "Enum",
    "Int",
    "Nullable",
    "Number",
    "Obj",
    "Regex",
    "Seq",
    "Spec",
    "Str",
    "Template",
    "expected",
]


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


#: Returned by a check that failed; the problem has already been recorded.
INVALID: Final = _Invalid()


class Obj(dict[str, Any]):
    """A validated mapping: ``marks``/``key_marks`` hold where each value/key is, ``mark``
    where the mapping starts."""

    def __init__(self, mark: Mark) -> None:
        super().__init__()
        self.mark = mark
        self.marks: dict[str, Mark] = {}
        self.key_marks: dict[str, Mark] = {}


class Seq(list[Any]):
    """A validated list of the items that validated: ``marks`` holds where each one is and
    ``indices`` its index in the file's list (items that failed are left out)."""

    def __init__(self, mark: Mark) -> None:
        super().__init__()
        self.mark = mark
        self.marks: list[Mark] = []
        self.indices: list[int] = []


class Spec:
    description: str = ""

    def check(self, node: Node, problems: Problems, where: str) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def _described(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self.description:
            schema["description"] = self.description
        return schema


def expected(node: Node, problems: Problems, where: str, wanted: str) -> _Invalid:
    problems.add(node.mark, f"{where}: expected {wanted}, got {node.type_name}")
    return INVALID


@dataclass(frozen=True)
class Str(Spec):
    description: str = ""
    min_len: int = 1
    max_len: int = 10_000
    pattern: str | None = None
    pattern_hint: str = ""

    def check(self, node: Node, problems: Problems, where: str) -> Any:
        if node.type_name != "string" or not isinstance(node.value, str):
            return expected(node, problems, where, "a string")
        value = node.value
        if len(value) < self.min_len:
            problems.add(node.mark, f"{where}: must not be empty")
            return INVALID
        if len(value) > self.max_len:
            problems.add(node.mark, f"{where}: longer than {self.max_len} characters")
            return INVALID
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            problems.add(node.mark, f"{where}: {value!r} is not {self.pattern_hint}")
            return INVALID
        return value

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "string",
            "minLength": self.min_len,
            "maxLength": self.max_len,
        }
        if self.pattern is not None:
            out["pattern"] = f"^(?:{self.pattern})$"
        return self._described(out)


@dataclass(frozen=True)
class Bool(Spec):
    description: str = ""

    def check(self, node: Node, problems: Problems, where: str) -> Any:
        if node.type_name != "boolean":
            return expected(node, problems, where, "true or false")
        return node.value

    def schema(self) -> dict[str, Any]:
        return self._described({"type": "boolean"})


@dataclass(frozen=True)
class Int(Spec):
    description: str = ""
    minimum: int = 0
    maximum: int = 2**31

    def check(self, node: Node, problems: Problems, where: str) -> Any:
        if node.type_name != "integer" or not isinstance(node.value, int):
            return expected(node, problems, where, "an integer")
        if not self.minimum <= node.value <= self.maximum:
            allowed = (
                f"must be {self.minimum}"
                if self.minimum == self.maximum
                else f"is outside {self.minimum}..{self.maximum}"
            )
            problems.add(node.mark, f"{where}: {node.value} {allowed}")
            return INVALID
        return node.value

    def schema(self) -> dict[str, Any]:
        return self._described(
            {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
        )


@dataclass(frozen=True)
class Number(Spec):
    description: str = ""
    minimum: float = 0.0
    maximum: float = 1.0
    exclusive_minimum: bool = False

    def check(self, node: Node, problems: Problems, where: str) -> Any:
        if node.type_name not in ("integer", "number") or isinstance(node.value, bool):
            return expected(node, problems, where, "a number")
        value = float(node.value)  # type: ignore[arg-type]
        low_ok = value > self.minimum if self.exclusive_minimum else value >= self.minimum
        if not (low_ok and value <= self.maximum):
            low = "(" if self.exclusive_minimum else "["
            problems.add(
                node.mark,
                f"{where}: {node.value} is outside {low}{self.minimum:g}, {self.maximum:g}]",
            )
            return INVALID
        return value

    def schema(self) -> dict[str, Any]:
        key = "exclusiveMinimum" if self.exclusive_minimum else "minimum"
        return self._described({"type": "number", key: self.minimum, "maximum": self.maximum})


@dataclass(frozen=True)
class Enum(Spec):
    values: tuple[str, ...] = ()
    noun: str = "value"
    description: str = ""

    def check(self, node: Node, problems: Problems, where: str) -> Any:
        if node.type_name != "string":
            return expected(node, problems, where, f"a {self.noun} name")
        if node.value not in self.values:
            problems.add(
                node.mark,
                f"{where}: unknown {self.noun} {node.value!r}; expected "
                f"one of: {', '.join(self.values)}",
            )
            return INVALID
        return node.value

    def schema(self) -> dict[str, Any]:
        return self._described({"type": "string", "enum": list(self.values)})


@dataclass(frozen=True)
class Regex(Spec):
    """An RE2 pattern, compiled at load time; RE2 runs in time linear in the text."""

    description: str = ""
    max_len: int = 4000

    def check(self, node: Node, problems: Problems, where: str) -> Any:
        text = Str(max_len=self.max_len).check(node, problems, where)
        if text is INVALID:
            return INVALID
        try:
            return compile_pattern(text)
        except RegexCompileError as exc:
            problems.add(node.mark, f"{where}: {exc}")
            return INVALID

    def schema(self) -> dict[str, Any]:
        return self._described(
            {"type": "string", "format": "regex", "minLength": 1, "maxLength": self.max_len}
        )


@dataclass(frozen=True)
class Template(Spec):
    """Text with ``{name}`` placeholders restricted to ``placeholders``."""

    placeholders: Sequence[str] = ()
    description: str = ""
    max_len: int = 4000

    def check(self, node: Node, problems: Problems, where: str) -> Any:
        text = Str(max_len=self.max_len).check(node, problems, where)
        if text is INVALID:
            return INVALID
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            problems.add(
                node.mark,
                f"{where}: bad template ({exc}); write '{{{{' and '}}}}' for literal braces",
            )
            return INVALID
        allowed = ", ".join("{" + p + "}" for p in self.placeholders)
        for _literal, name, spec, conversion in parsed:
            if name is None:
                continue
            if name not in self.placeholders or spec or conversion:
                problems.add(
                    node.mark,
                    f"{where}: unknown placeholder {{{name}}}; allowed: "
                    f"{allowed} (write '{{{{' for a literal brace)",
                )
                return INVALID
        return text

    def schema(self) -> dict[str, Any]:
        return self._described({"type": "string", "minLength": 1, "maxLength": self.max_len})


@dataclass(frozen=True)
class Nullable(Spec):
    """``inner`` or an explicit YAML null (``~``/``null``)."""

    inner: Spec = Str()
    description: str = ""

    def check(self, node: Node, problems: Problems, where: str) -> Any:
        if node.type_name == "null":
            return None
        return self.inner.check(node, problems, where)

    def schema(self) -> dict[str, Any]:
        return self._described({"anyOf": [self.inner.schema(), {"type": "null"}]})
