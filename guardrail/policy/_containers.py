"""Container specs: lists, free-form mappings and fixed-key objects (see ``_specs``)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from guardrail.policy._specs import INVALID, Obj, Seq, Spec, Str, expected
from guardrail.policy._yaml_tree import Node, Problems

__all__ = ["Field", "ListOf", "MapOf", "Object"]

_TEXT = Str()  # specs are frozen, so one shared default instance is safe


@dataclass(frozen=True)
class ListOf(Spec):
    """A list of ``item``; ``scalar_ok`` also accepts one bare item for a one-item list."""

    item: Spec = _TEXT
    description: str = ""
    min_items: int = 0
    max_items: int = 1000
    scalar_ok: bool = False

    def check(self, node: Node, problems: Problems, where: str) -> Any:
        if node.kind != "list":
            if self.scalar_ok and node.kind == "scalar":
                node = Node("list", node.mark, type_name="list", items=[node])
            else:
                return expected(node, problems, where, "a list")
        if not self.min_items <= len(node.items) <= self.max_items:
            problems.add(
                node.mark,
                f"{where}: needs {self.min_items} to {self.max_items} items, got {len(node.items)}",
            )
            return INVALID
        out = Seq(node.mark)
        for index, child in enumerate(node.items):
            value = self.item.check(child, problems, f"{where}[{index}]")
            # A bad item is already reported; the rest stay so cross-checks can still run.
            if value is not INVALID:
                out.append(value)
                out.marks.append(child.mark)
                out.indices.append(index)
        return out

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

    key: Str = _TEXT
    value: Spec = _TEXT
    description: str = ""
    max_items: int = 1000

    def check(self, node: Node, problems: Problems, where: str) -> Any:
        if node.kind != "mapping":
            return expected(node, problems, where, "a mapping")
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
            return expected(node, problems, where, f"a mapping ({self.noun})")
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
