"""Descriptions for the JSON Schema: every key's description, from one source.

`configs/default.yaml` documents every key in a comment beside it (a physics number with its
published source); those comments are the keys' documentation. The typed sections add a
`Field(description=...)` where a key needs more than a comment, or has none (keys of mappings
and lists that the default file writes inline). `describe_schema` gives each property of the
generated schema its field's description, else its comment in the default file, so the schema
that `configs/schema.yaml` holds describes every key.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_]\w*):(?P<rest>.*)$")


def _comment(rest: str) -> tuple[str, int | None]:
    """The comment of a YAML line's value part, and where its '#' is (None: no comment)."""
    quoted = None
    for i, char in enumerate(rest):
        if char in "'\"" and quoted in (None, char):
            quoted = None if quoted else char
        elif char == "#" and quoted is None and (i == 0 or rest[i - 1] in " \t"):
            return rest[i + 1 :].strip(), i
    return "", None


def key_comments(text: str) -> dict[str, str]:
    """dotted key -> its comment in a commented YAML file: the comment on the key's line and the
    comment lines aligned under it; a comment on lines of its own documents the key after it
    when that key has none beside it."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    last: tuple[str, int] | None = None  # the last key and the column of its comment
    above: list[str] = []  # comment lines of their own, waiting for the next key
    for line in text.splitlines():
        match = KEY.match(line)
        if match:
            indent = len(match["indent"])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match["key"]))
            dotted = ".".join(key for _, key in stack)
            comment, at = _comment(match["rest"])
            column = None if at is None else len(line) - len(match["rest"]) + at
            text_of = comment or " ".join(above)
            if text_of:
                comments[dotted] = text_of
            last, above = (dotted, column) if column is not None else None, []
        elif line.lstrip().startswith("#"):
            column, comment = line.index("#"), line.strip().lstrip("#").strip()
            if last is not None and column == last[1]:
                comments[last[0]] += " " + comment
            else:
                last, above = None, [*above, comment]
        else:
            last, above = None, []
    return comments


def _lookup(comments: dict[str, str], dotted: str) -> str | None:
    if dotted in comments:
        return comments[dotted]
    if "*" in dotted:
        return next((c for k, c in comments.items() if fnmatch.fnmatchcase(k, dotted)), None)
    return None


def _refs(prop: dict[str, Any]) -> list[tuple[str, str]]:
    """(the $defs name, the path step: '' for a field, '.*' for a mapping's or list's items)."""
    found = []
    for node, step in ((prop, ""), (prop.get("additionalProperties"), ".*"),
                       (prop.get("items"), ".*")):  # fmt: skip
        if not isinstance(node, dict):
            continue
        for option in [node, *node.get("anyOf", [])]:
            if "$ref" in option:
                found.append((option["$ref"].rsplit("/", 1)[-1], step))
    return found


def describe_schema(schema: dict[str, Any], comments: dict[str, str]) -> dict[str, Any]:
    """`schema` with a description on every property that has a field description or a comment
    (a section shared by several keys takes the comment of the first)."""
    defs = schema.get("$defs", {})
    seen: set[str] = set()

    def walk(node: dict[str, Any], path: str) -> None:
        for name, prop in node.get("properties", {}).items():
            dotted = f"{path}.{name}" if path else name
            if "description" not in prop:
                section = [defs[ref].get("description") for ref, step in _refs(prop) if not step]
                found = _lookup(comments, dotted) or next(filter(None, section), None)
                if found:
                    prop["description"] = found
            for ref, step in _refs(prop):
                if ref not in seen:
                    seen.add(ref)
                    walk(defs[ref], dotted + step)

    walk(schema, "")
    return schema


def undescribed(schema: dict[str, Any]) -> list[str]:
    """The properties of a schema (its own and its $defs') that have no description."""
    nodes = [("", schema), *((f"$defs.{n}", d) for n, d in schema.get("$defs", {}).items())]
    return [
        f"{where}.{name}".lstrip(".")
        for where, node in nodes
        for name, prop in node.get("properties", {}).items()
        if not prop.get("description")
    ]
