"""Tests of pipeline.io: round trips across formats, class matching, FITS cuts, atomic writes,
reproducible HDF5 bytes and one-line errors for every kind of bad input."""

from __future__ import annotations

import re
import time
from pathlib import Path

import awkward as ak
import dask.array as da
import h5py
import numpy as np
import pytest
import uproot
from astropy.io import fits

from pipeline import io as pio
from pipeline.config import load_config
from pipeline.io import FrameFileError, FrameWriter, atomic_output, open_frames, write_map
from pipeline.io import write as pio_write
from pipeline.io.base import EVENT_COLUMNS

CFG = load_config()
IO = CFG.io
CLASSES = list(CFG.classes)
N, H, W = 3, 20, 24


def make_data(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 5000, size=(N, H, W)).astype(np.float32)
    labels = rng.integers(0, len(CLASSES), size=(N, H, W)).astype(np.uint8)
    return frames, labels


def events_for(i: int) -> dict[str, np.ndarray]:
    return {
        "instance": np.array([2 * i + 1, 2 * i + 2]),
        "class": np.array([1, 3]),
        "energy_kev": np.array([5.9, 18.6]),
        "x": np.array([1.5, 2.5]),
        "y": np.array([3.0, 4.0]),
        "depth_um": np.array([10.0, 200.0]),
    }


def write_frames(
    path: Path,
    frames: np.ndarray,
    labels: np.ndarray | None = None,
    names: list[str] | None = CLASSES,
    **kw,
) -> Path:
    truth = labels is not None
    with FrameWriter(
        path,
        io=IO,
        height=frames.shape[1],
        width=frames.shape[2],
        class_names=names,
        with_truth=truth,
        **kw,
    ) as writer:
        for i, frame in enumerate(frames):
            events = events_for(i) if truth and path.suffix == ".h5" else None
            writer.append(frame, None if labels is None else labels[i], events=events)
    return path


def write_fits(tmp_path: Path, frames: np.ndarray) -> list[Path]:
    multi, packed, single = (tmp_path / n for n in ("multi.fits", "packed.fits.fz", "one.fits"))
    images = [fits.ImageHDU(f, name=f"CCD{i}") for i, f in enumerate(frames)]
    fits.HDUList([fits.PrimaryHDU(), *images]).writeto(multi)
    comp = [fits.CompImageHDU(f.astype(np.int32), name=f"CCD{i}") for i, f in enumerate(frames)]
    fits.HDUList([fits.PrimaryHDU(), *comp]).writeto(packed)
    fits.PrimaryHDU(frames[0]).writeto(single)
    return [multi, packed, single]


# --------------------------------------------------------------------------------------------
# Round trips


def test_round_trip_all_formats_agree(tmp_path: Path) -> None:
    frames, labels = make_data()
    h5 = write_frames(tmp_path / "f.h5", frames, labels)
    root = write_frames(tmp_path / "f.root", frames, labels)
    multi, packed, single = write_fits(tmp_path, frames)
    assert [pio.detect_format(p) for p in (h5, root, multi, packed)] == [
        "hdf5",
        "root",
        "fits",
        "fits",
    ]
    for path in (h5, root):
        with open_frames(path, IO, CLASSES) as ff:
            np.testing.assert_array_equal(ff.frames.compute(), frames)
            np.testing.assert_array_equal(ff.labels.compute(), labels)
            assert ff.labels.dtype == np.uint8
            assert ff.class_names == CLASSES
            assert ff.shape == (N, H, W) and ff.n_frames == N
    for path in (multi, packed):
        with open_frames(path, IO, CLASSES) as ff:
            assert ff.labels is None and ff.class_names is None
            np.testing.assert_array_equal(ff.frames.compute(), frames)
    with open_frames(single, IO) as ff:
        np.testing.assert_array_equal(ff.frames.compute(), frames[:1])
    with open_frames(packed, IO) as ff:
        assert ff.frames.dtype == np.int32


