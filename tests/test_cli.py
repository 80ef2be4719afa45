"""`python -m pipeline <stage>`: flags map to config keys or the stage function's path
arguments, help says what a stage reads and writes, bad input ends in one line on stderr and
exit status 2 with no output file."""

import inspect
import subprocess
import sys

import pytest
from pydantic import BaseModel

from pipeline.cli import STAGES, build_parser, main


def _has_key(model: type[BaseModel], dotted: str) -> bool:
    for part in dotted.split("."):
        field = model.model_fields.get(part)
        if field is None:
            return False
        model = field.annotation
    return True


@pytest.mark.parametrize("stage", STAGES)
def test_every_flag_maps_to_a_config_key_or_an_argument_of_the_stage(stage):
    """A flag sets a config key of the stage's settings, or fills a parameter of the stage's
    function; the function takes the settings and exactly the path arguments its flags give."""
    settings = STAGES[stage].settings_class()
    parameters = inspect.signature(STAGES[stage].function()).parameters
    args = {flag.arg for flag in STAGES[stage].flags if flag.arg}
    assert set(list(parameters)[1:]) == args, stage
    for flag in STAGES[stage].flags:
        assert (flag.key is None) != (flag.arg is None), f"{stage} {flag.name}"
        if flag.key:
            assert _has_key(settings, flag.key), f"{stage} {flag.name} -> {flag.key}"
    required = {n for n, p in parameters.items() if p.default is p.empty} - {"settings"}
    assert required == {f.arg for f in STAGES[stage].flags if f.arg and f.required}, stage


def test_infer_flags_choose_the_path():
    from pipeline.cli import overrides_from

    parse = build_parser().parse_args
    assert overrides_from(parse(["infer", "--dense", "--runtime", "torch"])) == {
        "infer.sparse.enabled": False,
        "infer.runtime": "torch",
    }
    assert "infer.sparse.enabled" not in overrides_from(parse(["infer"]))


