"""The registry of frame-file formats: each one's name, the magic bytes that tell it and the
function that opens it. Formats are told by their bytes, never by a file's name; a new format
is one opener and one `register` call here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import IOConfig
from pipeline.io.base import FrameFile
from pipeline.io.formats import open_fits, open_gzip_fits, open_hdf5, open_root

Opener = Callable[[Path, IOConfig, list[Any]], FrameFile]  # (path, io, handles to close)


@dataclass(frozen=True)
class Format:
    name: str
    magic: bytes  # the file's first bytes
    opener: Opener
    magic_offsets: tuple[int, ...] = ()  # where else the magic may start (HDF5's user block)


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    FORMATS[fmt.name] = fmt
    return fmt


# an HDF5 file may start with a user block of 512, 1024, 2048, ... bytes before its signature
register(Format("hdf5", b"\x89HDF\r\n\x1a\n", open_hdf5, tuple(512 * 2**k for k in range(24))))
register(Format("root", b"root", open_root))
register(Format("fits", b"SIMPLE  =", open_fits))
# gzip-compressed FITS, as archives serve it (.fits.gz): astropy reads it as it is
register(Format("fits.gz", b"\x1f\x8b", open_gzip_fits))