def test_hdf5_is_lazy_one_frame_per_chunk_with_truth(tmp_path: Path) -> None:
    frames, labels = make_data()
    path = write_frames(tmp_path / "f.h5", frames, labels, attrs={"gain_adu_per_e": 2.5})
    with open_frames(path, IO, CLASSES) as ff:
        assert isinstance(ff.frames, da.Array)
        assert ff.frames.chunks == ((1, 1, 1), (H,), (W,))
        assert ff.attrs["gain_adu_per_e"] == 2.5 and ff.attrs["pixel_size_um"] == 15.0
        assert ff.attrs["units"] == "ADU"
        np.testing.assert_array_equal(ff.instances.compute(), np.zeros((N, H, W)))
        np.testing.assert_array_equal(ff.events["frame"], [0, 0, 1, 1, 2, 2])
        np.testing.assert_array_equal(ff.events["class"], [1, 3] * N)
        np.testing.assert_allclose(ff.events["energy_kev"], [5.9, 18.6] * N)
    with h5py.File(path, "r+") as f:  # r+ fails while another handle holds the file open
        assert list(f.attrs["class_names"]) == CLASSES
        assert f["frames"].compression == "gzip" and f["frames"].shuffle
        assert f["labels"].dtype == np.uint8 and f["instances"].dtype == np.int32


def test_root_is_lazy_in_blocks(tmp_path: Path) -> None:
    frames = np.random.default_rng(5).normal(size=(40, 4, 5)).astype(np.float32)
    path = write_frames(tmp_path / "f.root", frames, names=None)
    with open_frames(path, IO) as ff:
        assert isinstance(ff.frames, da.Array) and ff.frames.chunks[0] == (16, 16, 8)
        assert ff.labels is None and ff.class_names is None
        np.testing.assert_array_equal(ff.frames[17:19].compute(), frames[17:19])


def test_contiguous_2d_dataset_is_one_frame(tmp_path: Path) -> None:
    frames, _ = make_data()
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f["frames"] = frames[0].astype(np.uint16)
    with open_frames(tmp_path / "c.h5", IO) as ff:
        assert ff.shape == (1, H, W) and ff.frames.dtype == np.uint16
        np.testing.assert_array_equal(ff.frames.compute(), frames[:1])


def test_hdf5_user_block_is_detected(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "u.dat", "w", userblock_size=1024) as f:
        f["frames"] = np.zeros((1, 4, 4))
    assert pio.detect_format(tmp_path / "u.dat") == "hdf5"


@pytest.mark.parametrize("suffix", [".h5", ".root"])
def test_class_remapping_by_name(tmp_path: Path, suffix: str) -> None:
    frames, _ = make_data()
    perm = np.array([3, 0, 5, 1, 4, 2])  # file index j means class CLASSES[perm[j]]
    file_names = [CLASSES[p] for p in perm]
    file_labels = np.random.default_rng(2).integers(0, 6, size=(N, H, W)).astype(np.uint8)
    path = write_frames(tmp_path / f"p{suffix}", frames, file_labels, names=file_names)
    with open_frames(path, IO, CLASSES) as ff:
        assert ff.class_names == CLASSES
        np.testing.assert_array_equal(ff.labels.compute(), perm[file_labels])
        if suffix == ".h5":
            np.testing.assert_array_equal(ff.events["class"], perm[[1, 3] * N])
    with open_frames(path, IO) as ff:
        assert ff.class_names == file_names
        np.testing.assert_array_equal(ff.labels.compute(), file_labels)


# --------------------------------------------------------------------------------------------
# FITS active region and overscan


def overscan_frames() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    signal = rng.integers(0, 300, size=(N, 18, 20)).astype(np.float32)
    pedestal = 1000 + 3 * np.arange(20)[None, :] + 10 * np.arange(N)[:, None]  # (N, rows)
    raw = np.zeros((N, 20, 30), np.float32) + pedestal[:, :, None]
    raw[:, 1:19, 2:22] += signal
    raw[:, :, 25:30] += np.array([-1, 0, 0, 1, 50], np.float32)  # median offset 0
    return raw, signal, pedestal


def test_fits_cut_and_overscan_pedestal(tmp_path: Path) -> None:
    raw, signal, pedestal = overscan_frames()
    path = write_fits(tmp_path, raw)[0]
    cut = {"io.fits.data_rows": [1, 19], "io.fits.data_cols": [2, 22]}
    with open_frames(path, load_config(overrides=cut).io) as ff:
        np.testing.assert_array_equal(ff.frames.compute(), raw[:, 1:19, 2:22])
        assert ff.overscan is None
    ped = {**cut, "io.fits.overscan_cols": [25, 30], "io.fits.pedestal_from_overscan": True}
    with open_frames(path, load_config(overrides=ped).io) as ff:
        assert ff.frames.dtype == np.float32 and ff.shape == (N, 18, 20)
        np.testing.assert_array_equal(ff.frames.compute(), signal)
        assert ff.overscan.shape == (N, 18, 5)
        np.testing.assert_array_equal(np.median(ff.overscan.compute(), axis=2), pedestal[:, 1:19])


