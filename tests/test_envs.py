"""The rules' conda environment (envs/pipeline.yaml) holds what the rules run: every runtime
dependency of the package at the same lower bound, nothing for tests or notebooks, and every
rule points to it. Where conda is at hand, Snakemake builds it."""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch", "dask[array]": "dask"}  # pip name -> conda-forge name
NOT_RUN_BY_RULES = {"snakemake"}  # runs the rules; the jobs do not import it
DEV_TOOLS = {"pytest", "ruff", "hypothesis", "jupyterlab", "nbclient", "nbformat", "ipykernel"}


def _requirements(lines: list[str]) -> dict[str, str]:
    pairs = (re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)(.*)", line.strip()).groups() for line in lines)
    return {name: bound for name, bound in pairs}


def test_the_rule_environment_has_the_runtime_dependencies_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "envs" / "pipeline.yaml").read_text())
    listed = _requirements([d for d in env["dependencies"] if isinstance(d, str)])
    assert listed.pop("python") == "=3.11"
    wanted = {
        CONDA_NAMES.get(name, name): bound
        for name, bound in _requirements(project["dependencies"]).items()
        if name not in NOT_RUN_BY_RULES
    }
    assert listed == wanted
    assert not DEV_TOOLS & set(listed)
    assert all(isinstance(d, str) for d in env["dependencies"])  # no pip section, no `-e .`


def test_every_rule_runs_in_the_rule_environment():
    for rules in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule )", rules.read_text())[1:]:
            name = block.split(":")[0]
            if "localrule: True" in block:  # runs in Snakemake's own process
                continue
            assert '    conda:\n        "../envs/pipeline.yaml"' in block, (rules.name, name)


@pytest.mark.skipif(shutil.which("conda") is None, reason="needs conda")
def test_snakemake_builds_the_conda_environments(tmp_path):
    result = subprocess.run(
        ["snakemake", "--sdm", "conda", "--conda-create-envs-only", "--cores", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
