"""Opening a frame file: format detection (pipeline/io/registry.py), validation and class
matching by name."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from pipeline.config import IOConfig
from pipeline.io.base import (
    EVENT_COLUMNS,
    FrameFile,
    FrameFileError,
    is_numeric,
    one_line,
    read_errors,
)
from pipeline.io.registry import FORMATS


def _told_by(head: bytes, fh: Any, size: int) -> str | None:
    """The registered format whose magic bytes the file has, at its start or its offsets."""
    for fmt in FORMATS.values():
        if head.startswith(fmt.magic):
            return fmt.name
    for fmt in FORMATS.values():
        for offset in fmt.magic_offsets:
            if offset + len(fmt.magic) > size:
                break
            fh.seek(offset)
            if fh.read(len(fmt.magic)) == fmt.magic:
                return fmt.name
    return None


def detect_format(path: Path) -> str:
    """The name of the file's format (a key of the registry: hdf5, root, fits), from its magic
    bytes (never from its extension)."""
    path = Path(path)
    if not path.exists():
        raise FrameFileError(path, "no such file")
    if path.is_dir():
        raise FrameFileError(path, "is a directory, not a frame file")
    size = path.stat().st_size
    if size == 0:
        raise FrameFileError(path, "file is empty (0 bytes)")
    with path.open("rb") as fh:
        head = fh.read(16)
        found = _told_by(head, fh, size)
    if found is None:
        raise FrameFileError(
            path, f"unknown file format (supported: {', '.join(FORMATS)}); first bytes {head!r}"
        )
    return found


def open_frames(path: str | Path, io: IOConfig, classes: Sequence[str] | None = None) -> FrameFile:
    """Open a frame file of any supported format lazily, validate it and match its classes."""
    path = Path(path)
    fmt = detect_format(path)
    handles: list[Any] = []
    opener = FORMATS[fmt].opener
    try:
        opened = opener(path, io, handles)
        _validate(opened, io)
        return _matched(opened, classes)
    except BaseException as exc:
        for handle in handles:
            with contextlib.suppress(Exception):
                handle.close()
        if isinstance(exc, FrameFileError) or not isinstance(exc, read_errors()):
            raise  # ours, an interrupt, or a bug: not "corrupt"
        raise FrameFileError(
            path,
            f"cannot read {fmt} file (truncated or corrupt?): "
            f"{type(exc).__name__}: {one_line(exc)}",
        ) from None


def _scan(arr: da.Array, is_bad: Callable[[np.ndarray], np.ndarray]) -> tuple[int, Any, Counter]:
    """Stream over `arr` one chunk row at a time: how many bad values, where the first is, which."""
    count, first, start = 0, None, 0
    values: Counter[str] = Counter()
    for n in arr.chunks[0]:
        block = np.asarray(arr[start : start + n].compute(scheduler="synchronous"))
        mask = is_bad(block)
        if mask.any():
            if first is None:
                f, r, c = np.argwhere(mask)[0]
                first = f"frame {start + f}, row {r}, column {c}"
            vals, counts = np.unique(block[mask], return_counts=True)
            values.update({str(v): int(k) for v, k in zip(vals.tolist(), counts, strict=True)})
            count += int(mask.sum())
        start += n
    return count, first, values


# the numeric attributes the pipeline uses, and the smallest value each may take
NUMERIC_ATTRS = {
    "gain_adu_per_e": "positive",
    "pixel_size_um": "positive",
    "exposure_s": "non-negative",  # 0: a bias frame (read; no activity is made of it)
    "readout_noise_e": "non-negative",
    "thickness_um": "positive",
}


def check_attrs(path: Path, attrs: dict[str, Any]) -> None:
    """Each attribute the pipeline uses is one finite real number of the right sign."""
    for key, sign in NUMERIC_ATTRS.items():
        if key not in attrs:
            continue
        value = attrs[key]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            shown = f"{type(value).__name__} {value!r}"[:80]
            raise FrameFileError(path, f"attr {key!r} is {shown}; expected one finite number")
        if value < 0 or (value == 0 and sign == "positive"):
            raise FrameFileError(path, f"attr {key!r} is {value!r}; it must be {sign}")


def _validate(ff: FrameFile, io: IOConfig) -> None:
    path, names = ff.path, ff.class_names
    check_attrs(path, ff.attrs)
    for attrs in ff.amplifier_attrs or []:
        check_attrs(path, attrs)
    if 0 in ff.frames.shape:
        raise FrameFileError(path, f"no pixels to read: frames shape {ff.frames.shape}")
    _check_frame_size(path, ff.frames.shape, io.max_frame_mb)
    if ff.labels is not None and ff.labels.shape != ff.frames.shape:
        raise FrameFileError(
            path, f"labels shape {ff.labels.shape} differs from frames shape {ff.frames.shape}"
        )
    if ff.instances is not None and ff.instances.dtype.kind not in "iu":
        raise FrameFileError(path, f"instances dtype {ff.instances.dtype} is not integer")
    for what, present in (("labels", ff.labels is not None), ("events", ff.events is not None)):
        if present and names is None:
            raise FrameFileError(path, f"{what} present but attr class_names missing")
    if io.check_finite and ff.frames.dtype.kind == "f":
        count, first, values = _scan(ff.frames, lambda b: ~np.isfinite(b))
        if count:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(values.items()))
            raise FrameFileError(
                path, f"{count} non-finite pixel values ({kinds}); first at {first}"
            )
    if names is None:
        return
    if ff.labels is not None:
        if ff.labels.dtype.kind not in "iu":
            raise FrameFileError(path, f"labels dtype {ff.labels.dtype} is not integer")
        count, first, values = _scan(ff.labels, lambda b: (b < 0) | (b >= len(names)))
        if count:
            bad = sorted(int(v) for v in values)[:10]
            raise FrameFileError(
                path,
                f"{count} label values outside the class list "
                f"(0..{len(names) - 1}, {names}): values {bad}; "
                f"first at {first}",
            )
    if ff.events is not None:
        _check_events(path, ff.events, ff.n_frames)
    if ff.events is not None and "class" in ff.events:
        ecls = ff.events["class"]
        if ecls.size and (ecls.min() < 0 or ecls.max() >= len(names)):
            raise FrameFileError(path, f"event class values outside the class list {names}")


def _check_events(path: Path, events: dict[str, np.ndarray], n_frames: int) -> None:
    """The events table of the contract: every column, one value per event in each, numbers,
    and frame indices of this file."""
    missing = [c for c in EVENT_COLUMNS if c not in events]
    if missing:
        raise FrameFileError(
            path, f"events table lacks columns {missing} (it has {sorted(events)})"
        )
    lengths = {c: np.shape(events[c]) for c in EVENT_COLUMNS}
    if len(set(lengths.values())) > 1 or any(len(shape) != 1 for shape in lengths.values()):
        raise FrameFileError(path, f"events columns differ in shape: {lengths}")
    bad = [c for c in EVENT_COLUMNS if not is_numeric(np.asarray(events[c]).dtype)]
    if bad:
        raise FrameFileError(path, f"events columns {bad} are not numbers")
    frames = np.asarray(events["frame"])
    if frames.size and (frames.min() < 0 or frames.max() >= n_frames):
        raise FrameFileError(
            path, f"events frame indices {frames.min()}..{frames.max()} outside 0..{n_frames - 1}"
        )


def _check_frame_size(path: Path, shape: tuple[int, ...], max_mb: float) -> None:
    """A frame the file declares must fit the memory budget as one float32 copy (what each
    stage holds of it, several times over), before any pixel is read."""
    height, width = shape[-2:]
    mb = height * width * 4 / 2**20
    if mb > max_mb:
        raise FrameFileError(
            path,
            f"declares frames of {height} x {width} pixels: {mb:,.0f} MB per float32 copy, "
            f"over io.max_frame_mb {max_mb:g}; a damaged header, or raise the limit",
        )


def _matched(ff: FrameFile, classes: Sequence[str] | None) -> FrameFile:
    """The validated file with its labels as uint8 and, given `classes`, its labels and event
    classes renumbered to that order by name (a new view: the opened file is left as read)."""
    names = ff.class_names
    if names is None:
        return ff
    if classes is None:
        labels = None if ff.labels is None else ff.labels.astype(np.uint8)
        return dataclasses.replace(ff, labels=labels)
    unknown = [n for n in names if n not in classes]
    if unknown:
        raise FrameFileError(
            ff.path,
            f"class names {unknown} of the file are not in the expected classes {list(classes)}",
        )
    lut = np.array([list(classes).index(n) for n in names], dtype=np.uint8)
    labels = (
        None if ff.labels is None else da.map_blocks(lambda b: lut[b], ff.labels, dtype=np.uint8)
    )
    events = ff.events
    if events is not None and "class" in events:
        events = {**events, "class": lut[events["class"]]}
    return dataclasses.replace(ff, labels=labels, events=events, class_names=list(classes))
