"""Full-frame inference: exact window blending, any frame size, every input format, atomic
map files, and one-line refusals of bad inputs."""

import h5py
import numpy as np
import pytest
import torch
from astropy.io import fits

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.inference.infer import infer_file
from pipeline.inference.predictor import Predictor
from pipeline.io import FrameWriter, open_frames
from pipeline.network.model import build_model, model_card, save_checkpoint


@pytest.fixture
def checkpoint(tiny, tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "model.pt"
    save_checkpoint(path, build_model(tiny.model, len(tiny.classes)), model_card(tiny, "h", {}))
    return path


def _fits_copy(h5_path, out):
    with h5py.File(h5_path) as f:
        frames = f["frames"][()]
    # one exposure per HDU, as their start times say (HDUs of one exposure are amplifiers)
    starts = [fits.Header({"DATE-OBS": f"2026-01-01T0{i}:00:00"}) for i in range(len(frames))]
    hdus = [fits.PrimaryHDU()] + [fits.ImageHDU(f, h) for f, h in zip(frames, starts, strict=True)]
    fits.HDUList(hdus).writeto(out)
    return out


def test_infer_writes_the_same_map_from_hdf5_root_and_fits(tiny, tiny_files, checkpoint, tmp_path):
    from pipeline.simulation.simulate import simulate_file

    h5, root = simulate_file(tiny, tmp_path / "f.h5", 3, seed=5, root=True, progress=False)
    inputs = {"h5": h5, "root": root, "fits": _fits_copy(h5, tmp_path / "f.fits")}
    # the copy's FITS header states no gain: give every format the same one (energy is charge)
    gain = tiny.calibrate.model_copy(
        update={"gain": "config", "gain_adu_per_e": tiny.detector.gain_adu_per_e}
    )
    tiny = tiny.model_copy(update={"calibrate": gain})
    maps = {}
    for name, path in inputs.items():
        out = tmp_path / f"map_{name}.h5"
        config = tiny.model_copy(
            update={
                "infer": tiny.infer.model_copy(
                    update={"model": str(checkpoint), "probabilities": True}
                )
            }
        )
        result = infer_file(config, path, out, progress=False)
        assert result.frames == 3 and result.megapixels_per_s > 0
        with h5py.File(out) as f:
            assert f["labels"].shape == (3, 96, 80) and f["labels"].dtype == np.uint8
            assert f["probabilities"].shape == (3, len(tiny.classes), 96, 80)
            assert f["probabilities"].dtype == np.float16
            np.testing.assert_allclose(
                f["probabilities"][()].astype(float).sum(axis=1), 1, atol=1e-2
            )
            assert list(f.attrs["class_names"]) == tiny.classes
            assert f.attrs["source"] == path.name
            maps[name] = f["labels"][()]
    np.testing.assert_array_equal(maps["h5"], maps["root"])
    np.testing.assert_array_equal(maps["h5"], maps["fits"])
    with open_frames(
        tmp_path / "map_h5.h5", tiny.io.model_copy(update={"frames_dataset": "labels"})
    ) as ff:
        assert ff.shape == (3, 96, 80)


def _cli_infer(model, frames, out):
    return main(
        [
            "infer",
            "--model",
            str(model),
            "--input",
            str(frames),
            "--output",
            str(out),
            "--set",
            "tiles.size=64",
        ]
    )


def test_bad_inputs_are_refused_in_one_line_with_no_output(
    tiny, tiny_files, checkpoint, tmp_path, capsys
):
    other = tmp_path / "other.pt"
    cfg = load_config(
        overrides={
            "classes": ["background", "neutron"],
            "simulate.unsourced_classes": ["neutron"],
            "train.class_weights": {"background": 1, "neutron": 1},
            "tiles.rare_classes": [],
        }
    )
    save_checkpoint(other, build_model(tiny.model, 2), model_card(cfg, "h", {}))
    nan_frames = tmp_path / "nan.h5"
    with FrameWriter(nan_frames, io=tiny.io, height=32, width=32) as writer:
        frame = np.zeros((32, 32), np.float32)
        frame[3, 4] = np.nan
        writer.append(frame)
    flat = tmp_path / "flat.h5"
    with h5py.File(flat, "w") as f:
        f["frames"] = np.zeros(10, np.float32)
    cases = [
        (tmp_path / "absent.pt", tiny_files["val"], "no such checkpoint"),
        (other, tiny_files["val"], "model classes ['neutron'] are not in the config"),
        (checkpoint, nan_frames, "non-finite"),
        (checkpoint, flat, "rank 1"),
        (checkpoint, tmp_path / "absent.h5", "no such file"),
    ]
    for model, frames, pattern in cases:
        out = tmp_path / "out" / "map.h5"
        out.parent.mkdir(exist_ok=True)
        assert _cli_infer(model, frames, out) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and pattern in err, err
        assert list(out.parent.iterdir()) == []


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_files):
    """A tiny U-Net trained for 12 steps (its weights are no longer the initial ones)."""
    from pipeline.learning.train import train
    from tests.conftest import tiny_config, training_files

    folder = tmp_path_factory.mktemp("trained")
    config = tiny_config(
        folder,
        **{"train.epochs": 2, "train.steps_per_epoch": 6, "tracking.enabled": False},
    )
    paths = training_files(tiny_files, folder / "model")
    result = train(config, **paths, progress=False)
    return config, result.model.eval(), result.out / "best.pt"


