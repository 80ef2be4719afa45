"""Every bad input, through the command line: exit status 2, one line on stderr that names the
file (or config key) and the problem, and no output file. The frame-file cases are the reader's
table (tests/test_io.py), run through `classical` (which writes a map and a catalogue) and through
`evaluate` (which reads the truth with the configured classes); the model, config and output
cases through `infer` and `simulate`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.io import write_map
from pipeline.model import build_model, model_card, save_checkpoint
from tests.test_io import BAD_INPUTS, h5_file

# cases about labels and class names: `classical` reads frames only, so only `evaluate` sees them
TRUTH_ONLY = {"labels_shape", "labels_range", "labels_no_names", "names_mismatch"}
# not a bad input for the CLI: a directory as --input is refused, but by another rule
SKIP = {"directory"}


def sets(overrides: dict) -> list[str]:
    flags = []
    for key, value in overrides.items():
        flags += ["--set", f"{key}={value}"]
    return flags


def refused(capsys, argv: list[str], *names: str, out: Path) -> str:
    """Run the CLI; check the one-line refusal naming `names`, and that `out` stays empty."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for name in names:
        assert name in err, (name, err)
    assert not out.exists() or list(out.iterdir()) == [], list(out.iterdir())
    return err


@pytest.mark.parametrize("case", sorted(set(BAD_INPUTS) - SKIP))
def test_bad_frame_files(tmp_path, capsys, case):
    make, overrides, pattern = BAD_INPUTS[case]
    frames = make(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    flags = sets(overrides)
    if case not in TRUTH_ONLY:
        err = refused(
            capsys,
            [
                "classical",
                "--input",
                str(frames),
                "--output",
                str(out / "map.h5"),
                "--catalogue",
                str(out / "c.parquet"),
                *flags,
            ],
            str(frames),
            out=out,
        )
        assert err.startswith("pipeline classical: error: ") and re.search(pattern, err), err
    good_map = tmp_path / "map.h5"
    write_map(good_map, __import__("numpy").zeros((3, 20, 24), "uint8"), load_config().classes, "x")
    err = refused(
        capsys,
        [
            "evaluate",
            "--truth",
            str(frames),
            "--pred",
            str(good_map),
            "--out",
            str(out / "eval"),
            "--set",
            "tracking.enabled=false",
            *flags,
        ],
        str(frames),
        out=out,
    )
    assert re.search(pattern, err), err


@pytest.fixture
def frames(tmp_path) -> Path:
    return h5_file(tmp_path / "frames.h5")


def checkpoint(path: Path, classes=None, in_channels: int = 1) -> Path:
    overrides = {"model.in_channels": in_channels}
    if classes:
        overrides |= {
            "classes": classes,
            "train.class_weights": [1.0] * len(classes),
            "tiles.rare_classes": [],
        }
    config = load_config(overrides=overrides)
    torch.manual_seed(0)
    save_checkpoint(
        path, build_model(config.model, len(config.classes)), model_card(config, "h", {})
    )
    return path


def corrupt(path: Path) -> Path:
    path.write_bytes(b"PK\x03\x04 not really a checkpoint" * 10)
    return path


def truncated(path: Path) -> Path:
    data = checkpoint(path).read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


class Payload:
    """Unpickling this would run code: a weights_only load must refuse it."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({str(self.target)!r}, 'w').write('x')",))


def pickled_code(path: Path) -> Path:
    payload = Payload(path.with_name("PWNED"))
    torch.save({"card": {"classes": load_config().classes}, "state_dict": payload}, path)
    return path


MODELS = {
    "pickled code": (pickled_code, "not a readable checkpoint"),
    "corrupt": (corrupt, "not a readable checkpoint"),
    "truncated": (truncated, "not a readable checkpoint"),
    "other_classes": (lambda p: checkpoint(p, ["background", "tritium"]), "do not match"),
    "other_channels": (lambda p: checkpoint(p, in_channels=2), "input channel"),
    "missing": (lambda p: p, "no such checkpoint"),
}


@pytest.mark.parametrize("case", list(MODELS))
def test_bad_checkpoints(tmp_path, capsys, frames, case):
    make, pattern = MODELS[case]
    model = make(tmp_path / "model.pt")
    out = tmp_path / "out"
    out.mkdir()
    err = refused(
        capsys,
        ["infer", "--model", str(model), "--input", str(frames), "--output", str(out / "map.h5")],
        str(model),
        out=out,
    )
    assert pattern in err


CONFIGS = {
    "unknown key": (["--set", "tiles.sise=64"], "tiles.sise"),
    "wrong type": (["--set", "train.epochs=many"], "train.epochs"),
    "negative tile size": (["--set", "tiles.size=-64"], "tiles.size"),
    "bad yaml": (["--set", "infer.overlap=[0.5"], "infer.overlap"),
    "missing config file": (["--config", "/nowhere/my.yaml"], "/nowhere/my.yaml"),
}


@pytest.mark.parametrize("case", list(CONFIGS))
def test_bad_configs(tmp_path, capsys, frames, case):
    flags, name = CONFIGS[case]
    out = tmp_path / "out"
    out.mkdir()
    refused(
        capsys,
        ["classical", "--input", str(frames), "--output", str(out / "map.h5"), *flags],
        name,
        out=out,
    )


def test_unwritable_output(tmp_path, capsys, frames):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    out = tmp_path / "out"
    refused(
        capsys,
        ["classical", "--input", str(frames), "--output", str(blocker / "sub" / "map.h5")],
        str(blocker),
        out=out,
    )


@pytest.mark.parametrize(
    "shape, flags, pattern",
    [
        ((0, 20, 24), [], r"no pixels to read: frames shape \(0, 20, 24\)"),
        ((3, 0, 24), [], "no pixels to read"),
        # calibration that cannot work on these frames (no Fe-55 line in pure noise)
        ((3, 20, 24), ["--set", "calibrate.gain=fe55"], "cannot calibrate"),
    ],
)
def test_frames_the_stages_cannot_use(tmp_path, capsys, shape, flags, pattern):
    rng = __import__("numpy").random.default_rng(0)
    frames = h5_file(tmp_path / "f.h5", rng.normal(100, 2, shape).astype("float32"))
    out = tmp_path / "out"
    out.mkdir()
    err = refused(
        capsys,
        ["classical", "--input", str(frames), "--output", str(out / "m.h5"), *flags],
        str(frames),
        out=out,
    )
    assert re.search(pattern, err), err
