"""Shared pieces of frame-file I/O: the error type, the errors of the file libraries, the
open-file record, small helpers."""

from __future__ import annotations

import contextlib
import functools
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import h5py
import numpy as np

from pipeline.core.errors import FrameFileError, one_line

EVENT_COLUMNS = {
    "frame": "int32",
    "instance": "int32",
    "class": "uint8",
    "energy_kev": "float64",
    "x": "float64",
    "y": "float64",
    "depth_um": "float64",
}
DEFAULT_ATTRS = {"gain_adu_per_e": 1.0, "pixel_size_um": 15.0}
ROOT_BLOCK = 16


@functools.cache
def read_errors() -> tuple[type[BaseException], ...]:
    """What the file libraries raise for a truncated, corrupt or foreign file: the OS's and
    h5py's (OSError, EOFError, RuntimeError for damaged metadata), zlib's, uproot's
    (deserialisation, a missing key), astropy's (VerifyError, and the warnings of a damaged
    file, which the FITS reader raises as errors), and the malformed-data errors numpy, awkward
    and astropy raise underneath (ValueError, TypeError, KeyError, IndexError). A reader catches
    only these, around the library's calls, and names the file; anything else is a bug and
    stays a traceback."""
    from astropy.io.fits.verify import VerifyError
    from astropy.utils.exceptions import AstropyUserWarning
    from uproot.deserialization import DeserializationError

    return (
        OSError,
        EOFError,
        RuntimeError,
        zlib.error,
        DeserializationError,
        VerifyError,
        AstropyUserWarning,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
    )


def is_numeric(dtype: np.dtype) -> bool:
    return dtype.kind in "iuf"


def dtype_name(dtype: np.dtype) -> str:
    if h5py.check_string_dtype(dtype):
        return f"string ({'variable-length' if dtype.kind == 'O' else dtype.str})"
    return str(dtype)


@dataclass
class FrameFile:
    """An open frame file: lazy arrays plus the truth and attributes it carries."""

    path: Path
    format: str
    frames: da.Array
    labels: da.Array | None = None
    instances: da.Array | None = None
    events: dict[str, np.ndarray] | None = None
    class_names: list[str] | None = None
    attrs: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_ATTRS))
    overscan: da.Array | None = None
    sources: dict[str, str] = field(default_factory=dict)  # where attrs and sections came from
    # One exposure read by several amplifiers (a multi-amplifier FITS file): each amplifier's
    # attrs; frame i is amplifier i % amplifiers of exposure i // amplifiers. None: one each.
    amplifier_attrs: list[dict[str, Any]] | None = None
    defaulted: frozenset[str] = frozenset(DEFAULT_ATTRS)  # attrs the file does not state
    _handles: list[Any] = field(default_factory=list, repr=False)

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def stated_attrs(self) -> dict[str, Any]:
        """The attrs the file (or the config over its header) states, without the defaults."""
        return {k: v for k, v in self.attrs.items() if k not in self.defaulted}

    @property
    def detector_attrs(self) -> dict[str, Any]:
        """The stated attrs as one detector: for several amplifiers, the median of each of
        their noises and gains (what a simulation with one amplifier takes)."""
        attrs = self.stated_attrs
        for key in ("readout_noise_e", "gain_adu_per_e"):
            values = [a[key] for a in self.amplifier_attrs or [] if key in a]
            if key in attrs and len(values) > 1:
                attrs[key] = float(np.median(values))
        return attrs

    @property
    def amplifiers(self) -> int:
        return len(self.amplifier_attrs) if self.amplifier_attrs else 1

    @property
    def n_exposures(self) -> int:
        """Exposures in the file: its frames over its amplifiers."""
        return self.n_frames // self.amplifiers

    @property
    def shape(self) -> tuple[int, int, int]:
        n, h, w = self.frames.shape
        return int(n), int(h), int(w)

    def read(self, what: str, index: int) -> np.ndarray:
        """Frame `index` of `frames`, `labels` or `instances`, computed. Data are read lazily, so
        a corrupt chunk may surface only here: it is a FrameFileError naming the file."""
        try:  # one frame is one chunk; dask's thread pool would deadlock in a forked worker
            return np.asarray(getattr(self, what)[index].compute(scheduler="synchronous"))
        except read_errors() as exc:
            raise FrameFileError(
                self.path,
                f"cannot read {what} of frame {index} (truncated or corrupt?): "
                f"{type(exc).__name__}: {one_line(exc)}",
            ) from None

    def read_all(self) -> None:
        """Read every frame and its truth once (what the stages will read), e.g. to check a file."""
        for index in range(self.n_frames):
            for what in ("frames", "labels", "instances"):
                if getattr(self, what) is not None:
                    self.read(what, index)

    def close(self) -> None:
        while self._handles:
            with contextlib.suppress(Exception):
                self._handles.pop().close()

    def __enter__(self) -> FrameFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