def test_interior_labels_do_not_depend_on_where_the_tile_grid_falls(trained, tiny_files):
    """One window over the whole frame versus sliding windows of the model's tile with two
    overlaps (grids that fall differently), and a frame cropped by 32 pixels (the grid moves
    against the content by a multiple of the network's stride, so only the tiling changes): the
    interior agrees. (Shifts that are not multiples of the stride change what the network itself
    sees; that is the network's property, not the tiling's.)"""
    config, model, _ = trained
    with open_frames(tiny_files["val"], config.io, config.classes) as ff:
        frame = ff.frames[0].compute().astype(np.float32) / ff.attrs["gain_adu_per_e"]
    charge = frame - np.median(frame)
    cpu = torch.device("cpu")

    def probabilities(tile, image, overlap=0.5):
        cfg = config.infer.model_copy(update={"overlap": overlap, "batch_size": 4})
        return Predictor(model, tile, config.normalise, cfg, cpu).probabilities(image, 2.5)

    whole = probabilities(96, charge)  # the frame is 96 x 80: a single window
    margin = 24  # beyond the receptive field's reach into a tile's padded edge
    inner = (slice(margin, -margin), slice(margin, -margin))
    top2 = np.sort(whole, axis=0)[-2:]
    decided = (top2[1] - top2[0])[
        inner
    ] > 0.04  # argmax flips only where two classes are that close
    for overlap in (0.5, 0.25):
        tiled = probabilities(64, charge, overlap)
        # 0.07: the stream's edge glow teaches even a 12-step model where a frame's edge is
        np.testing.assert_allclose(tiled[:, *inner], whole[:, *inner], atol=0.07)
        same = tiled.argmax(0)[inner] == whole.argmax(0)[inner]
        assert same[decided].all() and decided.mean() > 0.5  # a 12-step model is unsure of some
    cropped = probabilities(64, charge[32:, :])
    np.testing.assert_allclose(
        cropped[:, margin:-margin, margin:-margin],
        whole[:, 32 + margin : -margin, margin:-margin],
        atol=0.07,
    )


@pytest.mark.parametrize("fmt", ["h5", "root", "fits"])
def test_infer_and_evaluate_commands_on_each_format(tiny, checkpoint, tmp_path, fmt, capsys):
    """`python -m pipeline infer` then `evaluate`, from a frame file of each format. FITS frames
    carry no truth, so the FITS map is scored against the HDF5 twin, and a FITS truth file is
    refused in one line."""
    from pipeline.simulation.simulate import simulate_file

    h5, root = simulate_file(tiny, tmp_path / "f.h5", 2, seed=6, root=True, progress=False)
    frames = {"h5": h5, "root": root, "fits": _fits_copy(h5, tmp_path / "f.fits")}[fmt]
    out, catalogue = tmp_path / "map.h5", tmp_path / "cat.parquet"
    assert (
        main(
            [
                "infer",
                "--model",
                str(checkpoint),
                "--input",
                str(frames),
                "--output",
                str(out),
                "--catalogue",
                str(catalogue),
            ]
        )
        == 0
    )
    assert out.is_file() and catalogue.is_file() and catalogue.with_suffix(".csv").is_file()
    truth = root if fmt == "root" else h5
    tracking = ["--set", "tracking.enabled=false"]
    assert (
        main(
            [
                "evaluate",
                "--truth",
                str(truth),
                "--pred",
                str(out),
                "--names",
                "unet",
                "--out",
                str(tmp_path / "eval"),
                *tracking,
            ]
        )
        == 0
    )
    summary = __import__("json").loads((tmp_path / "eval" / "summary.json").read_text())
    assert 0 <= summary["unet"]["macro_pixel_iou"] <= 1
    assert "fine-tuned U-Net" in capsys.readouterr().out  # the table names methods in words
    if fmt == "fits":
        assert (
            main(
                [
                    "evaluate",
                    "--truth",
                    str(frames),
                    "--pred",
                    str(out),
                    "--names",
                    "unet",
                    "--out",
                    str(tmp_path / "eval2"),
                    *tracking,
                ]
            )
            == 2
        )
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "f.fits" in err and "truth labels" in err
        assert not (tmp_path / "eval2" / "summary.json").exists()