def test_fits_hdu_selection_by_name_and_index(tmp_path: Path) -> None:
    frames, _ = make_data()
    path = write_fits(tmp_path, frames)[1]
    with open_frames(path, load_config(overrides={"io.fits.hdus": ["ccd2", 1]}).io) as ff:
        np.testing.assert_array_equal(ff.frames.compute(), frames[[2, 0]])


# --------------------------------------------------------------------------------------------
# Writing: atomicity and reproducibility


@pytest.mark.parametrize("suffix", [".h5", ".root"])
def test_writer_exception_leaves_nothing(tmp_path: Path, suffix: str) -> None:
    frames, labels = make_data()
    with (
        pytest.raises(RuntimeError, match="boom"),
        FrameWriter(tmp_path / f"out{suffix}", io=IO, height=H, width=W) as writer,
    ):
        writer.append(frames[0])
        assert len(list(tmp_path.iterdir())) == 1  # the temporary file only
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    writer = FrameWriter(tmp_path / f"out{suffix}", io=IO, height=H, width=W)
    writer.append(frames[0])
    writer.abort()
    assert list(tmp_path.iterdir()) == []
    write_frames(tmp_path / f"out{suffix}", frames, labels)
    assert [p.name for p in tmp_path.iterdir()] == [f"out{suffix}"]


def test_writer_rejects_bad_suffix_and_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"out\.txt: unsupported output suffix"):
        FrameWriter(tmp_path / "out.txt", io=IO, height=H, width=W)
    with (
        pytest.raises(ValueError, match="frame shape"),
        FrameWriter(tmp_path / "o.h5", io=IO, height=H, width=W) as writer,
    ):
        writer.append(np.zeros((H, W + 1)))
    with (
        pytest.raises(ValueError, match="label values outside class_names"),
        FrameWriter(
            tmp_path / "o.h5", io=IO, height=H, width=W, class_names=CLASSES, with_truth=True
        ) as writer,
    ):
        writer.append(np.zeros((H, W)), np.full((H, W), len(CLASSES)))
    with (
        pytest.raises(ValueError, match=r"missing \['x'\]"),
        FrameWriter(
            tmp_path / "o.h5", io=IO, height=H, width=W, class_names=CLASSES, with_truth=True
        ) as writer,
    ):
        ev = {k: v for k, v in events_for(0).items() if k != "x"}
        writer.append(np.zeros((H, W)), np.zeros((H, W)), events=ev)
    assert list(tmp_path.iterdir()) == []


def test_write_map_round_trip_and_atomicity(tmp_path: Path, monkeypatch) -> None:
    labels = make_data()[1]
    probs = np.random.default_rng(4).random((N, len(CLASSES), H, W))
    write_map(tmp_path / "map.h5", labels, CLASSES, "in.h5", probs)
    with h5py.File(tmp_path / "map.h5") as f:
        np.testing.assert_array_equal(f["labels"][()], labels)
        assert f["probabilities"].dtype == np.float16
        np.testing.assert_allclose(f["probabilities"][()], probs, atol=1e-3)
        assert list(f.attrs["class_names"]) == CLASSES and f.attrs["source"] == "in.h5"
    with pytest.raises(ValueError, match=r"probabilities shape \(3, 5, 20, 24\)"):
        write_map(tmp_path / "m2.h5", labels, CLASSES, "in.h5", probs[:, :5])
    with pytest.raises(ValueError, match="labels must be"):
        write_map(tmp_path / "m2.h5", labels[0], CLASSES, "in.h5")
    monkeypatch.setattr(pio_write, "_h5_class_names", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        write_map(tmp_path / "m2.h5", labels, CLASSES, "in.h5")
    assert [p.name for p in tmp_path.iterdir()] == ["map.h5"]


def test_atomic_output(tmp_path: Path) -> None:
    with atomic_output(tmp_path / "a.txt") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".a.txt.tmp-")
        tmp.write_text("x")
    assert (tmp_path / "a.txt").read_text() == "x"
    with pytest.raises(KeyError), atomic_output(tmp_path / "b.txt") as tmp:
        tmp.write_text("y")
        raise KeyError
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_hdf5_writes_are_byte_identical(tmp_path: Path) -> None:
    frames, labels = make_data()
    first = write_frames(tmp_path / "a.h5", frames, labels).read_bytes()
    time.sleep(1.1)  # HDF5 object times have one-second resolution
    assert write_frames(tmp_path / "a.h5", frames, labels).read_bytes() == first
    write_map(tmp_path / "m.h5", labels, CLASSES, "a.h5")
    map_bytes = (tmp_path / "m.h5").read_bytes()
    write_map(tmp_path / "m.h5", labels, CLASSES, "a.h5")
    assert (tmp_path / "m.h5").read_bytes() == map_bytes


