"""Frame and map files: reading, writing and checking them (the contract of docs/frame_format.md).

This module owns every byte the pipeline reads or writes for frames and maps:
- format detection by magic bytes (HDF5, ROOT, FITS including fpack ``.fz``);
- lazy readers that expose a frame stack as a dask array (`open_frames` -> `FrameFile`);
- class matching by name: labels and event classes are remapped to the caller's class order;
- input validation at open time, every problem a one-line `FrameFileError` naming the file;
- atomic writers (`FrameWriter` for HDF5/ROOT frame files, `write_map` for map files), built on
  `atomic_output`: a temporary file in the same directory, renamed into place only on success;
- what a file holds, for people (`inspect`, the `inspect` stage).

Imports: `core`, `config` (see `pipeline.LAYERS`).
"""

from pipeline.io.base import EVENT_COLUMNS, FrameFile, FrameFileError
from pipeline.io.mapfile import MapFile, open_map
from pipeline.io.read import detect_format, open_frames
from pipeline.io.registry import FORMATS
from pipeline.io.write import FrameWriter, MapWriter, atomic_output, write_map

__all__ = [
    "EVENT_COLUMNS",
    "FORMATS",
    "FrameFile",
    "FrameFileError",
    "FrameWriter",
    "MapFile",
    "MapWriter",
    "atomic_output",
    "detect_format",
    "open_frames",
    "open_map",
    "write_map",
]
