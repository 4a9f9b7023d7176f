"""The one way the workbench reads YAML that a user wrote (templates, brand profiles, training configs): bounded.

    node, data = parse_yaml(text, "templates")   # raises YamlRefused (with .line) or yaml.YAMLError
    text = read_yaml_file(path)               # refuses a file over MAX_YAML_BYTES before reading it

A YAML document can be small and still expand without bound: nine aliases of nine aliases of ... nine strings is
9**depth values for a few hundred bytes ("billion laughs"), and anything that walks the parsed data (our line
records, validation, rendering) walks every copy. So anchors and aliases (``&name`` / ``*name``) are refused as they
are read, before anything is built; so is nesting deeper than MAX_DEPTH (PyYAML composes recursively) and text over
MAX_YAML_BYTES. None of our formats needs anchors: a template repeats a value by writing it again.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_YAML_BYTES = 256 * 1024  # the largest shipped template is ~3 KiB
MAX_DEPTH = 64  # nested mappings/lists; our formats need 4


class YamlRefused(ValueError):
    """YAML we will not parse: too large, too deep, or using anchors/aliases. ``line`` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None):
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)


def _size_message(size: int) -> str:
    return f"YAML text is {size:,} bytes: the limit is {MAX_YAML_BYTES:,} bytes ({MAX_YAML_BYTES // 1024} KiB)"


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors, aliases and deep nesting while composing, before any value is built."""

    def __init__(self, stream: str, what: str):
        super().__init__(stream)
        self._what = what
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise YamlRefused(f"YAML anchors and aliases (&name / *name) are not allowed in {self._what}: "
                              "write the value out again",
                              event.start_mark.line + 1)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YamlRefused(f"YAML nested more than {MAX_DEPTH} levels deep", event.start_mark.line + 1)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_yaml(text: str, what: str = "workbench files") -> tuple[yaml.Node | None, Any]:
    """Compose and construct one YAML document from ``text``: its node tree (for line numbers) and its data.
    Raises YamlRefused for text over the size cap, anchors/aliases or deep nesting (its message names ``what`` the
    text is: "templates", "training configs"); yaml.YAMLError for bad YAML."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_YAML_BYTES:
        raise YamlRefused(_size_message(size))
    loader = _BoundedLoader(text, what)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def load_yaml(text: str, what: str = "workbench files") -> Any:
    """The data of ``text`` (see ``parse_yaml``)."""
    return parse_yaml(text, what)[1]


def read_yaml_file(path: str | Path) -> str:
    """The text of a YAML file, refusing one over the size cap before reading it (YamlRefused)."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise YamlRefused(_size_message(size))
    return path.read_text(encoding="utf-8")