# --------------------------------------------------------------------------------------------
# Bad input: one-line FrameFileError starting with the path


def h5_file(path: Path, frames=None, labels=None, names=CLASSES) -> Path:
    with h5py.File(path, "w") as f:
        f["frames"] = make_data()[0] if frames is None else frames
        if labels is not None:
            f["labels"] = labels
        if names is not None:
            f.attrs["class_names"] = names
    return path


def bad_pixels(value_rows) -> np.ndarray:
    frames = make_data()[0]
    for (i, r, c), v in value_rows:
        frames[i, r, c] = v
    return frames


def put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def truncated(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def corrupt_chunk(path: Path) -> Path:
    with h5py.File(path) as f:
        info = f["frames"].id.get_chunk_info(1)
    data = bytearray(path.read_bytes())
    data[info.byte_offset : info.byte_offset + info.size] = b"\xff" * info.size
    path.write_bytes(bytes(data))
    return path


def root_file(path: Path, image_len: int = H * W, tree: bool = True) -> Path:
    lengths = [H * W, image_len, H * W]
    data = {
        "image": ak.unflatten(np.zeros(sum(lengths), np.float32), lengths),
        "height": np.full(3, H, np.int32),
        "width": np.full(3, W, np.int32),
    }
    with uproot.recreate(path) as f:
        f["class_names"] = ",".join(CLASSES)
        if tree:
            f.mktree("frames", {k: v.type if k == "image" else v.dtype for k, v in data.items()})
            f["frames"].extend(data)
        else:
            f["frames"] = data  # uproot writes a dict as an RNTuple, not a TTree
    return path


def fits_table_only(path: Path) -> Path:
    table = fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=np.ones(3))])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    return path


def bad_labels() -> np.ndarray:
    labels = make_data()[1]
    labels[0, 1, 2], labels[2, 5, 5] = 7, 9
    return labels


