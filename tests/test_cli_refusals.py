"""Every bad input, through the command line: exit status 2, one line on stderr that names the
file (or config key) and the problem, and no output file. The frame-file cases are the reader's
table (tests/test_io.py), run through `classical` (which writes a map and a catalogue) and through
`evaluate` (which reads the truth with the configured classes); the model, config and output
cases through `infer` and `simulate`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.io import write_map
from pipeline.network.model import build_model, model_card, save_checkpoint
from tests.test_io import BAD_INPUTS, h5_file, put

# cases about labels and class names: `classical` reads frames only, so only `evaluate` sees them
TRUTH_ONLY = {"labels_shape", "labels_range", "labels_no_names", "names_mismatch"}
# not a bad input for the CLI: a directory as --input is refused, but by another rule
SKIP = {"directory"}


def sets(overrides: dict) -> list[str]:
    flags = []
    for key, value in overrides.items():
        flags += ["--set", f"{key}={value}"]
    return flags


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(capsys, argv: list[str], *names: str, out: Path) -> str:
    """Run the CLI; check the one-line refusal naming `names`, that `out` stays empty, that no
    file beside it (the inputs) changed and that no temporary was left anywhere."""
    before = snapshot(out.parent)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for name in names:
        assert name in err, (name, err)
    assert not out.exists() or list(out.iterdir()) == [], list(out.iterdir())
    assert snapshot(out.parent) == before
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


def checkpoint(path: Path, classes=None, in_channels: int | None = None) -> Path:
    """A checkpoint of the default architecture; `in_channels` makes the network (and its card's
    architecture) take another number of channels than the card's input has."""
    overrides = {}
    if classes:
        overrides |= {
            "classes": classes,
            "train.class_weights": dict.fromkeys(classes, 1.0),
            "tiles.rare_classes": [],
            "simulate.unsourced_classes": [c for c in classes if c != "background"],
        }
    config = load_config(overrides=overrides)
    arch = config.model
    if in_channels is not None:
        arch = arch.model_copy(update={"in_channels": in_channels})
    torch.manual_seed(0)
    card = model_card(config, "h", {})
    card["architecture"]["in_channels"] = arch.in_channels
    save_checkpoint(path, build_model(arch, len(config.classes)), card)
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


def edited(path: Path, edit_card=None, edit_weights=None) -> Path:
    """A valid checkpoint with its card or weights edited."""
    checkpoint(path)
    payload = torch.load(path, weights_only=True)
    if edit_card is not None:
        card = json.loads(payload["card"])
        payload["card"] = json.dumps(edit_card(card))
    if edit_weights is not None:
        edit_weights(payload["state_dict"])
    torch.save(payload, path)
    return path


def drop(key: str):
    return lambda card: {k: v for k, v in card.items() if k != key}


def with_card(**changes):
    return lambda card: {**card, **changes}


def nan_weight(state: dict) -> None:
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first].view(-1)[0] = float("nan")


