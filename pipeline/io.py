"""Frame and map files: reading, writing and checking them (the contract of FRAME_FORMAT.md).

This module owns every byte the pipeline reads or writes for frames and maps:
- format detection by magic bytes (HDF5, ROOT, FITS including fpack ``.fz``);
- lazy readers that expose a frame stack as a dask array (`open_frames` -> `FrameFile`);
- class matching by name: labels and event classes are remapped to the caller's class order;
- input validation at open time, every problem a one-line `FrameFileError` naming the file;
- atomic writers (`FrameWriter` for HDF5/ROOT frame files, `write_map` for map files), built on
  `atomic_output`: a temporary file in the same directory, renamed into place only on success.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import dask
import dask.array as da
import h5py
import numpy as np
import uproot
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from pipeline.config import IOConfig

FORMATS = ("hdf5", "root", "fits")
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
_HDF5_MAGIC, _ROOT_MAGIC, _FITS_MAGIC = b"\x89HDF\r\n\x1a\n", b"root", b"SIMPLE  ="


class FrameFileError(Exception):
    """Bad input file. str(e) is ONE line that starts with the file path, says what is wrong and,
    where relevant, what exists instead."""

    def __init__(self, path: str | Path, message: str) -> None:
        super().__init__(f"{path}: {' '.join(str(message).split())}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _is_numeric(dtype: np.dtype) -> bool:
    return dtype.kind in "iuf"


def _dtype_name(dtype: np.dtype) -> str:
    if h5py.check_string_dtype(dtype):
        return f"string ({'variable-length' if dtype.kind == 'O' else dtype.str})"
    return str(dtype)


def detect_format(path: Path) -> str:
    """'hdf5', 'root' or 'fits', from the file's magic bytes (never from its extension)."""
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
        offset = 512
        while head[:8] != _HDF5_MAGIC and offset + 8 <= size:  # HDF5 user block: 512, 1024, ...
            fh.seek(offset)
            if fh.read(8) == _HDF5_MAGIC:
                return "hdf5"
            offset *= 2
    for fmt, magic in (("hdf5", _HDF5_MAGIC), ("root", _ROOT_MAGIC), ("fits", _FITS_MAGIC)):
        if head.startswith(magic):
            return fmt
    raise FrameFileError(
        path, f"unknown file format (supported: {', '.join(FORMATS)}); first bytes {head!r}"
    )


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
    _handles: list[Any] = field(default_factory=list, repr=False)

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        n, h, w = self.frames.shape
        return int(n), int(h), int(w)

    def close(self) -> None:
        while self._handles:
            with contextlib.suppress(Exception):
                self._handles.pop().close()

    def __enter__(self) -> FrameFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_frames(path: str | Path, io: IOConfig, classes: Sequence[str] | None = None) -> FrameFile:
    """Open a frame file of any supported format lazily, validate it and match its classes."""
    path = Path(path)
    fmt = detect_format(path)
    handles: list[Any] = []
    opener = {"hdf5": _open_hdf5, "root": _open_root, "fits": _open_fits}[fmt]
    try:
        ff = opener(path, io, handles)
        _validate(ff, io, classes)
        return ff
    except BaseException as exc:
        for handle in handles:
            with contextlib.suppress(Exception):
                handle.close()
        if isinstance(exc, FrameFileError) or not isinstance(exc, Exception):
            raise
        raise FrameFileError(
            path,
            f"cannot read {fmt} file (truncated or corrupt?): "
            f"{type(exc).__name__}: {_one_line(exc)}",
        ) from None


# --------------------------------------------------------------------------------------------
# HDF5


def _h5_datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def _h5_array(path: Path, f: h5py.File, name: str, what: str = "frames") -> da.Array:
    ds = f.get(name)
    if not isinstance(ds, h5py.Dataset):
        raise FrameFileError(
            path, f"no {what} dataset '{name}' (datasets present: {_h5_datasets(f) or 'none'})"
        )
    if ds.ndim not in (2, 3):
        raise FrameFileError(
            path,
            f"dataset '{name}' has rank {ds.ndim} (shape {ds.shape}); "
            "expected 2-D (H, W) or 3-D (N, H, W)",
        )
    if not _is_numeric(ds.dtype):
        raise FrameFileError(
            path,
            f"dataset '{name}' has non-numeric dtype "
            f"{_dtype_name(ds.dtype)}; expected integer or float",
        )
    chunks = ds.chunks or ((1,) * (ds.ndim - 2) + ds.shape[-2:])
    arr = da.from_array(ds, chunks=chunks, lock=True, name=False)  # False: a unique random key
    return arr[None] if arr.ndim == 2 else arr


