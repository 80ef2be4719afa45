"""Map files (docs/frame_format.md), read: the per-pixel classes a labeller gave a frame file's
frames. A `MapFile` is not a frame file: it has labels, their class names and the frame file it
was made from (`source`, with its frames' digest and the model's SHA-256 where recorded), and
no frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import h5py
import numpy as np

from pipeline.config import IOConfig
from pipeline.io.base import FrameFile, FrameFileError
from pipeline.io.read import detect_format, open_frames


@dataclass
class MapFile:
    path: Path
    labels: da.Array  # (N, H, W) uint8, in the class order it was opened with
    class_names: list[str]
    source: str | None  # attr `source`: the name of the frame file the map was made from
    provenance: dict[str, str]  # attrs frames_sha256, model, model_sha256, where written
    _reader: FrameFile  # the validated HDF5 reader underneath (its handles)

    @property
    def shape(self) -> tuple[int, int, int]:
        n, h, w = self.labels.shape
        return int(n), int(h), int(w)

    @property
    def n_frames(self) -> int:
        return self.shape[0]

    def read(self, index: int) -> np.ndarray:
        """The labels of frame `index`; a corrupt chunk is a FrameFileError naming the file."""
        return self._reader.read("labels", index)

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> MapFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


PROVENANCE = (
    "source",
    "frames_sha256",
    "model",
    "model_sha256",
    "condition_back_sigma_px",
    "condition_source",
    "priors",
    "priors_source",
)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _provenance(path: Path) -> dict[str, str]:
    """The map's attrs saying what it was made from (`source` and those of PROVENANCE present)."""
    with h5py.File(path, "r") as f:
        return {k: _text(f.attrs[k]) for k in PROVENANCE if k in f.attrs}


def open_map(path: str | Path, io: IOConfig, classes: Sequence[str] | None = None) -> MapFile:
    """Open a map file lazily: its `labels`, checked like a frame file's truth (dtype, values in
    its class list) and remapped to `classes` by name."""
    path = Path(path)
    if detect_format(path) != "hdf5":
        raise FrameFileError(path, "not a map file: map files are HDF5 (docs/frame_format.md)")
    map_io = io.model_copy(
        update={  # the reader's checks of labels, with the labels standing in for frames
            "frames_dataset": "labels",
            "labels_dataset": "labels",
            "check_finite": False,
            "instances_dataset": "",
            "events_group": "",
        }
    )
    reader = open_frames(path, map_io, classes)
    assert reader.labels is not None and reader.class_names is not None  # checked by the reader
    provenance = _provenance(path)
    source = provenance.pop("source", None)
    return MapFile(path, reader.labels, list(reader.class_names), source, provenance, reader)