MODELS = {
    "pickled code": (pickled_code, "not a readable checkpoint"),
    "corrupt": (corrupt, "not a readable checkpoint"),
    "truncated": (truncated, "not a readable checkpoint"),
    "other_classes": (
        lambda p: checkpoint(p, ["background", "neutron"]),
        "model classes ['neutron'] are not in the config",
    ),
    "other_channels": (lambda p: checkpoint(p, in_channels=1), "1 input channels, its normalise"),
    "missing": (lambda p: p, "no such checkpoint"),
    "nan weights": (lambda p: edited(p, edit_weights=nan_weight), "weights are not finite (1 NaN"),
    "card lacks normalise": (lambda p: edited(p, drop("normalise")), "card lacks ['normalise']"),
    "card lacks classes": (lambda p: edited(p, drop("classes")), "card lacks ['classes']"),
    "card format": (lambda p: edited(p, with_card(format=99)), "model card format 99"),
    "card not a mapping": (lambda p: edited(p, lambda c: [1, 2]), "card is list, not a mapping"),
    "card tile size": (lambda p: edited(p, with_card(tile_size=-64)), "tile_size -64 is not in"),
    "card normalise": (
        lambda p: edited(p, with_card(normalise={"kind": "log"})),
        "model card normalise is invalid",
    ),
    "card unknown encoder": (
        lambda p: edited(
            p, lambda c: {**c, "architecture": {**c["architecture"], "encoder": "resnet999"}}
        ),
        "cannot build the card's architecture (encoder 'resnet999')",
    ),
    "card bad architecture": (
        lambda p: edited(p, lambda c: {**c, "architecture": {**c["architecture"], "depth": 9}}),
        "model card architecture is invalid",
    ),
    "state_dict not a mapping": (
        lambda p: (
            torch.save({"state_dict": [1], "card": torch.load(checkpoint(p))["card"]}, p) or p
        ),
        "state_dict is list, not a mapping",
    ),
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
    "infinite exposure": (["--set", "activity.exposure_s=.inf"], "finite number"),
    "NaN overlap": (["--set", "infer.overlap=.nan"], "infer.overlap"),
    "bins finer than the template fills": (
        ["--set", "activity.bin_kev=0.001"],
        "19,500 bins of bin_kev 0.001",
    ),
    "X-ray weights all zero": (
        ["--set", "sources.xray.continuum_weight=0", "--set", "sources.xray.lines=[]"],
        "sources.xray.lines",
    ),
    "no X-ray weight": (
        [
            "--set",
            "sources.xray.continuum_weight=0",
            "--set",
            "sources.xray.lines=[{energy_kev: 5.9, weight: 0, attenuation_um: 29}]",
        ],
        "weights and continuum_weight are all 0",
    ),
    "a negative class weight": (["--set", "train.class_weights.muon=-1"], "must not be negative"),
    "a learning rate of 1e6": (["--set", "train.lr=1e6"], "train.lr"),
    "alpha energies falling": (
        ["--set", "sources.alpha.energy_kev=[8000, 4000]"],
        "an energy range must rise",
    ),
    "a fit range of 1e12 keV": (
        ["--set", "activity.energy_range_kev=[0.5, 1e12]"],
        "must rise from 0 keV or more to at most 1000 keV",
    ),
    "infinite rate in a dataset": (
        ["--set", "simulate.datasets.suite_busy.overrides={sources.muon.rate_per_frame: .inf}"],
        "simulate.datasets.suite_busy.overrides: config key 'sources.muon.rate_per_frame'",
    ),
    "dataset name with a space": (
        ["--set", "simulate.datasets={my data: {frames: 1, seed: 1}}"],
        "dataset name 'my data'",
    ),
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


CONFIG_FILES = {
    "binary config": (lambda p: put(p, bytes(range(256)) * 4), "not a text file"),
    "directory as config": (lambda p: p.mkdir() or p, "config file not found"),
    "config is a list": (lambda p: put(p, b"- 1\n- 2\n"), "top level must be a mapping"),
    "a key twice": (
        lambda p: put(p, b"infer:\n  overlap: 0.5\n  overlap: 0.25\n"),
        "key 'overlap' appears twice in one mapping (lines 2 and 3)",
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_FILES))
def test_bad_config_files(tmp_path, capsys, frames, case):
    make, pattern = CONFIG_FILES[case]
    config = make(tmp_path / "my.yaml")
    out = tmp_path / "out"
    out.mkdir()
    argv = ["classical", "--config", str(config), "--input", str(frames)]
    err = refused(capsys, [*argv, "--output", str(out / "m.h5")], str(config), out=out)
    assert pattern in err, err


# values that would make work explode (memory, window counts) or mean nothing
EXPLOSIVE = {
    "overlap 0.99": ({"infer.overlap": 0.99}, "infer.overlap"),
    "huge inference batch": ({"infer.batch_size": 1000}, "infer.batch_size x infer.window^2"),
    "huge window": ({"infer.window": 100000}, "infer.window"),
    "huge training batch": ({"tiles.size": 4096, "train.batch_size": 8}, "train.batch_size x"),
    "frame a million wide": ({"detector.width": 10**6}, "detector.width"),
    "a billion muons a frame": ({"sources.muon.rate_per_frame": 1e9}, "rate_per_frame"),
    "hot-pixel stack of 10^4 frames": ({"calibrate.hot_mask_frames": 10**4}, "hot_mask_frames"),
    "zero exposure": ({"activity.exposure_s": 0}, "activity.exposure_s"),
    "string exposure": ({"activity.exposure_s": "ten minutes"}, "activity.exposure_s"),
}


@pytest.mark.parametrize("case", list(EXPLOSIVE))
def test_config_values_that_would_explode(tmp_path, capsys, frames, case):
    overrides, key = EXPLOSIVE[case]
    out = tmp_path / "out"
    out.mkdir()
    argv = ["classical", "--input", str(frames), "--output", str(out / "m.h5"), *sets(overrides)]
    refused(capsys, argv, key, out=out)


def frames_file(path: Path, frames) -> Path:
    return h5_file(path, __import__("numpy").asarray(frames))


def saturated(path: Path) -> Path:
    import numpy as np

    data = np.full((3, 20, 24), 65535, np.uint16)
    data[:, :5] = 1000
    return frames_file(path, data)


NO_NOISE = {
    "constant frames": (
        lambda p: frames_file(p, __import__("numpy").full((3, 20, 24), 1000.0, "float32")),
        "sit at the frame's maximum",
    ),
    "saturated frames": (saturated, "frame 0: 75% of the pixels sit at the frame's maximum, 65535"),
}


@pytest.mark.parametrize("stage", ["classical", "infer"])
@pytest.mark.parametrize("case", list(NO_NOISE))
def test_frames_with_no_measurable_noise_are_refused_not_mapped_empty(
    tmp_path, capsys, case, stage
):
    make, pattern = NO_NOISE[case]
    frames = make(tmp_path / "f.h5")
    out = tmp_path / "out"
    out.mkdir()
    model = ["--model", str(checkpoint(tmp_path / "model.pt"))] if stage == "infer" else []
    argv = [stage, *model, "--input", str(frames), "--output", str(out / "m.h5")]
    err = refused(capsys, argv, str(frames), "cannot calibrate", out=out)
    assert pattern in err, err


@pytest.fixture
def catalogue_and_frames(tmp_path, frames) -> tuple[Path, Path]:
    """A catalogue of two clusters, as `write_catalogue` writes it, and its frames."""
    import pandas as pd

    from pipeline.results.clusters import COLUMNS, write_catalogue

    row = {c: 1.0 for c in COLUMNS} | {"frame": 0, "class": 3, "class_name": "tritium"}
    out = tmp_path / "made"
    out.mkdir()
    write_catalogue(pd.DataFrame([row, row | {"frame": 2, "energy_kev": 5.9}]), out / "c.parquet")
    return out / "c.parquet", frames


def rewrite(path: Path, edit) -> Path:
    import pandas as pd

    table = edit(pd.read_parquet(path))
    table.to_parquet(path)
    return path


CATALOGUES = {
    "its CSV twin": (lambda c: c.with_suffix(".csv"), "give the .parquet file, not its CSV twin"),
    "a frame file": (lambda c: h5_file(c.with_name("x.h5")), r"not a Parquet catalogue"),
    "missing": (lambda c: c.with_name("none.parquet"), "no such catalogue file"),
    "corrupt": (lambda c: put(c, b"PAR1" + b"\0" * 64), "cannot read the catalogue"),
    "lacks columns": (
        lambda c: rewrite(c, lambda t: t.drop(columns=["energy_kev", "class_name"])),
        "catalogue lacks columns ['class_name', 'energy_kev']",
    ),
    "negative frames": (
        lambda c: rewrite(c, lambda t: t.assign(frame=-1)),
        "column 'frame' holds values that are not frame indices",
    ),
    "fractional frames": (
        lambda c: rewrite(c, lambda t: t.assign(frame=0.5)),
        "column 'frame' holds values that are not frame indices",
    ),
    "nan energies": (
        lambda c: rewrite(c, lambda t: t.assign(energy_kev=float("nan"))),
        "column 'energy_kev' holds non-finite",
    ),
    "frames beyond the file": (
        lambda c: rewrite(c, lambda t: t.assign(frame=7)),
        "catalogue frames 7..7 exceed 3",
    ),
}


@pytest.mark.parametrize("case", list(CATALOGUES))
def test_bad_catalogues_for_the_activity(tmp_path, capsys, catalogue_and_frames, case):
    make, pattern = CATALOGUES[case]
    catalogue, frames = catalogue_and_frames
    bad = make(catalogue)
    out = tmp_path / "out"
    out.mkdir()
    argv = ["activity", "--catalogue", str(bad), "--frames", str(frames)]
    argv += ["--out", str(out / "a.json"), "--set", "activity.efficiency=0.3"]
    argv += ["--set", "activity.exposure_s=600"]  # the test frames state none
    err = refused(capsys, argv, str(bad), out=out)
    assert pattern in err, err


@pytest.mark.parametrize(
    "names, folders, pattern",
    [
        (["a", "a"], ["x", "y"], r"--names: \['a'\] named more than once"),
        ([], ["x", "y"], r"the default names \(give --names\): \['m'\] named more than once"),
        (["a"], ["x", "y"], "--names gives 1 names for 2 files"),
    ],
)
def test_evaluate_refuses_two_methods_of_one_name(
    tmp_path, capsys, frames, names, folders, pattern
):
    """A repeated name (given, or two maps' file stems) would keep one method of the two."""
    maps = []
    for folder in folders:
        (tmp_path / folder).mkdir()
        maps.append(str(tmp_path / folder / "m.h5"))
        assert main(["classical", "--input", str(frames), "--output", maps[-1]]) == 0
    capsys.readouterr()
    out = tmp_path / "out"
    out.mkdir()
    argv = ["evaluate", "--truth", str(frames), "--pred", *maps, "--out", str(out / "e")]
    err = refused(capsys, [*argv, *(["--names", *names] if names else [])], out=out)
    assert re.search(pattern, err), err


@pytest.mark.parametrize(
    "overrides, pattern",
    [
        ({"detector.gain_adu_per_e": 1e40}, r"gain_adu_per_e.: Input should be less than or equal"),
        (
            {"detector.frame_dtype": "uint16", "detector.pedestal_adu": 70000},
            r"detector.pedestal_adu 70000 is outside the uint16 ADC range \[0, 65535\]",
        ),
    ],
)
def test_a_simulation_that_would_write_meaningless_frames_is_refused(
    tmp_path, capsys, overrides, pattern
):
    out = tmp_path / "out"
    out.mkdir()
    argv = ["simulate", "--out", str(out / "s.h5"), "--frames", "1", "--height", "32"]
    err = refused(capsys, [*argv, "--width", "32", *sets(overrides)], out=out)
    assert re.search(pattern, err), err


def test_an_exposure_that_would_make_efficiency_frames_explode_is_refused(tmp_path, capsys):
    """A frame file's exposure_s of 6e5 s scales the sources' rates 1000x: more than 6 GB for
    one efficiency frame; refused in one line before any is simulated."""
    import h5py

    frames = h5_file(tmp_path / "f.h5")
    with h5py.File(frames, "a") as f:
        f.attrs["exposure_s"] = 6e5
    out = tmp_path / "out"
    out.mkdir()
    argv = ["efficiency", "--frames", str(frames), "--out", str(out / "e.h5")]
    err = refused(capsys, argv, "an exposure of 600000 s per frame", out=out)
    assert "give activity.efficiency" in err


def test_the_activity_refuses_a_catalogue_of_another_frame_file(tmp_path, capsys, frames):
    """A catalogue records the SHA-256 of the frame file it was made from; the frame count and
    exposure the activity takes must come from that file."""
    import numpy as np

    made = tmp_path / "made"
    made.mkdir()
    catalogue = made / "c.parquet"
    assert (
        main(
            [
                "classical",
                "--input",
                str(frames),
                "--output",
                str(made / "m.h5"),
                "--catalogue",
                str(catalogue),
            ]
        )
        == 0
    )
    capsys.readouterr()
    other = h5_file(tmp_path / "other.h5", np.random.default_rng(9).normal(100, 2, (3, 20, 24)))
    out = tmp_path / "out"
    out.mkdir()
    argv = ["activity", "--catalogue", str(catalogue), "--frames", str(other)]
    argv += ["--out", str(out / "a.json"), "--set", "activity.efficiency=0.3"]
    argv += ["--set", "activity.exposure_s=600"]
    err = refused(capsys, argv, str(catalogue), "made from frames.h5, not from", out=out)
    assert str(other) in err


def test_a_suite_table_named_like_a_folder_is_refused_before_anything_is_written(tmp_path, capsys):
    """`suite --out DIR` wrote DIR.html beside a failed DIR; the suffix is checked first."""
    out = tmp_path / "out"
    out.mkdir()
    summary = tmp_path / "summary.json"
    summary.write_text("{}")
    refused(
        capsys,
        ["suite", "--summaries", str(summary), "--out", str(out / "table")],
        "--out is written as .md",
        out=out,
    )
    assert not (out / "table.html").exists()


def test_file_names_of_any_bytes_are_mapped_scored_and_measured(tmp_path, capsys):
    """A file name that is not UTF-8 (Linux names are bytes) is read and written; the names it
    becomes in text (attrs, tags, tables) show its odd bytes as \\xNN, and a method name MLflow
    cannot hold is refused in one line."""
    import os

    from pipeline.simulation.simulate import simulate_file

    folder = os.fsdecode(bytes(tmp_path)) if isinstance(tmp_path, bytes) else str(tmp_path)
    odd = Path(folder) / os.fsdecode(b"run\xff")
    config = load_config(overrides={"detector.height": 64, "detector.width": 64})
    frames = simulate_file(config, Path(f"{odd}.h5"), 1, seed=3, progress=False)[0]
    maps, catalogue = Path(f"{odd}.map.h5"), Path(f"{odd}.parquet")
    small = ["--set", "tracking.enabled=false"]
    argv = ["classical", "--input", str(frames), "--output", str(maps), "--catalogue"]
    assert main([*argv, str(catalogue)]) == 0
    assert "run\\xff.map.h5" in capsys.readouterr().out
    evaluate = ["evaluate", "--truth", str(frames), "--pred", str(maps), *small]
    out = tmp_path / "out"
    out.mkdir()
    err = refused(capsys, [*evaluate, "--out", str(out / "e")], "xff.map", out=out)
    assert "give --names" in err
    assert main([*evaluate, "--out", str(tmp_path / "e"), "--names", "classical"]) == 0
    activity = ["activity", "--catalogue", str(catalogue), "--frames", str(frames)]
    activity += ["--out", f"{odd}.json", "--set", "activity.efficiency=0.3", *small]
    assert main(activity) == 0
