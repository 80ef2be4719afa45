"""No stage destroys an input: an output that is the same file as an input, or as another output
(same path, symlink, hard link, `..`, a catalogue's CSV twin, a file of an output directory), is
refused in one line, exit 2, before anything is read; every input keeps its bytes and no output
or temporary appears. A property test draws stages, keys and ways of aliasing."""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.io import write_map
from pipeline.results.clusters import empty_catalogue, write_catalogue
from tests.test_cli_refusals import checkpoint
from tests.test_io import h5_file

# each stage: its command with {name} placeholders for its input files, and its output flags
STAGES = {
    "infer": (
        ["infer", "--model", "{model}", "--input", "{frames}"],
        ["--output", "--catalogue"],
    ),
    "classical": (["classical", "--input", "{frames}"], ["--output", "--catalogue"]),
    "evaluate": (
        ["evaluate", "--truth", "{frames}", "--pred", "{map}", "--set", "tracking.enabled=false"],
        ["--out"],
    ),
    "activity": (
        ["activity", "--catalogue", "{catalogue}", "--frames", "{frames}", "--model", "{model}"],
        ["--out"],
    ),
    "train": (
        [
            "train",
            "--frames",
            "{frames}",
            "--val-frames",
            "{val}",
            "--set",
            "tracking.enabled=false",
        ],
        ["--out"],
    ),
}
INPUTS = {"infer": ["model", "frames"], "classical": ["frames"], "evaluate": ["frames", "map"]}
INPUTS |= {"activity": ["catalogue", "frames", "model"], "train": ["frames", "val"]}


@functools.cache
def checkpoint_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return checkpoint(Path(tmp) / "model.pt").read_bytes()


def make_inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    classes = load_config().classes
    (folder / "model.pt").write_bytes(checkpoint_bytes())
    files = {
        "frames": h5_file(folder / "frames.h5"),
        "val": h5_file(folder / "val.h5"),
        "model": folder / "model.pt",
        "catalogue": folder / "cat.parquet",
        "map": folder / "map.h5",
    }
    write_catalogue(empty_catalogue(), files["catalogue"])
    write_map(files["map"], np.zeros((3, 20, 24), np.uint8), classes, "frames.h5")
    return files


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under `folder` (temporaries included) and the hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def alias(target: Path, how: str, folder: Path) -> Path:
    """Another name for `target`: the same path, a symlink, a hard link or a `..` detour."""
    if how == "same":
        return target
    if how == "dotdot":
        (folder / "sub").mkdir(exist_ok=True)
        return folder / "sub" / ".." / target.name
    link = folder / f"{how}-{target.name}"
    if not link.exists():
        (os.symlink if how == "symlink" else os.link)(target, link)
    return link


def command(stage: str, files: dict[str, Path], outputs: dict[str, str]) -> list[str]:
    template, _ = STAGES[stage]
    argv = [part.format(**{k: str(v) for k, v in files.items()}) for part in template]
    for flag, path in outputs.items():
        argv += [flag, path]
    return argv


def assert_refused(capsys, argv: list[str], folder: Path, before: dict[str, str], *names: str):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "is the same file as" in err, err
    for name in names:
        assert name in err, (name, err)
    assert fingerprint(folder) == before  # inputs unchanged, no output, no temporary