def test_electron_counted_integer_frames_map_as_well_as_float_frames(trained, tmp_path, capsys):
    """A skipper-like detector (0.16 e-, gain 1): the same frames as floats and as int32 whole
    electrons. Before the noise floor, the int32 frames had a measured noise of 0, every
    probability was NaN and the map was empty."""
    from pipeline.simulation.simulate import simulate_file

    _, _, checkpoint = trained
    skipper = load_config(
        overrides={
            "detector.height": 96,
            "detector.width": 96,
            "detector.readout_noise_e": 0.16,
            "detector.gain_adu_per_e": 1.0,
        }
    )
    floats = simulate_file(skipper, tmp_path / "float.h5", 2, seed=21, progress=False)[0]
    counted = tmp_path / "int.h5"
    with h5py.File(floats) as src, h5py.File(counted, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        dst["frames"] = np.rint(src["frames"][:]).astype(np.int32)
        truth = src["labels"][:]
    model = str(checkpoint)
    found = {}
    for name, path in (("float", floats), ("int", counted)):
        out = tmp_path / f"{name}.map.h5"
        assert main(["infer", "--model", model, "--input", str(path), "--output", str(out)]) == 0
        with h5py.File(out) as f:
            labels = f["labels"][:]
        found[name] = (labels[truth > 0] > 0).mean()  # truth signal pixels mapped as signal
    capsys.readouterr()
    assert found["float"] > 0.2  # a 12-step model on a detector it never saw
    assert found["int"] >= found["float"] - 0.1, found


def test_infer_finds_and_hashes_its_model_once_and_the_map_says_what_it_was_made_from(
    tiny, tiny_files, checkpoint, tmp_path, monkeypatch
):
    """The stage resolves its model once (a path or a shipped name) and hashes the checkpoint
    once (its ONNX copy and its registered version share the hash); the input's frames are
    digested as they are labelled, with no pass of their own (the map's `frames_sha256`, also
    the run's data hash)."""
    import pipeline.results.maps as maps
    from pipeline.commands import settings_of
    from pipeline.core import hashing
    from pipeline.inference import infer
    from pipeline.io import open_frames, open_map
    from pipeline.io.digest import frames_sha256
    from pipeline.network import shipped
    from pipeline.tracking import registry

    hashed = []
    real_hash = hashing.file_sha256
    monkeypatch.setattr(hashing, "file_sha256", lambda p: hashed.append(p) or real_hash(p))
    for module in (shipped, maps, registry):
        monkeypatch.setattr(module, "file_sha256", hashing.file_sha256, raising=False)
    resolved = []
    real_resolve = shipped.resolve_model
    monkeypatch.setattr(shipped, "resolve_model", lambda *a: resolved.append(a) or real_resolve(*a))
    settings = {"model": str(checkpoint), "runtime": "onnxruntime", "amp": "off"}
    config = tiny.model_copy(update={"infer": tiny.infer.model_copy(update=settings)})
    out = tmp_path / "map.h5"
    infer.run(settings_of(config, "infer"), tiny_files["val"], out)
    assert len(resolved) == 1
    inputs = [p for p in hashed if str(p) != str(out)]  # the map's own hash tags the run
    assert list(map(str, inputs)) == [str(checkpoint)]
    with open_frames(tiny_files["val"], tiny.io) as ff:
        digest = frames_sha256(ff)
    with open_map(out, tiny.io, tiny.classes) as opened:
        assert opened.provenance == {
            "frames_sha256": digest,
            "model": str(checkpoint),
            "model_sha256": real_hash(checkpoint),
            "priors_source": "training (the model card states none)",
        }
        assert opened.source == tiny_files["val"].name
