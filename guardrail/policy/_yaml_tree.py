"""Parse YAML into a tree of nodes that remember where they came from.

``yaml.safe_load`` throws positions away, so the loader composes the node tree instead
and converts it into ``Node`` objects carrying a 1-based ``Mark``. Every later problem
(wrong type, unknown key, bad regex) can then be reported as ``FILE:LINE:COL: message``.
The conversion also rejects what ``safe_load`` would silently accept: duplicate keys,
custom tags, recursive aliases and alias "billion laughs" expansions.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

__all__ = [
    "MAX_NODES",
    "Mark",
    "Node",
    "Problems",
    "YamlSyntaxError",
    "compose_tree",
    "mark_at_offset",
]

#: Upper bound on converted nodes; aliases can expand a small file exponentially.
MAX_NODES = 100_000

_STR = "tag:yaml.org,2002:str"
_SCALAR_TAGS = {
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:bool": "boolean",
    "tag:yaml.org,2002:int": "integer",
    "tag:yaml.org,2002:float": "number",
    _STR: "string",
    "tag:yaml.org,2002:timestamp": "timestamp",
    "tag:yaml.org,2002:binary": "binary",
}
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"


@dataclass(frozen=True, slots=True, order=True)
class Mark:
    """A 1-based line and column in the source file."""

    line: int
    col: int


class Problems:
    """Collects ``FILE:LINE:COL: message`` lines so that every problem is reported."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self._items: list[tuple[Mark, str]] = []

    def add(self, mark: Mark, message: str) -> None:
        self._items.append((mark, message))

    def __bool__(self) -> bool:
        return bool(self._items)

    def lines(self) -> list[str]:
        # Sorted by position so the output reads top to bottom like a compiler's.
        ordered = sorted(set(self._items), key=lambda item: (item[0], item[1]))
        return [f"{self.filename}:{m.line}:{m.col}: {msg}" for m, msg in ordered]


@dataclass(eq=False, slots=True)
class Node:
    """One YAML value: ``kind`` is "scalar", "list" or "mapping"."""

    kind: str
    mark: Mark
    value: object = None
    type_name: str = "null"
    items: list[Node] = field(default_factory=list)
    entries: list[tuple[Node, Node]] = field(default_factory=list)


class YamlSyntaxError(Exception):
    """The text is not one well-formed YAML document; ``mark`` says where."""

    def __init__(self, mark: Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


class _LineIndex:
    """Maps character offsets to 1-based line/column, counting only ``\n`` as a line break.

    PyYAML also breaks lines at U+0085/U+2028/U+2029, which editors and ``grep -n`` do
    not, so its own line numbers would point at the wrong line in such files.
    """

    def __init__(self, text: str) -> None:
        self._starts = [0]
        at = text.find("\n")
        while at != -1:
            self._starts.append(at + 1)
            at = text.find("\n", at + 1)
        self._len = len(text)

    def at(self, index: int) -> Mark:
        index = max(0, min(index, self._len))
        line = bisect.bisect_right(self._starts, index)
        return Mark(line, index - self._starts[line - 1] + 1)

    def of(self, yaml_mark: yaml.Mark | None) -> Mark:
        return Mark(1, 1) if yaml_mark is None else self.at(yaml_mark.index)


class _Converter:
    def __init__(self, problems: Problems, lines: _LineIndex) -> None:
        self._problems = problems
        self._lines = lines
        self._constructor = SafeConstructor()
        self._count = 0
        self._active: set[int] = set()

    def convert(self, node: yaml.Node) -> Node:
        self._count += 1
        mark = self._lines.of(node.start_mark)
        if self._count > MAX_NODES:
            raise YamlSyntaxError(mark, f"document expands to more than {MAX_NODES} values")
        if id(node) in self._active:
            raise YamlSyntaxError(mark, "recursive alias: a value may not contain itself")
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, mark)
        if node.tag not in (_SEQ, _MAP):
            self._problems.add(mark, f"unsupported YAML tag {node.tag!r}")
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return Node(
                    "list",
                    mark,
                    type_name="list",
                    items=[self.convert(child) for child in node.value],
                )
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, mark)
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode, mark: Mark) -> Node:
        type_name = _SCALAR_TAGS.get(node.tag)
        if type_name is None:
            self._problems.add(mark, f"unsupported YAML tag {node.tag!r}")
            return Node("scalar", mark, value=node.value, type_name="string")
        try:
            value = self._constructor.construct_object(node, deep=True)
        except (ConstructorError, ValueError, OverflowError) as exc:
            self._problems.add(mark, f"invalid {type_name} value: {exc}".splitlines()[0])
            return Node("scalar", mark, value=None, type_name="invalid")
        if isinstance(value, float) and value != value:  # NaN is never a useful setting
            type_name = "nan"
        return Node("scalar", mark, value=value, type_name=type_name)

    def _mapping(self, node: yaml.MappingNode, mark: Mark) -> Node:
        out = Node("mapping", mark, type_name="mapping")
        seen: dict[object, Mark] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self._problems.add(
                    self._lines.of(key_node.start_mark),
                    "YAML merge keys ('<<') are not supported; repeat the keys",
                )
                continue
            key = self.convert(key_node)
            value = self.convert(value_node)
            if key.kind != "scalar" or not isinstance(key.value, str):
                self._problems.add(key.mark, f"mapping keys must be strings, got {key.type_name}")
                continue
            if key.value in seen:
                first = seen[key.value]
                self._problems.add(
                    key.mark, f"duplicate key {key.value!r} (first defined at line {first.line})"
                )
                continue
            seen[key.value] = key.mark
            out.entries.append((key, value))
        return out