BAD_INPUTS = {
    "missing": (lambda p: p / "nope.h5", {}, "no such file"),
    "directory": (lambda p: p, {}, "is a directory"),
    "empty": (lambda p: put(p / "e.h5", b""), {}, r"empty \(0 bytes\)"),
    "text": (
        lambda p: put(p / "t.h5", b"hello\n"),
        {},
        r"unknown file format \(supported: hdf5, root, fits, fits.gz\); first bytes b'hello",
    ),
    "truncated_h5": (
        lambda p: truncated(write_frames(p / "t.h5", *make_data())),
        {},
        "truncated or corrupt",
    ),
    "truncated_root": (
        lambda p: truncated(write_frames(p / "t.root", *make_data())),
        {},
        "truncated or corrupt",
    ),
    "truncated_fits": (
        lambda p: truncated(write_fits(p, make_data()[0])[0]),
        {},
        "truncated or corrupt",
    ),
    "corrupt_chunk": (
        lambda p: corrupt_chunk(write_frames(p / "c.h5", *make_data())),
        {},
        "truncated or corrupt",
    ),
    "wrong_dataset": (
        lambda p: h5_file(p / "w.h5"),
        {"io.frames_dataset": "images"},
        r"no frames dataset 'images' \(datasets present: \['frames'\]\)",
    ),
    "rank1": (lambda p: h5_file(p / "r.h5", np.zeros(10)), {}, r"rank 1 \(shape \(10,\)\)"),
    "rank4": (lambda p: h5_file(p / "r.h5", np.zeros((1, 2, 3, 4))), {}, "rank 4"),
    "complex": (
        lambda p: h5_file(p / "c.h5", np.zeros((2, 3, 3), np.complex64)),
        {},
        "non-numeric dtype complex64",
    ),
    "string": (
        lambda p: h5_file(p / "s.h5", np.array([["a", "b"]], dtype=object).astype("S1")),
        {},
        r"non-numeric dtype string \(\|S1\)",
    ),
    "vlen_string": (
        lambda p: h5_file(p / "s.h5", np.array([[["a"]]], dtype=h5py.string_dtype())),
        {},
        r"non-numeric dtype string \(variable-length\)",
    ),
    "bool": (lambda p: h5_file(p / "b.h5", np.zeros((1, 2, 2), bool)), {}, "dtype bool"),
    "nan": (
        lambda p: h5_file(p / "n.h5", bad_pixels([((1, 3, 4), np.nan), ((2, 0, 0), np.nan)])),
        {},
        r"2 non-finite pixel values \(nan 2\); first at frame 1, row 3, column 4",
    ),
    "inf": (
        lambda p: h5_file(p / "i.h5", bad_pixels([((0, 2, 7), -np.inf), ((2, 1, 1), np.inf)])),
        {},
        r"2 non-finite pixel values \(-inf 1, inf 1\); first at frame 0, row 2, column 7",
    ),
    "labels_shape": (
        lambda p: h5_file(p / "l.h5", labels=make_data()[1][:, :, :-1]),
        {},
        r"labels shape \(3, 20, 23\) differs from frames shape \(3, 20, 24\)",
    ),
    "labels_range": (
        lambda p: h5_file(p / "l.h5", labels=bad_labels()),
        {},
        r"2 label values outside the class list .*values \[7, 9\]; "
        "first at frame 0, row 1, column 2",
    ),
    "labels_no_names": (
        lambda p: h5_file(p / "l.h5", labels=make_data()[1], names=None),
        {},
        "labels present but attr class_names missing",
    ),
    "names_mismatch": (
        lambda p: h5_file(p / "l.h5", labels=make_data()[1], names=[*CLASSES[:-1], "neutron"]),
        {},
        r"class names \['neutron'\] of the file are not in the expected classes",
    ),
    "root_no_tree": (
        lambda p: root_file(p / "r.root", tree=False),
        {},
        r"no TTree 'frames' \(keys present: class_names \(TObjString\), "
        r"frames \(ROOT::RNTuple\)\)",
    ),
    "root_bad_length": (
        lambda p: root_file(p / "r.root", image_len=H * W - 1),
        {},
        r"entry 1: 'image' has 479 values, expected height\*width = 20\*24 = 480",
    ),
    "fits_no_image": (lambda p: fits_table_only(p / "t.fits"), {}, "no image HDU with data"),
    "fits_bad_hdu": (
        lambda p: write_fits(p, make_data()[0])[0],
        {"io.fits.hdus": ["NOPE"]},
        r"HDU 'NOPE' not found .*image HDUs present: \['1:CCD0', '2:CCD1', ",
    ),
    "fits_bad_index": (
        lambda p: write_fits(p, make_data()[0])[0],
        {"io.fits.hdus": [0]},
        r"HDU 0 not found",
    ),
    "fits_cut_outside": (
        lambda p: write_fits(p, make_data()[0])[0],
        {"io.fits.data_cols": [0, 99]},
        r"data_cols \[0, 99\] outside",
    ),
    "events_missing_column": (
        lambda p: with_events(p / "e.h5", lambda e: {k: v for k, v in e.items() if k != "x"}),
        {},
        r"events table lacks columns \['x'\]",
    ),
    "events_unequal_columns": (
        lambda p: with_events(p / "e.h5", lambda e: e | {"energy_kev": np.ones(2)}),
        {},
        r"events columns differ in shape: .*'energy_kev': \(2,\)",
    ),
    "events_frame_outside": (
        lambda p: with_events(p / "e.h5", lambda e: e | {"frame": np.array([0, 1, 7])}),
        {},
        r"events frame indices 0..7 outside 0..2",
    ),
    "fits_blank_pixels": (
        lambda p: fits_blank(p / "b.fits"),
        {},
        r"3 non-finite pixel values \(nan 3\)",
    ),
    "fits_exposures_of_other_gains": (
        lambda p: fits_exposures(p / "e.fits", gains=(0.5, 2.0)),
        {},
        r"HDUs are separate exposures with different gain_adu_per_e \(CCD0: 2.0, CCD1: 0.5\)",
    ),
    "fits_exposures_of_other_times": (
        lambda p: fits_exposures(p / "e.fits", times=(600.0, 60.0)),
        {},
        r"different exposure_s \(CCD0: 600.0, CCD1: 60.0\)",
    ),
    "h5_declares_huge_frames": (
        lambda p: h5_declaring(p / "big.h5", (2, 60000, 60000)),
        {},
        r"declares frames of 60000 x 60000 pixels: 13,733 MB per float32 copy, over "
        r"io.max_frame_mb 2048",
    ),
}