def _attr_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return value.item() if value.size == 1 else None
    return value.item() if isinstance(value, np.generic) else value


def _names(value: Any) -> list[str]:
    if isinstance(value, (str, bytes)):
        value = _attr_value(value).split(",")
    return [_attr_value(v).strip() if isinstance(v, bytes) else str(v).strip() for v in value]


def _open_hdf5(path: Path, io: IOConfig, handles: list[Any]) -> FrameFile:
    f = h5py.File(path, "r")
    handles.append(f)
    frames = _h5_array(path, f, io.frames_dataset)
    labels = _h5_array(path, f, io.labels_dataset, "labels") if io.labels_dataset in f else None
    instances = None
    if io.instances_dataset in f:
        instances = _h5_array(path, f, io.instances_dataset, "instances")
    events = None
    if isinstance(f.get(io.events_group), h5py.Group):
        group = f[io.events_group]
        events = {k: np.asarray(v[()]) for k, v in group.items() if isinstance(v, h5py.Dataset)}
    attrs = dict(DEFAULT_ATTRS)
    attrs.update({k: _attr_value(v) for k, v in f.attrs.items() if k != "class_names"})
    attrs = {k: v for k, v in attrs.items() if v is not None}
    names = _names(f.attrs["class_names"]) if "class_names" in f.attrs else None
    return FrameFile(
        path, "hdf5", frames, labels, instances, events, names, attrs, _handles=handles
    )


# --------------------------------------------------------------------------------------------
# ROOT


def _root_block(
    path: Path,
    branch: Any,
    lock: threading.Lock,
    start: int,
    stop: int,
    hw: tuple[int, int],
    dtype: np.dtype,
) -> np.ndarray:
    with lock:
        arr = branch.array(entry_start=start, entry_stop=stop, library="ak")
    counts = np.asarray(ak.num(arr))
    bad = np.flatnonzero(counts != hw[0] * hw[1])
    if bad.size:
        raise FrameFileError(
            path,
            f"entry {start + bad[0]}: '{branch.name}' has "
            f"{counts[bad[0]]} values, expected height*width = "
            f"{hw[0]}*{hw[1]} = {hw[0] * hw[1]}",
        )
    flat = np.asarray(ak.to_numpy(ak.flatten(arr)), dtype=dtype)
    return flat.reshape(stop - start, *hw)


def _root_array(path: Path, tree: Any, name: str, hw: tuple[int, int], n: int) -> da.Array:
    branch, lock = tree[name], threading.Lock()
    dtype = np.dtype(branch.array(entry_start=0, entry_stop=1, library="np")[0].dtype)
    if not _is_numeric(dtype):
        raise FrameFileError(path, f"branch '{name}' has non-numeric dtype {dtype}")
    blocks = []
    for start in range(0, n, ROOT_BLOCK):
        stop = min(start + ROOT_BLOCK, n)
        load = dask.delayed(_root_block, pure=False)(path, branch, lock, start, stop, hw, dtype)
        blocks.append(da.from_delayed(load, shape=(stop - start, *hw), dtype=dtype))
    return da.concatenate(blocks, axis=0)


