"""The stages, found by name: each is declared beside the function that runs it (`STAGE` in its
module, pipeline/core/stage.py says what a declaration holds); here is only where each lives.

`STAGES` maps a stage's name to its declaration, importing the stage's module on first use, so
a command imports only its own stage (the network's modules load torch). The command line
(pipeline/cli.py), the path checks (pipeline/paths.py) and the workflow's per-stage config
(rules/common.smk) read the declarations through it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline.core.stage import INPUT, OUTPUT, Beside, Flag, Stage

__all__ = ["INPUT", "OUTPUT", "STAGES", "Beside", "Flag", "Stage", "settings_of"]

# stage name -> the module whose STAGE declares it, in the order `pipeline --help` lists them
WHERE = {
    "simulate": "pipeline.simulation.simulate",
    "inspect": "pipeline.io.inspect",
    "train": "pipeline.learning.train",
    "temperature": "pipeline.learning.temperature",
    "infer": "pipeline.inference.infer",
    "classical": "pipeline.inference.classical",
    "ceiling": "pipeline.inference.ceiling",
    "evaluate": "pipeline.evaluation.evaluate",
    "suite": "pipeline.evaluation.suite",
    "efficiency": "pipeline.measurement.efficiency",
    "activity": "pipeline.measurement.activity",
    "reference": "pipeline.measurement.reference",
    "plot": "pipeline.reporting.view",
    "headline": "pipeline.reporting.headline",
    "forecast": "pipeline.reporting.forecast",
    "models": "pipeline.network.shipped",
    "export": "pipeline.learning.export",
}


class _Stages(Mapping[str, Stage]):
    """Stage name -> declaration, each module imported when its stage is first asked for."""

    def __getitem__(self, name: str) -> Stage:
        stage: Stage = importlib.import_module(WHERE[name]).STAGE
        assert stage.name == name, f"{WHERE[name]} declares {stage.name!r}, not {name!r}"
        return stage

    def __iter__(self) -> Iterator[str]:
        return iter(WHERE)

    def __len__(self) -> int:
        return len(WHERE)


STAGES = _Stages()


def settings_of(config: Any, stage: str) -> Any:
    """`stage`'s slice of a validated config: an instance of its declared settings class."""
    cls: Any = STAGES[stage].settings
    return cls.model_validate({name: getattr(config, name) for name in cls.model_fields})


def declared_settings(stage: str) -> Any:
    """`stage`'s settings class, read from its declaration's source without running the module
    (the workflow asks this of every stage when it parses; importing the network's modules would
    load torch each time). tests/test_cli.py checks it against the imported declaration."""
    from pipeline.config import stages

    spec = importlib.util.find_spec(WHERE[stage])
    assert spec is not None and spec.origin is not None, WHERE[stage]
    tree = ast.parse(Path(spec.origin).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
            "STAGE"
        ]:
            call = node.value
            assert isinstance(call, ast.Call) and isinstance(call.args[4], ast.Name)
            return getattr(stages, call.args[4].id)
    raise LookupError(f"{WHERE[stage]} has no STAGE declaration")


def stage_sections(stage: str) -> list[str]:
    """The config sections `stage` reads, in the order of `Config` (what the workflow writes
    into results/config/<stage>.yaml)."""
    from pipeline.config import Config

    fields = declared_settings(stage).model_fields
    return [name for name in Config.model_fields if name in fields]


def folder_files(stage: str) -> tuple[str, ...]:
    """The files `stage` writes into its output folder (what the path checks guard)."""
    return tuple(b.name for f in STAGES[stage].flags for b in f.beside if b.name)