@pytest.mark.parametrize("stage", STAGES)
def test_help_says_what_the_stage_reads_and_writes(stage, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([stage, "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Reads:" in text and "Writes:" in text
    for flag in STAGES[stage].flags:
        assert f"[config: {flag.key}]" in text or f"[argument: {flag.arg}]" in text


def test_simulate_command_writes_hdf5_and_root(tmp_path, capsys):
    out = tmp_path / "s.h5"
    code = main(
        [
            "simulate",
            "--out",
            str(out),
            "--frames",
            "1",
            "--seed",
            "3",
            "--root",
            "--height",
            "48",
            "--width",
            "40",
        ]
    )
    assert code == 0
    assert out.is_file() and out.with_suffix(".root").is_file()
    assert code == main(["inspect", "--input", str(out.with_suffix(".root"))])
    summary = capsys.readouterr().out
    assert "format: root" in summary and "- 48" in summary and "- 40" in summary


def test_set_overrides_any_key(tmp_path):
    out = tmp_path / "s.h5"
    assert (
        main(
            [
                "simulate",
                "--out",
                str(out),
                "--frames",
                "1",
                "--set",
                "detector.height=16",
                "--set",
                "detector.width=24",
            ]
        )
        == 0
    )
    assert out.is_file()


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--set", "detector.hieght=5"], "unknown config key 'detector.hieght'"),
        (["--height", "-4"], "config key 'detector.height'"),
        (["--set", "simulate.frames=0"], "config key 'simulate.frames'"),
    ],
)
def test_bad_config_through_cli_is_one_line_and_writes_nothing(tmp_path, capsys, args, pattern):
    out = tmp_path / "s.h5"
    assert main(["simulate", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and pattern in err
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_directory_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the output directory should be")
    out = blocker / "sub" / "s.h5"
    code = main(["simulate", "--out", str(out), "--frames", "1", "--height", "16", "--width", "16"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(blocker) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_dir"]


def test_inspect_missing_file_through_python_m(tmp_path):
    missing = tmp_path / "absent.h5"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "inspect", "--input", str(missing)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and str(missing) in result.stderr
    assert "Traceback" not in result.stderr


def _file_size_limit(limit: int):
    """preexec_fn: a full disk, simulated by a file-size limit (writes fail with EFBIG)."""
    import resource
    import signal

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("root", [False, True], ids=["hdf5", "root"])
def test_disk_full_is_one_line_and_leaves_nothing(tmp_path, root):
    out = tmp_path / "out" / "s.h5"
    args = [
        sys.executable,
        "-m",
        "pipeline",
        "simulate",
        "--out",
        str(out),
        "--frames",
        "3",
        "--height",
        "256",
        "--width",
        "256",
    ] + (["--root"] if root else [])
    result = subprocess.run(
        args, capture_output=True, text=True, check=False, preexec_fn=_file_size_limit(200_000)
    )
    lines = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "File too large" in lines[0] and "s." in lines[0]
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("wrapped", [OSError, RuntimeError, KeyError])
def test_a_stop_that_a_library_turns_into_any_error_exits_as_the_signal(monkeypatch, wrapped):
    """SIGTERM mid-write: whatever a library makes of the handler's SystemExit (h5py: OSError
    or RuntimeError), the exit status stays 128 + SIGTERM (a stop), not 2 (bad input) nor a
    traceback, and nothing is printed as an error; the next command is judged afresh."""
    import os
    import signal

    from pipeline import commands
    from pipeline.simulation import simulate

    def interrupted_write(settings, out):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except BaseException as exc:
            raise wrapped(f"{out}: write failed (interrupted)") from exc
        raise AssertionError("the handler did not run")

    monkeypatch.setattr(simulate, "run", interrupted_write)
    monkeypatch.setattr(commands.Stage, "function", lambda self: simulate.run)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert main(["simulate", "--out", "/nonexistent/s.h5"]) == 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert main(["simulate", "--out", "/nonexistent/x.txt"]) == 2  # bad input again after it


@pytest.mark.parametrize("stage", STAGES)
def test_every_file_a_stage_names_is_declared_an_input_or_an_output(stage):
    """The declaration is the one table: each path argument, and each config key that names a
    file, is tagged, so the path checks and the command line read the same thing."""
    from pipeline.commands import INPUT, OUTPUT

    for flag in STAGES[stage].flags:
        if flag.arg and flag.arg not in ("names", "variant", "index"):  # not files
            assert flag.role in (INPUT, OUTPUT), f"{stage} {flag.name}"
        if flag.role == INPUT and flag.key:
            assert _has_key(STAGES[stage].settings_class(), flag.key), f"{stage} {flag.name}"


def test_each_stage_is_declared_beside_its_function_and_a_command_loads_only_its_own():
    """One declaration per stage, in the module of the function it runs (pipeline/commands.py
    only says which module); `pipeline classical` imports neither torch nor another stage."""
    import subprocess
    import sys
    from pathlib import Path

    from pipeline.commands import STAGES, WHERE, declared_settings

    package = Path(__file__).resolve().parents[1] / "pipeline"
    declaring = {
        str(p.relative_to(package).with_suffix("")).replace("/", ".")
        for p in package.rglob("*.py")
        if "\nSTAGE = Stage(" in p.read_text()
    }
    assert declaring == {m.removeprefix("pipeline.") for m in WHERE.values()}
    for name, stage in STAGES.items():
        assert stage.run.__module__ == WHERE[name] and stage.name == name
        assert declared_settings(name) is stage.settings  # what the workflow reads unimported
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('torch' in sys.modules, 'pipeline.inference.infer' in "
        "sys.modules))\n"
        "from pipeline.cli import main\n"
        "main(['classical', '--help'])\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert run.stdout.split()[-2:] == ["False", "False"], run.stdout[-200:]


def test_a_map_command_says_what_it_found_and_every_value_it_took_from_a_default(tmp_path, capsys):
    """A FITS file without GAIN, pixel size or exposure: one warning line for each value the
    run took from a default, then the clusters of each class, then what it wrote."""
    import numpy as np
    from astropy.io import fits

    frame = np.random.default_rng(1).normal(1000, 3, (40, 48)).astype(np.float32)
    frame[10:13, 20:23] += 400.0
    fits.PrimaryHDU(frame).writeto(tmp_path / "mine.fits")
    argv = ["classical", "--input", str(tmp_path / "mine.fits"), "--output", str(tmp_path / "m.h5")]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    warned = [line for line in lines if line.startswith("warning: mine.fits states no ")]
    assert [w.split("states no ")[1].split(":")[0] for w in warned] == [
        "gain",
        "pixel size",
        "exposure",
    ]
    assert "took 1 ADU/e- (the default" in warned[0]
    found = next(line for line in lines if line.startswith("clusters in 1 frames: "))
    assert sum(int(part.split()[-1]) for part in found.split(": ")[1].split(", ")) >= 1
    assert lines[-1].startswith(f"wrote {tmp_path / 'm.h5'}: 1 frames")


def test_the_activity_says_not_detected_below_the_decision_threshold(tmp_path, capsys):
    """An empty catalogue: the printout and the JSON say 'not detected', with the decision
    threshold, the detection limit, where the efficiency came from and a legend."""
    import json

    from pipeline.results.clusters import empty_catalogue, write_catalogue
    from tests.test_io import h5_file

    frames = h5_file(tmp_path / "f.h5")
    write_catalogue(empty_catalogue(), tmp_path / "c.parquet")
    argv = ["activity", "--catalogue", str(tmp_path / "c.parquet"), "--frames", str(frames)]
    argv += ["--out", str(tmp_path / "a.json"), "--set", "activity.efficiency=0.3"]
    assert main([*argv, "--set", "activity.exposure_s=600"]) == 0
    said = capsys.readouterr().out
    assert "NOT DETECTED: below the decision threshold" in said
    assert "decision threshold" in said and "minimum detectable activity (MDA)" in said
    assert "efficiency 0.3 +- 0: given (activity.efficiency" in said
    result = json.loads((tmp_path / "a.json").read_text())
    assert result["detected"] is False and result["activity_bq"] == 0.0
    assert 0 <= result["decision_threshold_bq"] < result["mda_bq"]  # no background: L_C = 0
    assert result["efficiency_route"].startswith("given") and "mda_bq" in result["legend"]
    assert float(f"{result['mda_bq']:.4g}") == result["mda_bq"]  # rounded to 4 digits