def with_events(path: Path, edit) -> Path:
    """A labelled file whose events table (every column of the contract, 3 events) is edited."""
    frames, labels = make_data()
    h5_file(path, frames, labels)
    events = {name: np.zeros(3, dtype) for name, dtype in EVENT_COLUMNS.items()}
    with h5py.File(path, "a") as f:
        for name, values in edit(events).items():
            f[f"events/{name}"] = values
    return path


def fits_blank(path: Path) -> Path:
    """An unscaled int16 image whose undefined pixels hold BLANK (FITS standard 4.0, 5.2.2)."""
    data = np.full((H, W), 1000, np.int16)
    data[[1, 2, 3], [4, 5, 6]] = -32768
    header = fits.Header({"BLANK": -32768})
    fits.HDUList([fits.PrimaryHDU(data, header)]).writeto(path)
    return path


def fits_exposures(path: Path, gains=(1.0, 1.0), times=(600.0, 600.0)) -> Path:
    """Two HDUs that are two exposures (their start times differ), each with its own header."""
    frames = make_data()[0]
    hdus = [
        fits.ImageHDU(
            frames[i],
            fits.Header(
                {"DATE-OBS": f"2026-01-01T0{i}:00:00", "GAIN": gains[i], "EXPTIME": times[i]}
            ),
            name=f"CCD{i}",
        )
        for i in range(2)
    ]
    fits.HDUList([fits.PrimaryHDU(), *hdus]).writeto(path)
    return path


def h5_declaring(path: Path, shape: tuple[int, ...]) -> Path:
    """A small file whose frames dataset declares a huge shape (chunked, nothing written)."""
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", shape=shape, dtype="float32", chunks=(1, 64, 64))
    return path


def with_attr(path: Path, key: str, value) -> Path:
    h5_file(path)
    with h5py.File(path, "a") as f:
        f.attrs[key] = value
    return path


