"""Calibrated frames of a file, the one way every stage reads them: open the file (any format),
calibrate the run once, then hand out each frame's charge in electrons with hot pixels masked,
in order with a prefetching background reader, or by index.

`maps` (inference and the classical reconstruction), `evaluate` and the training tiles all read
frames through `calibrated`. Read in order, each once, the frames' values are digested on the way
(`frames_sha256`): what a map records of its input and an evaluation compares with its truth,
whatever format holds the same frames.
"""

from __future__ import annotations

import contextlib
import functools
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from pipeline.calibration import calibrate
from pipeline.config import IOConfig
from pipeline.config.stages import FrameSections
from pipeline.io import FrameFile, open_frames
from pipeline.io.digest import FramesDigest

T = TypeVar("T")


def prefetched(read: Callable[[int], T], n: int, depth: int) -> Iterator[T]:
    """read(0), ..., read(n - 1), in order, each started `depth` frames ahead on one background
    thread (the reader's decompression and the calibration release the GIL while the network
    runs); depth 0 reads in the caller's thread."""
    if depth == 0:
        yield from (read(i) for i in range(n))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
        pending = deque(pool.submit(read, i) for i in range(min(depth, n)))
        for i in range(n):
            frame = pending.popleft().result()
            if i + depth < n:
                pending.append(pool.submit(read, i + depth))
            yield frame


class CalibratedFile:
    """An opened frame file and its run calibration, measured at first use (a file is checked
    before it is calibrated: calibration is the first full pass over the data)."""

    def __init__(
        self, file: FrameFile, config: FrameSections, run: calibrate.RunCalibration | None = None
    ) -> None:
        self.file, self._config = file, config
        if run is not None:  # measured before, on this file
            self.run = run
        self._digest = FramesDigest(file.shape)  # of the frames read in order, each once

    @functools.cached_property
    def run(self) -> calibrate.RunCalibration:
        return calibrate.calibrate_file(self.file, self._config)

    def calibrate(self) -> calibrate.RunCalibration:
        """The run calibration, measured now if it was not yet (the first full data pass)."""
        return self.run

    def __len__(self) -> int:
        return self.file.n_frames

    def charge(self, index: int) -> np.ndarray:
        """Calibrated charge (electrons, float32, hot pixels masked) of frame `index`."""
        raw = self.file.read("frames", index)
        if index == self._digest.frames:
            self._digest.add(raw)
        return calibrate.frame_charge(raw, self.run, index)

    @property
    def frames_sha256(self) -> str | None:
        """The frames' digest (pipeline/io/digest.py) once every frame was read in order, else
        None."""
        return self._digest.hexdigest() if self._digest.frames == len(self) else None

    def noise_e(self, index: int) -> float:
        """The noise measured on frame `index` (electrons)."""
        return self.run.frames[index].noise_e

    def charges(self, prefetch: int = 0) -> Iterator[np.ndarray]:
        """Every frame's charge, in order, `prefetch` frames read ahead on a background thread."""
        return prefetched(self.charge, len(self), prefetch)


@contextlib.contextmanager
def calibrated(
    path: str | Path,
    config: FrameSections,
    classes: Sequence[str] | None = None,
    io: IOConfig | None = None,
) -> Iterator[CalibratedFile]:
    """Open `path` (checked against the format contract, with `classes` when it has labels);
    its run is calibrated with the config's calibration and physics when first needed (a
    FrameFileError naming the file if it cannot be). The file is closed on exit."""
    with open_frames(path, io or config.io, classes) as ff:
        yield CalibratedFile(ff, config)
