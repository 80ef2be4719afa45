"""Fuzzing the readers: random bytes, and random mutations and truncations of valid HDF5, ROOT and
FITS files, either read completely (frames, labels, instances, events) or are refused with the
pipeline's own one-line FrameFileError; never another exception, a crash or a hang. The number of
cases is bounded (hypothesis, derandomised) so that the run fits in CI time; FUZZ_EXAMPLES=5000
runs a longer campaign."""

from __future__ import annotations

import io as stdio
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.config import load_config
from pipeline.io import FrameFileError, FrameWriter, open_frames

CONFIG = load_config()
IO, CLASSES = CONFIG.io, CONFIG.classes
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def read_completely(path: Path) -> None:
    """Open, then compute everything the stages read, through the reader's own error handling."""
    with open_frames(path, IO, CLASSES) as ff:
        ff.read_all()


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("valid")
    rng = np.random.default_rng(0)
    frames = rng.normal(1000, 5, (3, 24, 20)).astype(np.float32)
    labels = rng.integers(0, len(CLASSES), (3, 24, 20)).astype(np.uint8)
    made = {}
    for suffix in (".h5", ".root"):
        path = folder / f"valid{suffix}"
        with FrameWriter(
            path, io=IO, height=24, width=20, class_names=CLASSES, with_truth=True
        ) as writer:
            for frame, label in zip(frames, labels, strict=True):
                writer.append(frame, label, (label > 0).astype(np.int32))
        made[suffix] = path.read_bytes()
    buffer = stdio.BytesIO()
    fits.HDUList([fits.PrimaryHDU()] + [fits.ImageHDU(f) for f in frames]).writeto(buffer)
    made[".fits"] = buffer.getvalue()
    for suffix, data in made.items():  # the unmutated files read cleanly
        path = folder / f"check{suffix}"
        path.write_bytes(data)
        read_completely(path)
    return made


def check(path: Path) -> None:
    try:
        read_completely(path)
        event("read completely")
    except FrameFileError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: ") and "\n" not in message, message
        event(f"refused: {message.removeprefix(f'{path}: ').split(' (')[0].split(':')[0][:40]}")


@FUZZ
@given(
    data=st.binary(max_size=2048), suffix=st.sampled_from([".h5", ".root", ".fits", ".fz", ".bin"])
)
def test_random_bytes_are_refused_cleanly(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("bytes") / f"f{suffix}"
    path.write_bytes(data)
    check(path)


MAGIC = 8
mutations = st.lists(
    st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8
)


@FUZZ
@given(
    suffix=st.sampled_from([".h5", ".root", ".fits"]),
    edits=mutations,
    cut=st.one_of(st.none(), st.floats(0.01, 1)),
)
def test_mutated_files_are_read_or_refused_cleanly(
    tmp_path_factory, valid_files, suffix, edits, cut
):
    data = bytearray(valid_files[suffix])
    for where, value in edits:  # past the magic bytes: random bytes test the format detection
        data[MAGIC + int(where * (len(data) - MAGIC))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    path = tmp_path_factory.mktemp("mutated") / f"f{suffix}"
    path.write_bytes(bytes(data))
    check(path)


def test_a_corrupt_label_chunk_is_refused_when_read(tmp_path):
    """Frames intact, one labels chunk destroyed: the error appears on reading, as a clean one."""
    path = tmp_path / "f.h5"
    with FrameWriter(
        path, io=IO, height=16, width=16, class_names=CLASSES, with_truth=True
    ) as writer:
        for i in range(3):
            writer.append(np.full((16, 16), 100.0 + i), np.ones((16, 16), np.uint8))
    with h5py.File(path) as f:
        info = f["labels"].id.get_chunk_info(1)
    data = bytearray(path.read_bytes())
    data[info.byte_offset : info.byte_offset + info.size] = b"\xff" * info.size
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(FrameFileError, match="truncated or corrupt"):
        read_completely(corrupt)
    shutil.copy(path, tmp_path / "fine.h5")
    read_completely(tmp_path / "fine.h5")