def _open_root(path: Path, io: IOConfig, handles: list[Any]) -> FrameFile:
    f = uproot.open(path)
    handles.append(f)
    keys = f.keys(cycle=False)
    if io.root_tree not in keys or not isinstance(f[io.root_tree], uproot.TTree):
        present = ", ".join(f"{k} ({c})" for k, c in f.classnames(cycle=False).items())
        raise FrameFileError(path, f"no TTree '{io.root_tree}' (keys present: {present or 'none'})")
    tree = f[io.root_tree]
    branches = tree.keys()
    missing = [b for b in ("image", "height", "width") if b not in branches]
    if missing:
        raise FrameFileError(
            path, f"tree '{io.root_tree}' lacks branches {missing} (branches present: {branches})"
        )
    heights, widths = (tree[b].array(library="np") for b in ("height", "width"))
    if len(heights) == 0:
        raise FrameFileError(path, f"tree '{io.root_tree}' has no entries")
    shapes = sorted({(int(h), int(w)) for h, w in zip(heights, widths, strict=True)})
    if len(shapes) > 1:
        raise FrameFileError(path, f"frames have different (height, width): {shapes[:5]}")
    hw, n = shapes[0], len(heights)
    frames = _root_array(path, tree, "image", hw, n)
    labels = _root_array(path, tree, "labels", hw, n) if "labels" in branches else None
    names = _names(str(f["class_names"])) if "class_names" in keys else None
    return FrameFile(path, "root", frames, labels, class_names=names, _handles=handles)


# --------------------------------------------------------------------------------------------
# FITS

_BITPIX = {8: "uint8", 16: "int16", 32: "int32", 64: "int64", -32: "float32", -64: "float64"}
_UNSIGNED = {(8, -128): "int8", (16, 32768): "uint16", (32, 2**31): "uint32", (64, 2**63): "uint64"}


def _fits_dtype(header: fits.Header) -> np.dtype:
    """The dtype astropy gives the (scaled) data of an image HDU, without reading the data."""
    bitpix, bzero, bscale = header["BITPIX"], header.get("BZERO", 0), header.get("BSCALE", 1)
    if bscale == 1 and (bitpix, bzero) in _UNSIGNED:
        return np.dtype(_UNSIGNED[(bitpix, bzero)])
    if bitpix < 0 or (bscale == 1 and bzero == 0):
        return np.dtype(_BITPIX[bitpix])
    return np.dtype("float32" if bitpix <= 16 else "float64")


def _fits_frame(
    hdul: fits.HDUList,
    index: int,
    lock: threading.Lock,
    cut: tuple[slice, slice],
    over: slice | None,
    pedestal: bool,
    dtype: np.dtype,
    odt: np.dtype,
) -> tuple[np.ndarray, ...]:
    with lock:
        data = np.array(hdul[index].data)
        with contextlib.suppress(AttributeError):
            del hdul[index].data  # do not keep every frame cached on the HDU
    active = data[cut]
    ovs = data[cut[0], over] if over is not None else None
    if pedestal and ovs is not None:
        active = active.astype(np.float32) - np.median(ovs, axis=1, keepdims=True)
    out = np.asarray(active, dtype=dtype)[None]
    return (out,) if ovs is None else (out, ovs[None].astype(odt))


def _cut(path: Path, span: tuple[int, int] | None, size: int, what: str) -> slice:
    if span is None:
        return slice(0, size)
    if not 0 <= span[0] < span[1] <= size:
        raise FrameFileError(path, f"io.fits.{what} {list(span)} outside the image (size {size})")
    return slice(*span)


def _fits_select(path: Path, hdul: fits.HDUList, hdus: list[int | str] | None) -> list[int]:
    images = [i for i, h in enumerate(hdul) if h.is_image and h.header.get("NAXIS", 0) > 0]
    if hdus is None:
        if not images:
            present = [f"{i}:{h.name}:{type(h).__name__}" for i, h in enumerate(hdul)]
            raise FrameFileError(path, f"no image HDU with data (HDUs present: {present})")
        return images
    chosen = []
    for sel in hdus:
        match = [
            i
            for i in images
            if (i == sel if isinstance(sel, int) else hdul[i].name.upper() == str(sel).upper())
        ]
        if not match:
            present = [f"{i}:{hdul[i].name}" for i in images]
            raise FrameFileError(
                path,
                f"HDU {sel!r} not found among the image HDUs "
                f"(image HDUs present: {present or 'none'})",
            )
        chosen.append(match[0])
    return chosen