CASES = {
    # stage, output flag, which input it names (None: another output), how
    "infer output is the frames": ("infer", "--output", "frames", "same"),
    "infer output is the model": ("infer", "--output", "model", "same"),
    "infer catalogue is the frames": ("infer", "--catalogue", "frames", "same"),
    "infer output is a symlink to the frames": ("infer", "--output", "frames", "symlink"),
    "classical output is the frames": ("classical", "--output", "frames", "same"),
    "classical output is a hard link to the frames": ("classical", "--output", "frames", "hard"),
    "classical output is the frames by a detour": ("classical", "--output", "frames", "dotdot"),
    "classical catalogue is the frames": ("classical", "--catalogue", "frames", "same"),
    "evaluate out is the truth": ("evaluate", "--out", "frames", "same"),
    "evaluate out is a map": ("evaluate", "--out", "map", "same"),
    "activity out is the frames": ("activity", "--out", "frames", "same"),
    "activity out is the catalogue": ("activity", "--out", "catalogue", "same"),
    "activity out is the model": ("activity", "--out", "model", "hard"),
    "train out is the training frames": ("train", "--out", "frames", "same"),
    "train out is the validation frames": ("train", "--out", "val", "symlink"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_output_that_is_an_input_is_refused(tmp_path, capsys, case):
    stage, flag, name, how = CASES[case]
    files = make_inputs(tmp_path)
    target = alias(files[name], how, tmp_path)
    before = fingerprint(tmp_path)
    other = {f: str(tmp_path / f"new{i}.out") for i, f in enumerate(STAGES[stage][1]) if f != flag}
    assert_refused(capsys, command(stage, files, {flag: str(target), **other}), tmp_path, before)


def test_outputs_that_are_one_file_are_refused(tmp_path, capsys):
    files = make_inputs(tmp_path)
    before = fingerprint(tmp_path)
    same = str(tmp_path / "m.h5")
    argv = command("classical", files, {"--output": same, "--catalogue": same})
    assert_refused(capsys, argv, tmp_path, before, "--catalogue", "--output")


def test_a_csv_catalogue_would_be_overwritten_by_its_own_twin(tmp_path, capsys):
    files = make_inputs(tmp_path)
    before = fingerprint(tmp_path)
    argv = command("classical", files, {"--output": str(tmp_path / "m.h5")})
    argv += ["--catalogue", str(tmp_path / "clusters.csv")]
    assert_refused(capsys, argv, tmp_path, before, "CSV twin")


def test_a_catalogue_twin_that_is_the_input_is_refused(tmp_path, capsys):
    """Formats are told by their bytes, so frames may be named .csv: the twin must not hit them."""
    files = make_inputs(tmp_path)
    files["frames"] = h5_file(tmp_path / "run.csv")
    before = fingerprint(tmp_path)
    argv = command("classical", files, {"--output": str(tmp_path / "m.h5")})
    argv += ["--catalogue", str(tmp_path / "run.parquet")]
    assert_refused(capsys, argv, tmp_path, before, "CSV twin", "run.csv")


def test_a_file_an_output_directory_would_get_is_refused(tmp_path, capsys):
    files = make_inputs(tmp_path)
    (tmp_path / "eval").mkdir()
    files["map"].rename(tmp_path / "eval" / "summary.json")  # a map stored under that name
    files["map"] = tmp_path / "eval" / "summary.json"
    before = fingerprint(tmp_path)
    argv = command("evaluate", files, {"--out": str(tmp_path / "eval")})
    assert_refused(capsys, argv, tmp_path, before, "summary.json")


def test_the_mlflow_database_is_an_output_too(tmp_path, capsys):
    files = make_inputs(tmp_path)
    before = fingerprint(tmp_path)
    argv = command("evaluate", files, {"--out": str(tmp_path / "eval")})
    argv = [a for a in argv if a not in ("--set", "tracking.enabled=false")]
    argv += ["--set", f"tracking.uri=sqlite:///{files['frames']}"]
    assert_refused(capsys, argv, tmp_path, before, "MLflow database")


def test_every_path_flag_of_every_stage_is_checked():
    """The search for more members of the family: each flag that names a file (a path argument
    of the stage's function, or a config key holding a model or a folder) is an input or an
    output of its stage in pipeline.paths, so none can escape the check."""
    from pipeline.cli import STAGES
    from pipeline.commands import settings_of
    from pipeline.config import load_config
    from pipeline.paths import flag as flag_of
    from pipeline.paths import stage_inputs, stage_outputs

    not_paths = {"train.device", "infer.device", "infer.runtime", "names", "variant"}
    not_paths |= {"tracking.uri"}  # checked as the MLflow database (test above)
    not_paths |= {"release.name"}  # a name (letters, digits, . _ -), part of the export's paths
    for stage, spec in STAGES.items():
        for flag in spec.flags:
            name = flag.key or flag.arg
            if flag.action or flag.type is not str or name in not_paths:
                continue
            value = ["/p/a", "/p/b"] if flag.nargs else "/p/a"
            overrides = {"activity.efficiency": None} | ({flag.key: value} if flag.key else {})
            settings = settings_of(load_config(overrides=overrides), stage)
            args = {flag.arg: value} if flag.arg else {}
            named = stage_inputs(stage, settings, args) + stage_outputs(stage, settings, args)
            label = f"'{flag.key}'" if flag.key else flag_of(flag.arg)
            assert any(label in what for what, _ in named), (stage, name)


def test_keys_set_with_set_are_checked_too(tmp_path, capsys):
    files = make_inputs(tmp_path)
    before = fingerprint(tmp_path)
    out = str(tmp_path / "m.h5")
    argv = ["infer", "--input", str(files["frames"]), "--output", out]
    argv += ["--set", f"infer.model={out}"]
    assert_refused(capsys, argv, tmp_path, before, "infer.model")


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_property_an_output_aliasing_an_input_never_changes_its_bytes(capsys, data):
    stage = data.draw(st.sampled_from(sorted(STAGES)), label="stage")
    flags = STAGES[stage][1]
    flag = data.draw(st.sampled_from(flags), label="output flag")
    name = data.draw(st.sampled_from(INPUTS[stage]), label="input")
    how = data.draw(st.sampled_from(["same", "symlink", "hard", "dotdot"]), label="alias")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = make_inputs(folder)
        target = alias(files[name], how, folder)
        before = fingerprint(folder)
        others = {f: str(folder / f"fresh{i}") for i, f in enumerate(flags) if f != flag}
        assert main(command(stage, files, {flag: str(target), **others})) == 2
        capsys.readouterr()
        assert fingerprint(folder) == before


@pytest.mark.parametrize("name", ["best", "last"])
def test_an_export_into_its_own_run_folder_keeps_the_runs_checkpoints(tmp_path, capsys, name):
    """An input folder stands for the files in it: `export --run R --dir R --name best` would
    replace the run's own best.pt (and `last`, the state `train --resume` needs)."""
    run = tmp_path / "run"
    run.mkdir()
    for file in ("best.pt", "last.pt"):
        (run / file).write_bytes(checkpoint_bytes())
    (tmp_path / "train.yaml").write_text("train: {seed: 1}\n")
    before = fingerprint(tmp_path)
    argv = ["export", "--run", str(run), "--train-config", str(tmp_path / "train.yaml")]
    argv += ["--dir", str(run), "--name", name]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{name}.pt" in err and "--run (its file" in err, err
    assert fingerprint(tmp_path) == before
