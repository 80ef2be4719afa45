"""The one configuration system: typed models, YAML loading, overrides and the JSON Schema.

`configs/default.yaml` is the single source of every value; a user's YAML file and command-line
overrides are merged on top of it and the result is validated into the pydantic models of
`pipeline.config.sections`. `configs/schema.yaml` is generated from these models
(``python -m pipeline.config``) and is what the Snakefile validates against, so both paths
enforce the same rules.

Imports: `core` (see `pipeline.LAYERS`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from pipeline.config.base import Settings
from pipeline.config.sections import (
    ActivityConfig,
    ArtefactShapesConfig,
    AugmentConfig,
    CalibrateConfig,
    CeilingConfig,
    ClassicalConfig,
    Config,
    DetectorConfig,
    FitsConfig,
    InferConfig,
    IOConfig,
    JobResources,
    ModelConfig,
    NormaliseConfig,
    PhysicsConfig,
    PriorsConfig,
    ReleaseConfig,
    Section,
    SimDataset,
    SimulateConfig,
    StreamConfig,
    TilesConfig,
    TrackingConfig,
    TrainConfig,
    WorkflowConfig,
    WorkflowResources,
)
from pipeline.config.sources import (
    AddedSource,
    AlphaConfig,
    BetaBranch,
    ElectronConfig,
    MuonConfig,
    SourcesConfig,
    TritiumConfig,
    XrayConfig,
    XrayLine,
)
from pipeline.config.yamlfile import load_yaml
from pipeline.core.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG",
    "REPO_ROOT",
    "SCHEMA_PATH",
    "ActivityConfig",
    "AddedSource",
    "AlphaConfig",
    "ArtefactShapesConfig",
    "AugmentConfig",
    "BetaBranch",
    "CalibrateConfig",
    "CeilingConfig",
    "ClassicalConfig",
    "Config",
    "ConfigError",
    "DetectorConfig",
    "ElectronConfig",
    "FitsConfig",
    "IOConfig",
    "InferConfig",
    "JobResources",
    "ModelConfig",
    "MuonConfig",
    "NormaliseConfig",
    "PhysicsConfig",
    "PriorsConfig",
    "ReleaseConfig",
    "Section",
    "SimDataset",
    "SimulateConfig",
    "SourcesConfig",
    "StreamConfig",
    "TilesConfig",
    "TrackingConfig",
    "TrainConfig",
    "TritiumConfig",
    "WorkflowConfig",
    "WorkflowResources",
    "XrayConfig",
    "XrayLine",
    "config_to_dict",
    "deep_merge",
    "json_schema",
    "load_config",
    "set_key",
    "validate_config",
    "write_config_sections",
    "write_schema",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"
SCHEMA_PATH = REPO_ROOT / "configs" / "schema.yaml"


# --------------------------------------------------------------------------------------------
# Loading, merging, overrides


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a text file (byte {exc.start} is not UTF-8); a config is YAML"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of config keys")
    return data


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Return `base` with `update` merged in; nested mappings merge, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def set_key(data: dict[str, Any], dotted_key: str, value: Any) -> None:
    """Set `a.b.c` in a nested dict, creating mappings on the way."""
    *parents, leaf = dotted_key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"config key '{dotted_key}': '{part}' is not a section")
    node[leaf] = value


def _valid_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the section at `loc` (the parent of a rejected key)."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return []
    return sorted(model.model_fields)


def _format_error(error: ErrorDetails, source: str) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(part) for part in loc) or "<top level>"
    if error["type"] == "extra_forbidden":
        valid = _valid_keys(Config, loc)
        hint = f" (valid keys here: {', '.join(valid)})" if valid else ""
        return f"{source}: unknown config key '{key}'{hint}"
    if error["type"] == "missing" and len(loc) == 3 and loc[0] == "sources" and loc[2] == "label":
        physical = ", ".join(SourcesConfig.model_fields)  # a typo, or an added source lacking label
        return (
            f"{source}: unknown config key 'sources.{loc[1]}' (valid keys here: {physical}; a "
            "source added by name needs 'label', 'rate_per_frame' and a registered function)"
        )
    if error["type"] == "missing":
        return f"{source}: config key '{key}' is missing"
    message = error["msg"].removeprefix("Value error, ")
    got = repr(error.get("input"))
    if isinstance(error.get("input"), dict):  # a whole section: the message names the keys
        return f"{source}: config key '{key}': {message}"
    return f"{source}: config key '{key}': {message} (got {got[:200]})"


def validate_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a merged config mapping, and the config each simulated dataset's overrides make
    of it; the first problem becomes a one-line ConfigError."""
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc.errors()[0], source)) from None
    for name, dataset in config.simulate.datasets.items():
        _validate_overrides(data, name, dataset.overrides, source)
    return config


def _validate_overrides(
    data: dict[str, Any], name: str, overrides: dict[str, Any], source: str
) -> None:
    """The config the dataset `name` is simulated with, checked now rather than when its job
    runs."""
    if not overrides:
        return
    update: dict[str, Any] = {}
    for key, value in overrides.items():
        set_key(update, key, value)
    changed = deep_merge(data, update)
    try:
        Config.model_validate(changed)
    except ValidationError as exc:
        where = f"{source}, simulate.datasets.{name}.overrides"
        raise ConfigError(_format_error(exc.errors()[0], where)) from None


_DEFAULT_PARSED: dict[tuple[int, int], dict[str, Any]] = {}


def _default_data() -> dict[str, Any]:
    """A fresh copy of `configs/default.yaml`'s mapping, parsed once per version of the file
    (PyYAML's pure-Python parser is ~85 % of a load; a session loads the config often)."""
    try:
        stat = DEFAULT_CONFIG.stat()
    except OSError:
        return _read_yaml(DEFAULT_CONFIG)  # names the missing file
    version = (stat.st_mtime_ns, stat.st_size)
    if version not in _DEFAULT_PARSED:
        _DEFAULT_PARSED.clear()
        _DEFAULT_PARSED[version] = _read_yaml(DEFAULT_CONFIG)
    return copy.deepcopy(_DEFAULT_PARSED[version])


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load `configs/default.yaml`, merge the user's file and dotted-key overrides, validate."""
    data = _default_data()
    source = str(DEFAULT_CONFIG)
    if path is not None and Path(path).resolve() != DEFAULT_CONFIG:
        data = deep_merge(data, _read_yaml(Path(path)))
        source = str(path)
    for key, value in (overrides or {}).items():
        set_key(data, key, value)
    if overrides:
        source = f"{source} (with command-line overrides)"
    return validate_config(data, source)


def config_to_dict(config: Settings) -> dict[str, Any]:
    """Plain nested dict of a config, as it would be written to YAML."""
    return config.model_dump(mode="json")


def write_config_sections(sections: dict[str, Any], path: str | Path) -> None:
    """Write config sections as YAML (a stage's slice of the workflow config), atomically."""
    from pipeline.core.atomic import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(yaml.safe_dump(sections, sort_keys=False))


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that `configs/schema.yaml` holds."""
    from pipeline.config.describe import describe_schema, key_comments

    schema = describe_schema(Config.model_json_schema(), key_comments(DEFAULT_CONFIG.read_text()))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = (
        "Generated from pipeline/config/ by `python -m pipeline.config`; do not edit by hand."
    )
    return schema


def write_schema(path: Path = SCHEMA_PATH) -> None:
    from pipeline.core.atomic import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(yaml.safe_dump(json_schema(), sort_keys=False))