def _open_fits(path: Path, io: IOConfig, handles: list[Any]) -> FrameFile:
    cfg = io.fits
    with warnings.catch_warnings():  # astropy only warns about truncated or damaged HDUs
        warnings.simplefilter("error", AstropyUserWarning)
        hdul = fits.open(path)
        handles.append(hdul)
        hdul.readall()
    indices = _fits_select(path, hdul, cfg.hdus)
    shapes = {i: tuple(hdul[i].header[f"NAXIS{k}"] for k in (2, 1)) for i in indices}
    bad_rank = [i for i in indices if hdul[i].header["NAXIS"] != 2]
    if bad_rank:
        raise FrameFileError(
            path,
            f"HDU {bad_rank[0]} has rank {hdul[bad_rank[0]].header['NAXIS']}; expected 2-D images",
        )
    cuts = {
        i: (
            _cut(path, cfg.data_rows, s[0], "data_rows"),
            _cut(path, cfg.data_cols, s[1], "data_cols"),
        )
        for i, s in shapes.items()
    }
    cut_shapes = {i: (c[0].stop - c[0].start, c[1].stop - c[1].start) for i, c in cuts.items()}
    if len(set(cut_shapes.values())) > 1:
        raise FrameFileError(path, f"image HDUs differ in shape: {cut_shapes} (HDU: (rows, cols))")
    pedestal = cfg.pedestal_from_overscan and cfg.overscan_cols is not None
    if cfg.pedestal_from_overscan and cfg.overscan_cols is None:
        raise FrameFileError(path, "io.fits.pedestal_from_overscan needs io.fits.overscan_cols")
    dtypes = [_fits_dtype(hdul[i].header) for i in indices]
    dtype = np.dtype(np.float32) if pedestal else np.result_type(*dtypes)
    lock, frames, overscan = threading.Lock(), [], []
    for i, odt in zip(indices, dtypes, strict=True):
        over = cfg.overscan_cols and _cut(path, cfg.overscan_cols, shapes[i][1], "overscan_cols")
        load = dask.delayed(_fits_frame, pure=False, nout=1 if over is None else 2)(
            hdul, i, lock, cuts[i], over, pedestal, dtype, odt
        )
        frames.append(da.from_delayed(load[0], shape=(1, *cut_shapes[i]), dtype=dtype))
        if over is not None:
            oshape = (1, cut_shapes[i][0], over.stop - over.start)
            overscan.append(da.from_delayed(load[1], shape=oshape, dtype=odt))
    ovs = da.concatenate(overscan, axis=0) if overscan else None
    return FrameFile(path, "fits", da.concatenate(frames, axis=0), overscan=ovs, _handles=handles)


# --------------------------------------------------------------------------------------------
# Validation and class matching


def _scan(arr: da.Array, is_bad: Callable[[np.ndarray], np.ndarray]) -> tuple[int, Any, Counter]:
    """Stream over `arr` one chunk row at a time: how many bad values, where the first is, which."""
    count, first, values, start = 0, None, Counter(), 0
    for n in arr.chunks[0]:
        block = np.asarray(arr[start : start + n].compute())
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


def _validate(ff: FrameFile, io: IOConfig, classes: Sequence[str] | None) -> None:
    path, names = ff.path, ff.class_names
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
    _match_classes(ff, names, classes)


def _match_classes(ff: FrameFile, names: list[str], classes: Sequence[str] | None) -> None:
    if ff.events is not None and "class" in ff.events:
        ecls = ff.events["class"]
        if ecls.size and (ecls.min() < 0 or ecls.max() >= len(names)):
            raise FrameFileError(ff.path, f"event class values outside the class list {names}")
    if classes is None:
        if ff.labels is not None:
            ff.labels = ff.labels.astype(np.uint8)
        return
    unknown = [n for n in names if n not in classes]
    if unknown:
        raise FrameFileError(
            ff.path,
            f"class names {unknown} of the file are not in the expected classes {list(classes)}",
        )
    lut = np.array([list(classes).index(n) for n in names], dtype=np.uint8)
    if ff.labels is not None:
        ff.labels = ff.labels.map_blocks(lambda b: lut[b], dtype=np.uint8)
    if ff.events is not None and "class" in ff.events:
        ff.events["class"] = lut[ff.events["class"]]
    ff.class_names = list(classes)


# --------------------------------------------------------------------------------------------
# Writing


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it over `path` on success, delete on error."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def _h5_dataset(parent: h5py.Group, name: str, data: Any = None, **kw: Any) -> h5py.Dataset:
    if kw.get("chunks"):
        kw.update(compression="gzip", compression_opts=1, shuffle=True)
    return parent.create_dataset(name, data=data, track_times=False, **kw)


