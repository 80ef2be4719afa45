"""Calibrated frames of a file: the same charge whichever way it is read, in order with a
prefetching reader, and errors that reach the caller."""

import numpy as np
import pytest

from pipeline.calibration import calibrate
from pipeline.calibration.frames import calibrated, prefetched
from pipeline.io import FrameFileError, FrameWriter, open_frames


def test_calibrated_charge_is_the_run_calibration_of_each_frame(tiny, tiny_files):
    path = tiny_files["val"]
    with open_frames(path, tiny.io) as ff:
        run = calibrate.calibrate_file(ff, tiny)
        expected = [
            calibrate.frame_charge(ff.read("frames", i), run, i) for i in range(len(ff.frames))
        ]
    with calibrated(path, tiny) as frames:
        assert len(frames) == len(expected)
        for depth in (0, 2):
            for got, want in zip(frames.charges(depth), expected, strict=True):
                np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(frames.charge(1), expected[1])
        assert frames.noise_e(1) == run.frames[1].noise_e


def test_a_file_is_checked_before_it_is_calibrated(tiny, tmp_path):
    path = tmp_path / "flat.h5"
    with FrameWriter(path, height=16, width=16, io=tiny.io) as writer:
        writer.append(np.full((16, 16), np.nan, np.float32))
    with calibrated(path, tiny, io=tiny.io.model_copy(update={"check_finite": False})) as frames:
        assert frames.file.labels is None  # opened and checked; nothing calibrated yet
        with pytest.raises(FrameFileError, match="cannot calibrate"):
            frames.charge(0)


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_prefetched_frames_come_in_order_and_errors_reach_the_caller(depth):
    assert list(prefetched(lambda i: i * 10, 5, depth)) == [0, 10, 20, 30, 40]
    assert list(prefetched(lambda i: i, 0, depth)) == []

    def read(i):
        if i == 2:
            raise OSError("chunk 2 is corrupt")
        return i

    frames = prefetched(read, 4, depth)
    assert [next(frames), next(frames)] == [0, 1]
    with pytest.raises(OSError, match="chunk 2"):
        next(frames)
