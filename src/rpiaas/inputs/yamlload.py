"""The YAML loader of rpiaas input: PyYAML's safe loader, bounded.

:class:`Loader` composes a YAML document into nodes as PyYAML's safe loader
does, with the resolvers a configuration file wants, and refuses (with
:class:`Refused`, located by line) nesting deeper than ``RPIAAS_MAX_DEPTH``
and aliases that would expand past ``RPIAAS_MAX_ALIAS_VALUES`` values, before
a value is built.  :mod:`rpiaas.inputs.source` builds the data and the errors.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

import yaml

from . import limits

__all__ = ["Loader", "Refused"]


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader, minus the surprises for a configuration file.

    Dates stay strings (no field of ours is a date, and dates are not JSON);
    ``=`` and ``!`` are plain strings (PyYAML resolves them to tags it cannot
    construct); and ``1e-3`` or ``2.5e6`` are numbers, as in YAML 1.2 and JSON,
    not strings as in YAML 1.1.

    While composing it keeps, for every node, the size and depth the node has
    once its aliases are expanded (aliases only ever point back to finished
    nodes, so one pass suffices): too deep a nesting or an alias bomb is
    refused here, before a single value is built.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.max_depth = int(limits.DEPTH.value())
        self.max_alias_values = int(limits.ALIAS_VALUES.value())
        self.depth = 0
        self.composed = 0  # nodes written out in the text
        self.shape: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, expanded depth)

    def refuse(self, mark: yaml.Mark | None, message: str) -> NoReturn:
        raise Refused(mark.line + 1 if mark is not None else None, message)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            alias = super().compose_node(parent, index)
            assert alias is not None  # an alias always names a node
            return alias
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        self.depth += 1
        if self.depth > self.max_depth:
            self.refuse(mark, f"nested deeper than {self.max_depth} levels ({limits.DEPTH.hint()})")
        try:
            composed = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        assert composed is not None  # an event that starts a node makes one
        node = composed
        self.composed += 1
        size, depth = 1, 1
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        for child in children:
            # a child still being composed is an alias to an ancestor: a cycle, which the
            # builder reports at its key
            s, d = self.shape.get(id(child), (1, 1))
            size += s
            depth = max(depth, d + 1)
        if depth > self.max_depth:
            self.refuse(mark, f"aliases nest this value deeper than {self.max_depth} levels "
                              f"({limits.DEPTH.hint()})")
        if size > self.composed + self.max_alias_values:
            self.refuse(mark, f"aliases expand this value to {size:,} values, more than "
                              f"{self.max_alias_values:,} beyond those written "
                              f"({limits.ALIAS_VALUES.hint()})")
        self.shape[id(node)] = (size, depth)
        return node


class Refused(Exception):
    """Raised inside the composer; :func:`load` turns it into a located :class:`LimitError`."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (
        "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value", "tag:yaml.org,2002:yaml")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))