def _h5_group(parent: h5py.Group, name: str) -> h5py.Group:
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl))


def _h5_names(obj: h5py.File, names: Sequence[str]) -> None:
    obj.attrs.create("class_names", list(names), dtype=h5py.string_dtype("utf-8"))


class FrameWriter:
    """Append-only writer of a frame file, HDF5 or ROOT (chosen from the suffix: .h5/.hdf5 or
    .root; anything else is a ValueError naming the path). Atomic: writes to a temporary name in
    the same directory and renames it over the final path on successful close; on any exception
    inside the with-block, or if abort() is called, the temporary file is deleted."""

    def __init__(
        self,
        path: str | Path,
        *,
        io: IOConfig,
        height: int,
        width: int,
        frame_dtype: str = "float32",
        class_names: Sequence[str] | None = None,
        attrs: Mapping[str, Any] | None = None,
        with_truth: bool = False,
    ) -> None:
        self.path, self.io, self.hw = Path(path), io, (int(height), int(width))
        suffix = self.path.suffix.lower()
        if suffix not in (".h5", ".hdf5", ".root"):
            raise ValueError(f"{self.path}: unsupported output suffix (use .h5, .hdf5 or .root)")
        if with_truth and not class_names:
            raise ValueError(f"{self.path}: with_truth=True needs class_names")
        self.kind = "root" if suffix == ".root" else "hdf5"
        self.dtype, self.with_truth, self.n = np.dtype(frame_dtype), with_truth, 0
        self.class_names = list(class_names) if class_names else None
        self._events: list[dict[str, np.ndarray]] = []
        self._batch: list[tuple[np.ndarray, np.ndarray | None]] = []
        self._atomic = atomic_output(self.path)
        tmp = self._atomic.__enter__()
        try:
            hdf5 = self.kind == "hdf5"
            self._file = self._open_hdf5(tmp, attrs) if hdf5 else self._open_root(tmp)
        except BaseException as exc:
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def _open_hdf5(self, tmp: Path, attrs: Mapping[str, Any] | None) -> h5py.File:
        f = h5py.File(tmp, "w", libver="earliest")
        meta = {**DEFAULT_ATTRS, "readout_noise_e": 0.0, "units": "ADU", **(attrs or {})}
        for key, value in meta.items():
            f.attrs[key] = value
        if self.class_names:
            _h5_names(f, self.class_names)
        shape, chunks = (0, *self.hw), (1, *self.hw)
        names = [(self.io.frames_dataset, self.dtype)]
        if self.with_truth:
            names += [(self.io.labels_dataset, "uint8"), (self.io.instances_dataset, "int32")]
        for name, dtype in names:
            _h5_dataset(f, name, shape=shape, maxshape=(None, *self.hw), chunks=chunks, dtype=dtype)
        return f

    def _open_root(self, tmp: Path) -> Any:
        f = uproot.recreate(tmp)
        if self.class_names:
            f["class_names"] = ",".join(self.class_names)
        image = "var * float64" if self.dtype == np.float64 else "var * float32"
        types = {"image": image, "height": "int32", "width": "int32"}
        if self.with_truth:
            types["labels"] = "var * uint8"
        f.mktree(self.io.root_tree, types)
        return f

    def append(
        self,
        frame: np.ndarray,
        labels: np.ndarray | None = None,
        instances: np.ndarray | None = None,
        events: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Append one (H, W) frame and, with truth, its labels, instances and event rows."""
        arrays = {"frame": frame, "labels": labels, "instances": instances}
        for what, arr in arrays.items():
            if arr is not None and np.shape(arr) != self.hw:
                raise ValueError(f"{self.path}: {what} shape {np.shape(arr)} != {self.hw}")
        if self.with_truth and labels is None:
            raise ValueError(f"{self.path}: with_truth=True needs labels for every frame")
        n_cls = len(self.class_names or [])
        if labels is not None and n_cls and not 0 <= np.min(labels) <= np.max(labels) < n_cls:
            raise ValueError(f"{self.path}: label values outside class_names {self.class_names}")
        if events is not None:
            unknown = set(events) - set(EVENT_COLUMNS)
            missing = set(EVENT_COLUMNS) - {"frame"} - set(events)
            if unknown or missing:
                raise ValueError(
                    f"{self.path}: event columns: unknown {sorted(unknown)}, "
                    f"missing {sorted(missing)}"
                )
            cols = {
                c: np.asarray(events[c], dtype=t) for c, t in EVENT_COLUMNS.items() if c != "frame"
            }
            if len({len(v) for v in cols.values()}) > 1:
                raise ValueError(f"{self.path}: event columns differ in length")
            cols["frame"] = np.full(len(cols["class"]), self.n, np.int32)
            self._events.append(cols)
        if self.kind == "root":
            self._batch.append((np.array(frame), None if labels is None else np.array(labels)))
            if len(self._batch) >= ROOT_BLOCK:
                self._flush_root()
        else:
            self._append_hdf5(frame, labels, instances)
        self.n += 1

    def _append_hdf5(
        self, frame: np.ndarray, labels: np.ndarray | None, instances: np.ndarray | None
    ) -> None:
        items = [(self.io.frames_dataset, frame)]
        if self.with_truth:
            inst = np.zeros(self.hw, np.int32) if instances is None else instances
            items += [(self.io.labels_dataset, labels), (self.io.instances_dataset, inst)]
        for name, arr in items:
            ds = self._file[name]
            ds.resize(self.n + 1, axis=0)
            ds[self.n] = np.asarray(arr).astype(ds.dtype)

    def _flush_root(self) -> None:
        if not self._batch:
            return
        size, n = self.hw[0] * self.hw[1], len(self._batch)
        image_dtype = np.float64 if self.dtype == np.float64 else np.float32
        data = {
            "image": ak.unflatten(
                np.concatenate([f.ravel() for f, _ in self._batch]).astype(image_dtype),
                np.full(n, size),
            ),
            "height": np.full(n, self.hw[0], np.int32),
            "width": np.full(n, self.hw[1], np.int32),
        }
        if self.with_truth:
            flat = np.concatenate([lab.ravel() for _, lab in self._batch]).astype(np.uint8)
            data["labels"] = ak.unflatten(flat, np.full(n, size))
        self._file[self.io.root_tree].extend(data)
        self._batch = []

    def close(self) -> None:
        """Finish the file and move it into place."""
        if self._file is None:
            return
        try:
            if self.kind == "root":
                self._flush_root()
            elif self.with_truth or self._events:
                group = _h5_group(self._file, self.io.events_group)
                for col, dtype in EVENT_COLUMNS.items():
                    parts = [e[col] for e in self._events]
                    _h5_dataset(group, col, np.concatenate(parts) if parts else np.zeros(0, dtype))
            self._file.close()
        except BaseException as exc:
            self._file = None
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._file = None
        self._atomic.__exit__(None, None, None)

    def abort(self) -> None:
        """Drop everything written so far; no output file appears."""
        if self._file is None:
            return
        with contextlib.suppress(Exception):
            self._file.close()
        self._file = None
        exc = RuntimeError("aborted")
        self._atomic.__exit__(RuntimeError, exc, None)

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_map(
    path: str | Path,
    labels: np.ndarray,
    class_names: Sequence[str],
    source: str | Path,
    probabilities: np.ndarray | None = None,
) -> None:
    """Write a map file (labels, optional float16 probabilities, class_names, source) atomically."""
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"{path}: labels must be (N, H, W), got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(
            f"{path}: label values {labels.min()}..{labels.max()} outside "
            f"class_names {list(class_names)}"
        )
    n, h, w = labels.shape
    if probabilities is not None and np.shape(probabilities) != (n, len(class_names), h, w):
        raise ValueError(
            f"{path}: probabilities shape {np.shape(probabilities)} != (N, C, H, W) = "
            f"{(n, len(class_names), h, w)}"
        )
    with atomic_output(path) as tmp, h5py.File(tmp, "w", libver="earliest") as f:
        _h5_dataset(f, "labels", labels.astype(np.uint8), chunks=(1, h, w) if n else None)
        if probabilities is not None:
            _h5_dataset(
                f,
                "probabilities",
                np.asarray(probabilities, dtype=np.float16),
                chunks=(1, len(class_names), h, w) if n else None,
            )
        _h5_names(f, class_names)
        f.attrs["source"] = str(source)