# attributes the pipeline uses (gain, pixel pitch, exposure, noise): type, shape, sign, finiteness
BAD_ATTRS = {
    "gain_negative": ("gain_adu_per_e", -1.9, "attr 'gain_adu_per_e' is -1.9; it must be positive"),
    "gain_zero": ("gain_adu_per_e", 0.0, "attr 'gain_adu_per_e' is 0.0; it must be positive"),
    "gain_nan": ("gain_adu_per_e", np.nan, "attr 'gain_adu_per_e' is float nan; expected one"),
    "gain_string": ("gain_adu_per_e", "1.9", "attr 'gain_adu_per_e' is str '1.9'; expected one"),
    "gain_array": ("gain_adu_per_e", np.array([1.0, 2.0]), "is list [1.0, 2.0]; expected one"),
    "gain_bool": ("gain_adu_per_e", True, "attr 'gain_adu_per_e' is bool True"),
    "pixel_zero": ("pixel_size_um", 0, "attr 'pixel_size_um' is 0; it must be positive"),
    "exposure_negative": (
        "exposure_s",
        -600.0,
        "attr 'exposure_s' is -600.0; it must be non-negative",
    ),  # 0 is a bias frame: read (tests/test_fits_header.py)
    "exposure_string": ("exposure_s", "600 s", "attr 'exposure_s' is str '600 s'"),
    "exposure_inf": ("exposure_s", np.inf, "attr 'exposure_s' is float inf"),
    "thickness_string": ("thickness_um", "675", "attr 'thickness_um' is str '675'; expected one"),
    "thickness_negative": (
        "thickness_um",
        -1.0,
        "attr 'thickness_um' is -1.0; it must be positive",
    ),
    "thickness_nan": ("thickness_um", np.nan, "attr 'thickness_um' is float nan"),
    "noise_negative": (
        "readout_noise_e",
        -2.0,
        "'readout_noise_e' is -2.0; it must be non-negative",
    ),
}
BAD_INPUTS |= {
    f"attr_{case}": (
        lambda p, key=key, value=value: with_attr(p / "a.h5", key, value),
        {},
        re.escape(message),
    )
    for case, (key, value, message) in BAD_ATTRS.items()
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_is_one_line_error(tmp_path: Path, case: str) -> None:
    make, overrides, pattern = BAD_INPUTS[case]
    path = make(tmp_path)
    io = load_config(overrides=overrides).io if overrides else IO
    with pytest.raises(FrameFileError, match=pattern) as info:
        open_frames(path, io, CLASSES)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message


def test_check_finite_off_skips_scan(tmp_path: Path) -> None:
    path = h5_file(tmp_path / "n.h5", bad_pixels([((1, 3, 4), np.nan)]))
    io = IO.model_copy(update={"check_finite": False})
    with open_frames(path, io) as ff:
        assert np.isnan(ff.frames.compute()).sum() == 1


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "int32", "uint32", "float64"])
def test_fits_dtype_from_header_matches_data(tmp_path: Path, dtype: str) -> None:
    frame = np.arange(H * W).reshape(H, W).astype(dtype)
    fits.PrimaryHDU(frame).writeto(tmp_path / "d.fits")
    with open_frames(tmp_path / "d.fits", IO) as ff:
        assert ff.frames.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(ff.frames.compute()[0], frame)


def test_fits_scaled_data_is_float(tmp_path: Path) -> None:
    hdu = fits.PrimaryHDU(np.arange(H * W, dtype=np.int16).reshape(H, W))
    hdu.header["BSCALE"], hdu.header["BZERO"] = 0.5, 10.0
    hdu.writeto(tmp_path / "s.fits")
    with open_frames(tmp_path / "s.fits", IO) as ff:
        data = ff.frames.compute()[0]
        assert ff.frames.dtype == np.float32 and data.dtype == np.float32
        np.testing.assert_allclose(data, np.arange(H * W).reshape(H, W) * 0.5 + 10.0)


def test_open_map_matches_classes_by_name(tmp_path: Path) -> None:
    from pipeline.io import open_map

    file_classes = ["background", "tritium", "muon", "electron", "xray", "alpha"]
    labels = np.zeros((2, 4, 5), np.uint8)
    labels[0, 1, 1] = 1  # tritium in the file's order
    write_map(tmp_path / "m.h5", labels, file_classes, "src.h5")
    with open_map(tmp_path / "m.h5", CFG.io, CFG.classes) as ff:
        remapped = ff.labels.compute()
        assert ff.shape == (2, 4, 5) and ff.class_names == CFG.classes
        assert ff.source == "src.h5" and not hasattr(ff, "frames")  # a map, not a frame file
        np.testing.assert_array_equal(ff.read(0), remapped[0])
    assert remapped[0, 1, 1] == CFG.classes.index("tritium") and remapped.sum() == 3


def test_a_format_is_one_registered_opener_told_by_its_magic_bytes(tmp_path: Path) -> None:
    """A new format is one `register` call (pipeline/io/registry.py): its magic bytes tell it,
    whatever the file's name, and its opener is what opens it."""
    from pipeline.io import registry
    from pipeline.io.read import detect_format

    def opener(path, io, handles):
        raise FrameFileError(path, "the toy opener was called")

    toy = tmp_path / "frames.h5"  # the name says HDF5; the bytes say otherwise
    toy.write_bytes(b"TOYF" + bytes(64))
    registry.register(registry.Format("toy", b"TOYF", opener))
    try:
        assert detect_format(toy) == "toy"
        with pytest.raises(FrameFileError, match="the toy opener was called"):
            pio.open_frames(toy, CFG.io)
    finally:
        registry.FORMATS.pop("toy")
    unknown = r"unknown file format \(supported: hdf5, root, fits, fits.gz\)"
    with pytest.raises(FrameFileError, match=unknown):
        detect_format(toy)