def compose_tree(text: str, problems: Problems) -> Node | None:
    """Parse one YAML document into ``Node`` objects; ``None`` for an empty document.

    Syntax errors raise ``YamlSyntaxError`` (nothing after them can be trusted);
    problems inside a well-formed document are added to ``problems`` and parsing goes on.
    """
    lines = _LineIndex(text)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        where = exc.problem_mark or exc.context_mark
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        raise YamlSyntaxError(lines.of(where), f"YAML syntax error: {message}") from None
    except yaml.reader.ReaderError as exc:
        raise YamlSyntaxError(
            lines.at(exc.position),
            f"YAML syntax error: {exc.reason} (#x{exc.character:04x})"
            if isinstance(exc.character, int)
            else f"YAML syntax error: {exc.reason}",
        ) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(Mark(1, 1), f"YAML error: {exc}".splitlines()[0]) from None
    except RecursionError:
        raise YamlSyntaxError(Mark(1, 1), "YAML nesting is too deep") from None
    if root is None:
        return None
    try:
        # Measured first, with memoisation, so an alias bomb is refused in microseconds
        # instead of after converting a hundred thousand nodes.
        _expanded_size(root, {}, set(), lines)
        return _Converter(problems, lines).convert(root)
    except RecursionError:
        raise YamlSyntaxError(Mark(1, 1), "YAML nesting is too deep") from None


def _expanded_size(
    node: yaml.Node, memo: dict[int, int], active: set[int], lines: _LineIndex
) -> int:
    """Number of values ``node`` becomes once aliases are expanded (bounded by MAX_NODES)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    if id(node) in active:
        raise YamlSyntaxError(
            lines.of(node.start_mark), "recursive alias: a value may not contain itself"
        )
    size = 1
    if isinstance(node, yaml.SequenceNode | yaml.MappingNode):
        active.add(id(node))
        children = (
            node.value
            if isinstance(node, yaml.SequenceNode)
            else [child for pair in node.value for child in pair]
        )
        for child in children:
            size += _expanded_size(child, memo, active, lines)
            if size > MAX_NODES:
                raise YamlSyntaxError(
                    lines.of(node.start_mark), f"document expands to more than {MAX_NODES} values"
                )
        active.discard(id(node))
    memo[id(node)] = size
    return size


def mark_at_offset(text: str, index: int) -> Mark:
    """Position of a character offset (used for decoding errors before YAML runs)."""
    return _LineIndex(text).at(index)
