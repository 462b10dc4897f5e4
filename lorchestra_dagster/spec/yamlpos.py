"""Load YAML keeping the line and column of every key and value.

Validation reports ``path:line:col``, so it needs positions PyYAML's
``safe_load`` throws away. We compose the node tree (which has marks), build
the Python data from it with the safe constructor, and index both by the same
path of keys and list indexes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

YamlPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Pos:
    """1-based line and column."""

    line: int
    col: int


@dataclass
class YamlDoc:
    """A parsed YAML document and where each of its parts sits in the file."""

    data: Any
    values: dict[YamlPath, Pos] = field(default_factory=dict)
    keys: dict[YamlPath, Pos] = field(default_factory=dict)
    duplicate_keys: list[tuple[YamlPath, Pos]] = field(default_factory=list)
    #: Every scalar as written (path, text, YAML tag, position): secret scanning walks these.
    scalars: list[tuple[YamlPath, str, str, Pos]] = field(default_factory=list)
    _seen: set[int] = field(default_factory=set)

    def pos(self, path: YamlPath, *, key: bool = False) -> Pos:
        """Position of ``path`` (its key when ``key``), else of the nearest ancestor."""
        path = tuple(path)
        while True:
            if key and path in self.keys:
                return self.keys[path]
            if path in self.values:
                return self.values[path]
            if not path:
                return Pos(1, 1)
            path = path[:-1]


class YamlSyntaxError(Exception):
    """A YAML file could not be parsed; carries the position of the problem."""

    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


def _mark(node: yaml.Node) -> Pos:
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)


def _index(node: yaml.Node, path: YamlPath, doc: YamlDoc, depth: int = 0) -> None:
    doc.values.setdefault(path, _mark(node))
    if isinstance(node, yaml.CollectionNode):
        # An alias re-enters a node already indexed: walking it again would make
        # recursive or "billion laughs" documents loop or explode. Its anchor has
        # the positions; the alias path falls back to where the alias is used.
        if id(node) in doc._seen or depth > 200:
            return
        doc._seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                continue
            key = knode.value
            child = (*path, key)
            if key in seen:
                doc.duplicate_keys.append((child, _mark(knode)))
            seen.add(key)
            doc.keys[child] = _mark(knode)
            doc.values.pop(child, None)  # the last duplicate wins, like the constructor
            _index(vnode, child, doc, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), doc, depth + 1)
    elif isinstance(node, yaml.ScalarNode):
        doc.scalars.append((path, node.value, node.tag.rsplit(":", 1)[-1], _mark(node)))


def load_yaml_text(text: str) -> YamlDoc:
    """Parse one YAML document with positions.

    Raises:
        YamlSyntaxError: the text is not valid YAML (or holds several documents).
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDoc(data=None)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        raise YamlSyntaxError(f"YAML syntax error: {problem}{context}", line, col) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"YAML syntax error: {exc}", 1, 1) from exc
    finally:
        loader.dispose()
    doc = YamlDoc(data=data)
    _index(node, (), doc)
    return doc


def load_yaml_file(path: str | Path) -> YamlDoc:
    """Read and parse ``path`` (UTF-8) with positions."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YamlSyntaxError(f"not UTF-8 text: {exc.reason}", 1, 1) from exc
    return load_yaml_text(text)
