"""YAML for configuration files: safe loading that refuses duplicate keys, with errors that say
where, and the error every configuration file raises (``ConfigFileError``).

With plain YAML a second ``routes:`` or ``detectors:`` in a file silently replaces the first,
and whatever the first held stops working without anyone noticing. ``load_strict_yaml`` refuses
it, naming both lines. Syntax errors name the line and column, and for an unclosed bracket the
line where it was opened (PyYAML reports those where the file ends).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml


class ConfigFileError(ValueError):
    """A configuration file is invalid. ``problems`` holds one ``place: problem`` line per
    problem; the message prefixes each with the source (the file name), one per line. Each kind
    of file has its own subclass (alert routes, detection pipeline, compliance policy)."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {problem}" for problem in self.problems))


class YamlProblem(ValueError):
    """The text is not valid YAML or repeats a key; ``str()`` is the message for people."""


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate keys."""


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping repeats a key (reported with both line numbers)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            continue  # an unhashable key: the constructor below reports it
        if key in first_line:
            raise _DuplicateKeyError(
                None, None,
                f"duplicate key {key!r} (first on line {first_line[key] + 1}); the second would silently replace the first",
                key_node.start_mark,
            )
        first_line[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_strict_yaml(text: str) -> object:
    """The YAML document in ``text`` (safe types only); raises YamlProblem."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        if isinstance(exc, _DuplicateKeyError):
            raise YamlProblem(f"{where}{problem}") from None
        context_mark = getattr(exc, "context_mark", None)
        if context and context_mark is not None and (mark is None or context_mark.line != mark.line):
            # An unclosed bracket is reported where the file ends; say where it was opened.
            detail = f"{problem} ({context} started on line {context_mark.line + 1})"
        else:
            detail = f"{problem} ({context})" if context else problem
        raise YamlProblem(f"{where}YAML syntax error: {detail}") from None
