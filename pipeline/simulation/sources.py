"""The simulator's sources, one registry: what makes charge in a frame, by name.

A `Source` is its name (its section under `sources:` in the config), the config model of that
section, and the function that draws `n` of its events as track segments. The class its
deposits are labelled with is the config's (`SourcesConfig.labels`: a physical source labels its
own name; an added one says `label`). The five physical sources are registered here, in the
order the simulator draws them (the same seed gives the same frames); another one (a nuclear
recoil, a detector artefact) is one function and one `register` call, and a section of the
config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from pipeline.config import (
    AlphaConfig,
    ConfigError,
    ElectronConfig,
    MuonConfig,
    TritiumConfig,
    XrayConfig,
)
from pipeline.config.stages import SimulationSections
from pipeline.simulation import alphas, delta_rays, physics

# (n events, the source's section, the whole config, rng) -> their segments, events 0..n-1
Draw = Callable[[int, Any, SimulationSections, np.random.Generator], physics.Segments]


@dataclass(frozen=True)
class Source:
    name: str
    model: type[BaseModel]  # the config model of its section
    draw: Draw


SOURCES: dict[str, Source] = {}


def register(source: Source) -> Source:
    """Add a source (or replace the one of its name); the simulator draws it wherever the config
    has a section of its name."""
    SOURCES[source.name] = source
    return source


def section(config: SimulationSections, name: str) -> Any:
    """The config section of source `name`, checked against the source's own model."""
    raw = config.sources.sections()[name]
    model = SOURCES[name].model
    if isinstance(raw, model):
        return raw
    try:
        return model.model_validate(raw.model_dump())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"config key 'sources.{name}.{where}': {first['msg']}") from None


def configured(config: SimulationSections) -> list[tuple[Source, Any, str]]:
    """(source, its section, the class it labels) of every source the config has, in the
    registry's order; a section no registered source draws is a ConfigError."""
    labels = config.sources.labels()
    unknown = [name for name in labels if name not in SOURCES]
    if unknown:
        raise ConfigError(
            f"config key 'sources.{unknown[0]}': no source of that name is registered "
            f"(registered: {', '.join(SOURCES)}; pipeline/simulation/sources.py)"
        )
    chosen = [source for source in SOURCES.values() if source.name in labels]
    return [(source, section(config, source.name), labels[source.name]) for source in chosen]


def _muon(n: int, cfg: MuonConfig, c: SimulationSections, rng: np.random.Generator):
    tracks = physics.muon_segments(n, cfg, c.detector, c.physics, rng)
    return delta_rays.add_delta_rays(tracks, cfg, c.detector, c.physics, rng)


def _electron(n: int, cfg: ElectronConfig, c: SimulationSections, rng: np.random.Generator):
    return physics.electron_segments(n, cfg, c.detector, c.physics, rng)


def _tritium(n: int, cfg: TritiumConfig, c: SimulationSections, rng: np.random.Generator):
    return physics.tritium_segments(n, cfg, c.detector, c.physics, rng)


def _xray(n: int, cfg: XrayConfig, c: SimulationSections, rng: np.random.Generator):
    return physics.xray_segments(n, cfg, c.detector, rng)


def _alpha(n: int, cfg: AlphaConfig, c: SimulationSections, rng: np.random.Generator):
    return alphas.alpha_segments(n, cfg, c.detector, rng)


for _source in (
    Source("muon", MuonConfig, _muon),
    Source("electron", ElectronConfig, _electron),
    Source("tritium", TritiumConfig, _tritium),
    Source("xray", XrayConfig, _xray),
    Source("alpha", AlphaConfig, _alpha),
):
    register(_source)
