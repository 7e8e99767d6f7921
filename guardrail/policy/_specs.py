"""Small schema combinators: one description drives both validation and the JSON Schema.

Each ``Spec`` checks a positioned ``Node`` (adding every problem it finds, with its
position, to ``Problems``) and can describe itself as JSON Schema. Keeping the two in one
place means the editor schema printed by ``guardrail policy schema`` cannot drift from
what the loader accepts.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from guardrail.policy._regex import Pattern, RegexCompileError, compile_pattern
from guardrail.policy._yaml_tree import Mark, Node, Problems

__all__ = [
    "INVALID",
    "Bool",
    "Enum",
    "Field",
    "Int",
    "ListOf",
    "MapOf",
    "Nullable",
    "Number",
    "Obj",
    "Object",
    "Regex",
    "Seq",
    "Spec",
    "Str",
    "Template",
    "pattern_of",
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
    """A validated list; ``marks`` holds the position of each item."""

    def __init__(self, mark: Mark) -> None:
        super().__init__()
        self.mark = mark
        self.marks: list[Mark] = []


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


def _expected(node: Node, problems: Problems, where: str, wanted: str) -> _Invalid:
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
            return _expected(node, problems, where, "a string")
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
            return _expected(node, problems, where, "true or false")
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
            return _expected(node, problems, where, "an integer")
        if not self.minimum <= node.value <= self.maximum:
            problems.add(
                node.mark, f"{where}: {node.value} is outside {self.minimum}..{self.maximum}"
            )
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
            return _expected(node, problems, where, "a number")
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
            return _expected(node, problems, where, f"a {self.noun} name")
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
class ListOf(Spec):
    """A list of ``item``; ``scalar_ok`` also accepts one bare item for a one-item list."""

    item: Spec = Str()
    description: str = ""
    min_items: int = 0
    max_items: int = 1000
    scalar_ok: bool = False

    def check(self, node: Node, problems: Problems, where: str) -> Any:
        if node.kind != "list":
            if self.scalar_ok and node.kind == "scalar":
                node = Node("list", node.mark, type_name="list", items=[node])
            else:
                return _expected(node, problems, where, "a list")
        if not self.min_items <= len(node.items) <= self.max_items:
            problems.add(
                node.mark,
                f"{where}: needs {self.min_items} to {self.max_items} items, got {len(node.items)}",
            )
            return INVALID
        out = Seq(node.mark)
        ok = True
        for index, child in enumerate(node.items):
            value = self.item.check(child, problems, f"{where}[{index}]")
            ok = ok and value is not INVALID
            out.append(value)
            out.marks.append(child.mark)
        return out if ok else INVALID

    def schema(self) -> dict[str, Any]:
        array = {
            "type": "array",
            "items": self.item.schema(),
            "minItems": self.min_items,
            "maxItems": self.max_items,
        }
        if self.scalar_ok:
            return self._described({"anyOf": [self.item.schema(), array]})
        return self._described(array)


@dataclass(frozen=True)
class MapOf(Spec):
    """A mapping with free-form keys (checked by ``key``) and values checked by ``value``."""

    key: Str = Str()
    value: Spec = Str()
    description: str = ""
    max_items: int = 1000

    def check(self, node: Node, problems: Problems, where: str) -> Any:
        if node.kind != "mapping":
            return _expected(node, problems, where, "a mapping")
        if len(node.entries) > self.max_items:
            problems.add(node.mark, f"{where}: more than {self.max_items} entries")
            return INVALID
        out = Obj(node.mark)
        ok = True
        for key_node, value_node in node.entries:
            key = self.key.check(key_node, problems, f"{where} key")
            value = self.value.check(value_node, problems, f"{where}.{key_node.value}")
            if key is INVALID or value is INVALID:
                ok = False
                continue
            out[key] = value
            out.marks[key] = value_node.mark
            out.key_marks[key] = key_node.mark
        return out if ok else INVALID

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "object",
            "additionalProperties": self.value.schema(),
            "maxProperties": self.max_items,
        }
        if self.key.pattern is not None:
            out["propertyNames"] = {"pattern": f"^(?:{self.key.pattern})$"}
        return self._described(out)


@dataclass(frozen=True)
class Field:
    spec: Spec
    required: bool = False


@dataclass(frozen=True)
class Object(Spec):
    """A mapping with a fixed set of keys. Unknown keys are errors (with a suggestion).

    A mapping always yields an ``Obj`` holding the keys that validated, so checks that
    look across fields (duplicate ids, references) can still run on a partly bad object.
    """

    fields: Mapping[str, Field]
    noun: str = "mapping"
    description: str = ""
    extra_schema: Mapping[str, Any] | None = None

    def check(self, node: Node, problems: Problems, where: str) -> Any:
        if node.kind != "mapping":
            return _expected(node, problems, where, f"a mapping ({self.noun})")
        out = Obj(node.mark)
        for key_node, value_node in node.entries:
            name = str(key_node.value)
            spec = self.fields.get(name)
            if spec is None:
                problems.add(key_node.mark, _unknown_key(where, self.noun, name, self.fields))
                continue
            value = spec.spec.check(value_node, problems, _join(where, name))
            if value is not INVALID:
                out[name] = value
                out.marks[name] = value_node.mark
                out.key_marks[name] = key_node.mark
        present = {str(k.value) for k, _ in node.entries}
        for name, spec in self.fields.items():
            if spec.required and name not in present:
                problems.add(
                    node.mark, f"{where or 'policy'}: missing required key {name!r} in {self.noun}"
                )
        return out

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "object",
            "properties": {name: f.spec.schema() for name, f in self.fields.items()},
            "additionalProperties": False,
        }
        required = [name for name, f in self.fields.items() if f.required]
        if required:
            out["required"] = required
        if self.extra_schema:
            out.update(self.extra_schema)
        return self._described(out)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _unknown_key(where: str, noun: str, name: str, known: Iterable[str]) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(names)}"
    return f"{where or 'policy'}: unknown key {name!r} in {noun}; {hint}"


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


def pattern_of(value: Any) -> Pattern:
    """Narrow a validated ``Regex`` value for the type checker."""
    assert isinstance(value, Pattern)
    return value


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
