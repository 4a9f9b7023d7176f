"""YAML reading that remembers where each value came from, so a bad template or profile is reported as
``file:line: field: problem`` instead of a bare ``KeyError``.

    doc = read_yaml(text, "prompt_templates/products/t-shirt.yaml")
    doc.data["slots"]["color"]["default"]
    doc.line("slots", "color", "default")      # 1-based line of that value
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from workbench.yamlsafe import YamlRefused, parse_yaml


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file or an input: where it is and what is wrong."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file and self.line else self.file
        return ": ".join(part for part in (where, self.field, self.message) if part)


class PromptError(ValueError):
    """Bad template, profile, slot value or batch request. ``problems`` lists every one found, each naming its place."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem("", None, "", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class YamlDoc:
    """Parsed YAML plus the line of every value, keyed by its path of mapping keys and list indexes."""

    file: str
    data: Any
    lines: dict[tuple, int] = field(default_factory=dict)
    block_styles: dict[tuple, str] = field(default_factory=dict)

    def line(self, *path: Any) -> int | None:
        """Line of the value at ``path``, or of its nearest ancestor that exists."""
        path = tuple(path)
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path)

    def line_in_text(self, path: tuple, offset: int) -> int | None:
        """Line of character ``offset`` inside the string at ``path`` (exact for ``|`` block scalars, which is how
        long template texts are written; other styles fold lines, so their first line is reported)."""
        start = self.line(*path)
        if start is None:
            return None
        if self.block_styles.get(path) == "|":
            return start + 1 + self.data_at(path)[:offset].count("\n")
        return start

    def data_at(self, path: tuple) -> Any:
        value = self.data
        for key in path:
            value = value[key]
        return value

    def problem(self, path: tuple, message: str) -> Problem:
        return Problem(self.file, self.line(*path), ".".join(str(p) for p in path), message)


def read_yaml(text: str, file: str) -> YamlDoc:
    """Parse ``text``; raise PromptError naming ``file`` and the line for bad YAML, a key given twice, anchors and
    aliases, or text over the size cap (``workbench.yamlsafe``: a few hundred bytes of aliases expand to billions)."""
    try:
        node, data = parse_yaml(text, what="templates and brand profiles")
    except YamlRefused as exc:
        raise PromptError(Problem(file, exc.line, "", exc.message)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise PromptError(Problem(file, line, "", f"bad YAML: {exc.problem or exc}")) from None
    except yaml.YAMLError as exc:
        raise PromptError(Problem(file, None, "", f"bad YAML: {exc}")) from None
    doc = YamlDoc(file, data)
    if node is not None:
        _record(node, (), doc)
    return doc


def _record(node: yaml.Node, path: tuple, doc: YamlDoc, line: int | None = None) -> None:
    # A mapping value is located at its key ("color:" rather than the first line of color's own mapping).
    doc.lines[path] = line or node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode) and node.style == "|":
        doc.block_styles[path] = "|"
    elif isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise PromptError(Problem(doc.file, key_node.start_mark.line + 1, ".".join(map(str, path + (key,))),
                                          f"key given twice (first on line {seen[key]})"))
            seen[key] = key_node.start_mark.line + 1
            _record(value_node, path + (key,), doc, seen[key])
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record(item, path + (i,), doc)
