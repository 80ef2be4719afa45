"""Reading YAML as a config means it: one value per key, and the booleans of YAML 1.2.

PyYAML follows YAML 1.1, where a repeated key silently keeps the last value and `on`, `off`,
`yes`, `no`, `y`, `n` are booleans, so `infer.amp: off` arrived as `false` and was refused as
not one of auto/bf16/fp16/off. Here a repeated key is an error naming both lines, and only
`true`/`false` are booleans (YAML 1.2 core schema); pydantic still reads the string `"on"` as
true where a key is a boolean.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import yaml

BOOLEAN = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


class DuplicateKey(yaml.YAMLError):
    """A mapping repeats a key."""


class ConfigLoader(yaml.SafeLoader):
    """SafeLoader with unique keys and YAML 1.2 booleans."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, Any]]]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKey(
                    f"key {key!r} appears twice in one mapping (lines {seen[key]} and {line}); "
                    "YAML would keep only the last"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:bool", BOOLEAN, list("tTfF"))


def load_yaml(text: str) -> Any:
    """The YAML document `text`, read by ConfigLoader (yaml.YAMLError when it is not valid)."""
    return yaml.load(text, Loader=ConfigLoader)
